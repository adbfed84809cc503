"""`kkc affected --since REV`: the sites whose inputs changed between the revision REV and
the work tree, so that CI builds, checks or diffs only those.

A site's inputs are what its output is made from (:mod:`kkc.loader` reads them, and
kustomize the directories the tree refers to):

- its directory ``sites/<site>/`` (site.yaml, ``config/``, ``patches/``) and the fleet
  defaults ``sites/defaults.yaml``;
- the overlays it lists (``overlays/<name>/``: defaults and components);
- every directory under ``base/`` and ``overlays/`` that its generated tree refers to,
  transitively (``base/neutron/compute`` uses ``base/ovn/compute``...): the tree is
  generated as `kkc build` generates it, without running kustomize (but for a site with
  patches), so a change to a base lists exactly the sites that use it;
- kkc's own package when it lies inside the repository (as in kkc's reference site
  repository): the option catalog and the Kolla data of a release affect the sites of that
  release, any other change of the package every site;
- the other sites of its Argo CD AppProject: a change to one of them, a new one or a
  removed one may change the AppProject every one of them renders.

Conservative where it cannot tell: a site that does not load now is affected by any
change to ``base/``, ``overlays/`` or the package. Git is read through :mod:`kkc.gitrepo`
only; nothing is written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from . import deployrepo, gitops, gitrepo
from .errors import KkcError
from .generate import Provenance
from .loader import FleetIndex, list_sites, load_site
from .model import Site
from .outputs import compute
from .pipeline import local_provenance, site_tree
from .yamlio import parse_mapping, to_plain

PACKAGE = Path(__file__).resolve().parent
_RELEASE_DATA = re.compile(r"^data/(?:catalogs/(?P<c>[^/]+)\.json\.gz|kolla/(?P<k>[^/]+)\.json)$")


@dataclass
class Affected:
    site: str
    reasons: list[str]  # the changed paths that affect it, or why it is affected


@dataclass
class AffectedRun:
    """What `kkc affected` found: the affected sites (text: one name a line, for
    ``$(kkc affected ...)``), the sites removed since REV, and the changed paths."""

    since: str
    commit: str | None
    sites: list[Affected]
    removed: list[str]
    changed: list[str]

    def lines(self) -> list[str]:
        return [a.site for a in self.sites]

    def notes(self) -> list[str]:
        """For stderr: the removed sites, whose output `kkc build --all` prunes."""
        return [
            f"kkc affected: site {name} removed since {self.since} (`kkc build --all` "
            f"removes deploy/{name}/)"
            for name in self.removed
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "commit": self.commit,
            "sites": [{"site": a.site, "reasons": a.reasons} for a in self.sites],
            "removed": self.removed,
            "changed": self.changed,
        }


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def site_inputs(root: Path, site: Site, prov: Provenance) -> list[str]:
    """The paths (relative to the site repository) the output of ``site`` is made from:
    its directory, the fleet defaults, its overlays and the base/ and overlays/
    directories its generated tree refers to."""
    tree = site_tree(root, site, compute(site), prov)
    own = PurePosixPath("deploy", site.name)

    def read(path: PurePosixPath) -> bytes | None:
        if path.parts[:2] == own.parts:
            return tree.get(PurePosixPath(*path.parts[2:]).as_posix())
        return deployrepo.read_bytes(root / path)

    used = deployrepo.used_dirs({own: list(tree)}, read)
    listed = [f"overlays/{name}" for name in site.get("overlays") or []]
    return sorted(
        {f"sites/{site.name}", "sites/defaults.yaml", *listed, *(d.as_posix() for d in used)}
    )


class _Sites:
    """The sites of the work tree, each loaded (and its inputs found) at most once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index = FleetIndex(root)
        self._loaded: dict[str, Site | None] = {}
        self._inputs: dict[str, list[str] | None] = {}
        self._prov: Provenance | None = None

    def site(self, name: str) -> Site | None:
        """The site loaded, or None when it does not load."""
        if name not in self._loaded:
            try:
                # the AppProject's peers aside (see :func:`run`): a site file that does not
                # parse would stop every other site's load
                self._loaded[name] = load_site(self.root, name, cross_site=False)
            except KkcError:
                self._loaded[name] = None
        return self._loaded[name]

    def inputs(self, name: str) -> list[str] | None:
        """:func:`site_inputs`, or None when the site does not load or render."""
        if name not in self._inputs:
            site = self.site(name)
            try:
                self._prov = self._prov or local_provenance()
                self._inputs[name] = (
                    None if site is None else site_inputs(self.root, site, self._prov)
                )
            except KkcError:
                self._inputs[name] = None
        return self._inputs[name]

    def project(self, name: str) -> tuple[str, str] | None:
        """The site's AppProject (namespace, name) as its layers name it; None for a Flux
        site or one whose files do not parse."""
        try:
            return self.index.peeked_key(name, [])
        except KkcError:
            return None


