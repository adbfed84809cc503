"""Write kkc's output: deploy/<site>/ of the site repository (`kkc build`) or of a
separate deploy repository (`kkc build --repo`), atomically under the deploy/ lock, and
commit it. Each site is first rendered and validated outside deploy/ (:mod:`kkc.pipeline`).
"""

from __future__ import annotations

import pickle
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

from . import deployrepo, fleet, gitops, gitrepo, kustomize, pool, progress, report, safety, writer
from .commits import (
    DEPLOY_REPO_SOURCES,
    Source,
    commit_copies,
    commit_site,
    object_changes,
    site_sources,
    source_of,
)
from .errors import WARNING, EnvironmentProblem, InputError, Problem, UnsafeChange, UsageError
from .fleet import Fleet, Shard
from .generate import Provenance
from .loader import FleetIndex, list_sites, load_site
from .model import Site
from .outputs import Outputs, compute
from .pipeline import local_provenance, object_key, render, render_for_repo
from .secretreqs import secret_requirements, shared_remote_keys

# kept importable from here, where they were: object_key, render, secret_requirements
__all__ = [
    "BuildResult",
    "BuildRun",
    "DeployResult",
    "build_into_repo",
    "build_sites",
    "load_fleet",
    "load_sites",
    "not_owned_warnings",
    "object_key",
    "open_deploy_repo",
    "push",
    "render",
    "repo_provenance",
    "run",
    "secret_requirements",
]


@dataclass
class BuildResult:
    site: str
    files: writer.Changes
    objects: writer.Changes = field(default_factory=writer.Changes)
    commit: str | None = None
    warnings: list[Problem] = field(default_factory=list)
    removed: bool = False  # the site is gone; its kkc-owned output was removed


def load_sites(
    root: Path, names: list[str], all_sites: bool, shard: Shard | None = None
) -> list[Site]:
    """Every named site, loaded and validated before anything is written; when any fails,
    one error with the problems of every site that failed (:class:`kkc.fleet.Fleet`)."""
    loaded = fleet.load(root, names, all_sites, shard)
    loaded.raise_failures()
    return loaded.sites


def site_list(root: Path) -> list[dict[str, Any]]:
    """`kkc list`: each site of the repository and whether deploy/<site>/ was built."""
    return [
        {"site": s, "built": (root / "deploy" / s / writer.MANIFEST).is_file()}
        for s in list_sites(root)
    ]


def load_fleet(
    root: Path, names: list[str], all_sites: bool, shard: Shard | None = None
) -> tuple[Fleet, dict[str, Outputs]]:
    """The sites `kkc lint` and `kkc check` judge (every site when none is named, those of
    ``shard``), each loaded on its own (one that fails does not stop the others: it is
    among the fleet's failures), and the outputs of those that loaded computed once (to
    render them with); several sites must not share passwords through one secret store
    (KKC152, exit 2), which their outputs tell."""
    chosen = fleet.load(root, names, all_sites or not names, shard)
    outputs = {site.name: compute(site) for site in chosen.sites}
    shared = shared_remote_keys(chosen.sites, outputs) if len(chosen.sites) > 1 else []
    if shared:
        raise InputError(shared)
    return chosen, outputs


