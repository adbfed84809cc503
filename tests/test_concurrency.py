"""Parallel and interrupted writers: two builds of one site at once, a build killed with
SIGKILL at any point, a lock held by another process (kkc.locks, kkc.writer.swap).

Each test runs real `kkc` processes (`python -m kkc`) on a keystone-only site repository,
and checks the tree on disk and the repository with `git fsck --strict`."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import git
import pytest

from helpers import keystone_repo, write

SITE = "site-k"


def _kkc(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "kkc", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _snapshot(site_dir: Path) -> dict[str, bytes]:
    return {
        p.relative_to(site_dir).as_posix(): p.read_bytes()
        for p in sorted(site_dir.rglob("*"))
        if p.is_file()
    }


def _fsck(root: Path) -> None:
    done = subprocess.run(
        ["git", "fsck", "--full", "--strict"], cwd=root, capture_output=True, text=True
    )
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return keystone_repo(tmp_path / "repo")


def test_two_builds_of_one_site_at_once_both_succeed_and_commit_once(root: Path) -> None:
    """They take turns on deploy/ and on the repository: the second finds the output
    written and committed, and commits nothing."""
    procs = [_kkc(root, "build", SITE, "--commit") for _ in range(2)]
    results = [_finish(p) for p in procs]
    assert [code for code, _out, _err in results] == [0, 0], results
    repo = git.Repo(root)
    subjects = [c.summary for c in repo.iter_commits()]
    assert len(subjects) == 2, subjects  # the site repository's commit and one build
    assert not repo.is_dirty(untracked_files=True), repo.git.status()
    alone = keystone_repo(root.parent / "alone")
    assert _finish(_kkc(alone, "build", SITE))[0] == 0
    assert _snapshot(root / "deploy" / SITE) == _snapshot(alone / "deploy" / SITE)
    assert not [p.name for p in (root / "deploy").iterdir() if p.name.startswith(".kkc-")]
    _fsck(root)


def test_a_build_killed_at_any_point_leaves_the_old_tree_or_the_new_one(root: Path) -> None:
    """SIGKILL at random moments of a build that changes the output: deploy/<site>/ is
    always exactly the previous tree or exactly the new one, HEAD is the previous commit or
    the new one, and the next build completes and leaves the repository sound."""
    assert _finish(_kkc(root, "build", SITE, "--commit"))[0] == 0
    site_dir = root / "deploy" / SITE
    old, old_head = _snapshot(site_dir), git.Repo(root).head.commit.hexsha
    text = (root / "sites" / SITE / "site.yaml").read_text()
    write(root, f"sites/{SITE}/site.yaml", text.replace("3600", "1800"))
    git.Repo(root).git.commit("-q", "-am", "shorter tokens")
    new_head_parent = git.Repo(root).head.commit.hexsha
    rng = random.Random(20261207)
    seen = set()
    for _ in range(6):
        proc = _kkc(root, "build", SITE, "--commit")
        time.sleep(rng.uniform(0.2, 3.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(60)
        now = _snapshot(site_dir)
        head = git.Repo(root).head.commit
        if now == old:
            seen.add("old")
            assert head.hexsha in (old_head, new_head_parent)
        else:
            seen.add("new")
            assert b"expiration = 1800" in b"".join(now.values())
            assert head.hexsha == new_head_parent or head.parents[0].hexsha == new_head_parent
        if proc.returncode == 0:  # it finished before the signal
            break
    assert _finish(_kkc(root, "build", SITE, "--commit"))[0] == 0
    assert b"expiration = 1800" in b"".join(_snapshot(site_dir).values())
    assert not [p.name for p in (root / "deploy").iterdir() if p.name.startswith(".kkc-")]
    assert not git.Repo(root).is_dirty(untracked_files=True), git.Repo(root).git.status()
    _fsck(root)
    assert seen


def test_a_held_lock_names_its_holder_and_a_build_gives_up_after_the_timeout(
    root: Path,
) -> None:
    """A process holding deploy/'s lock (here a stand-in that takes the same flock) is named
    with its PID while the build waits; after KKC_LOCK_TIMEOUT the build fails (exit 4) and
    names it again. A lock never outlives its process: once the holder is killed, the
    build goes through."""
    (root / "deploy").mkdir()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\n"
            "time.sleep(600)\n",
            str(root / "deploy"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        code, out, err = _finish(_kkc(root, "build", SITE, env={"KKC_LOCK_TIMEOUT": "1"}))
        assert code == 4, (out, err)
        assert f"kkc: deploy/ is locked by PID {holder.pid} (" in err, err
        assert f"deploy/ is still locked by PID {holder.pid} (" in err, err
        assert "after 1 s (KKC_LOCK_TIMEOUT)" in err, err
        assert not (root / "deploy" / SITE).exists()  # nothing written
    finally:
        holder.kill()
        holder.wait(60)
    assert _finish(_kkc(root, "build", SITE, env={"KKC_LOCK_TIMEOUT": "1"}))[0] == 0
