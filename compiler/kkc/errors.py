"""The one error hierarchy of kkc.

Every failure a user can cause or meet is a :class:`KkcError`; the CLI turns it into
one or more lines on stderr and the exit code carried by its class. Nothing else in the
package decides exit codes.

Exit codes: 0 ok, 1 difference found (check/diff), 2 invalid input or usage,
3 rendered output invalid, 4 environment (tools missing, git failure), 130 interrupted.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


class KkcError(Exception):
    """Base class: ``lines()`` are printed, ``exit_code`` is returned."""

    exit_code = 1

    def lines(self) -> list[str]:
        return [str(self)]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """'; did you mean "x"?' for the closest candidate, or '' when none is close."""
    near = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f'; did you mean "{near[0]}"?' if near else ""


@dataclass(frozen=True)
class Problem:
    """One located problem: ``path:line:col: CODE message`` (line and col are 1-based)."""

    path: str
    line: int
    col: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "message": self.message,
        }


class InputError(KkcError):
    """One or more problems in the user's input files (exit 2). Nothing has been written."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


def command_line_error(code: str, message: str) -> InputError:
    """A problem with an option's value: ``<command line>:1:1: CODE message`` (exit 2)."""
    return InputError(Problem("<command line>", 1, 1, code, message))


class UsageError(KkcError):
    """Bad command-line usage that is not tied to a file (exit 2)."""

    exit_code = 2


class OutputInvalid(KkcError):
    """The rendered output failed kustomize or schema validation (exit 3)."""

    exit_code = 3

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class EnvironmentProblem(KkcError):
    """A missing tool, a failed subprocess or a git failure (exit 4)."""

    exit_code = 4


class DifferenceFound(KkcError):
    """`kkc check` or `kkc diff` found a difference, or `kkc lint --strict` a warning
    (exit 1). The report itself is already printed; the message, if any, is a one-line
    summary for stderr."""

    exit_code = 1

    def lines(self) -> list[str]:
        return [str(self)] if str(self) else []


class SiteInvalid(InputError):
    """The problems of a site's inputs (exit 2), with ``site``: what could be resolved of
    it (a ``kkc.site.Site`` without the values that failed to load), for ``kkc show``."""

    def __init__(self, problems: list[Problem] | Problem, site: object = None):
        super().__init__(problems)
        self.site = site