def build_sites(
    root: Path,
    sites: list[Site] | list[str],
    *,
    crd_dir: str | None,
    commit: bool,
    prune: bool = False,
    allow_destructive: bool = False,
    jobs: int = 1,
    loaded: Fleet | None = None,
) -> list[BuildResult]:
    """Render and validate every site first (outside deploy/, in ``jobs`` worker processes:
    :mod:`kkc.pool`), then, under the deploy/ lock, stage and swap all trees in, then commit.

    Invalid output in any site raises before anything is written, and so does a change that
    the API server would refuse or that destroys data, compared with the output committed
    at HEAD (:mod:`kkc.safety`), unless ``allow_destructive`` (then they are warnings). With
    ``prune`` (a build of every site), the kkc-owned output of sites that no longer exist is
    removed too (with a shard, of those in the shard). ``loaded``: the fleet ``sites`` were
    loaded from; the sites that failed to load there are reported with those that fail
    here, in site order, and nothing is written.

    ``sites`` may be site names instead: each is loaded only as the pool is about to
    render it, and a site that does not load is reported with the others that fail. With
    them, a fleet streams through the pool: each site's definition, tree and manifests are
    in memory only while it is worked on (its tree then waits in a file), so that a
    fleet's build holds no more than a few sites at once, however many it builds."""
    deploy = root / "deploy"
    repo = gitrepo.open_repo(root) if commit else None
    if repo is not None:
        gitrepo.ready_to_commit(repo)
    prov = local_provenance()
    work = partial(_render_one, root, crd_dir, prov)
    names = [s if isinstance(s, str) else s.name for s in sites]
    loaded = loaded or Fleet(root, names, [s for s in sites if not isinstance(s, str)])
    index = FleetIndex(root)

    def prepare(item: Site | str) -> Site:
        return load_site(root, item, fleet=index) if isinstance(item, str) else item

    with tempfile.TemporaryDirectory(prefix="kkc-built-") as spill:
        held = _Held(root, Path(spill))
        outcomes = pool.run_all(work, sites, jobs, names, keep=held.keep, prepare=prepare)
        loaded.raise_failures(pool.failures(outcomes, names))
        built: list[_Built] = [o.value for o in outcomes]
        unsafe = held.verdict(built, allow_destructive)
        results = _write_sites(deploy, built, unsafe, loaded if prune else None)
        if repo is not None:
            for b, result in zip(built, results, strict=False):
                source = source_of(root, site_sources(b.name))
                result.commit = commit_site(repo, b.name, b.digest, b.tree(), source)
            for result in results[len(built) :]:
                source = source_of(root, site_sources(result.site))
                result.commit = commit_site(repo, result.site, None, {}, source)
    return results


@dataclass
class _Built:
    """What writing and committing a rendered site need of it, once its result arrived
    from the pool: its tree waits in a file (``spilled``), and its Site is let go, so that a
    fleet's build holds no site's definition, tree or manifests in memory but the one it
    works on."""

    name: str
    digest: str
    spilled: Path
    warnings: list[Problem]
    unsafe: list[Problem]  # the day-two findings against HEAD (kkc.safety)

    def tree(self) -> dict[str, bytes]:
        return pickle.loads(self.spilled.read_bytes())


class _Held:
    """The :func:`kkc.pool.run_all` ``keep`` of `kkc build`: each site rendered is checked
    against its output committed at HEAD (:mod:`kkc.safety`) and reduced to a
    :class:`_Built`, its tree written to a file in ``spill``."""

    def __init__(self, root: Path, spill: Path) -> None:
        self.root = root
        self.spill = spill

    def keep(self, index: int, outcome: pool.Outcome[Any]) -> pool.Outcome[Any]:
        if outcome.error is not None:
            return outcome
        r = outcome.value
        found = safety.check_against(self.root, [(r.site, r.manifests, r.objects)])
        path = self.spill / f"{index}.tree"
        path.write_bytes(pickle.dumps(r.tree, protocol=pickle.HIGHEST_PROTOCOL))
        value = _Built(r.site.name, r.site.digest, path, r.warnings, found.get(r.site.name, []))
        return pool.Outcome(value=value, cached=outcome.cached)

    def verdict(self, built: list[_Built], allow: bool) -> dict[str, list[Problem]]:
        """The findings of each site as warnings with ``allow``; else, if there is any,
        UnsafeChange (exit 2) before anything is written."""
        found = {b.name: b.unsafe for b in built}
        return _verdict(found, [w for b in built for w in b.warnings], allow)


