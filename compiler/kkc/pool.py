"""Per-site work of the fleet commands (`--jobs N`) in a process pool.

The parent loads the sites and keeps every write, lock and commit; workers only render and
validate. Results come back in the order of the sites, whatever N is, so output, messages
and exit codes do not depend on it. ``jobs == 1`` runs everything in this process (no pool).
Workers are forked from a ``forkserver``: a fresh interpreter, started once per kkc
process, that has imported kkc (and its libraries) and nothing else. So nothing of the
parent's state (parse caches, locks, open files) is shared with a worker, and a worker
does not pay for importing kkc again. The parent's environment and working directory at
the time of the call are handed to each worker (the server's are those of its start).

A worker started with ``spawn`` (a new interpreter importing kkc and its libraries) cost
about half a second before its first site, about as much as rendering two keystone-only
sites. With ``spawn``, on the 2-core
machine, ``kkc build --all --jobs 2`` was slower than ``--jobs 1`` for 2 sites (full or
small, 4.5-4.9 s against 4.0-4.1 s) and for 6 small ones (3.5-3.6 s against 3.3-3.4 s),
and faster for 6 full sites (6.0-6.8 s against 6.6-7.5 s). So a pool gets at most one
worker per :data:`MIN_SITES_PER_WORKER` sites, and fewer sites than two such shares run
in this process: the default (one worker per CPU) costs nothing for a command on a few
sites.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from . import cache, kustomize, progress
from .errors import KkcError

T = TypeVar("T")
R = TypeVar("R")

MIN_SITES_PER_WORKER = 3

# what the forkserver imports before it forks a worker: the modules a worker's work uses
_PRELOAD = ["kkc.build", "kkc.check", "kkc.diff", "kkc.lint"]


def default_jobs() -> int:
    """The number of CPUs this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Outcome(Generic[R]):
    """One site's result, or the kkc error its work raised; ``cached``: its work ran no
    kustomize build (every one was read from kkc's cache); ``loaded``: False when the
    error is that of preparing it (the site does not load)."""

    value: R | None = None
    error: KkcError | None = None
    cached: bool = False
    loaded: bool = True

    def get(self) -> R:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def _attempt(fn: Callable[[Any], R], item: Any) -> Outcome[R]:
    before = kustomize.runs()
    try:
        return Outcome(value=fn(item), cached=kustomize.runs() == before)
    except KkcError as exc:
        return Outcome(error=exc)


def _start_worker(caching: bool, environ: dict[str, str], cwd: str) -> None:
    """A new worker takes the caller's environment and directory, not the forkserver's."""
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    cache.use(caching)


def workers(jobs: int, items: int) -> int:
    """How many worker processes ``items`` sites get with ``--jobs jobs``: 1 (this
    process, no pool) unless each of at least two workers gets
    :data:`MIN_SITES_PER_WORKER` sites."""
    return max(1, min(jobs, items // max(1, MIN_SITES_PER_WORKER)))


def run_all(
    fn: Callable[[T], R],
    items: Iterable[Any],
    jobs: int,
    names: list[str] | None = None,
    keep: Callable[[int, Outcome[R]], Outcome[Any]] | None = None,
    prepare: Callable[[Any], T] | None = None,
) -> list[Outcome[Any]]:
    """``fn`` applied to every item, in the items' order; a kkc error of one item does not
    stop the others. ``fn`` must be picklable (a module-level function or a partial of one)
    when ``jobs > 1``. Other exceptions propagate, as they would in-process. ``names``: the
    items' site names, for the command's progress (:mod:`kkc.progress`), which hears of
    each item in order as its result arrives.

    A fleet can stream through the pool, each site in memory only while it is worked on:
    ``prepare`` makes each item what ``fn`` takes (a site name into its loaded Site), in
    this process, only as a worker is about to need it (at most two per worker ahead); a
    kkc error there is the item's outcome (``loaded`` False). ``keep``: what is kept of
    each outcome, called in this process as each arrives, in order, so that each result
    can be reduced to its summary before the next arrives."""
    todo: list[Any] = list(items)
    shown = progress.current()
    shown.begin(names if names is not None else [str(i + 1) for i in range(len(todo))])
    out: list[Outcome[Any]] = []

    def arrived(outcome: Outcome[R]) -> None:
        index = len(out)
        out.append(keep(index, outcome) if keep is not None else outcome)
        shown.done(index, outcome.error is None, outcome.cached, outcome.loaded)

    count = workers(jobs, len(todo))
    if count <= 1:
        for item in todo:
            ready = _prepared(prepare, item)
            arrived(ready if isinstance(ready, Outcome) else _attempt(fn, ready))
        return out
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)
    with ProcessPoolExecutor(
        max_workers=count,
        mp_context=context,
        initializer=_start_worker,
        initargs=(cache.enabled(), dict(os.environ), os.getcwd()),
    ) as ex:
        queue: deque[Future[Outcome[R]] | Outcome[R]] = deque()
        ahead = 2 * count if prepare is not None else len(todo)
        waiting = iter(todo)
        while True:
            while sum(isinstance(q, Future) for q in queue) < ahead:
                item = next(waiting, _END)
                if item is _END:
                    break
                ready = _prepared(prepare, item)
                queue.append(
                    ready if isinstance(ready, Outcome) else ex.submit(_attempt, fn, ready)
                )
            if not queue:
                break
            head = queue.popleft()
            arrived(head.result() if isinstance(head, Future) else head)
    return out


_END = object()


def _prepared(prepare: Callable[[Any], Any] | None, item: Any) -> Any:
    """``item`` prepared (as is without ``prepare``), or the Outcome of its kkc error."""
    if prepare is None:
        return item
    try:
        return prepare(item)
    except KkcError as exc:
        return Outcome(error=exc, loaded=False)


def failures(outcomes: list[Outcome[Any]], keys: list[str]) -> dict[str, KkcError]:
    """The error of each item that failed, by its key (``keys``: one per item, in order)."""
    return {k: o.error for k, o in zip(keys, outcomes, strict=True) if o.error is not None}
