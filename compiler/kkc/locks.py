"""Exclusive locks between kkc processes: flock(2) on a directory (deploy/, a git directory).

The kernel drops a flock when the process holding it ends, killed or not, so no lock
outlives its process and there is no lock file to clean up. A process that finds the lock
taken says which process holds it (its PID and command line, from /proc/locks) and waits,
at most ``KKC_LOCK_TIMEOUT`` seconds (default 600), then gives up with the holder's PID.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .errors import EnvironmentProblem

DEFAULT_TIMEOUT = 600.0
POLL = 0.1


def _timeout() -> float:
    try:
        return max(0.0, float(os.environ.get("KKC_LOCK_TIMEOUT", DEFAULT_TIMEOUT)))
    except ValueError:
        return DEFAULT_TIMEOUT


def holder(path: Path) -> str:
    """Who holds the flock on ``path``: "PID N (command line)", or "another process" where
    /proc/locks cannot tell (not Linux, another PID namespace)."""
    st = os.stat(path)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "another process"
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 2817 08:01:1183 0 EOF" (blocked waiters have "->")
        if len(fields) >= 6 and fields[1] == "FLOCK" and "->" not in fields and fields[5] == inode:
            pid = fields[4]
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").strip()
            except OSError:
                cmd = b""
            return f"PID {pid}" + (f" ({cmd.decode(errors='replace')})" if cmd else "")
    return "another process"


@contextlib.contextmanager
def hold(path: Path, what: str) -> Iterator[None]:
    """Hold the exclusive flock on directory ``path`` (``what`` names it in messages)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _wait(fd, path, what)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _wait(fd: int, path: Path, what: str) -> None:
    who, limit = holder(path), _timeout()
    print(f"kkc: {what} is locked by {who}; waiting up to {limit:.0f} s", file=sys.stderr)
    deadline = time.monotonic() + limit
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise EnvironmentProblem(
                    f"{what} is still locked by {holder(path)} after {limit:.0f} s "
                    "(KKC_LOCK_TIMEOUT): let that kkc finish, or stop it; its lock ends with it"
                ) from None
            time.sleep(POLL)