def _write_sites(
    deploy: Path, built: list[_Built], unsafe: dict[str, list[Problem]], prune: Fleet | None
) -> list[BuildResult]:
    """Under the deploy/ lock, stage every changed tree, then swap them all in; with
    ``prune`` (the fleet built), remove the output of the sites that are gone."""
    created = not deploy.exists()
    results: list[BuildResult] = []
    staged: list[Path | None] = []  # None: the site's kkc-owned files are unchanged
    try:
        with writer.locked(deploy):
            for b in built:
                tree = b.tree()
                site_dir = deploy / b.name
                files = writer.diff_against_disk(site_dir, tree)
                # an unchanged tree is not swapped, so not staged (a warm fleet build spent
                # a third of its time writing and removing those copies)
                staged.append(writer.stage(deploy, b.name, tree) if files else None)
                objects = writer.parse_objects(tree[writer.MANIFEST])
                objs = object_changes(writer.read_objects(site_dir), objects)
                warnings = b.warnings + not_owned_warnings(site_dir, b.name, tree)
                warnings += unsafe.get(b.name, [])
                results.append(
                    BuildResult(b.name, _shared(files), _shared(objs), warnings=warnings)
                )
            for b, tmp in zip(built, staged, strict=True):
                if tmp is not None:
                    writer.swap(deploy, b.name, tmp)
            if prune is not None:
                results += _prune(deploy, prune)
    finally:
        for tmp in staged:
            if tmp is not None and tmp.exists():
                shutil.rmtree(tmp)
        if created and deploy.exists() and not any(deploy.iterdir()):
            deploy.rmdir()
    return results


def _shared(changes: writer.Changes) -> writer.Changes:
    """``changes`` with each path or object name interned: the sites of a fleet have mostly
    the same ones, and a result kept for each site must not hold its own copies."""
    return writer.Changes(*([sys.intern(p) for p in part] for part in vars(changes).values()))


def _render_one(root: Path, crd_dir: str | None, prov: Provenance, site: Site) -> Any:
    return render(root, site, crd_dir, prov)


def _refuse_unsafe(
    root: Path, sites: list[Site], rendered: list[Any], allow: bool, against: str = "HEAD"
) -> dict[str, list[Problem]]:
    """The day-two findings of each site against its output committed at ``against`` in
    the repository at ``root``, as warnings with ``allow``; else, if there is any,
    UnsafeChange (exit 2) before anything is written."""
    found = safety.check_against(
        root, [(s, r.manifests, r.objects) for s, r in zip(sites, rendered, strict=True)], against
    )
    return _verdict(found, [w for r in rendered for w in r.warnings], allow)


def _verdict(
    found: dict[str, list[Problem]], warnings: list[Problem], allow: bool
) -> dict[str, list[Problem]]:
    """The day-two findings of each site (``found``) as warnings with ``allow``; else, if
    there is any, UnsafeChange (exit 2, carrying the build's ``warnings``)."""
    if allow:
        return {name: safety.as_warnings(f) for name, f in found.items() if f}
    problems = [p for f in found.values() for p in f]
    if problems:
        exc = UnsafeChange(problems)
        exc.warnings = warnings
        raise exc
    return {}


def not_owned_warnings(
    site_dir: Path, name: str, full: dict[str, bytes], prefix: str = ""
) -> list[Problem]:
    """The files a build leaves in deploy/<site>/ that kkc does not own, as `kkc check`
    reports them (KKC329): build and check give the same verdict about every file, also
    after `git checkout -- deploy/` restored an older manifest beside newer output."""
    return [
        Problem(
            f"{prefix}deploy/{name}/{rel}", 1, 1, "KKC329", writer.not_owned_message(name), WARNING
        )
        for rel in writer.not_owned(site_dir, full)
    ]


def _prune(deploy: Path, loaded: Fleet) -> list[BuildResult]:
    """Remove the kkc-owned output of the sites in ``deploy`` that no longer exist (of
    those in the shard, with one). The caller holds the deploy lock."""
    results = []
    stale = writer.stale_sites(deploy, loaded.keep())
    for name in fleet.in_shard(stale, loaded.shard):
        objects = writer.read_objects(deploy / name)
        files = writer.Changes(removed=writer.remove_owned(deploy / name))
        gone = writer.Changes(removed=sorted(objects))
        results.append(BuildResult(name, files, gone, removed=True))
    return results


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


def _repo_url_warning(site: Site, urls: list[str]) -> list[Problem]:
    """KKC162 when the site's gitops.repoURL is none of the deploy repository's remote URLs:
    the controller would read another repository (by default the site repository)."""
    repo_url = site.get("gitops.repoURL")
    if not urls or any(gitrepo.same_repository(repo_url, u) for u in urls):
        return []
    return [
        Problem(
            *gitops.setting_origin(site, "repoURL"),
            "KKC162",
            f"gitops.repoURL {repo_url} is not the deploy repository ({', '.join(urls)}): the "
            "GitOps controller would not read what kkc writes there; set gitops.repoURL (and "
            "gitops.revision) to the deploy repository and its branch",
            WARNING,
        )
    ]


