"""All git access of kkc in one place: GitPython reads, the git CLI writes."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import git
from git import Blob, Repo
from git.objects.commit import Commit

from . import locks
from .errors import EnvironmentProblem, command_line_error


def open_repo(path: Path, hint: str = "run `git init` or drop --commit") -> Repo:
    try:
        return Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise EnvironmentProblem(f"{path} is not inside a git repository; {hint}") from None


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
    return _blob_id(path) != entry.hexsha  # type: ignore[attr-defined]


_IN_PROGRESS = {
    "MERGE_HEAD": "a merge",
    "CHERRY_PICK_HEAD": "a cherry-pick",
    "REVERT_HEAD": "a revert",
    "rebase-merge": "a rebase",
    "rebase-apply": "a rebase or git am",
    "BISECT_LOG": "a bisect",
}


def ready_to_commit(repo: Repo) -> None:
    """Refuse (exit 4, before anything is written) to commit into a repository in the middle
    of a merge, cherry-pick, revert, rebase or bisect: a commit there would drop the
    operation's state (a merge commit would get one parent) or land on the wrong branch."""
    git_dir = Path(repo.git_dir)
    for name, what in _IN_PROGRESS.items():
        if (git_dir / name).exists():
            raise EnvironmentProblem(
                f"{repo.working_tree_dir} is in the middle of {what} ({name} in "
                f"{git_dir.name}/); finish or abort it, then run kkc again with --commit"
            )


def commit_paths(repo: Repo, paths: list[Path], removed: list[Path], message: str) -> str | None:
    """Commit exactly ``paths`` (as they are on disk) and the removal of ``removed``.

    Everything goes through the git command line, as `git commit -- PATHS` would do it, so the
    repository ends up exactly as git itself leaves it. GitPython's own index writer is not
    used: it keeps a stale cache-tree (TREE extension) in .git/index, and the user's next
    `git commit` builds its tree from that and writes duplicate entries or drops directories.

    1. The commit's tree is built in a private index (GIT_INDEX_FILE) read from HEAD, so
       whatever else is staged or modified in the work tree stays as it was.
    2. The real index is updated for these paths only (git invalidates the cache-tree of
       every directory it touches), so `git status` does not show them as changed.
    3. The branch moves last, with a compare-and-swap on its old value and a reflog entry.
       If anything before fails, HEAD is unchanged and the index at worst stages files that
       are already on disk. Returns the new commit id; None (no empty commit) when the tree
       is HEAD's.

    Concurrent kkc commits to one repository take turns (a lock on its git directory), and
    HEAD is read under that lock: a second build of the same output finds it committed."""
    rel = [_rel(repo, p) for p in paths]
    gone = [_rel(repo, p) for p in removed]
    with locks.hold(Path(repo.git_dir), f"the git repository {repo.working_tree_dir}"):
        return _commit(repo, rel, gone, message)


def _commit(repo: Repo, rel: list[str], gone: list[str], message: str) -> str | None:
    parent = repo.head.commit.hexsha if repo.head.is_valid() else None
    try:
        with tempfile.TemporaryDirectory(prefix="kkc-index-") as tmp:
            private = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            if parent:
                repo.git.read_tree(parent, env=private)
            _update_index(repo, rel, gone, Path(tmp), private)
            tree = repo.git.write_tree(env=private)
            if parent and tree == repo.git.rev_parse(f"{parent}^{{tree}}"):
                return None  # git's filters (.gitattributes) made the files HEAD's again
            message_file = Path(tmp, "message")
            message_file.write_text(message, encoding="utf-8")
            commit = repo.git.commit_tree(
                tree, *(["-p", parent] if parent else []), "-F", str(message_file)
            )
            _update_index(repo, rel, gone, Path(tmp), {})
            subject = message.splitlines()[0] if message else ""
            reflog = f"commit{'' if parent else ' (initial)'}: {subject}"
            repo.git.update_ref("-m", reflog, "HEAD", commit, parent or "")
            return commit
    except git.GitError as exc:
        raise EnvironmentProblem(f"git commit failed: {_oneline(exc)}") from None


def _update_index(repo: Repo, rel: list[str], gone: list[str], tmp: Path, env: dict) -> None:
    """`git update-index` of ``rel`` (from the work tree) and the removal of ``gone``, in the
    index ``env`` names (the repository's own without GIT_INDEX_FILE). Paths go through
    standard input, NUL-separated, so no argument list grows with the number of files."""
    for flags, names in ((["--add", "--remove"], rel), (["--force-remove"], gone)):
        if not names:
            continue
        listing = tmp / "paths"
        listing.write_bytes(b"".join(n.encode() + b"\0" for n in names))
        with listing.open("rb") as stdin:
            repo.git.update_index(*flags, "-z", "--stdin", istream=stdin, env=env)


