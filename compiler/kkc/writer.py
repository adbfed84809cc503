"""Writing deploy/<site>/: staged in a sibling temporary directory, then swapped in whole.

kkc owns exactly the files listed in ``deploy/<site>/.kkc-files`` (with their sha256).
A build rewrites those, removes the ones it no longer produces and carries every other
file over untouched. A lock on deploy/ serialises concurrent builds; an interrupted swap
is repaired by the next run."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

MANIFEST = ".kkc-files"
TMP_PREFIX = ".kkc-tmp-"
OLD_PREFIX = ".kkc-old-"


@dataclass
class Changes:
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_bytes(site: str, tree: dict[str, bytes], objects: dict[str, str]) -> bytes:
    """Which files kkc owns (with hashes, to spot hand edits) and which objects they render."""
    doc = {
        "generator": "kkc",
        "site": site,
        "regenerate": f"kkc build {site}",
        "files": {path: sha256(data) for path, data in sorted(tree.items())},
        "objects": dict(sorted(objects.items())),
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _manifest_section(data: bytes | None, section: str) -> dict[str, str]:
    try:
        doc = json.loads(data or b"{}")
        part = doc.get(section, {}) if isinstance(doc, dict) else {}
        return {str(k): str(v) for k, v in part.items()} if isinstance(part, dict) else {}
    except ValueError:
        return {}


def parse_manifest(data: bytes | None) -> dict[str, str]:
    """Owned files, keeping only plain relative paths inside the site directory: a damaged or
    hand-edited manifest must never make kkc touch anything outside deploy/<site>/."""
    return {
        path: digest
        for path, digest in _manifest_section(data, "files").items()
        if path
        and not PurePosixPath(path).is_absolute()
        and ".." not in PurePosixPath(path).parts
        and "\\" not in path
    }


def parse_objects(data: bytes | None) -> dict[str, str]:
    return _manifest_section(data, "objects")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def read_manifest(site_dir: Path) -> dict[str, str]:
    return parse_manifest(_read(site_dir / MANIFEST))


def read_objects(site_dir: Path) -> dict[str, str]:
    return parse_objects(_read(site_dir / MANIFEST))


def full_tree(site: str, tree: dict[str, bytes], objects: dict[str, str]) -> dict[str, bytes]:
    """The tree plus its ownership manifest: exactly what lands in deploy/<site>/."""
    return {**tree, MANIFEST: manifest_bytes(site, tree, objects)}


def diff_against_disk(site_dir: Path, tree: dict[str, bytes]) -> Changes:
    """What writing ``tree`` (with manifest) would change among kkc-owned files."""
    owned = set(read_manifest(site_dir)) | ({MANIFEST} if (site_dir / MANIFEST).exists() else set())
    changes = Changes()
    for path, data in tree.items():
        target = site_dir / path
        if not target.exists():
            changes.added.append(path)
        elif target.read_bytes() != data:
            changes.changed.append(path)
    changes.removed = sorted(p for p in owned - set(tree) if (site_dir / p).exists())
    return changes


@contextlib.contextmanager
def locked(deploy_dir: Path) -> Iterator[None]:
    """Exclusive lock on deploy/ for the duration of a stage-and-swap."""
    deploy_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(deploy_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        recover(deploy_dir)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def recover(deploy_dir: Path) -> None:
    """Undo what an interrupted run left: restore a swapped-out tree, drop staging dirs."""
    for old in sorted(deploy_dir.glob(f"{OLD_PREFIX}*")):
        site = old.name[len(OLD_PREFIX) :].rsplit(".", 1)[0]
        target = deploy_dir / site
        if not target.exists():
            old.rename(target)
        else:
            shutil.rmtree(old, ignore_errors=True)
    for tmp in deploy_dir.glob(f"{TMP_PREFIX}*"):
        shutil.rmtree(tmp, ignore_errors=True)


def stage(deploy_dir: Path, site: str, tree: dict[str, bytes]) -> Path:
    """A sibling of deploy/<site>/ holding the new tree plus every file kkc does not own."""
    site_dir = deploy_dir / site
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{site}.", dir=deploy_dir))
    owned = set(read_manifest(site_dir)) | {MANIFEST}
    if site_dir.is_dir():
        for src in sorted(site_dir.rglob("*")):
            rel = src.relative_to(site_dir).as_posix()
            if (src.is_file() or src.is_symlink()) and rel not in owned and rel not in tree:
                dest = tmp / rel
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest, follow_symlinks=False)
    for rel, data in tree.items():
        dest = tmp / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(data)
        dest.chmod(0o644)
    tmp.chmod(0o755)
    return tmp


def swap(deploy_dir: Path, site: str, staged: Path) -> None:
    """Replace deploy/<site>/ by ``staged``: two renames on one filesystem."""
    site_dir = deploy_dir / site
    if site_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f"{OLD_PREFIX}{site}.", dir=deploy_dir))
        old.rmdir()
        site_dir.rename(old)
        staged.rename(site_dir)
        shutil.rmtree(old)
    else:
        staged.rename(site_dir)


def stale_sites(deploy_dir: Path, sites: set[str]) -> list[str]:
    """Directories deploy/<x>/ that kkc generated (their manifest says so) for a site x that
    is not in ``sites``. A directory without kkc's manifest is never reported."""
    out = []
    for child in sorted(deploy_dir.iterdir()) if deploy_dir.is_dir() else []:
        if child.name.startswith(".") or child.name in sites or not child.is_dir():
            continue
        try:
            doc = json.loads((child / MANIFEST).read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and (doc.get("generator"), doc.get("site")) == ("kkc", child.name):
            out.append(child.name)
    return out


def remove_owned(site_dir: Path) -> list[str]:
    """Remove the files kkc owns in site_dir (the manifest last, so an interrupted removal is
    finished by the next run), then the directories left empty. Files kkc does not own stay,
    and so does the directory holding them. Returns the removed paths."""
    removed = []
    for rel in [*sorted(read_manifest(site_dir)), MANIFEST]:
        path = site_dir / rel
        if path.is_file() or path.is_symlink():
            path.unlink()
            removed.append(rel)
    for directory in sorted((p for p in site_dir.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            directory.rmdir()
    if not any(site_dir.iterdir()):
        site_dir.rmdir()
    return removed