def open_deploy_repo(root: Path, target: Path) -> tuple[Any, Path]:
    """The deploy repository at ``target`` (the top of a git work tree that is not the site
    repository) and its top directory."""
    deploy_repo = gitrepo.open_work_tree(target)
    top = Path(deploy_repo.working_tree_dir or target).resolve()
    if gitrepo.work_tree_top(root) == top or root.resolve() == top:
        raise UsageError(f"--repo {target} is the site repository itself; drop --repo")
    return deploy_repo, top


def repo_provenance(root: Path, branch: str | None, source: Source | None = None) -> Provenance:
    """The provenance of a tree built into a deploy repository from the site repository
    (whose sources ``source`` describes, when the caller has read them already)."""
    source = source or source_of(root, DEPLOY_REPO_SOURCES)
    return Provenance(
        kustomize=kustomize.find_engine().version,
        deploy_repo=True,
        source_url=source.url,
        source_commit=source.commit,
        source_dirty=source.digest is not None,
        branch=branch,
    )


def build_into_repo(
    root: Path,
    sites: list[Site],
    *,
    target: Path,
    branch: str | None,
    crd_dir: str | None,
    commit: bool,
    prune: bool = False,
    allow_destructive: bool = False,
    jobs: int = 1,
    loaded: Fleet | None = None,
) -> DeployResult:
    """Build sites into the deploy repository at ``target``: deploy/<site>/ plus byte copies
    of the base/ and overlays/ directories they use, so that it builds on its own.

    Each site is validated in a scratch copy of exactly what the deploy repository will hold
    for it (proving that it is self-contained) before anything is written. Then ``branch`` is
    checked out, the copies and trees written, copies no kkc-built site uses any more
    removed, and, with ``commit``, one commit for the copies and one per changed site. With
    ``prune`` (a build of every site), the kkc-owned output of sites that no longer exist is
    removed first (one commit each), and with it the copies only they used. ``jobs`` and
    ``loaded`` as for :func:`build_sites`."""
    deploy_repo, top = open_deploy_repo(root, target)
    if commit:
        gitrepo.ready_to_commit(deploy_repo)
    current = gitrepo.current_branch(deploy_repo)
    want = branch or current
    if want is None:
        raise EnvironmentProblem(
            f"deploy repository {target} has a detached HEAD; pass --branch NAME"
        )
    source = source_of(root, DEPLOY_REPO_SOURCES)  # the README's and the commits' source
    prov = repo_provenance(root, branch, source)
    fulls: dict[str, dict[str, bytes]] = {}
    warnings: dict[str, list[Problem]] = {}
    loaded = loaded or Fleet(root, [s.name for s in sites], sites)
    all_rendered = _render_all(root, sites, crd_dir, prov, jobs, loaded)
    for site, rendered in zip(sites, all_rendered, strict=True):
        fulls[site.name] = rendered.tree
        warnings[site.name] = rendered.warnings
    # compared with the head of the branch written to (a branch not created yet: nothing)
    ref = gitrepo.branch_ref(deploy_repo, want)
    if ref is not None:
        unsafe = _refuse_unsafe(top, sites, all_rendered, allow_destructive, ref)
        for name, found in unsafe.items():
            warnings[name] += found
    trees = {n: {k: v for k, v in f.items() if k != writer.MANIFEST} for n, f in fulls.items()}
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
    owned_prefixes = [*(f"deploy/{s.name}" for s in sites), *_SHARED]
    _refuse_edits(deploy_repo, top, target, owned_prefixes, planned)
    with writer.locked(top / "deploy"):
        results, changes, owned = _write_repo(
            top, sites, fulls, copies, attributes, loaded if prune else None, f"{target}/"
        )
    for site, result in zip(sites, results, strict=False):
        result.warnings = warnings[site.name] + result.warnings
    out = DeployResult(top, want, results, changes)
    if commit:
        # removals first: no commit has a site referring to a copy that is already gone
        for result in results[len(sites) :]:
            result.commit = commit_site(deploy_repo, result.site, None, {}, source)
        out.copies_commit = commit_copies(deploy_repo, top, owned, source)
        for site, result in zip(sites, results, strict=False):
            result.commit = commit_site(
                deploy_repo, site.name, site.digest, fulls[site.name], source
            )
    return out


