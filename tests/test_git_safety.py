"""Git safety: nothing kkc does to git leaves a repository that git rejects or that makes the
user's next ordinary git command wrong.

The random walk drives sequences of edits, kkc builds (`--commit`, `--all --commit`,
`--repo --commit --push`) and everyday git commands (add/commit, commit -a, stash/pop, a
branch and a rebase, a cherry-pick, `git checkout -- deploy/`) with the real git CLI in
temporary repositories, and checks after every step:

- `git fsck --full --strict` is clean, in the site repository and in the deploy repository;
- `git ls-tree -r HEAD` has no duplicate paths;
- the index's cache-tree agrees with the tree git computes from the index entries alone
  (a stale cache-tree is what made `git commit` after `kkc build --commit` drop sites/);
- every file the walk created outside deploy/ is in HEAD or in the work tree, and every file
  it committed is still in HEAD;
- after `git add -A && git commit` HEAD is exactly the work tree, and after a kkc commit
  HEAD differs from its parent only under deploy/<site>/;
- bare remotes with `receive.fsckObjects=true` accept every push.

`make test` runs 4 walks of 30 steps (120 in all; the suite's time budget). KKC_GIT_STEPS=N
runs N steps per walk and KKC_GIT_SEED=S starts the seeds at S, e.g. `KKC_GIT_STEPS=500 KKC_GIT_SEED=$RANDOM
.venv/bin/python -m pytest tests/test_git_safety.py`. A failure prints the seed and the
steps that led to it."""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from helpers import KEYSTONE_SITES, keystone_repo

STEPS = int(os.environ.get("KKC_GIT_STEPS", "30"))
SEED = int(os.environ.get("KKC_GIT_SEED", "0"))

SITES = KEYSTONE_SITES  # keystone only: the walk is about git, so its sites build in about a second


def git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed in {cwd}: {result.stderr.strip()}")
    return result


def bare_remote(path: Path) -> Path:
    git(path.parent, "init", "-q", "--bare", "-b", "main", path.name)
    git(path, "config", "receive.fsckObjects", "true")
    return path


def site_repository(dest: Path) -> Path:
    """base/, overlays/ and the fleet defaults of this project, the two small sites of
    helpers.KEYSTONE_SITES, committed with the git CLI, with a bare remote `origin` that
    checks every object."""
    keystone_repo(dest, extra={"README.md": "# sites\n"})
    git(dest, "remote", "add", "origin", str(bare_remote(dest.parent / "site-remote.git")))
    git(dest, "push", "-q", "-u", "origin", "main")
    return dest


def head_tree(repo: Path, rev: str = "HEAD") -> dict[str, str]:
    """{path: blob id} of ``rev``; duplicate paths fail the test."""
    out = git(repo, "ls-tree", "-r", "-z", "--full-tree", rev).stdout
    entries = [line.split("\t", 1) for line in out.split("\0") if line]
    paths = [path for _meta, path in entries]
    duplicates = [p for p, n in Counter(paths).items() if n > 1]
    assert not duplicates, f"{rev} of {repo} has duplicate entries: {duplicates[:5]}"
    return {path: meta.split()[2] for meta, path in entries}


def blob_id(path: Path) -> str:
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def work_tree(repo: Path) -> dict[str, str]:
    """{path: blob id} of the files git would commit with `git add -A`."""
    listed = git(repo, "ls-files", "-z", "--cached", "--others", "--exclude-standard").stdout
    return {
        p: blob_id(repo / p) for p in sorted(set(listed.split("\0")) - {""}) if (repo / p).exists()
    }