def resolve(repo: Repo, rev: str, option: str = "--against", where: str = "") -> Commit | None:
    """The commit ``rev`` (given as ``option``) names; None for HEAD of a repository without
    commits. ``where`` names the repository in the message, if it is not the site repository."""
    if rev == "HEAD" and not repo.head.is_valid():
        return None
    try:
        return repo.commit(rev)
    except (git.BadName, git.BadObject, ValueError):
        raise command_line_error("KKC170", f"{option} {rev}: no such git revision{where}") from None


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


def branch_ref(repo: Repo, name: str) -> str | None:
    """The ref of branch ``name`` that has a commit: the local branch, else origin/<name>;
    None when neither exists (an unborn or new branch)."""
    for ref in (f"refs/heads/{name}", f"refs/remotes/origin/{name}"):
        try:
            repo.commit(ref)
            return ref
        except (git.BadName, git.BadObject, ValueError):
            continue
    return None


def branch_head(repo: Repo, name: str, where: str = "") -> Commit:
    """The head of branch ``name``: the local branch, else origin/<name> (as in a fresh
    clone). ``where`` names the repository in the message."""
    for ref in (f"refs/heads/{name}", f"refs/remotes/origin/{name}"):
        try:
            return repo.commit(ref)
        except (git.BadName, git.BadObject, ValueError):
            continue
    raise command_line_error("KKC170", f"--branch {name}: no such branch{where}")


def file_at(commit: Commit, rel: str) -> bytes | None:
    """The bytes of the file ``rel`` (relative to the repository top) in ``commit``, or
    None when it is not a file there."""
    try:
        entry = commit.tree / rel
    except KeyError:
        return None
    return entry.data_stream.read() if entry.type == "blob" else None


def files_at(repo: Repo, commit: Commit | None, rel: str) -> dict[str, bytes]:
    """The files under ``rel`` (a path relative to the repository top) in ``commit``, as
    {path relative to ``rel``: bytes}; a symbolic link as its target. Empty when missing."""
    try:
        entry = commit.tree / rel if commit is not None else None
    except KeyError:
        return {}
    if entry is None or entry.type != "tree":
        return {}
    return {
        item.path[len(rel) + 1 :]: item.data_stream.read()
        for item in entry.traverse()  # type: ignore[union-attr]
        if item.type == "blob"  # type: ignore[union-attr]
    }


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


def open_work_tree(path: Path) -> Repo:
    """The git repository whose work tree is exactly ``path`` (a deploy repository)."""
    try:
        repo = Repo(path)
    except git.NoSuchPathError:
        raise EnvironmentProblem(f"deploy repository {path} does not exist") from None
    except git.InvalidGitRepositoryError:
        raise EnvironmentProblem(
            f"deploy repository {path} is not a git repository; "
            f"run `git init` or `git clone` there first"
        ) from None
    if repo.bare or repo.working_tree_dir is None:
        raise EnvironmentProblem(
            f"deploy repository {path} is a bare repository; pass a clone with a work tree"
        )
    if Path(repo.working_tree_dir).resolve() != path.resolve():
        raise EnvironmentProblem(
            f"deploy repository {path} is inside the git work tree {repo.working_tree_dir}; "
            f"pass the top of the work tree"
        )
    return repo


def work_tree_top(path: Path) -> Path | None:
    """The top of the git work tree that contains ``path``, or None."""
    try:
        top = Repo(path, search_parent_directories=True).working_tree_dir
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    return Path(top).resolve() if top else None


