"""The pipeline: load -> validate -> resolve -> generate -> kustomize build -> validate
output -> write atomically -> commit. The CLI calls these functions and nothing else."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from . import __version__, deployrepo, features, gitops, gitrepo, kustomize, lint, validate, writer
from . import patches as patch_files
from .errors import EnvironmentProblem, InputError, OutputInvalid, Problem, UsageError
from .generate import STAGE_LABEL, Provenance, all_secrets, remote_key, render_tree
from .loader import list_sites, load_site
from .model import DNS_LABEL_RE, Site, locate
from .yamlio import dump, load_stream


@dataclass
class Rendered:
    site: Site
    tree: dict[str, bytes]  # deploy/<site>/ including the ownership manifest
    manifests: str  # what `kustomize build` printed
    objects: dict[str, str]  # "Kind/namespace/name" -> sha256 of the object's YAML
    warnings: list[str] = field(default_factory=list)


@dataclass
class BuildResult:
    site: str
    files: writer.Changes
    objects: writer.Changes = field(default_factory=writer.Changes)
    commit: str | None = None
    warnings: list[str] = field(default_factory=list)
    removed: bool = False  # the site is gone; its kkc-owned output was removed


def object_key(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace", "")
    return f"{obj.get('kind')}/{ns + '/' if ns else ''}{meta.get('name')}"


def load_sites(root: Path, names: list[str], all_sites: bool) -> list[Site]:
    """Every named site, loaded and validated before anything is written."""
    chosen = list_sites(root) if all_sites else names
    return [load_site(root, n) for n in dict.fromkeys(chosen)]


def _site_tree(deploy: Path, site: Site, provenance: Provenance) -> dict[str, bytes]:
    """render_tree, with the site's patches in the stages that render their targets
    (found by building the tree once without them). The caller holds the deploy lock."""
    tree = render_tree(site, provenance=provenance)
    if not site.patches:
        return tree
    staged = writer.stage(deploy, site.name, tree)
    try:
        objects = load_stream(kustomize.build(staged, f"deploy/{site.name}/kustomization.yaml"))
    finally:
        shutil.rmtree(staged)
    return render_tree(site, patch_files.route(site, objects, STAGE_LABEL), provenance)


@contextlib.contextmanager
def _staged(
    root: Path, site: Site, provenance: Provenance | None = None
) -> Iterator[tuple[Path, dict[str, bytes]]]:
    """The site's tree, and where it is staged beside deploy/<site>/ (same relative paths
    to base/ and overlays/)."""
    deploy = root / "deploy"
    created = not deploy.exists()
    with writer.locked(deploy):
        tree = _site_tree(deploy, site, provenance or _local_provenance())
        staged = writer.stage(deploy, site.name, tree)
        try:
            yield staged, tree
        finally:
            if staged.exists():
                shutil.rmtree(staged)
    if created and not any(deploy.iterdir()):
        deploy.rmdir()


def check_bootstrap(
    site: Site, tree: dict[str, bytes], crd_dir: str | None
) -> tuple[list[dict[str, Any]], list[Problem], list[str]]:
    """The bootstrap objects of a rendered tree, validated against their CRD schemas."""
    objects = load_stream(tree[gitops.BOOTSTRAP].decode())
    problems, warnings = validate.validate_objects(
        objects, site.get("kubernetes.version"), crd_dir, f"deploy/{site.name}/{gitops.BOOTSTRAP}"
    )
    return objects, problems, warnings


def bootstrap(site: Site, crd_dir: str | None) -> tuple[bytes, list[dict[str, Any]], list[str]]:
    """`kkc bootstrap`: (the YAML stream, its objects, warnings); invalid objects raise."""
    tree = render_tree(site)
    objects, problems, warnings = check_bootstrap(site, tree, crd_dir)
    if problems:
        raise OutputInvalid(problems)
    return tree[gitops.BOOTSTRAP], objects, gitops.ignored_settings(site) + warnings


@dataclass
class Fleet:
    """`kkc bootstrap --applicationset`: the stream, its objects, warnings, and the sites
    left out because another engine reconciles them."""

    text: bytes
    objects: list[dict[str, Any]]
    warnings: list[str]
    excluded: list[Site]


def bootstrap_applicationset(sites: list[Site], crd_dir: str | None, name: str) -> Fleet:
    """One ApplicationSet over the Argo CD ``sites`` (with their AppProjects), validated
    against the CRD schemas; invalid objects raise."""
    if not DNS_LABEL_RE.match(name):
        raise UsageError(
            f'--name "{name}" is not a DNS-1123 label (lowercase letters, digits and "-", '
            "at most 63 characters)"
        )
    argo = [s for s in sites if s.get("gitops.engine") == "argocd"]
    excluded = [s for s in sites if s not in argo]
    if not argo:
        raise UsageError(
            "no Argo CD site to put in an ApplicationSet (gitops.engine is flux for "
            f"{', '.join(s.name for s in excluded)}); use kkc bootstrap SITE"
        )
    objects = gitops.applicationset(argo, name)
    problems, warnings = validate.validate_objects(
        objects, argo[0].get("kubernetes.version"), crd_dir, "<kkc bootstrap --applicationset>"
    )
    if problems:
        raise OutputInvalid(problems)
    ignored = [w for s in argo for w in gitops.ignored_settings(s)]
    warnings = list(dict.fromkeys(ignored)) + warnings
    return Fleet(gitops.applicationset_yaml(argo, objects), objects, warnings, excluded)


def _render_in(
    staged: Path, site: Site, tree: dict[str, bytes], crd_dir: str | None
) -> tuple[str, dict[str, str], list[str]]:
    display = f"deploy/{site.name}/kustomization.yaml"
    _objects, problems, warnings = check_bootstrap(site, tree, crd_dir)
    warnings = site.warnings + gitops.ignored_settings(site) + warnings
    try:
        manifests = kustomize.build(staged, display)
    except OutputInvalid as exc:
        if site.patches:  # the tree built without them (_site_tree): blame them
            exc = _blame_patches(staged, site, tree, exc)
        exc.warnings = warnings
        raise exc from None
    objects = load_stream(manifests)
    ini_problems, ini_warnings = lint.check_ini(site, tree, objects, display)
    problems += ini_problems
    warnings += ini_warnings
    schema_problems, schema_warnings = validate.validate_objects(
        objects, site.get("kubernetes.version"), crd_dir, display
    )
    problems += schema_problems
    warnings += schema_warnings
    problems += lint.check_references(site, objects, display)
    kolla_problems, kolla_warnings = lint.check_kolla(site, objects, display)
    problems += kolla_problems
    warnings += kolla_warnings
    if problems:
        invalid = OutputInvalid(problems)
        invalid.warnings = warnings
        raise invalid
    digests = {
        object_key(o): writer.sha256(json.dumps(o, sort_keys=True, separators=(",", ":")).encode())
        for o in objects
    }
    return manifests, dict(sorted(digests.items())), warnings


_FAILED_STAGE = re.compile(r"accumulating resources from 'stages/([a-z0-9-]+)'")


def _blame_patches(
    staged: Path, site: Site, tree: dict[str, bytes], exc: OutputInvalid
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
        kust = staged / "stages" / stage / "kustomization.yaml"
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
            kustomize.build(kust.parent, f"deploy/{site.name}/stages/{stage}/kustomization.yaml")
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


def render(root: Path, site: Site, crd_dir: str | None) -> Rendered:
    """Render and validate without touching deploy/<site>/."""
    with _staged(root, site) as (staged, tree):
        manifests, objects, warnings = _render_in(staged, site, tree, crd_dir)
    return Rendered(site, writer.full_tree(site.name, tree, objects), manifests, objects, warnings)


def overlay_effects(root: Path, site: Site) -> list[str]:
    """KKC129 warnings: each listed overlay whose removal leaves the site's rendered
    objects unchanged (its defaults are all overridden and its components match
    nothing). One extra kustomize build per overlay, so `kkc lint` runs it, not build."""

    def objects(s: Site) -> list[Any]:
        with _staged(root, s) as (staged, _tree):
            return load_stream(kustomize.build(staged, f"deploy/{s.name}/kustomization.yaml"))

    names = site.get("overlays") or []
    if not names:
        return []
    full = objects(site)
    origin = site.origins[("overlays",)]
    [layer] = [lay for lay in site.layers if lay.display == origin.path]

    def changes_nothing(name: str) -> bool:
        try:
            without = load_site(root, site.name, frozenset({name}))
        except InputError:
            return False  # the site is not even valid without it
        return objects(without) == full

    return [
        f"warning: {origin.path}:{':'.join(map(str, locate(layer.doc, ('overlays', i))))}: "
        f'KKC129 overlay "{name}" changes nothing for site {site.name}'
        for i, name in enumerate(names)
        if changes_nothing(name)
    ]


def _local_provenance() -> Provenance:
    return Provenance(kustomize=kustomize.find_engine().version)


def _object_changes(old: dict[str, str], new: dict[str, str]) -> writer.Changes:
    return writer.Changes(
        added=sorted(set(new) - set(old)),
        changed=sorted(k for k in set(new) & set(old) if new[k] != old[k]),
        removed=sorted(set(old) - set(new)),
    )


def _file_lines(files: writer.Changes, listed: bool) -> list[str]:
    lines = [
        f"Files: {len(files.added)} added, {len(files.changed)} changed, "
        f"{len(files.removed)} removed"
    ]
    for label, items in (
        (("added", files.added), ("changed", files.changed), ("removed", files.removed))
        if listed
        else ()
    ):
        lines += [f"  {label}: {item}" for item in items[:50]]
        if len(items) > 50:
            lines.append(f"  {label}: ... and {len(items) - 50} more")
    return lines


@dataclass(frozen=True)
class Source:
    """The sources a build read, for the commit trailers: the commit checked out and, when
    the sources on disk are not exactly that commit's (modified, staged or untracked files,
    or no commit at all), the digest of what was read."""

    commit: str | None = None
    digest: str | None = None  # None: the sources are exactly ``commit``'s
    url: str | None = None  # the site repository's origin (deploy repository mode)

    def trailers(self) -> list[str]:
        commit = self.commit or "none"
        return [
            "",
            f"Source-Commit: {commit}-dirty" if self.digest else f"Source-Commit: {commit}",
            *([f"Source-Digest: sha256:{self.digest}"] if self.digest else []),
            *([f"Source-Repository: {self.url}"] if self.url else []),
            f"Kkc-Version: {__version__}",
        ]


# a deploy repository's README names one source commit for all the sites it holds
DEPLOY_REPO_SOURCES = ["sites", *deployrepo.SHARED_TOPS]


def site_sources(name: str) -> list[str]:
    """The paths (relative to the site repository) that the output of site ``name`` is built
    from: its directory, the fleet defaults, the bases and the overlays."""
    return [f"sites/{name}", "sites/defaults.yaml", *deployrepo.SHARED_TOPS]


def source_of(root: Path, prefixes: list[str]) -> Source:
    url, sha, digest = gitrepo.source_info(root, prefixes)
    return Source(sha, digest, url)


def commit_message(
    name: str,
    digest: str | None,
    files: writer.Changes,
    objects: writer.Changes,
    source: Source,
) -> str:
    """``digest`` is the site's; None when the site is gone and its output removed."""
    lines = [f"kkc: {'build' if digest else 'remove'} {name}", ""]
    lines.append(
        f"Objects: {len(objects.added)} added, {len(objects.changed)} changed, "
        f"{len(objects.removed)} removed"
    )
    for label, items in (
        ("added", objects.added),
        ("changed", objects.changed),
        ("removed", objects.removed),
    ):
        for item in items[:50]:
            lines.append(f"  {label}: {item}")
        if len(items) > 50:
            lines.append(f"  {label}: ... and {len(items) - 50} more")
    lines += _file_lines(files, listed=False)
    lines += source.trailers()
    if digest:
        lines.append(f"Site-Digest: sha256:{digest}")
    return "\n".join(lines) + "\n"


