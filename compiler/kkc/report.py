"""Findings, reported: the one place where problems and warnings (both
:class:`kkc.errors.Problem`, told apart by their severity) become text lines and ``-o json``
entries, and where a command's findings decide its exit code.

Every checker returns ``Problem`` objects; none formats a line itself. A text line is
``path:line:col: CODE message`` (``CODE`` and the location left out when a finding has
none), and a warning's line starts with ``warning: ``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import DifferenceFound, KkcError, Problem

_WARNING_PREFIX = "warning: "


def line(finding: Problem) -> str:
    """The text line of a finding; a warning's is prefixed ``warning: ``."""
    return f"{_WARNING_PREFIX}{finding}" if finding.is_warning else str(finding)


def unique(findings: Iterable[Problem]) -> list[Problem]:
    """Each finding once, in the order first found."""
    return list(dict.fromkeys(findings))


def entries(findings: Iterable[Problem]) -> list[dict[str, object]]:
    """The ``-o json`` entries of findings: {file, line, col, code, message, severity}."""
    return [f.as_dict() for f in findings]


def failure_entries(exc: KkcError) -> list[dict[str, object]]:
    """The ``problems`` of the ``-o json`` report of a failed command: the warnings met
    before the failure (each once), then the failure's own findings."""
    return entries([*unique(exc.warnings), *exc.findings()])


@dataclass
class Report:
    """The findings of one command, errors and warnings in the order found, each once.

    It decides the exit code: 1 when there is an error, or with ``strict`` (`kkc lint
    --strict`) any warning; else 0."""

    findings: list[Problem] = field(default_factory=list)
    strict: bool = False

    def __post_init__(self) -> None:
        self.findings = unique(self.findings)

    def add(self, found: Iterable[Problem]) -> None:
        self.findings = unique([*self.findings, *found])

    @property
    def errors(self) -> list[Problem]:
        return [f for f in self.findings if not f.is_warning]

    @property
    def warnings(self) -> list[Problem]:
        return [f for f in self.findings if f.is_warning]

    @property
    def exit_code(self) -> int:
        return 1 if self.errors or (self.strict and self.warnings) else 0

    def lines(self) -> list[str]:
        return [line(f) for f in self.findings]

    def json(self) -> list[dict[str, object]]:
        return entries(self.findings)

    def verdict(self, summary: str) -> None:
        """Raise DifferenceFound (exit 1) with the one-line ``summary`` when the findings
        fail the command; the findings themselves are reported already."""
        if self.exit_code:
            raise DifferenceFound(summary)