def _render_for_repo(root: Path, crd_dir: str | None, prov: Provenance, site: Site) -> Any:
    return render_for_repo(root, site, prov, crd_dir)[0]


def _render_all(
    root: Path, sites: list[Site], crd_dir: str | None, prov: Provenance, jobs: int, loaded: Fleet
) -> list[Any]:
    """Every site rendered for a deploy repository, in ``jobs`` worker processes; when any
    site failed (here, or to load in ``loaded``), one error for them all."""
    outcomes = pool.run_all(
        partial(_render_for_repo, root, crd_dir, prov), sites, jobs, [s.name for s in sites]
    )
    loaded.raise_failures(pool.failures(outcomes, [s.name for s in sites]))
    return [o.value for o in outcomes]


def _refuse_edits(
    deploy_repo: Any, top: Path, target: Path, prefixes: list[str], planned: dict[str, bytes]
) -> None:
    """Refuse to overwrite uncommitted changes of the deploy repository under ``prefixes``
    (the paths kkc owns there) that differ from what kkc is about to write."""
    edited = [
        p
        for p in gitrepo.dirty_paths(deploy_repo, prefixes)
        if p in planned and deployrepo.read_bytes(top / p) != planned[p]
    ]
    if edited:
        raise EnvironmentProblem(
            f"deploy repository {target} has uncommitted changes in {', '.join(edited[:5])}"
            f"{' ...' if len(edited) > 5 else ''}; commit or discard them first "
            "(kkc would overwrite them)"
        )


def _write_repo(
    top: Path,
    sites: list[Site],
    fulls: dict[str, dict[str, bytes]],
    copies: dict[str, bytes],
    attributes: bytes,
    prune: Fleet | None,
    shown: str,
) -> tuple[list[BuildResult], writer.Changes, dict[str, str]]:
    """Write the copies, the .gitattributes block and each site's tree into the deploy
    repository at ``top``, prune (with ``prune``, the fleet built) and drop the copies no
    site uses any more: (the sites' results, the copies' changes, the copies kkc owns
    now); ``shown`` prefixes the paths of the warnings. The caller holds the deploy/ lock."""
    deploy = top / "deploy"
    old_owned = deployrepo.read_copies(top)
    changes = writer.Changes()
    for rel, data in copies.items():
        existing = deployrepo.read_bytes(top / rel)
        if existing != data:
            (changes.added if existing is None else changes.changed).append(rel)
            deployrepo.write_file(top / rel, data)
    if deployrepo.read_bytes(top / deployrepo.ATTRIBUTES) != attributes:
        deployrepo.write_file(top / deployrepo.ATTRIBUTES, attributes)
    results: list[BuildResult] = []
    for site in sites:
        full = fulls[site.name]
        site_dir = deploy / site.name
        files = writer.diff_against_disk(site_dir, full)
        objs = object_changes(
            writer.read_objects(site_dir), writer.parse_objects(full[writer.MANIFEST])
        )
        if files:
            writer.swap(deploy, site.name, writer.stage(deploy, site.name, full))
        warnings = not_owned_warnings(site_dir, site.name, full, shown)
        results.append(BuildResult(site.name, files, objs, warnings=warnings))
    if prune is not None:
        results += _prune(deploy, prune)
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
    return results, changes, owned


