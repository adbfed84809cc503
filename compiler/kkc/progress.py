"""Progress of the fleet commands (`build`, `check`, `diff`, `lint` of several sites), on
stderr, and their summary line.

- On a terminal: a Rich progress bar with the site being worked on, how many are done
  and the elapsed time; it disappears when done.
- Elsewhere (CI logs): one plain line per site, ``kkc build: [2/6] site-l ok (3.1 s)``
  (``ok, cached``: no kustomize build ran, kkc's cache had them all; ``failed``: its
  render or validation failed; ``does not load``: its input is invalid).
- With ``-o json``, for a single site, or with ``KKC_PROGRESS=0``: nothing.

Sites are reported in site order as their results arrive (:mod:`kkc.pool` yields them in
that order whatever ``--jobs`` is), so the lines do not depend on ``--jobs`` but for the
times. The summary line, ``kkc build: 6 sites, 5 ok (3 cached), 1 failed, 12.3 s``,
counts the sites that failed to load too. ``KKC_PROGRESS``: ``auto`` (the default, as
above), ``plain`` (lines even on a terminal), ``0`` (nothing).

The command line sets the reporter for one command (:func:`reporting`); the pool and the
loading of a fleet report to :func:`current`, which reports nothing outside a command.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

ENV = "KKC_PROGRESS"


class Reporter:
    """Counts the sites of one command; reports nothing (the default)."""

    def __init__(self, verb: str = "") -> None:
        self.verb = verb
        self.names: list[str] = []
        self.ok = 0
        self.cached = 0
        self.failed = 0
        self.failed_to_load = 0
        self.planned = 0
        self.started = time.monotonic()

    @property
    def total(self) -> int:
        return max(self.planned, len(self.names) + self.failed_to_load)

    @property
    def fleet(self) -> bool:
        """Several sites: shown (one site is not)."""
        return self.total >= 2

    def plan(self, names: list[str]) -> None:
        """The sites of the command, before they are loaded."""
        self.planned = len(names)

    def load_failed(self, name: str) -> None:
        """A site that did not load (it is not rendered)."""
        self.failed_to_load += 1
        self.failed += 1
        self._show_load_failed(name)

    def _show_load_failed(self, name: str) -> None:
        pass

    def begin(self, names: list[str]) -> None:
        """The sites about to be rendered, in order."""
        self.names = list(names)
        self.ok = self.cached = 0
        self.failed = self.failed_to_load
        self._show_begin()

    def done(self, index: int, ok: bool, cached: bool = False, loaded: bool = True) -> None:
        """Site ``index`` of :meth:`begin` is done (in order); ``cached``: without running
        kustomize (kkc's cache had every build); not ``loaded``: it failed to load, found
        only as its turn came (a fleet streamed through the pool: :mod:`kkc.pool`)."""
        if ok:
            self.ok += 1
            self.cached += cached
        else:
            self.failed += 1
        state = "ok, cached" if ok and cached else "ok" if ok else "failed"
        self._show_done(index, state if loaded else "does not load")

    def finish(self) -> str | None:
        """The summary line, when there were several sites; stops the display."""
        self._stop()
        if not self.fleet:
            return None
        return (
            f"kkc {self.verb}: {self.total} sites, {self.ok} ok ({self.cached} cached), "
            f"{self.failed} failed, {time.monotonic() - self.started:.1f} s"
        )

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self.started:.1f} s"

    def _show_begin(self) -> None:
        pass

    def _show_done(self, index: int, state: str) -> None:
        pass

    def _stop(self) -> None:
        pass


class Quiet(Reporter):
    """Counts nothing and has no summary (-o json, KKC_PROGRESS=0)."""

    def finish(self) -> str | None:
        return None


class Lines(Reporter):
    """One plain line per site, for logs."""

    def __init__(self, verb: str, stream: TextIO) -> None:
        super().__init__(verb)
        self.stream = stream

    def _show_load_failed(self, name: str) -> None:
        self._line(self.failed_to_load, name, "does not load")

    def _show_done(self, index: int, state: str) -> None:
        self._line(self.failed_to_load + index + 1, self.names[index], state)

    def _line(self, position: int, name: str, state: str) -> None:
        """``kkc VERB: [position/total] SITE state (elapsed)``: the sites that do not load
        come first where every site is loaded before any renders (they are found first),
        then the others in site order; `kkc build` in the site repository loads each site
        as its turn comes, so there every site is in site order."""
        if self.fleet:
            print(
                f"kkc {self.verb}: [{position}/{self.total}] {name} {state} ({self._elapsed()})",
                file=self.stream,
                flush=True,
            )


class Bar(Reporter):
    """A Rich progress bar on the terminal: the current site, done/total, elapsed time."""

    def __init__(self, verb: str, stream: TextIO) -> None:
        super().__init__(verb)
        self.stream = stream
        self._bar: Any = None
        self._task: Any = None

    def _show_begin(self) -> None:
        if not self.fleet or not self.names:
            return
        from rich.console import Console  # noqa: PLC0415 (only on a terminal)
        from rich.progress import (  # noqa: PLC0415
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(file=self.stream),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self._label(0), total=len(self.names))

    def _label(self, index: int) -> str:
        current = self.names[index] if index < len(self.names) else "done"
        return f"kkc {self.verb} {current}"

    def _show_done(self, index: int, state: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=1, description=self._label(index + 1))

    def _stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


_current: list[Reporter] = []


def current() -> Reporter:
    """The reporter of the command running (one that reports nothing outside a command)."""
    return _current[-1] if _current else Quiet()


def choose(verb: str, quiet: bool, stream: TextIO | None = None) -> Reporter:
    """The reporter for a command: none with ``quiet`` (-o json) or KKC_PROGRESS=0, a bar
    on a terminal (unless KKC_PROGRESS=plain), else lines."""
    stream = stream or sys.stderr
    mode = os.environ.get(ENV, "auto").strip().lower()
    if quiet or mode in ("0", "never", "off", "no", "false"):
        return Quiet(verb)
    if mode != "plain" and stream.isatty():
        return Bar(verb, stream)
    return Lines(verb, stream)


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """``reporter`` is :func:`current` for the block; its summary line is printed on its
    stream at the end (also when the block fails)."""
    _current.append(reporter)
    try:
        yield reporter
    finally:
        _current.pop()
        line = reporter.finish()
        stream = getattr(reporter, "stream", None)
        if line and stream is not None:
            print(line, file=stream, flush=True)
