"""`kkc check`: is the output on disk what kkc would produce now, untouched and valid?

Each site is re-rendered and validated exactly as `kkc build` does (nothing is written), then
compared byte for byte with deploy/<site>/. A passing check therefore means the committed
output is the valid output of the current definitions, bases and overlays. With a deploy
repository (`kkc build --repo`), deploy/<site>/ and the base/ and overlays/ copies are read
from its branch head, and the site is rendered as `kkc build --repo` renders it."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from . import build, deployrepo, fleet, gitrepo, pool, report, safety, validate, writer
from .errors import (
    DifferenceFound,
    KkcError,
    OutputInvalid,
    Problem,
    RefusedChange,
    SitesNotJudged,
    UsageError,
    command_line_error,
)
from .fleet import Fleet, Shard
from .generate import Provenance
from .model import Site
from .outputs import Outputs
from .pipeline import Rendered, render, render_for_repo


@dataclass
class SiteCheck:
    site: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # of the render, as `kkc build` prints
    output: str = ""  # what was checked: deploy/<site>/, or where in a deploy repository
    rendered: Rendered | None = field(default=None, repr=False)  # None when invalid
    failure: KkcError | None = None  # the site could not be judged: it failed to load...

    def as_dict(self) -> dict[str, Any]:
        if self.failure is not None:
            return {
                "site": self.site,
                "ok": False,
                "problems": report.entries(self.failure.findings()),
                "warnings": report.entries(report.unique(self.failure.warnings)),
            }
        return {
            "site": self.site,
            "ok": not self.problems,
            "problems": [p.as_dict() for p in self.problems],
            "warnings": report.entries(report.unique(self.warnings)),
        }


@dataclass
class Output:
    """Where the committed output is: deploy/ of the site repository on disk, or of a
    deploy repository (`kkc build --repo`) at the head of a branch."""

    prefix: str  # before deploy/<site>/ in problem paths: "" or the deploy repository + "/"
    files: Callable[[str], dict[str, bytes]]  # deploy/<site>/'s files {relative path: bytes}
    built: Callable[[], list[str]]  # the directories under deploy/ that kkc built
    build_options: str = ""  # how to rebuild, after `kkc build SITE`
    at: str = ""  # where it was read, after "up to date and valid"
    git_rm: str = "git rm"


def _disk_files(site_dir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(site_dir).as_posix(): os.readlink(p).encode()
        if p.is_symlink()
        else p.read_bytes()
        for p in sorted(site_dir.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def site_output(root: Path) -> Output:
    deploy = root / "deploy"
    return Output(
        "",
        lambda name: _disk_files(deploy / name) if (deploy / name).is_dir() else {},
        lambda: sorted(
            d.name
            for d in (deploy.iterdir() if deploy.is_dir() else [])
            if d.is_dir() and (d / writer.MANIFEST).is_file()
        ),
    )


def repo_output(root: Path, repo: Path, branch: str | None) -> tuple[Output, Any, Any]:
    """The committed deploy/ of the deploy repository at ``repo``, at the head of ``branch``
    (default: the checked-out branch); also the repository and the commit."""
    deploy_repo, _top = build.open_deploy_repo(root, repo)
    where = f" in deploy repository {repo}"
    commit = (
        gitrepo.branch_head(deploy_repo, branch, where)
        if branch
        else gitrepo.resolve(deploy_repo, "HEAD", where=where)
    )

    def built() -> list[str]:
        deploy = Path(deploy_repo.working_tree_dir or repo) / "deploy"
        return [
            n
            for n in gitrepo.subdirectories(deploy_repo, commit, deploy)
            if writer.MANIFEST in gitrepo.files_at(deploy_repo, commit, f"deploy/{n}")
        ]

    sha = commit.hexsha[:12] if commit else "no commits"
    output = Output(
        f"{repo}/",
        lambda name: gitrepo.files_at(deploy_repo, commit, f"deploy/{name}"),
        built,
        f" --repo {repo}{f' --branch {branch}' if branch else ''}",
        f" at {branch or 'HEAD'} ({sha})",
        f"git -C {repo} rm",
    )
    return output, deploy_repo, commit


def _file_problem(out: Output, site: str, rel: str, code: str, what: str) -> Problem:
    return Problem(f"{out.prefix}deploy/{site}/{rel}", 1, 1, code, what)


def _hand_edits(out: Output, files: dict[str, bytes], name: str) -> tuple[list[Problem], set[str]]:
    """Owned files whose content no longer matches the ownership manifest, and files in
    deploy/<site>/ that kkc does not own."""
    problems, edited = [], set()
    owned = writer.parse_manifest(files.get(writer.MANIFEST))
    for rel, digest in sorted(owned.items()):
        if rel in files and writer.sha256(files[rel]) != digest:
            edited.add(rel)
            problems.append(
                _file_problem(
                    out,
                    name,
                    rel,
                    "KKC328",
                    f"edited by hand (differs from its digest in {writer.MANIFEST}); change "
                    f"sites/{name}/ instead and run `kkc build {name}{out.build_options}`",
                )
            )
    for rel in sorted(files):
        if rel not in owned and rel != writer.MANIFEST:
            problems.append(
                _file_problem(
                    out,
                    name,
                    rel,
                    "KKC329",
                    writer.not_owned_message(name),
                )
            )
    return problems, edited


def _changes(files: dict[str, bytes], tree: dict[str, bytes]) -> writer.Changes:
    """What writing ``tree`` over ``files`` would change among kkc-owned files."""
    owned = set(writer.parse_manifest(files.get(writer.MANIFEST))) | {writer.MANIFEST}
    return writer.Changes(
        added=[p for p in tree if p not in files],
        changed=[p for p in tree if p in files and files[p] != tree[p]],
        removed=sorted(p for p in owned - set(tree) if p in files),
    )


def check_site(
    root: Path,
    site: Site,
    crd_dir: str | None,
    out: Output | None = None,
    render_site: Callable[[Site], Rendered] | None = None,
) -> SiteCheck:
    """The committed output of ``site`` (in ``out``, default deploy/ of the site repository)
    against the site rendered by ``render_site`` (default: as `kkc build` renders it)."""
    out = out or site_output(root)
    result = SiteCheck(site.name)
    rendered = None
    try:
        rendered = (render_site or (lambda s: render(root, s, crd_dir)))(site)
        result.warnings = rendered.warnings
        result.rendered = rendered
    except OutputInvalid as exc:
        result.problems += exc.problems
    build_cmd = f"kkc build {site.name}{out.build_options}"
    files = out.files(site.name)
    if writer.MANIFEST not in files:
        result.problems.append(
            Problem(
                f"{out.prefix}deploy/{site.name}/",
                1,
                1,
                "KKC330",
                f"not built: no {writer.MANIFEST}; run `{build_cmd}` and commit the result",
            )
        )
        return result
    hand, edited = _hand_edits(out, files, site.name)
    result.problems += hand
    if rendered is None:
        return result
    changes = _changes(files, rendered.tree)
    for label, paths in (
        ("missing (recompiling creates it)", changes.added),
        ("stale (recompiling changes it)", changes.changed),
        ("obsolete (recompiling removes it)", changes.removed),
    ):
        for rel in sorted(set(paths) - edited):
            result.problems.append(
                _file_problem(
                    out,
                    site.name,
                    rel,
                    "KKC327",
                    f"{label}; run `{build_cmd}` and commit the result",
                )
            )
    result.problems.sort(key=lambda p: (p.path, p.code))
    return result


def orphans(out: Output, names: list[str], shard: Shard | None = None) -> list[SiteCheck]:
    """deploy/<dir>/ trees kkc built for a site that has no definition any more (among
    ``names``; with a shard, those of the shard)."""
    return [
        SiteCheck(
            n,
            [
                Problem(
                    f"{out.prefix}deploy/{n}/",
                    1,
                    1,
                    "KKC330",
                    f"output of a site that does not exist "
                    f"(no sites/{n}/site.yaml); remove deploy/{n}/ ({out.git_rm} -r deploy/{n})",
                )
            ],
        )
        for n in fleet.in_shard(out.built(), shard)
        if n not in names
    ]


def _render_local(root: Path, crd_dir: str | None, item: tuple[Site, Outputs | None]) -> Rendered:
    site, outputs = item
    return render(root, site, crd_dir, outputs=outputs)


def _render_for_repo(
    root: Path, crd_dir: str | None, prov: Provenance, item: tuple[Site, Outputs | None]
) -> tuple[Rendered, dict[str, bytes]]:
    site, outputs = item
    return render_for_repo(root, site, prov, crd_dir, outputs)


def _rendered(outcome: pool.Outcome[Any]) -> Callable[[Site], Rendered]:
    """A site's render for :func:`check_site`, done already (in a worker): the Rendered,
    or its OutputInvalid raised again."""

    def again(_site: Site) -> Rendered:
        value = outcome.get()
        return value[0] if isinstance(value, tuple) else value

    return again


def _not_judged(sites: list[Site], outcomes: list[pool.Outcome[Any]]) -> dict[str, KkcError]:
    """The sites whose render failed otherwise than with invalid output (which is a
    problem :func:`check_site` reports), by name."""
    failed = pool.failures(outcomes, [s.name for s in sites])
    return {n: e for n, e in failed.items() if not isinstance(e, OutputInvalid)}


def _repo_sites(
    root: Path,
    sites: list[Site],
    crd_dir: str | None,
    repo: Path,
    branch: str | None,
    outputs: Mapping[str, Outputs],
    jobs: int,
) -> tuple[Output, list[SiteCheck], Path, Any, dict[str, KkcError]]:
    """Each site checked against the deploy repository: deploy/<site>/ as `kkc build --repo`
    writes it, and the base/ and overlays/ copies it uses (each copy reported once); also
    the deploy repository's top directory, the commit read, and the sites that could not
    be judged (:func:`_not_judged`), which have no result."""
    out, deploy_repo, commit = repo_output(root, repo, branch)
    prov = build.repo_provenance(root, branch)
    committed: dict[str, bytes] = {}
    for top in deployrepo.SHARED_TOPS:
        committed.update(
            {
                f"{top}/{rel}": data
                for rel, data in gitrepo.files_at(deploy_repo, commit, top).items()
            }
        )
    work = partial(_render_for_repo, root, crd_dir, prov)
    outcomes = pool.run_all(
        work, [(s, outputs.get(s.name)) for s in sites], jobs, [s.name for s in sites]
    )
    failed = _not_judged(sites, outcomes)
    copies_of = {
        s.name: o.value[1] if o.value is not None else {}
        for s, o in zip(sites, outcomes, strict=True)
    }
    seen: set[str] = set()
    results = []
    for site, outcome in zip(sites, outcomes, strict=True):
        if site.name in failed:
            continue
        result = check_site(root, site, crd_dir, out, _rendered(outcome))
        build_cmd = f"kkc build {site.name}{out.build_options}"
        for rel, data in copies_of.get(site.name, {}).items():
            if rel in seen or committed.get(rel) == data:
                continue
            seen.add(rel)
            label = (
                "stale (recompiling changes it)"
                if rel in committed
                else "missing (recompiling creates it)"
            )
            result.problems.append(
                Problem(
                    f"{out.prefix}{rel}",
                    1,
                    1,
                    "KKC327",
                    f"{label}; run `{build_cmd}` and commit the result",
                )
            )
        result.problems.sort(key=lambda p: (p.path, p.code))
        results.append(result)
    top = Path(deploy_repo.working_tree_dir or repo).resolve()
    return out, results, top, commit, failed


def check_sites(
    root: Path,
    sites: list[Site],
    *,
    crd_dir: str | None,
    all_sites: bool,
    repo: Path | None = None,
    branch: str | None = None,
    require_crds: bool = True,
    outputs: Mapping[str, Outputs] | None = None,
    against: str = "HEAD",
    allow_destructive: bool = False,
    jobs: int = 1,
    loaded: Fleet | None = None,
) -> list[SiteCheck]:
    """One result per site; with ``all_sites`` also every orphaned deploy/<dir>/. With
    ``repo``, the committed output of that deploy repository at the head of ``branch``.
    ``outputs``: the sites' computed outputs by name, where the caller has them.

    Custom resources that no schema covers (neither an embedded one nor one in
    ``crd_dir``; e.g. added by a site patch) are one KKC172 (exit 2) with
    ``require_crds``, else a warning per kind. The day-two findings (:mod:`kkc.safety`)
    against the output committed at ``against`` (with ``repo``: a revision of the deploy
    repository, default the commit checked) are problems, or warnings with
    ``allow_destructive``. Sites are rendered in ``jobs`` worker processes (:mod:`kkc.pool`).

    ``loaded``: the fleet ``sites`` come from. Each site that failed to load there, or
    whose render fails otherwise than with invalid output (exit 4, say), has a result with
    its ``failure``, in site order: the others are judged all the same."""
    outputs = outputs or {}
    loaded = loaded or Fleet(root, [s.name for s in sites], sites)
    if repo is None:
        out = site_output(root)
        work = partial(_render_local, root, crd_dir)
        outcomes = pool.run_all(
            work, [(s, outputs.get(s.name)) for s in sites], jobs, [s.name for s in sites]
        )
        failed = _not_judged(sites, outcomes)
        results = [
            check_site(root, s, crd_dir, out, _rendered(o))
            for s, o in zip(sites, outcomes, strict=True)
            if s.name not in failed
        ]
        _day_two(root, sites, results, against, allow_destructive)
    else:
        out, results, deploy_top, commit, failed = _repo_sites(
            root, sites, crd_dir, repo, branch, outputs, jobs
        )
        rev = commit.hexsha if against == "HEAD" and commit is not None else against
        if commit is not None or against != "HEAD":
            _day_two(deploy_top, sites, results, rev, allow_destructive)
    if require_crds:
        _require_schemas(results)
    for r in results:
        r.output = f"{out.prefix}deploy/{r.site}/{out.at}"
    by_name = {r.site: r for r in results}
    failed = {**loaded.failed, **failed}
    results = [
        SiteCheck(n, failure=failed[n]) if n in failed else by_name[n]
        for n in loaded.names
        if n in failed or n in by_name
    ]
    if all_sites:
        results += orphans(out, sorted(loaded.keep()), loaded.shard)
    return results


def _day_two(
    root: Path, sites: list[Site], results: list[SiteCheck], against: str, allow: bool
) -> None:
    by_name = {s.name: s for s in sites}
    pairs = [
        (by_name[r.site], r.rendered.manifests, r.rendered.objects)
        for r in results
        if r.rendered is not None
    ]
    found = safety.check_against(root, pairs, against)
    for r in results:
        unsafe = found.get(r.site, [])
        if allow:
            r.warnings = [*r.warnings, *safety.as_warnings(unsafe)]
        else:
            r.problems += unsafe


def refuse_unsafe(results: list[SiteCheck]) -> None:
    """RefusedChange (exit 2) when a site has a day-two finding among its problems; the
    report is printed already."""
    unsafe = [r.site for r in results if any(p.code in safety.CODES for p in r.problems)]
    if unsafe:
        raise RefusedChange(
            f"kkc check: {', '.join(unsafe)}: changes the API server refuses to make in place "
            "or that destroy data (--allow-destructive accepts them)"
        )


def _require_schemas(results: list[SiteCheck]) -> None:
    uncovered: dict[str, list[str]] = {}
    for r in results:
        for kind in validate.not_validated(r.warnings):
            uncovered.setdefault(kind, []).append(r.site)
    if uncovered:
        kinds = "; ".join(f"{k} ({', '.join(sites)})" for k, sites in sorted(uncovered.items()))
        raise command_line_error(
            "KKC172",
            f"kkc check cannot validate custom resources that no schema covers: {kinds}; "
            f"kkc embeds no CRD for them: pass --crd-dir DIR with their CRDs (or set "
            f"{validate.CRD_DIR_ENV}), or pass --no-require-crds",
        )


@dataclass
class CheckRun:
    """What `kkc check` found: one result per site (and per orphaned output); its text and
    JSON reports and its verdict."""

    results: list[SiteCheck]

    @property
    def warnings(self) -> list[Problem]:
        return [
            w
            for r in self.results
            for w in (r.failure.warnings if r.failure is not None else r.warnings)
        ]

    def as_json(self) -> list[dict[str, Any]]:
        return [r.as_dict() for r in self.results]

    def lines(self) -> list[str]:
        """The text report: each problem's line, or a site's "up to date and valid"; not
        the sites that could not be judged (:meth:`verdict` prints their failures)."""
        out = []
        for r in self.results:
            if r.failure is not None:
                continue
            ok = f"{r.site}: {r.output} up to date and valid"
            out += [report.line(p) for p in r.problems] or [ok]
        return out

    def verdict(self) -> None:
        """Exit 2 (RefusedChange) for a day-two finding, else exit 1 (DifferenceFound) when
        any site has a problem. When some sites could not be judged, their failures' lines
        (SitesNotJudged), with the highest exit code of theirs and of the above."""
        try:
            self._judged_verdict()
        except DifferenceFound as exc:
            if not self.failures:
                raise
            raise SitesNotJudged(self.failures, exc.exit_code, str(exc)) from None
        if self.failures:
            raise SitesNotJudged(self.failures)

    @property
    def failures(self) -> list[KkcError]:
        return [r.failure for r in self.results if r.failure is not None]

    def _judged_verdict(self) -> None:
        refuse_unsafe(self.results)
        failed = [r for r in self.results if r.problems]
        count = sum(len(r.problems) for r in failed)
        report.Report([p for r in failed for p in r.problems]).verdict(
            f"kkc check: {count} problem{'s' if count > 1 else ''} in "
            f"{', '.join(r.site for r in failed)}"
        )


def run(
    root: Path,
    names: list[str],
    *,
    all_sites: bool,
    repo: Path | None,
    branch: str | None,
    crd_dir: str | None,
    require_crds: bool = True,
    against: str = "HEAD",
    allow_destructive: bool = False,
    jobs: int = 1,
    shard: Shard | None = None,
) -> CheckRun:
    """`kkc check`: the named sites (or every site, and the output of sites that are gone)
    checked against their committed output, in deploy/ or in the deploy repository
    ``repo``; with ``shard``, those of the shard (:mod:`kkc.fleet`). A site that fails to
    load does not stop the others: its failure is its result."""
    if branch and repo is None:
        raise UsageError("--branch needs --repo (the branch of the deploy repository to read)")
    loaded, outputs = build.load_fleet(root, names, all_sites, shard)
    every = all_sites or not names
    return CheckRun(
        check_sites(
            root,
            loaded.sites,
            crd_dir=crd_dir,
            all_sites=every,
            repo=repo,
            branch=branch,
            require_crds=require_crds,
            outputs=outputs,
            against=against,
            allow_destructive=allow_destructive,
            jobs=jobs,
            loaded=loaded,
        )
    )