def build_sites(
    root: Path, sites: list[Site], *, crd_dir: str | None, commit: bool, prune: bool = False
) -> list[BuildResult]:
    """Render and validate every site first, then swap all trees in, then commit.

    Invalid output in any site raises before anything is written. With ``prune`` (a build of
    every site), the kkc-owned output of sites that no longer exist is removed too."""
    deploy = root / "deploy"
    repo = gitrepo.open_repo(root) if commit else None
    if repo is not None:
        gitrepo.ready_to_commit(repo)
    prov = _local_provenance()
    created = not deploy.exists()
    results: list[BuildResult] = []
    fulls: list[dict[str, bytes]] = []
    staged: list[Path] = []
    try:
        with writer.locked(deploy):
            for site in sites:
                tree = _site_tree(deploy, site, prov)
                staged.append(writer.stage(deploy, site.name, tree))
                _manifests, objects, warnings = _render_in(staged[-1], site, tree, crd_dir)
                full = writer.full_tree(site.name, tree, objects)
                (staged[-1] / writer.MANIFEST).write_bytes(full[writer.MANIFEST])
                site_dir = deploy / site.name
                files = writer.diff_against_disk(site_dir, full)
                objs = _object_changes(writer.read_objects(site_dir), objects)
                warnings = warnings + not_owned_warnings(site_dir, site.name, full)
                results.append(BuildResult(site.name, files, objs, warnings=warnings))
                fulls.append(full)
            for site, result, tmp in zip(sites, results, staged, strict=True):
                if result.files:
                    writer.swap(deploy, site.name, tmp)
            if prune:
                results += _prune(deploy, sites)
    finally:
        for tmp in staged:
            if tmp.exists():
                shutil.rmtree(tmp)
        if created and deploy.exists() and not any(deploy.iterdir()):
            deploy.rmdir()
    if repo is not None:
        for site, result, full in zip(sites, results, fulls, strict=False):
            source = source_of(root, site_sources(site.name))
            result.commit = _commit(repo, site.name, site.digest, full, source)
        for result in results[len(sites) :]:
            source = source_of(root, site_sources(result.site))
            result.commit = _commit(repo, result.site, None, {}, source)
    return results


