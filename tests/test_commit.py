"""`kkc build SITE --commit`: one commit of exactly the kkc-owned paths, with a message that
describes the change, and nothing else in the index or work tree disturbed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import git
import pytest

from helpers import commit, set_keystone_replicas, write
from kkc import __version__
from kkc.site import load_site

COMMITTED = re.compile(r"; committed ([0-9a-f]{12})\n\Z")


def build_commit(kkc, repo: Path, site: str = "site-k"):
    result = kkc(repo, "build", site, "--commit")
    assert result.exit_code == 0, result.output
    return result


def changed_paths(c: git.Commit) -> list[str]:
    [parent] = c.parents
    return sorted({d.a_path for d in parent.diff(c)} | {d.b_path for d in parent.diff(c)})


def trailers(site_digest: str, source: str) -> str:
    return f"\nSource-Commit: {source}\nKkc-Version: {__version__}\nSite-Digest: sha256:{site_digest}\n"


def test_commit_creates_exactly_one_commit(site_repo: Path, kkc) -> None:
    """On site-a: its message needs more than 50 objects (the keystone-only sites have 32)."""
    repo = git.Repo(site_repo)
    source = repo.head.commit.hexsha
    result = build_commit(kkc, site_repo, "site-a")
    head = repo.head.commit
    assert head.parents == (repo.commit(source),)
    m = COMMITTED.search(result.stdout)
    assert m and head.hexsha.startswith(m.group(1)), result.stdout

    doc = json.loads((site_repo / "deploy" / "site-a" / ".kkc-files").read_text())
    owned = sorted(f"deploy/site-a/{p}" for p in [*doc["files"], ".kkc-files"])
    assert changed_paths(head) == owned

    objects = sorted(doc["objects"])
    assert len(objects) > 50  # the message lists the first 50 and counts the rest
    digest = load_site(site_repo, "site-a").digest
    assert head.message == (
        "kkc: build site-a\n\n"
        f"Objects: {len(objects)} added, 0 changed, 0 removed\n"
        + "".join(f"  added: {o}\n" for o in objects[:50])
        + f"  added: ... and {len(objects) - 50} more\n"
        + f"Files: {len(owned)} added, 0 changed, 0 removed\n"
        + trailers(digest, source)
    )
    # nothing left over: the kkc paths are committed and staged as committed
    assert repo.index.diff("HEAD") == []
    assert repo.index.diff(None) == []
    assert repo.untracked_files == []


def test_second_commit_build_creates_no_commit(small_site_repo: Path, kkc) -> None:
    repo = git.Repo(small_site_repo)
    build_commit(kkc, small_site_repo)
    head = repo.head.commit.hexsha
    result = build_commit(kkc, small_site_repo)
    assert result.stdout == "site-k: deploy/site-k/ up to date; nothing to commit\n"
    assert repo.head.commit.hexsha == head


def _status(repo: git.Repo) -> tuple[list[str], list[str], list[str], str, str]:
    return (
        sorted(d.a_path for d in repo.index.diff("HEAD")),
        sorted(d.a_path for d in repo.index.diff(None)),
        sorted(repo.untracked_files),
        repo.git.diff("--cached"),
        repo.git.diff(),
    )


def test_unrelated_changes_stay_staged_or_unstaged(small_site_repo: Path, kkc) -> None:
    repo = git.Repo(small_site_repo)
    # staged: a comment in the site file (no change in meaning) and a new file
    site_file = small_site_repo / "sites" / "site-k" / "site.yaml"
    site_file.write_text(site_file.read_text().replace("# site-k:", "# site-k (FRA1):", 1))
    write(small_site_repo, "docs/runbook.md", "staged new file\n")
    repo.git.add("sites/site-k/site.yaml", "docs/runbook.md")
    # unstaged: a comment in the fleet defaults, and a staged file modified again
    fleet = small_site_repo / "sites" / "defaults.yaml"
    fleet.write_text(fleet.read_text() + "# unstaged comment\n")
    write(small_site_repo, "docs/runbook.md", "staged new file\nplus an unstaged line\n")
    write(small_site_repo, "scratch.txt", "untracked\n")
    before = _status(repo)
    assert before[:3] == (
        ["docs/runbook.md", "sites/site-k/site.yaml"],
        ["docs/runbook.md", "sites/defaults.yaml"],
        ["scratch.txt"],
    )

    build_commit(kkc, small_site_repo)

    assert _status(repo) == before
    assert all(p.startswith("deploy/site-k/") for p in changed_paths(repo.head.commit))
    tree = repo.head.commit.tree
    with pytest.raises(KeyError):
        tree / "docs/runbook.md"
    assert (tree / "sites/site-k/site.yaml").data_stream.read() == (
        repo.head.commit.parents[0].tree / "sites/site-k/site.yaml"
    ).data_stream.read()


def test_commit_catches_up_on_an_uncommitted_build(small_site_repo: Path, kkc) -> None:
    repo = git.Repo(small_site_repo)
    first = kkc(small_site_repo, "build", "site-k")
    assert first.exit_code == 0 and "committed" not in first.stdout
    result = build_commit(kkc, small_site_repo)
    assert result.stdout.startswith("site-k: deploy/site-k/ up to date; committed ")
    doc = json.loads((small_site_repo / "deploy" / "site-k" / ".kkc-files").read_text())
    assert changed_paths(repo.head.commit) == sorted(
        f"deploy/site-k/{p}" for p in [*doc["files"], ".kkc-files"]
    )
    assert (
        f"Objects: {len(doc['objects'])} added, 0 changed, 0 removed\n" in repo.head.commit.message
    )
    assert repo.index.diff(None) == [] and repo.untracked_files == []


def test_commit_message_lists_changed_objects(small_site_repo: Path, kkc) -> None:
    repo = git.Repo(small_site_repo)
    build_commit(kkc, small_site_repo)
    set_keystone_replicas(small_site_repo, site="site-k", replicas=2)
    source = commit(small_site_repo, ["sites/site-k/site.yaml"], "keystone: 2 replicas")
    result = build_commit(kkc, small_site_repo)
    assert result.stdout.startswith(
        "site-k: wrote deploy/site-k/ (files: 0 added, 2 changed, 0 removed; "
        "objects: 0 added, 1 changed, 0 removed); committed "
    )
    head = repo.head.commit
    assert head.message == (
        "kkc: build site-k\n\n"
        "Objects: 0 added, 1 changed, 0 removed\n"
        "  changed: Deployment/openstack-k/keystone-api\n"
        "Files: 0 added, 2 changed, 0 removed\n"
        + trailers(load_site(small_site_repo, "site-k").digest, source)
    )
    assert changed_paths(head) == [
        "deploy/site-k/.kkc-files",
        "deploy/site-k/stages/identity/kustomization.yaml",
    ]


def test_commit_records_removed_files(small_site_repo: Path, kkc) -> None:
    repo = git.Repo(small_site_repo)
    build_commit(kkc, small_site_repo)
    set_keystone_replicas(
        small_site_repo, site="site-k", replicas=1
    )  # no PodDisruptionBudget for a single replica
    commit(small_site_repo, ["sites/site-k/site.yaml"], "keystone: 1 replica")
    result = kkc(small_site_repo, "build", "site-k", "--commit")
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    head = repo.head.commit
    assert "  removed: PodDisruptionBudget/openstack-k/keystone-api\n" in head.message
    assert (
        "deploy/site-k/stages/identity/pdb/keystone-api-poddisruptionbudget.yaml"
        in changed_paths(head)
    )
    with pytest.raises(KeyError):
        head.tree / "deploy/site-k/stages/identity/pdb/keystone-api-poddisruptionbudget.yaml"
    assert repo.index.diff("HEAD") == [] and repo.index.diff(None) == []


def test_commit_only_touches_the_site_directory_even_with_a_bad_manifest(
    small_site_repo: Path, kkc
) -> None:
    repo = git.Repo(small_site_repo)
    build_commit(kkc, small_site_repo)
    manifest = small_site_repo / "deploy" / "site-k" / ".kkc-files"
    doc = json.loads(manifest.read_text())
    doc["files"]["../../sites/site-k/site.yaml"] = "0" * 64
    manifest.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    commit(small_site_repo, ["deploy/site-k/.kkc-files"], "hand-edited manifest")
    set_keystone_replicas(
        small_site_repo, site="site-k", replicas=2
    )  # uncommitted edit of the site file
    result = kkc(small_site_repo, "build", "site-k", "--commit")
    assert result.exit_code == 0, (result.exit_code, result.output, result.exception)
    assert all(p.startswith("deploy/site-k/") for p in changed_paths(repo.head.commit))
    assert "sites/site-k/site.yaml" in [d.a_path for d in repo.index.diff(None)]


def test_commit_outside_a_git_repository_exit_4(tmp_path: Path, kkc) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    for part in ("sites", "base", "overlays"):  # site-a uses overlays
        shutil.copytree(Path(__file__).resolve().parent.parent / part, root / part)
    with pytest.raises(git.InvalidGitRepositoryError):
        git.Repo(root, search_parent_directories=True)
    result = kkc(root, "build", "site-a", "--commit")
    assert result.exit_code == 4, result.output
    assert result.stdout == ""
    assert result.stderr == (
        f"{root} is not inside a git repository; run `git init` or drop --commit\n"
    )
    assert not (root / "deploy").exists()
