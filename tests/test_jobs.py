"""`--jobs N`: sites rendered and validated in worker processes (kkc.pool) give the same
output, exit code and deploy/ tree as in-process (N=1), also when sites fail: every
failing site is reported, and the exit code is the highest. The tests force the pool
(kkc.pool.MIN_SITES_PER_WORKER = 1): with its default, three sites run in-process."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import _session_env, make_small_repo, snapshot
from helpers import commit, write
from kkc import cache, pool
from kkc.cli import app
from kkc.errors import (
    FleetFailure,
    InputError,
    OutputInvalid,
    Problem,
    SiteInvalid,
    SitesNotJudged,
    combined,
)


@pytest.fixture(autouse=True)
def _always_a_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "MIN_SITES_PER_WORKER", 1)
    cache.use(True)  # how many workers there are changes no output: the caches stay on


def _three_sites(dest: Path) -> Path:
    """The small repository with a third keystone-only site, site-m (a copy of site-l)."""
    root = make_small_repo(dest)
    shutil.copytree(root / "sites/site-l", root / "sites/site-m")
    path = root / "sites/site-m/site.yaml"
    path.write_text(path.read_text().replace("site-l", "site-m"))
    commit(root, ["sites/site-m"], "site-m")
    return root


def _deploy(root: Path) -> dict[str, bytes]:
    return snapshot(root / "deploy") if (root / "deploy").exists() else {}


@pytest.mark.slow
@pytest.mark.parametrize("broken", [False, True])
def test_jobs_1_and_2_agree(tmp_path: Path, kkc, broken: bool) -> None:
    runs = []
    for jobs in ("1", "2"):
        root = _three_sites(tmp_path / f"j{jobs}")
        if broken:  # site-l's output invalid: exit 3, nothing written, whatever N is
            path = root / "sites/site-k/site.yaml"
            path.write_text(path.read_text().replace("replicas: 3", "replicas: -1"))
        result = kkc(root, "build", "--all", "--jobs", jobs)
        runs.append((result.exit_code, result.stdout, result.stderr, _deploy(root)))
    assert runs[0] == runs[1]
    code, out, err, tree = runs[0]
    if broken:
        assert code == 2
        assert "sites/site-k/site.yaml:" in err
        assert tree == {}
    else:
        assert code == 0, err
        assert [line.split()[0] for line in out.splitlines()[:3]] == [
            "site-k:",
            "site-l:",
            "site-m:",
        ]
        assert {p.split("/")[0] for p in tree} == {"site-k", "site-l", "site-m"}


def test_jobs_must_be_positive(tmp_path: Path, kkc) -> None:
    root = make_small_repo(tmp_path / "repo")
    result = kkc(root, "build", "--all", "--jobs", "0")
    assert result.exit_code == 2
    assert result.stderr == ("<command line>:1:1: KKC163 --jobs must be at least 1, not 0\n")


def test_errors_cross_process_boundary_whole() -> None:
    problem = Problem("sites/x/site.yaml", 3, 5, "KKC112", "bad")
    for exc in (InputError([problem]), SiteInvalid(problem, site="s")):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc)
        assert back.problems == [problem]
        assert back.lines() == exc.lines()
    assert pickle.loads(pickle.dumps(SiteInvalid(problem, site="s"))).site == "s"


def test_few_sites_run_in_process() -> None:
    """The default: a worker per MIN_SITES_PER_WORKER sites, none for fewer than two."""
    pool.MIN_SITES_PER_WORKER = 3  # undone by the autouse fixture
    assert [pool.workers(2, n) for n in (0, 1, 2, 5, 6, 100)] == [1, 1, 1, 1, 2, 2]
    assert [pool.workers(8, n) for n in (6, 9, 12, 100)] == [2, 3, 4, 8]
    assert pool.workers(1, 100) == 1


BAD_PATCH = (
    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: keystone-api\n"
    "spec:\n  template:\n    spec:\n      containers: oops\n"
)


def _fleet(dest: Path, kkc, failing: bool) -> Path:
    """Three keystone-only sites, built and committed; then site-m changed (its output
    stale) and, with ``failing``, site-k's input invalid (exit 2) and a site patch of
    site-l that kustomize refuses (exit 3)."""
    root = _three_sites(dest)
    result = kkc(root, "build", "--all", "--commit", "--jobs", "1")
    assert result.exit_code == 0, result.output
    path = root / "sites/site-m/site.yaml"
    path.write_text(path.read_text().replace("tokenExpiration: 7200", "tokenExpiration: 600"))
    if failing:
        path = root / "sites/site-k/site.yaml"
        path.write_text(path.read_text().replace("replicas: 3", "replicas: -1"))
        write(root, "sites/site-l/patches/20-bad.yaml", BAD_PATCH)
    return root


@pytest.fixture(scope="module")
def fleets(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, Path]:
    """failing -> a :func:`_fleet`, made once for the module's tests: the read-only commands
    run on it, and a build on a copy of it."""
    mp = _session_env()
    try:
        with pytest.MonkeyPatch.context() as chdir:

            def run(cwd: Path, *args: str):
                chdir.chdir(cwd)
                return CliRunner().invoke(app, list(args))

            base = tmp_path_factory.mktemp("fleets")
            return {f: _fleet(base / ("failing" if f else "stale"), run, f) for f in (False, True)}
    finally:
        mp.undo()


COMMANDS = {
    "build": ["build", "--all"],
    "check": ["check", "--all"],
    "check-json": ["check", "--all", "-o", "json"],
    "diff": ["diff", "--all"],
    "lint": ["lint", "--all"],
}


@pytest.mark.parametrize("failing", [False, True], ids=["stale", "failing"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_jobs_1_and_4_agree(tmp_path: Path, kkc, fleets, command: str, failing: bool) -> None:
    """The same stdout, stderr (in the same order) and exit code for --jobs 1 and 4, and
    for build the same deploy/ tree; read-only commands run twice on one repository (and
    leave it as it was)."""
    runs = []
    before = snapshot(fleets[failing])
    for jobs in ("1", "4"):
        root = fleets[failing]
        if command == "build":
            root = tmp_path / f"j{jobs}"
            shutil.copytree(fleets[failing], root, symlinks=True)
        result = kkc(root, *COMMANDS[command], "--jobs", jobs)
        runs.append((result.exit_code, result.stdout, result.stderr, _deploy(root)))
    assert runs[0] == runs[1]
    assert snapshot(fleets[failing]) == before
    code, out, err, _tree = runs[0]
    expected = {
        ("build", False): 0,
        ("check", False): 1,
        ("check-json", False): 1,
        ("diff", False): 1,
        ("lint", False): 0,
        ("build", True): 3,
        ("check", True): 2,
        ("check-json", True): 2,
        ("diff", True): 3,
        ("lint", True): 3,
    }[(command, failing)]
    assert code == expected, (out, err)


def test_build_all_reports_every_failing_site_with_the_worst_exit_code(tmp_path: Path, kkc) -> None:
    """site-k's input is invalid (exit 2), site-l's output (exit 3), site-m is fine: both
    failures are reported, in site order, exit 3, and nothing is written."""
    root = _fleet(tmp_path / "repo", kkc, failing=True)
    before = _deploy(root)
    result = kkc(root, "build", "--all", "--jobs", "4")
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "sites/site-k/site.yaml",
        "sites/site-l/patches/20-bad.yaml",
    ]
    assert " KKC300 kustomize build failed: " in lines[1]
    assert _deploy(root) == before
    result = kkc(root, "build", "--all", "--jobs", "4", "-o", "json")
    assert result.exit_code == 3
    problems = json.loads(result.stdout)["problems"]
    assert [(p["file"], p["code"]) for p in problems] == [
        (lines[0].split(":")[0], lines[0].split()[1]),
        ("sites/site-l/patches/20-bad.yaml", "KKC300"),
    ]


def test_check_all_judges_every_site_it_can(tmp_path: Path, kkc) -> None:
    """site-k does not load (exit 2): its problems go to stderr; site-l's invalid output and
    site-m's stale files are still reported on stdout, and the exit code is 2."""
    root = _fleet(tmp_path / "repo", kkc, failing=True)
    result = kkc(root, "check", "--all", "--jobs", "4")
    assert result.exit_code == 2, result.output
    out = result.stdout.splitlines()
    assert out[0].startswith("sites/site-l/patches/20-bad.yaml:1:1: KKC300 kustomize build failed")
    assert out[1:] and all(
        line.startswith("deploy/site-m/") and " KKC327 stale " in line for line in out[1:]
    ), out
    err = result.stderr.splitlines()
    assert err[0].startswith("sites/site-k/site.yaml:") and " KKC" in err[0]
    assert err[-1].startswith("kkc check: ") and err[-1].endswith(" in site-l, site-m")
    result = kkc(root, "check", "--all", "--jobs", "4", "-o", "json")
    assert result.exit_code == 2
    rows = json.loads(result.stdout)
    assert [(r["site"], r["ok"]) for r in rows] == [
        ("site-k", False),
        ("site-l", False),
        ("site-m", False),
    ]
    assert rows[0]["problems"][0]["file"] == "sites/site-k/site.yaml"


def test_combined_errors_keep_site_order_and_take_the_highest_exit_code() -> None:
    a = InputError(Problem("sites/a/site.yaml", 1, 1, "KKC110", "bad"))
    b = OutputInvalid(Problem("deploy/b/kustomization.yaml", 1, 1, "KKC301", "worse"))
    assert combined([a]) is a
    both = combined([a, b])
    assert isinstance(both, FleetFailure)
    assert both.exit_code == 3
    assert both.lines() == [
        "sites/a/site.yaml:1:1: KKC110 bad",
        "deploy/b/kustomization.yaml:1:1: KKC301 worse",
    ]
    back = pickle.loads(pickle.dumps(both))
    assert (back.exit_code, back.lines()) == (3, both.lines())
    judged = SitesNotJudged([a], 1, "kkc check: 2 problems in b")
    assert judged.exit_code == 2
    assert judged.lines() == ["sites/a/site.yaml:1:1: KKC110 bad", "kkc check: 2 problems in b"]
