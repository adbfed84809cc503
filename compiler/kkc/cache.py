"""kkc's content-addressed cache: entries named by the digest of everything that made them.

It lives outside every repository, in ``$KKC_CACHE_DIR`` (default
``$XDG_CACHE_HOME/kkc``, else ``~/.cache/kkc``), so nothing kkc caches can reach git.
``KKC_NO_CACHE=1`` (``kkc --no-cache``) bypasses it; ``kkc cache clean`` empties it.

An entry is written to a temporary file and renamed into place, so a concurrent reader
sees a whole entry or none. Each entry holds the digest of its payload: a truncated or
corrupt one (a build killed mid-write, a full disk) is a miss and is removed, never an
error and never wrong output. A failure to write only costs time. Each area (``bucket``)
is bounded: past ``KKC_CACHE_MAX_MB`` (default 1024) the least recently used entries go.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zlib
from pathlib import Path

FORMAT = b"kkc-cache-1"
DEFAULT_MAX_MB = 1024
# the areas: kustomize's output by its inputs (kkc.kustomize), rendered and validated sites
# (kkc.sitecache), parsed CRD schemas by the CRD file's content (kkc.validate)
BUCKETS = ("kustomize", "site", "crd")


def directory() -> Path:
    """Where the cache lives: KKC_CACHE_DIR, else the XDG cache directory's kkc/."""
    base = os.environ.get("KKC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kkc"
    )
    return Path(base)


_wanted = True  # `kkc --no-cache` sets it False for the command (kkc.pool passes it on)


def use(wanted: bool) -> None:
    global _wanted
    _wanted = wanted


def enabled() -> bool:
    return _wanted and os.environ.get("KKC_NO_CACHE", "") in ("", "0")


def digest(*parts: bytes | str) -> str:
    """One sha256 over ``parts``, each length-prefixed so no two lists of parts collide."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(b"%d:" % len(data))
        h.update(data)
    return h.hexdigest()


def _entry(bucket: str, key: str) -> Path:
    return directory() / bucket / key[:2] / key


def get(bucket: str, key: str) -> bytes | None:
    """The payload stored under ``key``, or None (absent, disabled, unreadable, corrupt)."""
    if not enabled():
        return None
    path = _entry(bucket, key)
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    head, _, body = raw.partition(b"\n")
    try:
        fmt, want = head.split(b" ")
        payload = zlib.decompress(body)
    except (ValueError, zlib.error):
        payload, fmt, want = b"", b"", b""
    if fmt != FORMAT or hashlib.sha256(payload).hexdigest().encode() != want:
        path.unlink(missing_ok=True)
        return None
    try:
        os.utime(path)  # recently used: evicted last
    except OSError:
        pass
    return payload


def put(bucket: str, key: str, payload: bytes) -> None:
    """Store ``payload`` under ``key`` atomically; any OS error is ignored."""
    if not enabled():
        return
    path = _entry(bucket, key)
    head = FORMAT + b" " + hashlib.sha256(payload).hexdigest().encode() + b"\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(head + zlib.compress(payload, 1))
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        _evict(directory() / bucket)
    except OSError:
        pass


def _limit() -> int:
    try:
        return int(os.environ.get("KKC_CACHE_MAX_MB", DEFAULT_MAX_MB)) * 1024 * 1024
    except ValueError:
        return DEFAULT_MAX_MB * 1024 * 1024


def _evict(root: Path) -> None:
    """Remove the least recently used entries of ``root`` until it fits the limit."""
    entries = []
    for sub in os.scandir(root):
        if sub.is_dir():
            for e in os.scandir(sub.path):
                if not e.name.startswith(".tmp-"):
                    st = e.stat()
                    entries.append((st.st_mtime_ns, st.st_size, e.path))
    total, limit = sum(size for _t, size, _p in entries), _limit()
    for _mtime, size, path in sorted(entries):
        if total <= limit:
            break
        Path(path).unlink(missing_ok=True)
        total -= size


def usage() -> tuple[int, int]:
    """(entries, bytes) in kkc's areas of the cache."""
    count = size = 0
    for bucket in BUCKETS:
        for dirpath, _dirs, files in os.walk(directory() / bucket):
            count += len(files)
            size += sum(os.path.getsize(os.path.join(dirpath, name)) for name in files)
    return count, size


def describe() -> str:
    """One line for `kkc doctor`."""
    if not enabled():
        return f"{directory()} (bypassed: KKC_NO_CACHE)"
    count, size = usage()
    return f"{directory()} ({count} entries, {size / 1048576:.1f} MB; `kkc cache clean` empties it)"


def clean() -> tuple[Path, int, int]:
    """Empty the cache: (its directory, entries removed, bytes freed). Only kkc's own
    areas (BUCKETS) are removed, whatever else KKC_CACHE_DIR holds."""
    count, size = usage()
    for bucket in BUCKETS:
        shutil.rmtree(directory() / bucket, ignore_errors=True)
    return directory(), count, size