def not_owned_warnings(
    site_dir: Path, name: str, full: dict[str, bytes], prefix: str = ""
) -> list[str]:
    """The files a build leaves in deploy/<site>/ that kkc does not own, as `kkc check`
    reports them (KKC329): build and check give the same verdict about every file, also
    after `git checkout -- deploy/` restored an older manifest beside newer output."""
    return [
        f"warning: {prefix}deploy/{name}/{rel}:1:1: KKC329 {writer.not_owned_message(name)}"
        for rel in writer.not_owned(site_dir, full)
    ]


def _prune(deploy: Path, sites: list[Site]) -> list[BuildResult]:
    """Remove the kkc-owned output of the sites in ``deploy`` that are not among ``sites``
    (they no longer exist). The caller holds the deploy lock."""
    results = []
    for name in writer.stale_sites(deploy, {s.name for s in sites}):
        objects = writer.read_objects(deploy / name)
        files = writer.Changes(removed=writer.remove_owned(deploy / name))
        gone = writer.Changes(removed=sorted(objects))
        results.append(BuildResult(name, files, gone, removed=True))
    return results


def _commit(
    repo: Any,
    name: str,
    digest: str | None,
    full: dict[str, bytes],
    source: Source,
) -> str | None:
    """Commit the kkc-owned paths of deploy/<site>/ that differ from HEAD; None if none do.

    The message describes the change against HEAD, so output that an earlier build without
    --commit left behind is committed (and described) too."""
    site_dir = Path(repo.working_tree_dir) / "deploy" / name
    head_manifest = gitrepo.head_bytes(repo, site_dir / writer.MANIFEST)
    touched = [p for p in full if gitrepo.differs_from_head(repo, site_dir / p)]
    gone = [
        p
        for p in sorted(set(writer.parse_manifest(head_manifest)) | {writer.MANIFEST})
        if p not in full and gitrepo.differs_from_head(repo, site_dir / p)
    ]
    if not touched and not gone:
        return None
    new = [p for p in touched if gitrepo.head_bytes(repo, site_dir / p) is None]
    files = writer.Changes(added=new, changed=[p for p in touched if p not in new], removed=gone)
    objects = _object_changes(
        writer.parse_objects(head_manifest), writer.parse_objects(full.get(writer.MANIFEST))
    )
    return gitrepo.commit_paths(
        repo,
        [site_dir / p for p in touched],
        [site_dir / p for p in gone],
        commit_message(name, digest, files, objects, source),
    )


