"""Render and validate one site, writing nothing under deploy/.

compute the outputs once (:mod:`kkc.outputs`) -> generate the tree
(:func:`kkc.generate.render_tree`) -> kustomize build it in a scratch directory outside
deploy/ -> :func:`validate_output`. `kkc render`, `diff`, `check` and `lint` stop here; `kkc
build` then writes the result under the deploy/ lock (:mod:`kkc.build`, :mod:`kkc.writer`).
"""

from __future__ import annotations

import contextlib
import json
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import deployrepo, gitops, kustomize, lint, rotation, sitecache, validate, writer
from . import patches as patch_files
from .errors import InputError, OutputInvalid, Problem
from .generate import STAGE_LABEL, Provenance, render_tree
from .loader import load_site
from .model import Site
from .outputs import Outputs, compute
from .yamlio import dump, load_stream


@dataclass
class Rendered:
    site: Site
    tree: dict[str, bytes]  # deploy/<site>/ including the ownership manifest
    manifests: str  # what `kustomize build` printed
    objects: dict[str, str]  # "Kind/namespace/name" -> sha256 of the object's YAML
    warnings: list[Problem] = field(default_factory=list)


def object_key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace", "")
    return f"{obj.get('kind')}/{ns + '/' if ns else ''}{meta.get('name')}"


def local_provenance() -> Provenance:
    """The provenance of a tree built in the site repository itself."""
    return Provenance(kustomize=kustomize.find_engine().version)


def display(site: Site) -> str:
    """Where problems of the built output are reported."""
    return f"deploy/{site.name}/kustomization.yaml"


