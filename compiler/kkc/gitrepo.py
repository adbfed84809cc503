"""All git access of kkc, through GitPython, in one place."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import git
from git import Blob, IndexFile, Repo
from git.objects.commit import Commit

from .errors import EnvironmentProblem, UsageError


def open_repo(path: Path, hint: str = "run `git init` or drop --commit") -> Repo:
    try:
        return Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise EnvironmentProblem(f"{path} is not inside a git repository; {hint}") from None


def head_sha(path: Path) -> str | None:
    """The commit checked out at ``path``'s repository, or None (no repository or no commit)."""
    try:
        repo = Repo(path, search_parent_directories=True)
        return repo.head.commit.hexsha if repo.head.is_valid() else None
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None


def _head_entry(repo: Repo, rel: str) -> object | None:
    if not repo.head.is_valid():
        return None
    try:
        return repo.head.commit.tree / rel
    except KeyError:
        return None


def head_bytes(repo: Repo, path: Path) -> bytes | None:
    """The content of ``path`` at HEAD, or None when HEAD does not have it."""
    entry = _head_entry(repo, _rel(repo, path))
    return entry.data_stream.read() if entry is not None else None  # type: ignore[attr-defined]


def _rel(repo: Repo, path: Path) -> str:
    top = Path(repo.working_tree_dir or ".").resolve()
    return path.resolve().relative_to(top).as_posix()


def differs_from_head(repo: Repo, path: Path) -> bool:
    """True when the file on disk (or its absence) differs from HEAD."""
    entry = _head_entry(repo, _rel(repo, path))
    if not path.is_file():
        return entry is not None
    if entry is None:
        return True
    data = path.read_bytes()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id
    return blob != entry.hexsha  # type: ignore[attr-defined]


def commit_paths(repo: Repo, paths: list[Path], removed: list[Path], message: str) -> str:
    """Commit exactly ``paths`` (as they are on disk) and the removal of ``removed``.

    The commit is built from HEAD's tree in a private index, so whatever else is staged or
    modified in the work tree stays as it was. The real index is then updated for these
    paths only, so `git status` does not show them as changed. Returns the new commit id.
    """
    rel = [_rel(repo, p) for p in paths]
    gone = [_rel(repo, p) for p in removed]
    try:
        with tempfile.TemporaryDirectory(prefix="kkc-index-") as tmp:
            index_file = os.path.join(tmp, "index")
            parents: list[Commit] = []
            if repo.head.is_valid():
                parents = [repo.head.commit]
                index = IndexFile.from_tree(repo, repo.head.commit)
                index._file_path = index_file  # keep the private index out of .git/index
            else:
                index = IndexFile(repo, file_path=index_file)
            if rel:
                index.add(rel)
            for path in gone:  # IndexFile.remove() only works on the default index
                index.entries.pop((path, 0), None)
            tree = index.write_tree()
            commit = Commit.create_from_tree(repo, tree, message, parent_commits=parents, head=True)
            real = repo.index
            if rel:
                real.add(rel)
            if gone:
                known = {path for (path, _stage) in real.entries}
                drop = [p for p in gone if p in known]
                if drop:
                    real.remove(drop)
            real.write()
            return commit.hexsha
    except git.GitError as exc:
        raise EnvironmentProblem(f"git commit failed: {exc}") from None


def resolve(repo: Repo, rev: str) -> Commit | None:
    """The commit ``rev`` names; None for HEAD of a repository without commits."""
    if rev == "HEAD" and not repo.head.is_valid():
        return None
    try:
        return repo.commit(rev)
    except (git.BadName, git.BadObject, ValueError):
        raise UsageError(f"{rev}: no such git revision") from None


def materialise(repo: Repo, commit: Commit | None, paths: list[Path], dest: Path) -> list[Path]:
    """Write the files under ``paths`` (directories of the work tree) as they are in
    ``commit`` into ``dest``, at the same paths relative to the repository top. Returns the
    paths that exist in ``commit``; a path missing there is skipped."""
    found = []
    for path in paths:
        rel = _rel(repo, path)
        try:
            entry = commit.tree / rel if commit is not None else None
        except KeyError:
            entry = None
        if entry is None:
            continue
        found.append(path)
        items = entry.traverse() if entry.type == "tree" else [entry]  # type: ignore[attr-defined]
        for item in items:
            if item.type != "blob":
                continue
            target = dest / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            data = item.data_stream.read()
            if item.mode == Blob.link_mode:
                target.symlink_to(data.decode())
            else:
                target.write_bytes(data)
    return found


def subdirectories(repo: Repo, commit: Commit | None, path: Path) -> list[str]:
    """Names of the directories directly under ``path`` in ``commit``."""
    try:
        entry = commit.tree / _rel(repo, path) if commit is not None else None
    except KeyError:
        return []
    return sorted(t.name for t in entry.trees) if entry is not None and entry.type == "tree" else []


def git_version() -> str:
    try:
        return ".".join(map(str, git.Git().version_info))
    except git.GitError as exc:
        raise EnvironmentProblem(f"git is not usable: {exc}") from None