def source_info(path: Path, prefixes: list[str]) -> tuple[str | None, str | None, str | None]:
    """(origin URL without credentials, HEAD commit, digest of the sources) of the repository
    at ``path``. ``prefixes`` are paths relative to ``path``. The digest is None when nothing
    under ``prefixes`` is modified, staged or untracked: HEAD then holds exactly these
    sources. Otherwise it is the sha256 of the files there as they are on disk, so that a
    build from uncommitted sources says so and names them. (None, None, None) when ``path``
    is in no git repository."""
    try:
        repo = Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None, None, None
    sha = repo.head.commit.hexsha if repo.head.is_valid() else None
    base = _rel(repo, path)
    prefixes = [p if base == "." else f"{base}/{p}" for p in prefixes]
    # ls-files, not `git status`: status refreshes (rewrites) the index
    untracked = repo.git.ls_files("--others", "--exclude-standard", "--", *prefixes)
    if not untracked and not dirty_paths(repo, prefixes) and sha is not None:
        return remote_url(repo), sha, None
    listed = repo.git.ls_files("--cached", "--others", "--exclude-standard", "-z", "--", *prefixes)
    top = Path(repo.working_tree_dir or ".")
    digest = hashlib.sha256()
    for name in sorted(set(filter(None, listed.split("\0")))):
        digest.update(name.encode() + b"\0" + (_blob_id(top / name) or "deleted").encode() + b"\n")
    return remote_url(repo), sha, digest.hexdigest()


def remote_url(repo: Repo, name: str = "origin") -> str | None:
    """The URL of remote ``name``, without any user name or password embedded in it."""
    try:
        url = repo.remote(name).url
    except ValueError:
        return None
    return _without_credentials(url)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return url


def push_remote_urls(repo: Repo) -> list[str]:
    """Every URL (fetch and push, credentials stripped) of origin and of the remote the
    current branch is pushed to: the repositories a GitOps controller could read it from."""
    names = {"origin"}
    with contextlib.suppress(TypeError):  # a detached HEAD has no tracking branch
        tracking = repo.active_branch.tracking_branch()
        if tracking is not None:
            names.add(tracking.remote_name)
    urls: list[str] = []
    for name in sorted(n for n in names if n in [r.name for r in repo.remotes]):
        for extra in ([], ["--push"]):
            try:
                out = repo.git.remote("get-url", "--all", *extra, name)
            except git.GitCommandError:
                continue
            urls += [_without_credentials(u) for u in out.splitlines() if u.strip()]
    return list(dict.fromkeys(urls))


_SCP_LIKE = re.compile(r"^(?:[^@/]+@)?([^:/]+):(.*)$")  # git@host:path


def same_repository(a: str, b: str) -> bool:
    """Whether two git URLs name one repository: the same host and path, whatever the
    scheme, user or port, with or without a trailing .git or /."""
    return _repository_key(a) == _repository_key(b)


def _repository_key(url: str) -> str:
    parts = urlsplit(url)
    scp = _SCP_LIKE.match(url)
    if "://" in url:
        host, path = ("" if parts.scheme == "file" else parts.hostname or ""), parts.path
    elif scp:
        host, path = scp.group(1), scp.group(2)
    else:  # a local path
        host, path = "", os.path.normpath(url)
    path = "/" + path.strip("/")
    return host.lower() + (path[: -len(".git")] if path.endswith(".git") else path)


def current_branch(repo: Repo) -> str | None:
    """The checked-out branch (also an unborn one), or None on a detached HEAD."""
    try:
        return repo.active_branch.name
    except TypeError:
        return None


def _blob_id(path: Path) -> str | None:
    if not path.is_file():
        return None
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git's blob id


def dirty_paths(repo: Repo, prefixes: list[str]) -> list[str]:
    """Tracked paths under ``prefixes`` whose index entry or work-tree file differs from HEAD.

    Compared by blob id from GitPython's objects: `git diff`/`git status` would refresh and
    rewrite the index, and kkc must not change a byte of a repository it refuses to touch."""

    def under(path: str) -> bool:
        return any(path == x or path.startswith(x + "/") for x in prefixes)

    head: dict[str, str] = {}
    if repo.head.is_valid():
        tree = repo.head.commit.tree
        for prefix in prefixes:
            try:
                entry = tree / prefix
            except KeyError:
                continue
            items = entry.traverse() if entry.type == "tree" else [entry]
            head.update({i.path: i.hexsha for i in items if i.type == "blob"})
    index = {path: e.hexsha for (path, _stage), e in repo.index.entries.items() if under(path)}
    top = Path(repo.working_tree_dir or ".")
    return sorted(
        path
        for path in set(head) | set(index)
        if head.get(path) != index.get(path) or _blob_id(top / path) != index.get(path)
    )


