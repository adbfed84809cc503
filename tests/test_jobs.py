"""`--jobs N`: sites rendered and validated in worker processes (kkc.pool) give the same
output, exit code and deploy/ tree as in-process (N=1), also when one site fails."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from conftest import make_small_repo, snapshot
from helpers import commit
from kkc.errors import InputError, Problem, SiteInvalid


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
