"""`kkc lint`: every build check of each site, writing nothing, plus KKC129: each listed
overlay must change something for the site.

KKC129 costs one extra kustomize build per overlay (the site resolved without it), so
`kkc lint` runs it and `kkc build` does not."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from . import build, kustomize, pool, report
from .errors import WARNING, InputError, Problem
from .fleet import Shard
from .loader import load_site
from .model import Site, locate
from .outputs import Outputs, compute
from .pipeline import display, linked, local_provenance, render, scratch, site_tree
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


@dataclass
class SiteLint:
    site: str
    objects: int  # how many objects the site's tree builds to
    warnings: list[Problem] = field(default_factory=list)

    @property
    def line(self) -> str:
        return f"{self.site}: {self.objects} objects valid, {len(self.warnings)} warnings"


@dataclass
class LintRun:
    """What `kkc lint` found: one result per site; its JSON report and its verdict (with
    ``strict``, any warning fails)."""

    sites: list[SiteLint]
    strict: bool = False

    @property
    def findings(self) -> report.Report:
        return report.Report([w for s in self.sites for w in s.warnings], strict=self.strict)

    def as_json(self) -> dict[str, Any]:
        rows = [
            {"site": s.site, "objects": s.objects, "warnings": len(s.warnings)} for s in self.sites
        ]
        return {"sites": rows, "problems": self.findings.json()}

    def verdict(self) -> None:
        """Exit 1 (DifferenceFound) with ``strict`` and a warning."""
        count = sum(len(s.warnings) for s in self.sites)
        self.findings.verdict(f"kkc lint --strict: {count} warnings")


def lint_site(root: Path, crd_dir: str | None, item: tuple[Site, Outputs]) -> SiteLint:
    """One site rendered and validated as `kkc build` does, then its overlays checked."""
    site, outputs = item
    rendered = render(root, site, crd_dir, outputs=outputs)
    effects = overlay_effects(root, site, rendered.manifests)
    warnings = report.unique(rendered.warnings + effects)
    return SiteLint(site.name, len(rendered.objects), warnings)


def run(
    root: Path,
    names: list[str],
    *,
    all_sites: bool,
    strict: bool,
    crd_dir: str | None,
    jobs: int = 1,
    shard: Shard | None = None,
) -> LintRun:
    """`kkc lint`: each named site (or every site; with ``shard``, those of the shard)
    rendered and validated as `kkc build` does, in a scratch directory, then its overlays
    checked (KKC129), in ``jobs`` worker processes (:mod:`kkc.pool`). Every site is linted
    even when another fails; then one error names every site that failed."""
    loaded, outputs = build.load_fleet(root, names, all_sites, shard)
    sites = loaded.sites
    work = partial(lint_site, root, crd_dir)
    outcomes = pool.run_all(
        work, [(s, outputs[s.name]) for s in sites], jobs, [s.name for s in sites]
    )
    loaded.raise_failures(pool.failures(outcomes, [s.name for s in sites]))
    return LintRun([o.get() for o in outcomes], strict)
