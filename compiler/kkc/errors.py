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
from dataclasses import dataclass, replace
from typing import Any

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding, an error or a warning (``severity``): ``path:line:col: CODE message``
    (line and col are 1-based). A finding that no file holds has no path, line or col, and
    a message without a code has none; :mod:`kkc.report` formats findings as lines and as
    ``-o json`` entries."""

    path: str | None
    line: int | None
    col: int | None
    code: str | None
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        at = f"{self.path}:{self.line}:{self.col}: " if self.path is not None else ""
        return f"{at}{self.code + ' ' if self.code else ''}{self.message}"

    @property
    def is_warning(self) -> bool:
        return self.severity == WARNING

    def as_warning(self) -> Problem:
        """The same finding, reported as a warning."""
        return replace(self, severity=WARNING)

    def as_dict(self) -> dict[str, object]:
        """The entry of a ``problems`` list in ``-o json`` output."""
        return {
            "file": self.path,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "message": self.message,
            "severity": self.severity,
        }


def warning(message: str, code: str | None = None) -> Problem:
    """A warning that no file holds (``message``, with ``code`` when it has one)."""
    return Problem(None, None, None, code, message, WARNING)


def unlocated(message: str, file: str | None = None) -> Problem:
    """An error without a code; at line and col 1 of ``file`` when given."""
    at = 1 if file else None
    return Problem(file, at, at, None, message)


class KkcError(Exception):
    """Base class: ``problems()`` are reported (one line each, or ``-o json`` entries),
    ``exit_code`` is returned. ``warnings`` are those met before the failure."""

    exit_code = 1
    warnings: list[Problem] = []  # noqa: RUF012 (never mutated; set per instance)
    report: dict[str, object] = {}  # noqa: RUF012 (more keys of the -o json report)

    def findings(self) -> list[Problem]:
        """The findings of the failure: by default its message, at no file."""
        return [unlocated(line) for line in self.lines()]

    def lines(self) -> list[str]:
        return [str(self)]

    def __reduce__(self) -> tuple[Any, ...]:
        """Picklable whatever the subclass's ``__init__`` takes: a pool worker
        (:mod:`kkc.pool`) sends its error back to the parent whole."""
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type[KkcError], args: tuple[Any, ...], state: dict[str, Any]) -> KkcError:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """'; did you mean "x"?' for the closest candidate, or '' when none is close."""
    near = difflib.get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f'; did you mean "{near[0]}"?' if near else ""


class InputError(KkcError):
    """One or more problems in the user's input files (exit 2). Nothing has been written."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]

    def findings(self) -> list[Problem]:
        return self.problems


def command_line_error(code: str, message: str) -> InputError:
    """A problem with an option's value: ``<command line>:1:1: CODE message`` (exit 2)."""
    return InputError(Problem("<command line>", 1, 1, code, message))


class UsageError(KkcError):
    """Bad command-line usage that is not tied to a file (exit 2). The CLI prints it as
    ``kkc COMMAND: message``, as it prints Click's own usage errors."""

    exit_code = 2

    def findings(self) -> list[Problem]:
        return [unlocated(line, "<command line>") for line in self.lines()]


class OutputInvalid(KkcError):
    """The rendered output failed kustomize or schema validation (exit 3)."""

    exit_code = 3

    def __init__(self, problems: list[Problem] | Problem):
        self.problems = [problems] if isinstance(problems, Problem) else list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]

    def findings(self) -> list[Problem]:
        return self.problems


class EnvironmentProblem(KkcError):
    """A missing tool, a failed subprocess or a git failure (exit 4)."""

    exit_code = 4


class FleetFailure(KkcError):
    """Several sites of one command failed, each with its own error (:func:`combined`):
    every site's lines in the order of the sites, and the highest of their exit codes (4
    environment over 3 invalid output over 2 invalid input)."""

    def __init__(self, errors: list[KkcError]):
        self.errors = list(errors)
        self.exit_code = max(e.exit_code for e in self.errors)
        self.warnings = list(dict.fromkeys(w for e in self.errors for w in e.warnings))
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        return list(dict.fromkeys(line for e in self.errors for line in e.lines()))

    def findings(self) -> list[Problem]:
        return list(dict.fromkeys(f for e in self.errors for f in e.findings()))


def combined(errors: list[KkcError]) -> KkcError:
    """One error for the failures of several sites: the only one as it is, else a
    :class:`FleetFailure` of them all."""
    return errors[0] if len(errors) == 1 else FleetFailure(errors)


class DifferenceFound(KkcError):
    """`kkc check` or `kkc diff` found a difference, or `kkc lint --strict` a warning
    (exit 1). The report itself is already printed; the message, if any, is a one-line
    summary for stderr."""

    exit_code = 1

    def lines(self) -> list[str]:
        return [str(self)] if str(self) else []


class RefusedChange(DifferenceFound):
    """`kkc diff` or `kkc check` found a change the API server refuses to make in place
    (or, for check, a destructive one): exit 2, as for invalid input. The report is printed
    already; the message is a one-line summary for stderr."""

    exit_code = 2


class SitesNotJudged(DifferenceFound):
    """`kkc check` reported every site it could judge, and some it could not (their input
    did not load, or their environment failed): the lines of those failures, which its
    report does not print, then ``summary``; the highest exit code of those failures and
    of the report's own verdict (``floor``)."""

    def __init__(self, errors: list[KkcError], floor: int = 0, summary: str = ""):
        self.errors = list(errors)
        self.summary = summary
        self.exit_code = max(floor, *(e.exit_code for e in self.errors))
        super().__init__(summary)

    def lines(self) -> list[str]:
        found = dict.fromkeys(line for e in self.errors for line in e.lines())
        return [*found, *([self.summary] if self.summary else [])]


class SiteInvalid(InputError):
    """The problems of a site's inputs (exit 2), with ``site``: what could be resolved of
    it (a ``kkc.model.Site`` without the values that failed to load), for ``kkc show``."""

    def __init__(self, problems: list[Problem] | Problem, site: object = None):
        super().__init__(problems)
        self.site = site


class UnsafeChange(InputError):
    """`kkc build`: the change would fail at apply (an immutable field) or destroy data (a
    removed ExternalSecret that owns its Secret, a secret back-end switch): exit 2, nothing
    written. ``--allow-destructive`` writes it anyway, with the findings as warnings."""

    def lines(self) -> list[str]:
        return [
            *super().lines(),
            "kkc build: nothing written; once the way out above is taken (or to accept the "
            "loss), `kkc build --allow-destructive` writes it",
        ]
