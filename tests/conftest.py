"""Shared fixtures: a scratch site repository (a copy of this one's sources) in a fresh git
repository, and a CLI runner; and, built once per test worker (session scope) and shared by
the tests that only read them, the example sites loaded, rendered and built. Nothing here
writes outside tmp_path."""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import git
import pytest
from typer.testing import CliRunner

from helpers import PROJECT, commit, keystone_repo, tree
from kkc import cache, kustomize
from kkc.cli import app
from kkc.yamlio import load_stream


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: a long end-to-end scenario (random git walks, the README walkthrough, emulated "
        'reconciles); `make test-fast` (-m "not slow") skips it, `make test` runs it',
    )


def pin_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pinned git identity and no user/system git config, so commits are reproducible."""
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "kkc test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@kkc.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "kkc test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@kkc.invalid")
    # No KKC_CRD_DIR from the caller's environment: custom resources are validated against
    # the CRD schemas embedded in kkc; a test that wants a CRD directory writes one.
    monkeypatch.delenv("KKC_CRD_DIR", raising=False)
    # No progress lines of the fleet commands on stderr (their times differ from run to
    # run); tests/test_progress.py turns them on
    monkeypatch.setenv("KKC_PROGRESS", "0")
    # kkc's caches (kustomize builds, rendered sites): one per run, shared by its workers
    # (never the user's ~/.cache/kkc, never shared between runs), so each distinct tree is
    # built by the real kustomize once per run; the tests of the caches set their own
    monkeypatch.delenv("KKC_NO_CACHE", raising=False)
    if CACHE_DIR:
        monkeypatch.setenv("KKC_CACHE_DIR", CACHE_DIR[0])


CACHE_DIR: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _kustomize_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # a worker's base directory is popen-gwN/ inside the run's: the run's is shared
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    (shared / "kkc-cache").mkdir(exist_ok=True)
    CACHE_DIR[:] = [str(shared / "kkc-cache")]


@pytest.fixture(autouse=True)
def _pinned_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    pin_environment(monkeypatch)


@pytest.fixture(autouse=True)
def _no_caches_once_patched(monkeypatch: pytest.MonkeyPatch):
    """A test that patches anything in-process (monkeypatch.setattr or setitem: kkc's code,
    its data, a subprocess helper; not setenv) runs from then on without kkc's caches: their
    keys cover kkc's files, not what a test changed in memory. The tests of the caches turn them back
    on after patching (cache.use(True))."""
    for name in ("setattr", "setitem"):
        real = getattr(monkeypatch, name)

        def patched(*args, _real=real, **kwargs):
            if not (args and args[0] is os.environ):  # setenv is a setitem of os.environ
                cache.use(False)
            return _real(*args, **kwargs)

        object.__setattr__(monkeypatch, name, patched)
    yield
    cache.use(True)


def make_repo(dest: Path) -> Path:
    """A site repository with this project's sites/, base/ and overlays/, committed."""
    for part in ("sites", "base", "overlays"):
        if (PROJECT / part).is_dir():
            shutil.copytree(PROJECT / part, dest / part)
    repo = git.Repo.init(dest, initial_branch="main")
    # the git CLI, as a user would: GitPython's index writer leaves a stale cache-tree
    repo.git.add("--", *(p for p in ("sites", "base", "overlays") if (dest / p).is_dir()))
    repo.git.commit("-q", "-m", "site repository")
    return dest


@pytest.fixture
def site_repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (including .git), to prove that nothing changed."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def make_small_repo(dest: Path) -> Path:
    """A site repository of the keystone-only sites of helpers.KEYSTONE_SITES (site-k,
    site-l), site-k with 3 keystone-api replicas as site-a has (helpers.set_keystone_replicas
    works on it): for the tests of kkc's mechanisms, on sites that build in about a second."""
    root = keystone_repo(dest)
    path = root / "sites/site-k/site.yaml"
    text = path.read_text()
    assert "  keystone:\n" in text
    path.write_text(text.replace("  keystone:\n", "  keystone:\n    api:\n      replicas: 3\n", 1))
    commit(root, ["sites/site-k/site.yaml"], "site-k: 3 keystone-api replicas")
    return root


@pytest.fixture
def small_site_repo(tmp_path: Path) -> Path:
    return make_small_repo(tmp_path / "repo")