@dataclass
class DeployResult:
    """What `kkc build --repo` did in the deploy repository."""

    repo: Path
    branch: str
    sites: list[BuildResult]
    copies: writer.Changes  # base/ and overlays/ copies written or removed
    copies_commit: str | None = None


# kkc-owned paths of a deploy repository (besides deploy/<site>/)
_SHARED = [*deployrepo.SHARED_TOPS, deployrepo.COPIES, deployrepo.ATTRIBUTES]


def _repo_url_warning(site: Site, urls: list[str]) -> list[str]:
    """KKC162 when the site's gitops.repoURL is none of the deploy repository's remote URLs:
    the controller would read another repository (by default the site repository)."""
    repo_url = site.get("gitops.repoURL")
    if not urls or any(gitrepo.same_repository(repo_url, u) for u in urls):
        return []
    where = ":".join(map(str, gitops.setting_origin(site, "repoURL")))
    return [
        f"warning: {where}: KKC162 gitops.repoURL {repo_url} is not the deploy repository "
        f"({', '.join(urls)}): the GitOps controller would not read what kkc writes there; "
        "set gitops.repoURL (and gitops.revision) to the deploy repository and its branch"
    ]


def open_deploy_repo(root: Path, target: Path) -> tuple[Any, Path]:
    """The deploy repository at ``target`` (the top of a git work tree that is not the site
    repository) and its top directory."""
    deploy_repo = gitrepo.open_work_tree(target)
    top = Path(deploy_repo.working_tree_dir or target).resolve()
    if gitrepo.work_tree_top(root) == top or root.resolve() == top:
        raise UsageError(f"--repo {target} is the site repository itself; drop --repo")
    return deploy_repo, top


