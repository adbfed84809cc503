"""`kkc build` through the CLI: the tree it writes, determinism, file ownership, recovery
from an interrupted swap, invalid output (exit 3) and a missing kustomize (exit 4).

The ownership, recovery and failure mechanics run on the keystone-only site-k
(conftest.small_site_repo), which builds in about a second; the tree, determinism and
the PodDisruptionBudget that overlay ha changes stay on site-a."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from conftest import make_repo, make_small_repo, snapshot
from helpers import commit, set_keystone_replicas, write
from kkc import kustomize

PDB = "stages/identity/pdb/keystone-api-poddisruptionbudget.yaml"


def build_ok(kkc, repo: Path, *args: str, site: str = "site-a"):
    result = kkc(repo, "build", site, *args)
    assert result.exit_code == 0, result.output
    return result


def build_k(kkc, repo: Path, *args: str):
    """build_ok of the keystone-only site-k (conftest.small_site_repo)."""
    return build_ok(kkc, repo, *args, site="site-k")


def manifest(repo: Path, site: str = "site-a") -> dict:
    return json.loads((repo / "deploy" / site / ".kkc-files").read_text())


def tree_state(site_dir: Path) -> dict[str, tuple[bytes, int]]:
    """Bytes and mtime of every file, plus the directory's inode (a swap would change it)."""
    state = {
        p.relative_to(site_dir).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(site_dir.rglob("*"))
        if p.is_file()
    }
    state["<inode>"] = (b"", site_dir.stat().st_ino)
    return state


def kkc_leftovers(repo: Path) -> list[str]:
    return sorted(p.name for p in (repo / "deploy").iterdir() if p.name.startswith(".kkc-"))


def test_build_writes_tree_and_manifest(site_repo: Path, kkc) -> None:
    result = build_ok(kkc, site_repo)
    site_dir = site_repo / "deploy" / "site-a"
    doc = manifest(site_repo)
    assert (doc["generator"], doc["site"], doc["regenerate"]) == (
        "kkc",
        "site-a",
        "kkc build site-a",
    )
    on_disk = sorted(p.relative_to(site_dir).as_posix() for p in site_dir.rglob("*") if p.is_file())
    assert on_disk == sorted([*doc["files"], ".kkc-files"])
    for rel, digest in doc["files"].items():
        assert hashlib.sha256((site_dir / rel).read_bytes()).hexdigest() == digest, rel
    for expected in ("kustomization.yaml", "stages/infra/namespace.yaml", PDB):
        assert expected in doc["files"]
    assert "Deployment/openstack/keystone-api" in doc["objects"]
    assert result.stdout == (
        f"site-a: wrote deploy/site-a/ (files: {len(doc['files']) + 1} added, 0 changed, "
        f"0 removed; objects: {len(doc['objects'])} added, 0 changed, 0 removed)\n"
    )
    # every custom resource (ExternalSecret, ...) met its embedded CRD schema: no warning
    assert result.stderr == ""
    assert kkc_leftovers(site_repo) == []


def test_build_is_deterministic_across_repositories(tmp_path: Path, kkc) -> None:
    one, two = make_repo(tmp_path / "one"), make_repo(tmp_path / "two")
    build_ok(kkc, one)
    build_ok(kkc, two)
    first, second = snapshot(one / "deploy"), snapshot(two / "deploy")
    assert first and sorted(first) == sorted(second)
    for path in first:
        assert first[path] == second[path], path


def test_second_build_is_up_to_date_and_touches_nothing(small_site_repo: Path, kkc) -> None:
    build_k(kkc, small_site_repo)
    site_dir = small_site_repo / "deploy" / "site-k"
    before = tree_state(site_dir)
    result = build_k(kkc, small_site_repo)
    assert result.stdout == "site-k: deploy/site-k/ up to date\n"
    assert tree_state(site_dir) == before
    assert kkc_leftovers(small_site_repo) == []


def test_unowned_files_survive_rebuilds(small_site_repo: Path, kkc) -> None:
    build_k(kkc, small_site_repo)
    site_dir = small_site_repo / "deploy" / "site-k"
    write(site_dir, "NOTES.md", "operator notes\n")
    write(site_dir, "extra/runbook.txt", "page someone\n")
    (site_dir / "extra" / "runbook.txt").chmod(0o600)
    set_keystone_replicas(small_site_repo, 2, "site-k")  # forces a swap of the whole directory
    result = build_k(kkc, small_site_repo)
    assert result.stdout.startswith("site-k: wrote deploy/site-k/ (files: 0 added, 2 changed")
    assert (site_dir / "NOTES.md").read_text() == "operator notes\n"
    assert (site_dir / "extra" / "runbook.txt").read_text() == "page someone\n"
    assert (site_dir / "extra" / "runbook.txt").stat().st_mode & 0o777 == 0o600
    assert "NOTES.md" not in manifest(small_site_repo, "site-k")["files"]


