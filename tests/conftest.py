"""Shared fixtures: a scratch site repository (a copy of this one's sources) in a fresh git
repository, and a CLI runner. Nothing here writes outside tmp_path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import git
import pytest
from typer.testing import CliRunner

from kkc.cli import app

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pinned identity and no user/system git config, so commits are reproducible."""
    for key in [k for k in os.environ if k.startswith("GIT_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "kkc test")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "test@kkc.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "kkc test")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "test@kkc.invalid")


@pytest.fixture(autouse=True)
def _no_crd_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """No KKC_CRD_DIR from the caller's environment: custom resources are validated against
    the CRD schemas embedded in kkc; a test that wants a CRD directory writes one."""
    monkeypatch.delenv("KKC_CRD_DIR", raising=False)


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


@pytest.fixture
def kkc(monkeypatch: pytest.MonkeyPatch):
    """Run the CLI in a directory: kkc(cwd, *args) -> result (exit_code, stdout, stderr)."""
    runner = CliRunner()

    def run(cwd: Path, *args: str):
        monkeypatch.chdir(cwd)
        return runner.invoke(app, list(args))

    return run