def repo_provenance(root: Path, branch: str | None) -> Provenance:
    """The provenance of a tree built into a deploy repository from the site repository."""
    source = source_of(root, DEPLOY_REPO_SOURCES)
    return Provenance(
        kustomize=kustomize.find_engine().version,
        deploy_repo=True,
        source_url=source.url,
        source_commit=source.commit,
        source_dirty=source.digest is not None,
        branch=branch,
    )


def render_for_repo(
    root: Path, site: Site, prov: Provenance, crd_dir: str | None
) -> tuple[Rendered, dict[str, bytes]]:
    """The site as `kkc build --repo` writes it, and the base/ and overlays/ copies it uses.

    It is validated in a scratch copy of exactly what the deploy repository will hold for it,
    which proves that it is self-contained."""
    with _staged(root, site, prov) as (_unused, tree):
        pass  # the tree, with the site's patches routed (built in the site repository)
    copies = deployrepo.copies_for(root, {site.name: tree})
    with tempfile.TemporaryDirectory(prefix="kkc-deploy-") as tmp:
        scratch = Path(tmp)
        for rel, data in copies.items():
            deployrepo.write_file(scratch / rel, data)
        site_dir = scratch / "deploy" / site.name
        for rel, data in tree.items():
            deployrepo.write_file(site_dir / rel, data)
        manifests, objects, warnings = _render_in(site_dir, site, tree, crd_dir)
    full = writer.full_tree(site.name, tree, objects)
    return Rendered(site, full, manifests, objects, warnings), copies


