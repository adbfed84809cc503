"""The one way kkc runs another program: argument lists (never a shell), a timeout,
a clean environment for git-sensitive tools, and errors that show the command."""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .errors import EnvironmentProblem

DEFAULT_TIMEOUT = 300.0


def run(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``args``; return the completed process (the caller judges the return code).

    A missing executable or a timeout raises EnvironmentProblem (exit 4)."""
    shown = shlex.join(args)
    try:
        return subprocess.run(
            list(args),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        raise EnvironmentProblem(f"executable `{args[0]}` not found (running: {shown})") from None
    except subprocess.TimeoutExpired:
        raise EnvironmentProblem(f"`{shown}` did not finish within {timeout:.0f}s") from None
    except OSError as exc:
        raise EnvironmentProblem(f"cannot run `{shown}`: {exc.strerror}") from None