def _package_prefix(repo: Any, root: Path) -> str | None:
    """kkc's package directory relative to the site repository, when it lies inside it."""
    top = Path(repo.working_tree_dir or root).resolve()
    if not PACKAGE.is_relative_to(top) or not PACKAGE.is_relative_to(root.resolve()):
        return None
    return PACKAGE.relative_to(root.resolve()).as_posix()


def _package_reasons(changed: list[str], package: str | None, release: str | None) -> list[str]:
    """The changes of kkc's package that affect a site of ``release`` (None: not known,
    every change does)."""
    found = []
    for path in changed:
        if package is None or not _under(path, package):
            continue
        m = _RELEASE_DATA.match(path[len(package) + 1 :])
        if m is None or release is None or (m.group("c") or m.group("k")) == release:
            found.append(path)
    return found


def _removed_project(repo: Any, commit: Any, top_rel: Any, name: str) -> tuple[str, str] | None:
    """The AppProject a site removed since ``commit`` was in, as its site.yaml and the
    fleet defaults there name it (overlays aside), over kkc's defaults."""
    gitops_spec: dict[str, Any] = {"engine": "argocd"}
    for rel in ("sites/defaults.yaml", f"sites/{name}/site.yaml"):
        data = gitrepo.file_at(commit, top_rel(rel))
        try:
            doc = to_plain(parse_mapping(data.decode("utf-8"), rel)) if data else {}
        except (KkcError, UnicodeDecodeError):
            continue
        if isinstance(doc.get("gitops"), dict):
            gitops_spec.update(doc["gitops"])
    return gitops.project_key({"gitops": gitops_spec}, name)


def _direct(sites: _Sites, name: str, changed: list[str], package: str | None) -> list[str]:
    """The changed paths among the inputs of site ``name`` (or why it is affected)."""
    own = [p for p in changed if _under(p, f"sites/{name}") or p == "sites/defaults.yaml"]
    shared = [p for p in changed if p.startswith(("base/", "overlays/"))]
    ours = _package_reasons(changed, package, None)
    if not shared and not ours:
        return own
    inputs = sites.inputs(name)
    if inputs is None:  # what it reads cannot be told: any shared change may affect it
        return own or ["does not load now (`kkc check` says why): every change may affect it"]
    site = sites.site(name)
    release = site.get("openstack.release") if site is not None else None
    found = [p for p in shared if any(_under(p, i) for i in inputs)]
    return [*own, *found, *_package_reasons(changed, package, release)]


def run(root: Path, since: str) -> AffectedRun:
    """`kkc affected --since REV`: the sites of the work tree whose inputs differ from
    those at REV (see the module's description), in name order."""
    repo = gitrepo.open_repo(root, "kkc affected compares the work tree with a git revision")
    commit = gitrepo.resolve(repo, since, "--since")
    base = gitrepo.relative_to_top(repo, root)

    def top_rel(rel: str) -> str:
        return rel if base == "." else f"{base}/{rel}"

    package = _package_prefix(repo, root)
    prefixes = ["sites", "base", "overlays", *([package] if package else [])]
    changed = [
        p if base == "." else p[len(base) + 1 :]
        for p in gitrepo.changed_since(repo, commit, [top_rel(p) for p in prefixes])
    ]
    names = list_sites(root)
    before = [
        n
        for n in gitrepo.subdirectories(repo, commit, root / "sites")
        if commit is not None and gitrepo.file_at(commit, top_rel(f"sites/{n}/site.yaml"))
    ]
    removed = sorted(n for n in before if n not in names)
    sites = _Sites(root)
    reasons = {n: _direct(sites, n, changed, package) for n in names} if changed else {}
    direct = [n for n in names if reasons.get(n)]
    projects = {n: sites.project(n) for n in names} if direct or removed else {}
    gone = {n: _removed_project(repo, commit, top_rel, n) for n in removed}
    for name in names:
        key = projects.get(name)
        if key is None or name in direct:
            continue
        peers = [d for d in direct if d != name and projects.get(d) == key]
        peers += [f"{r} (removed)" for r in removed if gone[r] == key]
        if peers:
            reasons[name] = [f"shares AppProject {key[0]}/{key[1]} with {', '.join(peers)}"]
    found = [Affected(n, reasons[n]) for n in names if reasons.get(n)]
    return AffectedRun(since, commit.hexsha if commit else None, found, removed, changed)