def build_into_repo(
    root: Path,
    sites: list[Site],
    *,
    target: Path,
    branch: str | None,
    crd_dir: str | None,
    commit: bool,
    prune: bool = False,
) -> DeployResult:
    """Build sites into the deploy repository at ``target``: deploy/<site>/ plus byte copies
    of the base/ and overlays/ directories they use, so that it builds on its own.

    Each site is validated in a scratch copy of exactly what the deploy repository will hold
    for it (proving that it is self-contained) before anything is written. Then ``branch`` is
    checked out, the copies and trees written, copies no kkc-built site uses any more
    removed, and, with ``commit``, one commit for the copies and one per changed site. With
    ``prune`` (a build of every site), the kkc-owned output of sites that no longer exist is
    removed first (one commit each), and with it the copies only they used."""
    deploy_repo, top = open_deploy_repo(root, target)
    if commit:
        gitrepo.ready_to_commit(deploy_repo)
    current = gitrepo.current_branch(deploy_repo)
    want = branch or current
    if want is None:
        raise EnvironmentProblem(
            f"deploy repository {target} has a detached HEAD; pass --branch NAME"
        )
    owned_prefixes = [*(f"deploy/{s.name}" for s in sites), *_SHARED]
    prov = repo_provenance(root, branch)
    trees: dict[str, dict[str, bytes]] = {}
    fulls: dict[str, dict[str, bytes]] = {}
    warnings: dict[str, list[str]] = {}
    for site in sites:
        rendered, _copies = render_for_repo(root, site, prov, crd_dir)
        fulls[site.name] = rendered.tree
        trees[site.name] = {k: v for k, v in rendered.tree.items() if k != writer.MANIFEST}
        warnings[site.name] = rendered.warnings
    copies = deployrepo.copies_for(root, trees)

    if want != current:  # git refuses to switch over local changes it would overwrite
        gitrepo.switch_branch(deploy_repo, want)
    urls = gitrepo.push_remote_urls(deploy_repo)
    for site in sites:
        warnings[site.name] += _repo_url_warning(site, urls)
    attributes = deployrepo.attributes_bytes(deployrepo.read_bytes(top / deployrepo.ATTRIBUTES))
    planned = {
        deployrepo.ATTRIBUTES: attributes,
        **copies,
        **{f"deploy/{s}/{rel}": data for s, full in fulls.items() for rel, data in full.items()},
    }
    edited = [
        p
        for p in gitrepo.dirty_paths(deploy_repo, owned_prefixes)
        if p in planned and deployrepo.read_bytes(top / p) != planned[p]
    ]
    if edited:
        raise EnvironmentProblem(
            f"deploy repository {target} has uncommitted changes in {', '.join(edited[:5])}"
            f"{' ...' if len(edited) > 5 else ''}; commit or discard them first "
            "(kkc would overwrite them)"
        )

    results: list[BuildResult] = []
    deploy = top / "deploy"
    with writer.locked(deploy):
        old_owned = deployrepo.read_copies(top)
        changes = writer.Changes()
        for rel, data in copies.items():
            existing = deployrepo.read_bytes(top / rel)
            if existing != data:
                (changes.added if existing is None else changes.changed).append(rel)
                deployrepo.write_file(top / rel, data)
        if deployrepo.read_bytes(top / deployrepo.ATTRIBUTES) != attributes:
            deployrepo.write_file(top / deployrepo.ATTRIBUTES, attributes)
        for site in sites:
            full = fulls[site.name]
            site_dir = deploy / site.name
            files = writer.diff_against_disk(site_dir, full)
            objs = _object_changes(
                writer.read_objects(site_dir), writer.parse_objects(full[writer.MANIFEST])
            )
            if files:
                staged = writer.stage(deploy, site.name, trees[site.name])
                (staged / writer.MANIFEST).write_bytes(full[writer.MANIFEST])
                writer.swap(deploy, site.name, staged)
            warnings[site.name] += not_owned_warnings(site_dir, site.name, full, f"{target}/")
            results.append(BuildResult(site.name, files, objs, warnings=warnings[site.name]))
        if prune:
            results += _prune(deploy, sites)
        used = deployrepo.in_use(top)  # without the removed sites
        owned = {**old_owned, **{rel: writer.sha256(data) for rel, data in copies.items()}}
        for rel in sorted(owned):
            path = PurePosixPath(rel)
            if not any(d == path or d in path.parents for d in used):
                deployrepo.remove_file(top, rel)
                del owned[rel]
                changes.removed.append(rel)
        manifest = deployrepo.copies_bytes(owned)
        if deployrepo.read_bytes(top / deployrepo.COPIES) != manifest:
            deployrepo.write_file(top / deployrepo.COPIES, manifest)
    out = DeployResult(top, want, results, changes)
    if commit:
        # removals first: no commit has a site referring to a copy that is already gone
        source = source_of(root, DEPLOY_REPO_SOURCES)
        for result in results[len(sites) :]:
            result.commit = _commit(deploy_repo, result.site, None, {}, source)
        out.copies_commit = _commit_copies(deploy_repo, top, owned, source)
        for site, result in zip(sites, results, strict=False):
            result.commit = _commit(deploy_repo, site.name, site.digest, fulls[site.name], source)
    return out