@contextlib.contextmanager
def scratch(
    root: Path, name: str, tree: dict[str, bytes], copies: dict[str, bytes] | None = None
) -> Iterator[Path]:
    """``tree`` in a temporary directory outside deploy/, laid out like the repository, so
    its relative paths (../../../../base/<service>/<stage>) resolve as in deploy/<name>/:
    <tmp>/deploy/<name>/ beside <tmp>/base/ and <tmp>/overlays/. Those are links to the
    repository's directories; kustomize resolves the links before it applies its root-only
    load restrictor, so each base loads its files exactly as from the repository. With
    ``copies`` (the base/ and overlays/ files a deploy repository will hold), byte copies
    of exactly those instead, which proves the tree self-contained. Yields
    <tmp>/deploy/<name>/; the directory is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="kkc-render-") as tmp:
        top = Path(tmp)
        if copies is None:
            for part in deployrepo.SHARED_TOPS:
                if (root / part).is_dir():
                    (top / part).symlink_to((root / part).resolve(), target_is_directory=True)
        else:
            _write(top, copies)
        site_dir = top / "deploy" / name
        _write(site_dir, tree)
        yield site_dir


def linked(root: Path) -> tuple[Path, ...]:
    """What kustomize errors name a scratch directory's links by: the repository they point
    into (kustomize resolves links), shown relative to it as in deploy/."""
    return (root.resolve(),)


def _write(top: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        path = top / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def site_tree(root: Path, site: Site, outputs: Outputs, provenance: Provenance) -> dict[str, bytes]:
    """deploy/<site>/ as :func:`render_tree` makes it from ``outputs``, with the site's
    patches (sites/<site>/patches/) in the stages that render their targets.

    A site with patches costs one kustomize build of its tree without them, and it is
    needed: a patch names its target by kind and name, and which stage renders that object
    only kustomize can tell (the objects come from the bases under base/, the overlays'
    components and the generators, which kkc does not evaluate itself). A patch has to sit
    in that stage's kustomization (kustomize patches only what its own kustomization
    accumulated), so the unpatched tree is built once and each object's stage read from its
    kkc.openstack.org/stage label (:func:`kkc.patches.route`). Generating the tree again
    reuses ``outputs``: no service is rendered twice.

    A site with rotation generations (secrets.rotation) costs that build too: which Jobs
    apply a password and which workloads read it is read from the built objects
    (:func:`kkc.rotation.touches`), and the generations go into their pod templates."""
    tree = render_tree(site, provenance=provenance, outputs=outputs)
    gens = rotation.generations(site)
    if not site.patches and not gens:
        return tree
    if gens:
        rotation.check_names(site, outputs.all_secrets())
    with scratch(root, site.name, tree) as site_dir:
        objects = load_stream(kustomize.build(site_dir, display(site), linked(root)))
    routed = patch_files.route(site, objects, STAGE_LABEL) if site.patches else None
    rotated = None
    if gens:
        found = rotation.touches(site, outputs.all_secrets(), objects, set(gens))
        rotated = rotation.patches(site, found)
    return render_tree(site, routed, provenance, outputs=outputs, rotated=rotated)


def check_bootstrap(
    site: Site, tree: dict[str, bytes], crd_dir: str | None
) -> tuple[list[dict[str, Any]], list[Problem], list[Problem]]:
    """The bootstrap objects of a rendered tree, validated against their CRD schemas."""
    objects = load_stream(tree[gitops.BOOTSTRAP].decode())
    problems, warnings = validate.validate_objects(
        objects, site.get("kubernetes.version"), crd_dir, f"deploy/{site.name}/{gitops.BOOTSTRAP}"
    )
    return objects, problems, warnings


def validate_output(
    site: Site,
    tree: dict[str, bytes],
    objects: list[dict[str, Any]],
    crd_dir: str | None,
    outputs: Outputs,
) -> tuple[list[Problem], list[Problem]]:
    """Every check of a site's output: (problems, warnings). ``tree`` is deploy/<site>/,
    ``objects`` what kustomize built from it, ``outputs`` what the tree was rendered from.

    bootstrap.yaml against the CRD schemas; the INI files against the release's option
    catalog (KKC310); the built objects against the Kubernetes and CRD schemas
    (KKC301-KKC306), their references (KKC307), and their images and config.json
    documents against the Kolla release (KKC308, KKC309)."""
    where = display(site)
    _bootstrap, problems, warnings = check_bootstrap(site, tree, crd_dir)
    ini_problems, ini_warnings = lint.check_ini(site, tree, objects, where, outputs)
    schema_problems, schema_warnings = validate.validate_objects(
        objects, site.get("kubernetes.version"), crd_dir, where
    )
    kolla_problems, kolla_warnings = lint.check_kolla(site, objects, where)
    problems += ini_problems + schema_problems
    problems += lint.check_references(site, objects, where, outputs)
    problems += kolla_problems
    return problems, warnings + ini_warnings + schema_warnings + kolla_warnings


def _built(
    site_dir: Path, site: Site, tree: dict[str, bytes], crd_dir: str | None, outputs: Outputs
) -> tuple[str, dict[str, str], list[Problem], dict[str, bytes] | None]:
    """(manifests, object digests, warnings, the files the build read or None:
    :func:`kkc.kustomize.build_reading`) of the tree at ``site_dir``; invalid output raises
    OutputInvalid, with the warnings."""
    warnings = site.warnings + gitops.ignored_settings(site)
    try:
        manifests, read = kustomize.build_reading(site_dir, display(site), linked(site.root))
    except OutputInvalid as exc:
        if site.patches:  # the tree built without them (site_tree): blame them
            exc = _blame_patches(site_dir, site, tree, exc)
        exc.warnings = warnings + check_bootstrap(site, tree, crd_dir)[2]
        raise exc from None
    objects = load_stream(manifests)
    refused = patch_files.refused_by_definition(site, objects, display(site))
    if refused:  # an input error, as in the site definition
        invalid_input = InputError(refused)
        invalid_input.warnings = warnings
        raise invalid_input
    problems, found = validate_output(site, tree, objects, crd_dir, outputs)
    warnings += found
    if problems:
        invalid = OutputInvalid(problems)
        invalid.warnings = warnings
        raise invalid
    digests = {
        object_key(o): writer.sha256(json.dumps(o, sort_keys=True, separators=(",", ":")).encode())
        for o in objects
    }
    return manifests, dict(sorted(digests.items())), warnings, read


_FAILED_STAGE = re.compile(r"accumulating resources from 'stages/([a-z0-9-]+)'")


def _blame_patches(
    site_dir: Path, site: Site, tree: dict[str, bytes], exc: OutputInvalid
) -> OutputInvalid:
    """The kustomize failure of a tree that built before the site's patches were added,
    located at the patch that causes it: each site patch of the failing stage is tried
    alone in that stage (the stage builds on its own). When none fails alone, the first
    of them is named, with the others in the message."""
    [problem] = exc.problems
    named = _FAILED_STAGE.search(problem.message)
    by_file = {p.file: p for p in site.patches}
    suspects: list[tuple[str, str]] = []  # (stage, file)
    for rel in sorted(tree):
        parts = rel.split("/")
        if len(parts) == 4 and parts[0] == "stages" and parts[2] == "site-patches":
            if named is None or parts[1] == named.group(1):
                suspects.append((parts[1], parts[3]))
    if not suspects:
        return exc
    culprits = []
    for stage, file in suspects:
        kust = site_dir / "stages" / stage / "kustomization.yaml"
        original = kust.read_bytes()
        [data] = load_stream(original.decode())
        data["patches"] = [
            e
            for e in data.get("patches") or []
            if not str(e.get("path", "")).startswith("site-patches/")
            or e["path"] == f"site-patches/{file}"
        ]
        kust.write_text(dump(data), encoding="utf-8")
        try:
            where = f"deploy/{site.name}/stages/{stage}/kustomization.yaml"
            kustomize.build(kust.parent, where, linked(site.root))
        except OutputInvalid:
            culprits.append(file)
        finally:
            kust.write_bytes(original)
    if culprits:
        return OutputInvalid(
            [Problem(by_file[f].display, 1, 1, problem.code, problem.message) for f in culprits]
        )
    first, *others = [by_file[f] for _stage, f in suspects]
    also = f" (with the site patches {', '.join(p.display for p in others)})" if others else ""
    return OutputInvalid(Problem(first.display, 1, 1, problem.code, problem.message + also))


def render(
    root: Path,
    site: Site,
    crd_dir: str | None,
    provenance: Provenance | None = None,
    outputs: Outputs | None = None,
) -> Rendered:
    """The site rendered and validated as `kkc build` writes it to deploy/<site>/, in a
    scratch directory: nothing under deploy/ is read, locked or written. Inputs rendered
    before are read from kkc's cache instead (:mod:`kkc.sitecache`)."""
    provenance = provenance or local_provenance()
    entry = sitecache.key(site, crd_dir, provenance)
    hit = sitecache.get(root, entry)
    if hit is not None:
        tree, manifests, objects, warnings = hit
        return Rendered(site, tree, manifests, objects, warnings)
    outputs = outputs or compute(site)
    tree = site_tree(root, site, outputs, provenance)
    with scratch(root, site.name, tree) as site_dir:
        manifests, objects, warnings, read = _built(site_dir, site, tree, crd_dir, outputs)
    full = writer.full_tree(site.name, tree, objects)
    sitecache.put(
        entry, sitecache.dependencies(read, site.name), full, manifests, objects, warnings
    )
    return Rendered(site, full, manifests, objects, warnings)


def render_site(root: Path, name: str, crd_dir: str | None) -> Rendered:
    """`kkc render`: site ``name`` loaded, rendered and validated, writing nothing."""
    return render(root, load_site(root, name), crd_dir)


def render_for_repo(
    root: Path, site: Site, prov: Provenance, crd_dir: str | None, outputs: Outputs | None = None
) -> tuple[Rendered, dict[str, bytes]]:
    """The site as `kkc build --repo` writes it, and the base/ and overlays/ copies it uses.

    It is validated in a scratch copy of exactly what the deploy repository will hold for it,
    which proves that it is self-contained. ``outputs``: the site's, when the caller has
    computed them."""
    outputs = outputs or compute(site)
    tree = site_tree(root, site, outputs, prov)  # the patches routed in the site repository
    copies = deployrepo.copies_for(root, {site.name: tree})
    with scratch(root, site.name, tree, copies) as site_dir:
        manifests, objects, warnings, _read = _built(site_dir, site, tree, crd_dir, outputs)
    full = writer.full_tree(site.name, tree, objects)
    return Rendered(site, full, manifests, objects, warnings), copies