def changed_since(repo: Repo, commit: Commit | None, prefixes: list[str]) -> list[str]:
    """The files under ``prefixes`` (paths relative to the top of the work tree) that
    differ between ``commit`` (None: a repository without commits) and the work tree:
    changed, added (tracked or untracked, not ignored) or removed; sorted, relative to the
    top. Compared by blob id, as :func:`dirty_paths`: neither the index nor anything else
    of the repository is written."""
    then: dict[str, str] = {}
    for prefix in prefixes:
        try:
            entry = commit.tree / prefix if commit is not None else None
        except KeyError:
            continue
        if entry is not None:
            items = entry.traverse() if entry.type == "tree" else [entry]  # type: ignore[union-attr]
            then.update({i.path: i.hexsha for i in items if i.type == "blob"})  # type: ignore[union-attr]
    listed = repo.git.ls_files("--cached", "--others", "--exclude-standard", "-z", "--", *prefixes)
    top = Path(repo.working_tree_dir or ".")
    now = {}
    for name in set(filter(None, listed.split("\0"))):
        blob = _work_tree_blob(top / name)
        if blob is not None:  # else deleted from the work tree, still in the index
            now[name] = blob
    return sorted(p for p in set(then) | set(now) if then.get(p) != now.get(p))


def _work_tree_blob(path: Path) -> str | None:
    """git's blob id of a work-tree file (a symbolic link: of its target's name)."""
    if path.is_symlink():
        data = os.readlink(path).encode()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return _blob_id(path)


def relative_to_top(repo: Repo, path: Path) -> str:
    """``path`` relative to the top of the repository's work tree ("." for the top)."""
    return _rel(repo, path)


def switch_branch(repo: Repo, name: str) -> None:
    """Check out ``name``: the local branch, else a new one tracking origin/<name>, else a new
    one at HEAD (or an unborn one in a repository without commits). With the git CLI, like
    every write kkc makes to a repository."""
    try:
        if name in repo.heads:
            repo.git.checkout("-q", name)
        elif not repo.head.is_valid():
            repo.git.symbolic_ref("HEAD", f"refs/heads/{name}")
        else:
            remote = next((r for r in repo.remotes if r.name == "origin"), None)
            if remote is not None and name in remote.refs:
                repo.git.checkout("-q", "-b", name, "--track", f"origin/{name}")
            else:
                repo.git.checkout("-q", "-b", name)
    except git.GitError as exc:
        raise EnvironmentProblem(f"cannot check out branch {name}: {_oneline(exc)}") from None


def _oneline(exc: Exception) -> str:
    text = getattr(exc, "stderr", "") or str(exc)
    return " ".join(str(text).replace("stderr:", "").split())


def push(repo: Repo) -> str:
    """Push the current branch to its upstream (else to origin, setting the upstream).

    Returns "<branch> to <remote>/<branch>". A rejected push raises EnvironmentProblem; the
    local commits stay as they are."""
    branch = repo.active_branch
    tracking = branch.tracking_branch()
    remote_name = tracking.remote_name if tracking else "origin"
    remote_branch = tracking.remote_head if tracking else branch.name
    where = f"{branch.name} to {remote_name}/{remote_branch}"
    top = repo.working_tree_dir
    try:
        remote = repo.remote(remote_name)
    except ValueError:
        raise EnvironmentProblem(
            f"cannot push {top}: branch {branch.name} has no upstream and there is no remote "
            f"origin; add one (`git -C {top} remote add origin URL`); the commits are kept"
        ) from None
    try:
        with _quiet("git.remote"):  # it logs git's stderr; the error below says it in one line
            infos = remote.push(f"refs/heads/{branch.name}:refs/heads/{remote_branch}")
    except git.GitCommandError as exc:
        detail = _oneline(exc)
        if "non-fast-forward" in detail or "fetch first" in detail or "rejected" in detail:
            raise _rejected(top, where) from None
        raise EnvironmentProblem(f"git push of {where} failed: {detail}") from None
    for info in infos:
        if info.flags & (info.REJECTED | info.REMOTE_REJECTED | info.ERROR):
            if info.flags & info.REJECTED:
                raise _rejected(top, where)
            raise EnvironmentProblem(f"git push of {where} failed: {info.summary.strip()}")
    if tracking is None:
        repo.git.branch(f"--set-upstream-to={remote_name}/{remote_branch}", branch.name)
    return where


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Silence one GitPython logger for the duration (Python's last-resort handler would
    print its warnings to stderr)."""
    logger = logging.getLogger(name)
    before = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = before


def _rejected(top: str | None, where: str) -> EnvironmentProblem:
    return EnvironmentProblem(
        f"push of {where} rejected (non-fast-forward): the remote has commits this clone "
        f"does not; the local commits are kept. Run `git -C {top} pull --rebase` and push "
        f"again, or reset the clone to the remote and rebuild"
    )