@dataclass
class BuildRun:
    """What `kkc build` did: each site's result, the deploy repository's (with --repo),
    and, with --push, the branch to push; its text and JSON reports."""

    results: list[BuildResult]
    deployed: DeployResult | None
    repo: Path  # the repository committed to (and pushed with --push)
    commit: bool
    pushing: bool
    pushed: str | None = None

    @property
    def warnings(self) -> list[Problem]:
        return [w for r in self.results for w in r.warnings]

    def push(self) -> str:
        """Push the repository's current branch (once): what was pushed."""
        if self.pushed is None:
            self.pushed = push(self.repo)
        return self.pushed

    def as_json(self) -> Any:
        """The -o json report (with --push, after pushing)."""
        rows: Any = [
            {
                "site": r.site,
                "files": vars(r.files),
                "objects": vars(r.objects),
                "commit": r.commit,
                "removed": r.removed,
                "warnings": report.entries(report.unique(r.warnings)),
            }
            for r in self.results
        ]
        deployed = self.deployed
        if deployed or self.pushing:
            rows = {"sites": rows, "pushed": self.push() if self.pushing else None}
        if deployed:
            rows.update(
                repo=str(deployed.repo),
                branch=deployed.branch,
                copies={**vars(deployed.copies), "commit": deployed.copies_commit},
            )
        return rows

    def lines(self) -> list[str]:
        """The text report: the deploy repository's copies, then one line per site."""
        out = []
        if self.deployed:
            d, c = self.deployed, self.deployed.copies
            line = (
                f"{d.repo} (branch {d.branch}): base/ and overlays/ copies: "
                f"{len(c.added)} added, {len(c.changed)} changed, {len(c.removed)} removed"
            )
            if self.commit:
                line += (
                    f"; committed {d.copies_commit[:12]}"
                    if d.copies_commit
                    else "; nothing to commit"
                )
            out.append(line)
        return out + [self._site_line(r) for r in self.results]

    def _site_line(self, r: BuildResult) -> str:
        f, o = r.files, r.objects
        if r.removed:
            line = (
                f"{r.site}: removed deploy/{r.site}/ (the site no longer exists; files: "
                f"{len(f.removed)} removed; objects: {len(o.removed)} removed)"
            )
        elif not f:
            line = f"{r.site}: deploy/{r.site}/ up to date"
        else:
            line = (
                f"{r.site}: wrote deploy/{r.site}/ (files: {len(f.added)} added, {len(f.changed)} "
                f"changed, {len(f.removed)} removed; objects: {len(o.added)} added, "
                f"{len(o.changed)} changed, {len(o.removed)} removed)"
            )
        if self.commit:
            line += f"; committed {r.commit[:12]}" if r.commit else "; nothing to commit"
        return line


def run(
    root: Path,
    names: list[str],
    *,
    all_sites: bool,
    commit: bool,
    push: bool,
    repo: Path | None,
    branch: str | None,
    crd_dir: str | None,
    allow_destructive: bool = False,
    jobs: int = 1,
    shard: Shard | None = None,
) -> BuildRun:
    """`kkc build`: the named sites (or every site) built into deploy/ of the site
    repository, or of the deploy repository ``repo``; the push is left to the caller
    (:meth:`BuildRun.push`), after it has reported what was built. ``allow_destructive``:
    write changes that :mod:`kkc.safety` refuses, reporting them as warnings. ``shard``:
    only the sites of that shard (:mod:`kkc.fleet`). Every site is loaded, rendered and
    validated even when another fails; then, if any failed, nothing is written and the
    error names them all."""
    if not names and not all_sites:
        raise UsageError("name at least one site, or pass --all")
    if push and not commit:
        raise UsageError("--push needs --commit")
    if branch and repo is None:
        raise UsageError("--branch needs --repo (kkc never switches the site repository)")
    if repo is None:  # each site loaded as its turn comes (build_sites)
        chosen = fleet.choose(root, names, all_sites, shard)
        progress.current().plan(chosen)
        results = build_sites(
            root,
            list(chosen),
            crd_dir=crd_dir,
            commit=commit,
            prune=all_sites,
            allow_destructive=allow_destructive,
            jobs=jobs,
            loaded=Fleet(root, chosen, [], shard=shard),
        )
        return BuildRun(results, None, root, commit, push)
    loaded = fleet.load(root, names, all_sites, shard)
    chosen = loaded.sites
    deployed = build_into_repo(
        root,
        chosen,
        target=repo,
        branch=branch,
        crd_dir=crd_dir,
        commit=commit,
        prune=all_sites,
        allow_destructive=allow_destructive,
        jobs=jobs,
        loaded=loaded,
    )
    return BuildRun(deployed.sites, deployed, deployed.repo, commit, push)


def push(path: Path) -> str:
    """Push the current branch of the repository at ``path`` to its upstream (or origin)."""
    return gitrepo.push(gitrepo.open_repo(path))
