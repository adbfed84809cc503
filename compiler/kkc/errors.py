"""The one error hierarchy of kkc.

Every failure a user can cause or meet is a :class:`KkcError`; the CLI turns it into
one or more lines on stderr and the exit code carried by its class. Nothing else in the
package decides exit codes.

Exit codes: 0 ok, 1 difference found (check/diff), 2 invalid input or usage,
3 rendered output invalid, 4 environment (tools missing, git failure), 130 interrupted.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass


class KkcError(Exception):
    """Base class: ``lines()`` are printed (or ``json_problems()`` with ``-o json``),
    ``exit_code`` is returned. ``warnings`` are those met before the failure."""

    exit_code = 1
    warnings: list[str] = []  # noqa: RUF012 (never mutated; set per instance)
    report: dict[str, object] = {}  # noqa: RUF012 (more keys of the -o json report)

    def lines(self) -> list[str]:
        return [str(self)]

    def json_problems(self) -> list[dict[str, object]]:
        """The ``-o json`` form: one entry per line, not located in a file."""
        return [unlocated(line) for line in self.lines()]


def unlocated(message: str, file: str | None = None, severity: str = "error") -> dict[str, object]:
    """A problem entry of ``-o json`` for a message without a code (line and col are 1
    when ``file`` is given, else null)."""
    at = 1 if file else None
    return {
        "file": file,
        "line": at,
        "col": at,
        "code": None,
        "message": message,
        "severity": severity,
    }


_LOCATED_WARNING = re.compile(
    r"^warning: (?P<file>\S+?):(?P<line>[0-9]+):(?P<col>[0-9]+): "
    r"(?:(?P<code>KKC[0-9]{3}) )?(?P<message>.*)$",
    re.S,
)
_WARNING = re.compile(r"^(?:warning: )?(?:(?P<code>KKC[0-9]{3}) )?(?P<message>.*)$", re.S)


def warning_problem(text: str) -> dict[str, object]:
    """The ``-o json`` entry of a warning line (``warning: path:line:col: CODE message``,
    or ``warning: message``), with severity "warning"."""
    m = _LOCATED_WARNING.match(text)
    if m:
        return {
            "file": m["file"],
            "line": int(m["line"]),
            "col": int(m["col"]),
            "code": m["code"],
            "message": m["message"],
            "severity": "warning",
        }
    m = _WARNING.match(text)
    assert m  # matches any text
    return {**unlocated(m["message"], severity="warning"), "code": m["code"]}


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

    def as_dict(self, severity: str = "error") -> dict[str, object]:
        """The entry of a ``problems`` list in ``-o json`` output."""
        return {
            "file": self.path,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "message": self.message,
            "severity": severity,
        }


class InputError(KkcError):
    """One or more problems in the user's input files (exit 2). Nothing has been written."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]

    def json_problems(self) -> list[dict[str, object]]:
        return [p.as_dict() for p in self.problems]


def command_line_error(code: str, message: str) -> InputError:
    """A problem with an option's value: ``<command line>:1:1: CODE message`` (exit 2)."""
    return InputError(Problem("<command line>", 1, 1, code, message))


class UsageError(KkcError):
    """Bad command-line usage that is not tied to a file (exit 2). The CLI prints it as
    ``kkc COMMAND: message``, as it prints Click's own usage errors."""

    exit_code = 2

    def json_problems(self) -> list[dict[str, object]]:
        return [unlocated(line, "<command line>") for line in self.lines()]


class OutputInvalid(KkcError):
    """The rendered output failed kustomize or schema validation (exit 3)."""

    exit_code = 3

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]

    def json_problems(self) -> list[dict[str, object]]:
        return [p.as_dict() for p in self.problems]


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
    it (a ``kkc.model.Site`` without the values that failed to load), for ``kkc show``."""

    def __init__(self, problems: list[Problem] | Problem, site: object = None):
        super().__init__(problems)
        self.site = site