@pytest.fixture
def kkc(monkeypatch: pytest.MonkeyPatch):
    """Run the CLI in a directory: kkc(cwd, *args) -> result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def run(cwd: Path, *args: str):
        monkeypatch.chdir(cwd)
        return runner.invoke(app, list(args))

    return run


# --- the example sites, once per worker ----------------------------------------------------

EXAMPLE_SITES = ("site-a", "site-a-ha", "site-b")


def fingerprint(root: Path) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of every file under root: cheap enough to compare after each test
    (running as root, file modes would not stop a stray write)."""
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() or p.is_symlink():
            st = p.lstat()
            out.append((p.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return out


@dataclass(frozen=True)
class Shared:
    """A scratch repository that many tests read and none may change."""

    root: Path
    fingerprint: list[tuple[str, int, int]]

    def check(self, what: str) -> None:
        assert fingerprint(self.root) == self.fingerprint, (
            f"a test changed the shared {what} in {self.root}; a test that writes must use "
            "its own copy (the site_repo fixture)"
        )


def _session_env() -> pytest.MonkeyPatch:
    """The environment of the autouse fixture above, for session fixtures (which are set up
    before any function-scoped fixture); undo() it when done."""
    mp = pytest.MonkeyPatch()
    pin_environment(mp)
    return mp


@pytest.fixture(scope="session")
def _example_repo(tmp_path_factory: pytest.TempPathFactory) -> Shared:
    mp = _session_env()
    try:
        root = make_repo(tmp_path_factory.mktemp("example") / "repo")
    finally:
        mp.undo()
    return Shared(root, fingerprint(root))


@pytest.fixture
def example_repo(_example_repo: Shared):
    """A copy of this repository's sites (committed, never built), shared by the tests of a
    worker that only load or render sites in memory (helpers.tree, load_site); a test that
    writes anything in it fails."""
    yield _example_repo.root
    _example_repo.check("example_repo")


@pytest.fixture(scope="session")
def example_trees(_example_repo: Shared) -> MappingProxyType:
    """{site: read-only {path: bytes}}: the tree kkc generates for each example site (no
    kustomize), rendered once per worker."""
    return MappingProxyType(
        {name: MappingProxyType(tree(_example_repo.root, name)) for name in EXAMPLE_SITES}
    )


@dataclass(frozen=True)
class Built:
    """The example sites built once (``kkc build SITE --root ROOT``, one command per site in
    EXAMPLE_SITES order), and what ``kkc render SITE`` then printed."""

    root: Path
    builds: MappingProxyType  # site -> the CliRunner result of its build
    renders: MappingProxyType  # site -> the CliRunner result of its render
    _streams: dict[str, list] = field(default_factory=dict)

    def objects(self, rel: str) -> list[dict]:
        """``kustomize build ROOT/rel`` parsed (a fresh copy each call), run once per worker
        and directory: the tree never changes."""
        if rel not in self._streams:
            self._streams[rel] = load_stream(kustomize.build(self.root / rel, rel))
        return copy.deepcopy(self._streams[rel])

    def rendered(self, site: str) -> list[dict]:
        """The objects ``kkc render SITE`` printed (a fresh copy each call); it exited 0."""
        result = self.renders[site]
        assert result.exit_code == 0, result.output
        key = f"render {site}"
        if key not in self._streams:
            self._streams[key] = load_stream(result.stdout)
        return copy.deepcopy(self._streams[key])


@pytest.fixture(scope="session")
def _built_sites(tmp_path_factory: pytest.TempPathFactory) -> tuple[Built, Shared]:
    mp = _session_env()
    try:
        root = make_repo(tmp_path_factory.mktemp("built") / "repo")
        runner = CliRunner()
        builds = {s: runner.invoke(app, ["build", s, "--root", str(root)]) for s in EXAMPLE_SITES}
        renders = {s: runner.invoke(app, ["render", s, "--root", str(root)]) for s in EXAMPLE_SITES}
    finally:
        mp.undo()
    built = Built(root, MappingProxyType(builds), MappingProxyType(renders))
    return built, Shared(root, fingerprint(root))


@pytest.fixture
def built_sites(_built_sites: tuple[Built, Shared]):
    """site-a and site-b built into deploy/ of one scratch repository per worker, for the
    tests that only read the result (files, kustomize builds of deploy/ directories): each
    asserts the build's exit code itself. A test that writes anything there fails."""
    built, shared = _built_sites
    yield built
    shared.check("built_sites repository")