def test_hand_edited_owned_file_is_restored(small_site_repo: Path, kkc) -> None:
    build_k(kkc, small_site_repo)
    target = small_site_repo / "deploy" / "site-k" / "kustomization.yaml"
    original = target.read_bytes()
    target.write_bytes(original + b"# local hack\n")
    result = build_k(kkc, small_site_repo)
    assert result.stdout == (
        "site-k: wrote deploy/site-k/ (files: 0 added, 1 changed, 0 removed; "
        "objects: 0 added, 0 changed, 0 removed)\n"
    )
    assert target.read_bytes() == original


def test_file_no_longer_produced_is_removed(site_repo: Path, kkc) -> None:
    build_ok(kkc, site_repo)
    site_dir = site_repo / "deploy" / "site-a"
    write(site_dir, "NOTES.md", "keep me\n")
    assert (site_dir / PDB).is_file()
    # A single replica gets no PodDisruptionBudget, nor a zone spread (overlay ha): the
    # kustomization, the keystone-api patch and the ownership manifest change.
    set_keystone_replicas(site_repo, 1)
    result = build_ok(kkc, site_repo)
    assert result.stdout == (
        "site-a: wrote deploy/site-a/ (files: 0 added, 3 changed, 1 removed; "
        "objects: 0 added, 1 changed, 1 removed)\n"
    )
    assert not (site_dir / PDB).exists()
    assert PDB not in manifest(site_repo)["files"]
    assert "PodDisruptionBudget/openstack/keystone-api" not in manifest(site_repo)["objects"]
    assert (site_dir / "NOTES.md").read_text() == "keep me\n"


def test_stale_manifest_entry_is_removed(small_site_repo: Path, kkc) -> None:
    build_k(kkc, small_site_repo)
    site_dir = small_site_repo / "deploy" / "site-k"
    doc = manifest(small_site_repo, "site-k")
    doc["files"]["old/gone.yaml"] = "0" * 64
    write(site_dir, ".kkc-files", json.dumps(doc, indent=2, sort_keys=True) + "\n")
    write(site_dir, "old/gone.yaml", "kind: Gone\n")
    write(site_dir, "old/mine.txt", "not kkc's\n")
    result = build_k(kkc, small_site_repo)
    assert result.stdout == (
        "site-k: wrote deploy/site-k/ (files: 0 added, 1 changed, 1 removed; "
        "objects: 0 added, 0 changed, 0 removed)\n"
    )
    assert not (site_dir / "old" / "gone.yaml").exists()
    assert (site_dir / "old" / "mine.txt").read_text() == "not kkc's\n"
    assert "old/gone.yaml" not in manifest(small_site_repo, "site-k")["files"]


def test_recovers_swap_interrupted_after_first_rename(small_site_repo: Path, kkc) -> None:
    """deploy/site-k was moved aside and the new tree never moved in: restore, then build."""
    build_k(kkc, small_site_repo)
    deploy = small_site_repo / "deploy"
    write(deploy / "site-k", "NOTES.md", "keep me\n")
    expected = snapshot(deploy / "site-k")
    (deploy / "site-k").rename(deploy / ".kkc-old-site-k.k3j9x_q1")
    write(deploy, ".kkc-tmp-site-k.abc123/kustomization.yaml", "half-written\n")
    result = build_k(kkc, small_site_repo)
    assert result.stdout == "site-k: deploy/site-k/ up to date\n"
    assert snapshot(deploy / "site-k") == expected
    assert kkc_leftovers(small_site_repo) == []


