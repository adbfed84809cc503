"""`--shard I/N` (kkc.fleet): a deterministic 1/N of the sites, by a hash of each name, so
that the shards of a fleet partition it and adding a site moves no other site."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import git
import pytest

from conftest import make_small_repo
from helpers import commit
from kkc.fleet import Shard, bucket, in_shard, parse_shard

NAMES = [f"site-{i:03d}" for i in range(300)]


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_shards_partition_the_fleet(count: int) -> None:
    shards = [in_shard(NAMES, Shard(i, count)) for i in range(1, count + 1)]
    assert sorted(n for shard in shards for n in shard) == NAMES  # each name exactly once
    assert all(shard == sorted(shard) for shard in shards)  # in the order given
    if count > 1:  # and not all in one: 300 names spread
        assert all(len(shard) > 300 / count / 2 for shard in shards), [len(s) for s in shards]


def test_adding_or_removing_a_site_moves_no_other() -> None:
    before = {n: bucket(n, 4) for n in NAMES}
    more = [*NAMES[:100], "site-new", *NAMES[100:250]]
    assert {n: bucket(n, 4) for n in more if n != "site-new"} == {
        n: before[n] for n in more if n != "site-new"
    }
    # the hash is fixed: a site's shard never changes between kkc versions or machines
    assert [bucket(n, 4) for n in ("site-a", "site-b", "site-k", "site-l")] == [0, 3, 2, 0]
    assert [Shard(i, 4).has("site-b") for i in (1, 2, 3, 4)] == [False, False, False, True]


def test_bucket_is_sha256_of_the_name() -> None:
    digest = hashlib.sha256(b"site-k").digest()
    assert bucket("site-k", 7) == int.from_bytes(digest[:8], "big") % 7


@pytest.mark.parametrize("value", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2", "1/2/3", ""])
def test_bad_shards_are_kkc164(tmp_path: Path, kkc, value: str) -> None:
    root = make_small_repo(tmp_path / "repo")
    for command in ("build", "check", "diff", "lint"):
        result = kkc(root, command, "--all", "--shard", value)
        assert (result.exit_code, result.stdout) == (2, ""), (command, result.output)
        assert result.stderr == (
            f"<command line>:1:1: KKC164 --shard {value}: not I/N with whole numbers "
            "1 <= I <= N (shard I of N, e.g. --shard 1/4)\n"
        )
    assert parse_shard(" 2/3 ") == Shard(2, 3)
    assert parse_shard(None) is None


def _sites_of(stdout: str) -> list[str]:
    return [line.split(":")[0] for line in stdout.splitlines()]


def _five_sites(dest: Path) -> Path:
    """The small repository with site-m ... site-o besides site-k and site-l."""
    root = make_small_repo(dest)
    for name in ("site-m", "site-n", "site-o"):
        shutil.copytree(root / "sites/site-l", root / f"sites/{name}")
        path = root / f"sites/{name}/site.yaml"
        path.write_text(path.read_text().replace("site-l", name))
        commit(root, [f"sites/{name}"], name)
    return root


def test_shards_of_the_cli_partition_the_fleet_and_prune_only_their_own(
    tmp_path: Path, kkc
) -> None:
    root = _five_sites(tmp_path / "repo")
    every = ["site-k", "site-l", "site-m", "site-n", "site-o"]
    assert [bucket(n, 2) for n in every] == [0, 0, 1, 1, 0]  # both shards have sites
    built = []
    for i in (1, 2):
        result = kkc(root, "build", "--all", "--shard", f"{i}/2", "--commit")
        assert result.exit_code == 0, result.output
        built.append(_sites_of(result.stdout))
    assert sorted(built[0] + built[1]) == every and not set(built[0]) & set(built[1])
    assert built == [in_shard(every, Shard(1, 2)), in_shard(every, Shard(2, 2))]
    # a shard's build --all leaves the other shard's output alone (it is not stale)
    assert sorted(p.name for p in (root / "deploy").iterdir()) == every
    # each named site is in the shard its name picks, also with names given
    result = kkc(root, "lint", *every, "--shard", "1/2")
    assert result.exit_code == 0, result.output
    assert _sites_of(result.stdout) == built[0]
    # a site removed: exactly one shard reports its output (check) and removes it (build)
    gone = built[1][0]
    git.Repo(root).git.rm("-r", "-q", f"sites/{gone}")
    git.Repo(root).git.commit("-q", "-m", f"remove {gone}")
    reported = []
    for i in (1, 2):
        result = kkc(root, "check", "--all", "--shard", f"{i}/2")
        reported.append("KKC330" in result.stdout and f"deploy/{gone}/" in result.stdout)
        assert result.exit_code == (1 if reported[-1] else 0), result.output
    assert reported == [False, True]
    result = kkc(root, "build", "--all", "--shard", "1/2")
    assert result.exit_code == 0 and (root / "deploy" / gone).is_dir()
    result = kkc(root, "build", "--all", "--shard", "2/2")
    assert result.exit_code == 0, result.output
    assert f"{gone}: removed deploy/{gone}/" in result.stdout
    assert sorted(p.name for p in (root / "deploy").iterdir()) == sorted(set(every) - {gone})