def assert_sound(repo: Path) -> None:
    """fsck clean, no duplicate tree entries, and a cache-tree that tells the truth."""
    fsck = git(repo, "fsck", "--full", "--strict", "--no-dangling", check=False)
    assert fsck.returncode == 0 and not fsck.stdout.strip() and "error" not in fsck.stderr, (
        f"git fsck --full --strict in {repo}:\n{fsck.stdout}{fsck.stderr}"
    )
    if git(repo, "rev-parse", "--verify", "-q", "HEAD", check=False).returncode == 0:
        head_tree(repo)
    # the tree `git write-tree` takes from the index (its cache-tree where valid) must be the
    # tree of the index entries alone, computed in a fresh index that has no cache-tree
    from_index = git(repo, "write-tree").stdout.strip()
    entries = git(repo, "ls-files", "-s", "-z").stdout
    scratch = repo.parent / f"{repo.name}.check-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(scratch)}
    try:
        subprocess.run(
            ["git", "update-index", "-z", "--index-info"],
            cwd=repo, input=entries, text=True, env=env, check=True, capture_output=True,
        )  # fmt: skip
        fresh = subprocess.run(
            ["git", "write-tree"], cwd=repo, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()
    finally:
        scratch.unlink(missing_ok=True)
    assert from_index == fresh, f"stale cache-tree in {repo}/.git/index"


class Walk:
    """One random walk: the repositories, the model of what must survive, and the log."""

    def __init__(self, tmp: Path, kkc, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed
        self.kkc = kkc
        self.repo = site_repository(tmp / "sites-repo")
        deploy_remote = bare_remote(tmp / "deploy-remote.git")
        git(tmp, "clone", "-q", str(deploy_remote), "deploy-repo")
        self.deploy = tmp / "deploy-repo"
        self.created: set[str] = set(work_tree(self.repo))  # outside deploy/, never deleted
        self.committed: set[str] = set(self.created)
        self.log: list[str] = []
        self.counter = 0
        self.deploy_touched = False  # only build_repo writes to the deploy repository
        self.pushed: str | None = None  # the site repository's HEAD last pushed to origin

    # -- edits of the sources -----------------------------------------------------------
    def _site(self) -> str:
        return self.rng.choice(sorted(SITES))

    def _write(self, rel: str, text: str) -> None:
        path = self.repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.created.add(rel)

    def edit_site(self) -> str:
        site = self._site()
        rel = f"sites/{site}/site.yaml"
        text = (self.repo / rel).read_text()
        if self.rng.random() < 0.3:
            text += f"# note {self.counter}\n"
        else:
            value = self.rng.choice([3600, 7200, 43200, 86400])
            text = re.sub(r"tokenExpiration: \d+", f"tokenExpiration: {value}", text)
        self._write(rel, text)
        return f"edit {rel}"

    def edit_config(self) -> str:
        site = self._site()
        debug = self.rng.choice(["true", "false"])
        self._write(f"sites/{site}/config/keystone.conf", f"[DEFAULT]\ndebug = {debug}\n")
        return f"edit sites/{site}/config/keystone.conf debug={debug}"

    def edit_patch(self) -> str:
        site = self._site()
        note = f"n{self.counter}"
        self._write(
            f"sites/{site}/patches/annotate.yaml",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: keystone-api\n"
            f"  annotations:\n    example.com/note: {note}\n",
        )
        return f"edit sites/{site}/patches/annotate.yaml note={note}"

    def edit_base(self) -> str:
        rel = "base/keystone/identity/kustomization.yaml"
        self._write(rel, (self.repo / rel).read_text() + f"# base note {self.counter}\n")
        return f"edit {rel}"

    # -- kkc ----------------------------------------------------------------------------
    def _kkc(self, *args: str) -> str:
        before = git(self.repo, "rev-parse", "HEAD").stdout.strip()
        result = self.kkc(self.repo, *args)
        assert result.exit_code == 0, f"kkc {' '.join(args)}: {result.output}"
        after = git(self.repo, "rev-parse", "HEAD").stdout.strip()
        if "--repo" in args:
            assert before == after, "kkc build --repo committed to the site repository"
        else:
            self._assert_only_deploy_changed(before, after)
        return f"kkc {' '.join(args)}"

    def _assert_only_deploy_changed(self, before: str, after: str) -> None:
        """Each kkc commit changes deploy/<site>/ of one site, and HEAD is its work tree."""
        commits = git(self.repo, "rev-list", "--reverse", f"{before}..{after}").stdout.split()
        for sha in commits:
            changed = git(self.repo, "diff-tree", "--no-commit-id", "--name-only", "-r", sha)
            sites = {p.split("/")[1] for p in changed.stdout.split() if p.startswith("deploy/")}
            outside = [p for p in changed.stdout.split() if not p.startswith("deploy/")]
            assert len(sites) == 1 and not outside, f"kkc commit {sha} changed {changed.stdout}"
            [site] = sites
            tree = {
                p: b
                for p, b in head_tree(self.repo, sha).items()
                if p.startswith(f"deploy/{site}/")
            }
            if sha == after:
                disk = {
                    p: b for p, b in work_tree(self.repo).items() if p.startswith(f"deploy/{site}/")
                }
                assert tree == disk, f"kkc commit {sha} is not deploy/{site}/ as on disk"

    def build_site(self) -> str:
        return self._kkc("build", self._site(), "--commit")

    def build_all(self) -> str:
        return self._kkc("build", "--all", "--commit")

    def build_repo(self) -> str:
        site = self._site()
        self.deploy_touched = True
        return self._kkc(
            "build", site, "--repo", str(self.deploy), "--branch", "main", "--commit", "--push"
        )

    # -- everyday git -------------------------------------------------------------------
    def _dirty(self) -> bool:
        return bool(git(self.repo, "status", "--porcelain").stdout.strip())

    def add_commit(self) -> str:
        git(self.repo, "add", "-A")
        if git(self.repo, "diff", "--cached", "--quiet", check=False).returncode == 0:
            return "git add -A (nothing to commit)"
        git(self.repo, "commit", "-q", "-m", f"change {self.counter}")
        assert head_tree(self.repo) == work_tree(self.repo), "HEAD is not the work tree"
        self.committed |= self.created
        return "git add -A && git commit"

    def commit_all(self) -> str:
        if git(self.repo, "diff", "--quiet", check=False).returncode == 0:
            return "git commit -a (nothing to commit)"
        git(self.repo, "commit", "-q", "-a", "-m", f"change {self.counter}")
        head, disk = head_tree(self.repo), work_tree(self.repo)
        tracked = git(self.repo, "ls-files", "-z").stdout.split("\0")
        expected = {p: disk[p] for p in tracked if p in disk}
        assert head == expected, "git commit -a did not commit the tracked files as on disk"
        self.committed |= set(head) & self.created
        return "git commit -a"

    def stash_pop(self) -> str:
        if git(self.repo, "diff", "HEAD", "--quiet", check=False).returncode == 0:
            return "git stash (nothing to stash)"
        before = work_tree(self.repo)
        git(self.repo, "stash", "-q")
        assert_sound(self.repo)
        git(self.repo, "stash", "pop", "-q")
        assert work_tree(self.repo) == before, "git stash pop did not restore the work tree"
        return "git stash && git stash pop"

    def branch_rebase(self) -> str:
        if git(self.repo, "rev-parse", "-q", "--verify", "HEAD~1", check=False).returncode:
            return "rebase (no parent)"
        if self._dirty():
            self.add_commit()
        note = f"notes/side-{self.counter}.txt"
        git(self.repo, "checkout", "-q", "-B", "side", "HEAD~1")
        self._write(note, f"side {self.counter}\n")
        git(self.repo, "add", note)
        git(self.repo, "commit", "-q", "-m", f"side {self.counter}")
        git(self.repo, "checkout", "-q", "main")
        git(self.repo, "rebase", "-q", "side")
        git(self.repo, "branch", "-q", "-D", "side")
        self.committed.add(note)
        return f"branch side at HEAD~1, commit {note}, rebase main onto it"

    def cherry_pick(self) -> str:
        if self._dirty():
            self.add_commit()
        note = f"notes/picked-{self.counter}.txt"
        git(self.repo, "checkout", "-q", "-b", "side")
        self._write(note, f"picked {self.counter}\n")
        git(self.repo, "add", note)
        git(self.repo, "commit", "-q", "-m", f"picked {self.counter}")
        git(self.repo, "checkout", "-q", "main")
        git(self.repo, "cherry-pick", "side")
        git(self.repo, "branch", "-q", "-D", "side")
        self.committed.add(note)
        return f"commit {note} on a branch, cherry-pick it onto main"

    def checkout_deploy(self) -> str:
        if not git(self.repo, "ls-files", "deploy").stdout.strip():
            return "git checkout -- deploy/ (nothing tracked)"
        git(self.repo, "checkout", "--", "deploy/")
        return "git checkout -- deploy/"

    OPERATIONS = [
        ("edit_site", 3),
        ("edit_config", 1),
        ("edit_patch", 1),
        ("edit_base", 1),
        ("build_site", 3),
        ("build_all", 1),
        ("build_repo", 1),
        ("add_commit", 2),
        ("commit_all", 2),
        ("stash_pop", 1),
        ("branch_rebase", 1),
        ("cherry_pick", 1),
        ("checkout_deploy", 1),
    ]

    def step(self) -> None:
        names = [n for n, _w in self.OPERATIONS]
        weights = [w for _n, w in self.OPERATIONS]
        self.counter += 1
        self.log.append(getattr(self, self.rng.choices(names, weights)[0])())
        self.check()

    def check(self) -> None:
        """After every step. The deploy repository is checked after the steps that write to
        it (build_repo; nothing else does), and HEAD is pushed when it moved."""
        assert_sound(self.repo)
        if self.deploy_touched:
            assert_sound(self.deploy)
            self.deploy_touched = False
        head = set(head_tree(self.repo))
        disk = set(work_tree(self.repo))
        assert self.committed <= head, f"lost from HEAD: {sorted(self.committed - head)[:5]}"
        missing = self.created - head - disk
        assert not missing, f"lost: {sorted(missing)[:5]}"
        # the user's push to a remote that checks every object
        sha = git(self.repo, "rev-parse", "HEAD").stdout.strip()
        if sha != self.pushed:
            git(self.repo, "push", "-q", "--force", "origin", "HEAD:refs/heads/main")
            self.pushed = sha


@pytest.mark.slow
@pytest.mark.parametrize("walk", range(4), ids=lambda w: f"walk{w}")
def test_random_walk_keeps_git_sound(tmp_path: Path, kkc, walk: int) -> None:
    seed = SEED + walk
    state = Walk(tmp_path, kkc, seed)
    try:
        for _ in range(STEPS):
            state.step()
    except AssertionError as exc:
        steps = "\n".join(f"  {i + 1}. {s}" for i, s in enumerate(state.log))
        raise AssertionError(
            f"seed {seed}, after step {state.counter}:\n{steps}\n{exc}\n"
            f"rerun: KKC_GIT_SEED={seed} KKC_GIT_STEPS={STEPS} pytest {__file__} -k 'walk0'"
        ) from None
    assert state.counter == STEPS


# -- deterministic cases -------------------------------------------------------------------


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    return site_repository(tmp_path / "sites-repo")


def build(kkc, repo: Path, *args: str):
    result = kkc(repo, "build", *args)
    assert result.exit_code == 0, result.output
    return result


def trailer(repo: Path, name: str, rev: str = "HEAD") -> str | None:
    body = git(repo, "log", "-1", "--format=%B", rev).stdout
    found = re.search(rf"^{name}: (.*)$", body, re.M)
    return found.group(1) if found else None


def test_commit_then_ordinary_commit_keeps_the_tree(small_repo: Path, kkc) -> None:
    """The sequence of issue 10: a kkc commit, a user commit, a kkc commit, a user commit."""
    repo, site_yaml = small_repo, small_repo / "sites/site-k/site.yaml"
    build(kkc, repo, "site-k", "--commit")
    site_yaml.write_text(site_yaml.read_text() + "# lab\n")
    git(repo, "commit", "-q", "-am", "site-k: comment")
    # the overlay, but the kolla MariaDB and RabbitMQ kept (the operators' would be a
    # destructive change)
    kolla = "  mariadb: {provider: kolla}\n  rabbitmq: {provider: kolla}\n"
    text = site_yaml.read_text().replace("services:\n", "services:\n" + kolla)
    site_yaml.write_text(text + "overlays: [ha]\n")
    build(kkc, repo, "site-k", "--commit")
    git(repo, "add", "sites/site-k")
    git(repo, "commit", "-q", "-m", "site-k: ha")
    assert_sound(repo)
    assert git(repo, "ls-tree", "--name-only", "HEAD").stdout.split() == [
        "README.md", "base", "deploy", "overlays", "sites",
    ]  # fmt: skip
    assert git(repo, "show", "--name-only", "--format=", "HEAD").stdout.split() == [
        "sites/site-k/site.yaml"
    ]
    assert head_tree(repo) == work_tree(repo)
    git(repo, "push", "-q", "origin", "main")  # receive.fsckObjects accepts it


def test_an_untracked_site_is_recorded_as_dirty(small_repo: Path, kkc) -> None:
    """Day one: sites/site-c/ exists only in the work tree. The Source-Commit trailer does not
    pretend that HEAD holds it: `<HEAD>-dirty`, with the digest of the sources read."""
    repo = small_repo
    head = git(repo, "rev-parse", "HEAD").stdout.strip()
    shutil.copytree(repo / "sites/site-k", repo / "sites/site-c")
    site_yaml = repo / "sites/site-c/site.yaml"
    site_yaml.write_text(
        site_yaml.read_text().replace("site-k", "site-c").replace("openstack-k", "openstack-c")
    )
    build(kkc, repo, "site-c", "--commit")
    assert trailer(repo, "Source-Commit") == f"{head}-dirty"
    digest = trailer(repo, "Source-Digest")
    assert digest and re.fullmatch(r"sha256:[0-9a-f]{64}", digest)
    assert git(repo, "status", "--porcelain", "sites").stdout == "?? sites/site-c/\n"

    site_yaml.write_text(site_yaml.read_text().replace("3600", "7200"))  # other sources
    head = git(repo, "rev-parse", "HEAD").stdout.strip()  # the first output commit
    build(kkc, repo, "site-c", "--commit")
    assert trailer(repo, "Source-Commit") == f"{head}-dirty"
    assert trailer(repo, "Source-Digest") not in (None, digest)
    assert_sound(repo)


def test_a_clean_build_names_the_commit_that_holds_its_sources(small_repo: Path, kkc) -> None:
    """Other sites' uncommitted files do not make a site's own sources dirty."""
    repo = small_repo
    (repo / "sites/site-l/site.yaml").write_text(SITES["site-l"] + "# unrelated edit\n")
    build(kkc, repo, "site-k", "--commit")
    assert trailer(repo, "Source-Commit") == git(repo, "rev-parse", "HEAD~1").stdout.strip()
    assert trailer(repo, "Source-Digest") is None


def test_recommended_routine_two_commits(small_repo: Path, kkc) -> None:
    """Commit the source change, then `kkc build SITE --commit`: the output commit's
    Source-Commit is the source commit, which holds exactly the sources it was built from."""
    repo, site_yaml = small_repo, small_repo / "sites/site-k/site.yaml"
    build(kkc, repo, "site-k", "--commit")
    site_yaml.write_text(site_yaml.read_text().replace("3600", "43200"))
    git(repo, "commit", "-q", "-am", "site-k: 12 h tokens")
    source = git(repo, "rev-parse", "HEAD").stdout.strip()
    build(kkc, repo, "site-k", "--commit")
    assert trailer(repo, "Source-Commit") == source
    assert trailer(repo, "Source-Digest") is None
    assert git(repo, "show", f"{source}:sites/site-k/site.yaml").stdout == site_yaml.read_text()
    assert git(repo, "status", "--porcelain").stdout == ""
    assert kkc(repo, "check", "site-k").exit_code == 0
    assert_sound(repo)


def test_recommended_routine_one_commit(small_repo: Path, kkc) -> None:
    """`kkc build SITE`, then one ordinary commit of the source and the output together."""
    repo, site_yaml = small_repo, small_repo / "sites/site-k/site.yaml"
    site_yaml.write_text(site_yaml.read_text().replace("3600", "43200"))
    build(kkc, repo, "site-k")
    assert kkc(repo, "check", "site-k").exit_code == 0
    git(repo, "add", "sites/site-k", "deploy/site-k")
    git(repo, "commit", "-q", "-m", "site-k: 12 h tokens")
    assert git(repo, "status", "--porcelain").stdout == ""
    assert head_tree(repo) == work_tree(repo)
    result = kkc(repo, "build", "site-k", "--commit")
    assert result.exit_code == 0 and "nothing to commit" in result.stdout
    assert kkc(repo, "check", "site-k").exit_code == 0
    assert_sound(repo)


def test_build_and_check_agree_after_checkout_of_deploy(small_repo: Path, kkc) -> None:
    """A build without --commit adds a file; the source change is undone and `git checkout --
    deploy/` restores the older manifest, leaving the newer file behind. `kkc check` reports it
    (KKC329); `kkc build` reports the same line instead of calling the tree up to date."""
    repo = small_repo
    build(kkc, repo, "site-k", "--commit")
    patch = repo / "sites/site-k/patches/annotate.yaml"
    patch.parent.mkdir()
    patch.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: keystone-api\n"
        "  annotations:\n    example.com/note: n1\n"
    )
    build(kkc, repo, "site-k")
    patch.unlink()
    git(repo, "checkout", "--", "deploy/")
    left = git(repo, "ls-files", "--others", "deploy").stdout.split()
    assert left, "the build without --commit added no file"

    checked = kkc(repo, "check", "site-k")
    assert checked.exit_code == 1
    expected = [
        f"{path}:1:1: KKC329 not generated by kkc (not in .kkc-files); remove it, or use "
        "sites/site-k/patches/"
        for path in left
    ]
    assert [line for line in checked.stdout.splitlines() if "KKC329" in line] == expected
    built = build(kkc, repo, "site-k")
    assert [line for line in built.stderr.splitlines() if "KKC329" in line] == [
        f"warning: {line}" for line in expected
    ]
    assert built.stdout == "site-k: deploy/site-k/ up to date\n"
    for path in left:
        (repo / path).unlink()
    assert kkc(repo, "check", "site-k").exit_code == 0
    built = build(kkc, repo, "site-k")
    assert "KKC329" not in built.stderr


def test_no_commit_in_the_middle_of_a_merge(small_repo: Path, kkc) -> None:
    """A commit during a merge would record one parent and drop the merge: refused, exit 4,
    before anything is written, and the merge can still be finished."""
    repo, notes = small_repo, small_repo / "README.md"
    git(repo, "checkout", "-q", "-b", "other")
    notes.write_text("# other\n")
    git(repo, "commit", "-q", "-am", "other")
    git(repo, "checkout", "-q", "main")
    notes.write_text("# main\n")
    git(repo, "commit", "-q", "-am", "main")
    assert git(repo, "merge", "other", check=False).returncode == 1  # conflict in README.md
    head = git(repo, "rev-parse", "HEAD").stdout
    result = kkc(repo, "build", "site-k", "--commit")
    assert result.exit_code == 4
    assert result.stderr == (
        f"{repo} is in the middle of a merge (MERGE_HEAD in .git/); finish or abort it, "
        "then run kkc again with --commit\n"
    )
    assert not (repo / "deploy").exists()
    assert git(repo, "rev-parse", "HEAD").stdout == head
    notes.write_text("# merged\n")
    git(repo, "commit", "-q", "-am", "merge other")
    assert len(git(repo, "log", "-1", "--format=%P").stdout.split()) == 2
    assert_sound(repo)