def test_recovers_stale_tree_and_updates_it(small_site_repo: Path, kkc) -> None:
    """The restored tree is older than the site: the build brings it up to date."""
    build_k(kkc, small_site_repo)
    deploy = small_site_repo / "deploy"
    write(deploy / "site-k", "NOTES.md", "keep me\n")
    (deploy / "site-k").rename(deploy / ".kkc-old-site-k.zzzzzzzz")
    set_keystone_replicas(small_site_repo, 2, "site-k")
    result = build_k(kkc, small_site_repo)
    assert result.stdout.startswith("site-k: wrote deploy/site-k/ (files: 0 added, 2 changed")
    assert kkc_leftovers(small_site_repo) == []
    assert (deploy / "site-k" / "NOTES.md").read_text() == "keep me\n"
    # the result is exactly what a clean build of the new definition gives
    fresh = make_small_repo(small_site_repo.parent / "fresh")
    set_keystone_replicas(fresh, 2, "site-k")
    build_k(kkc, fresh)
    got = snapshot(deploy / "site-k")
    assert got.pop("NOTES.md") == b"keep me\n"
    assert got == snapshot(fresh / "deploy" / "site-k")


def test_recovers_swap_interrupted_after_second_rename(small_site_repo: Path, kkc) -> None:
    """The new tree is in place and the old copy was not yet deleted: drop the old copy."""
    build_k(kkc, small_site_repo)
    deploy = small_site_repo / "deploy"
    expected = snapshot(deploy / "site-k")
    shutil.copytree(deploy / "site-k", deploy / ".kkc-old-site-k.q1w2e3r4")
    write(deploy, ".kkc-old-site-k.q1w2e3r4/kustomization.yaml", "old\n")
    result = build_k(kkc, small_site_repo)
    assert result.stdout == "site-k: deploy/site-k/ up to date\n"
    assert snapshot(deploy / "site-k") == expected
    assert kkc_leftovers(small_site_repo) == []


def _break_base(repo: Path, old: str, new: str) -> None:
    path = repo / "base" / "memcached" / "infra" / "memcached-statefulset.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    commit(repo, ["base/memcached/infra/memcached-statefulset.yaml"], "break memcached")


UNKNOWN_FIELD = ("  serviceName: memcached\n", "  serviceName: memcached\n  bogusField: 1\n")


def test_invalid_output_exit_3_writes_nothing(small_site_repo: Path, kkc) -> None:
    build_k(kkc, small_site_repo)  # an existing tree must stay exactly as it is
    set_keystone_replicas(small_site_repo, 2, "site-k")
    _break_base(small_site_repo, *UNKNOWN_FIELD)
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "build", "site-k", "--commit")
    assert result.exit_code == 3, result.output
    assert result.stdout == ""
    assert result.stderr == (
        "deploy/site-k/kustomization.yaml:1:1: KKC301 StatefulSet/memcached: spec: Additional "
        "properties are not allowed ('bogusField' was unexpected)\n"
    )
    assert snapshot(small_site_repo) == before
    assert kkc_leftovers(small_site_repo) == []


def test_kustomize_failure_exit_3_writes_nothing(small_site_repo: Path, kkc) -> None:
    _break_base(small_site_repo, "kind: StatefulSet\n", "kind: StatefulSetX\n")
    before = snapshot(small_site_repo)
    result = kkc(small_site_repo, "build", "site-k", "--commit")
    assert result.exit_code == 3, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("deploy/site-k/kustomization.yaml:1:1: KKC300 kustomize build failed: ")
    assert "StatefulSet.v1.apps/memcached" in line
    assert snapshot(small_site_repo) == before
    assert not (small_site_repo / "deploy").exists()


def test_failed_first_build_leaves_no_deploy_dir(small_site_repo: Path, kkc) -> None:
    _break_base(small_site_repo, *UNKNOWN_FIELD)
    result = kkc(small_site_repo, "build", "site-k")
    assert result.exit_code == 3
    assert not (small_site_repo / "deploy").exists()


@pytest.fixture
def no_kustomize(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    missing = tmp_path / "no-such-kustomize"
    monkeypatch.setenv("KKC_KUSTOMIZE", str(missing))
    kustomize.find_engine.cache_clear()
    yield missing
    kustomize.find_engine.cache_clear()


def test_kustomize_missing_exit_4(site_repo: Path, kkc, no_kustomize: Path) -> None:
    before = snapshot(site_repo)
    result = kkc(site_repo, "build", "site-a")
    assert result.exit_code == 4, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"no usable kustomize engine (executable `{no_kustomize}` not found (running: "
        f"{no_kustomize} version)); install kustomize v5 "
        "(https://kubectl.docs.kubernetes.io/installation/kustomize/) or kubectl (it embeds "
        "kustomize v5), or set KKC_KUSTOMIZE to the path of a kustomize binary\n"
    )
    assert snapshot(site_repo) == before
    assert not (site_repo / "deploy").exists()
