"""KKC129, a `kkc lint` check: each listed overlay must change something for the site.

One extra kustomize build per overlay (the site resolved without it), so `kkc lint` runs
it and `kkc build` does not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import kustomize
from .errors import WARNING, InputError, Problem
from .loader import load_site
from .model import Site, locate
from .outputs import compute
from .pipeline import display, linked, local_provenance, scratch, site_tree
from .yamlio import load_stream


def _objects(root: Path, site: Site) -> list[Any]:
    """The objects of the site's tree as kustomize builds it (not validated)."""
    tree = site_tree(root, site, compute(site), local_provenance())
    with scratch(root, site.name, tree) as site_dir:
        return load_stream(kustomize.build(site_dir, display(site), linked(root)))


def overlay_effects(root: Path, site: Site, manifests: str | None = None) -> list[Problem]:
    """KKC129 warnings: each listed overlay whose removal leaves the site's rendered
    objects unchanged (its defaults are all overridden and its components match
    nothing). ``manifests``: what the site's tree built to, when the caller has it."""
    names = site.get("overlays") or []
    if not names:
        return []
    full = load_stream(manifests) if manifests is not None else _objects(root, site)
    origin = site.origins[("overlays",)]
    [layer] = [lay for lay in site.layers if lay.display == origin.path]

    def changes_nothing(name: str) -> bool:
        try:
            without = load_site(root, site.name, frozenset({name}))
        except InputError:
            return False  # the site is not even valid without it
        return _objects(root, without) == full

    return [
        Problem(
            origin.path,
            *locate(layer.doc, ("overlays", i)),
            "KKC129",
            f'overlay "{name}" changes nothing for site {site.name}',
            WARNING,
        )
        for i, name in enumerate(names)
        if changes_nothing(name)
    ]