def _commit_copies(repo: Any, top: Path, owned: dict[str, str], source: Source) -> str | None:
    """Commit the copies (with their manifest and the .gitattributes block) that differ from
    HEAD, first: the site commits that follow then refer to bases their commit already has."""
    head = deployrepo.parse_copies(gitrepo.head_bytes(repo, top / deployrepo.COPIES))
    meta = {deployrepo.COPIES, deployrepo.ATTRIBUTES}  # committed, not counted
    paths = sorted(set(owned) | set(head) | meta)
    touched = [p for p in paths if (top / p).is_file() and gitrepo.differs_from_head(repo, top / p)]
    gone = [p for p in paths if not (top / p).exists() and gitrepo.differs_from_head(repo, top / p)]
    if not touched and not gone:
        return None
    new = [p for p in touched if gitrepo.head_bytes(repo, top / p) is None]
    files = writer.Changes(
        added=[p for p in new if p not in meta],
        changed=[p for p in touched if p not in new and p not in meta],
        removed=gone,
    )
    message = (
        "\n".join(
            [
                "kkc: update base/ and overlays/ copies",
                "",
                *_file_lines(files, listed=True),
                *source.trailers(),
            ]
        )
        + "\n"
    )
    return gitrepo.commit_paths(repo, [top / p for p in touched], [top / p for p in gone], message)


def push(path: Path) -> str:
    """Push the current branch of the repository at ``path`` to its upstream (or origin)."""
    return gitrepo.push(gitrepo.open_repo(path))


_TEMPLATE_REF = re.compile(
    r'\{\{\s*(?:index \. "([^"]+)"|\.([\w-]+))\s*(\|\s*urlquery\s*)?(\|\s*regexFind[^}]*)?\}\}'
)


def _placeholders(template: str) -> str:
    """An ExternalSecret template as a human fills it in: {{ .password }} -> <password>;
    a keyring's bare key (nova-ceph) -> <keyring, its key only>."""

    def hint(m: re.Match[str]) -> str:
        how = ", URL-encoded" if m.group(3) else ", its key only" if m.group(4) else ""
        return f"<{m.group(1) or m.group(2)}{how}>"

    return _TEMPLATE_REF.sub(hint, template)


def secret_requirements(site: Site) -> list[dict[str, Any]]:
    """Every Secret the site's output reads, its keys, and where each comes from."""
    backend = site.get("secrets.backend")
    out = []
    for spec in all_secrets(features.site_outputs(site)):
        if spec.created_by:
            source = f"created in the cluster by {spec.created_by}"
        elif backend == "external-secrets":
            store = site.get("secrets.store")
            source = f"ExternalSecret {spec.name} (store {store['kind']}/{store['name']})"
        else:
            source = "must exist in the namespace before sync (secrets.backend: existing)"
        keys = []
        for k in spec.keys:
            entry: dict[str, Any] = {"key": k.key, "description": k.description}
            if k.source:
                entry["kollaPassword"] = k.source
                if backend == "external-secrets" and not spec.created_by:
                    entry["remoteRef"] = remote_key(site, k.source)
            if k.template:
                entry["template"] = k.template
                entry["content"] = _placeholders(k.template)
            keys.append(entry)
        out.append(
            {
                "name": spec.name,
                "namespace": site.get("namespace"),
                "purpose": spec.purpose,
                "source": source,
                "keys": keys,
            }
        )
    return out
