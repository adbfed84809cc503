"""Per-site work of the fleet commands (`--jobs N`) in a process pool.

The parent loads the sites and keeps every write, lock and commit; workers only render and
validate. Results come back in the order of the sites, whatever N is, so output, messages
and exit codes do not depend on it. ``jobs == 1`` runs everything in this process (no pool).
Workers are started with ``spawn``: nothing of the parent's state (parse caches, locks,
open files) is shared with them; each builds its own caches.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from . import cache
from .errors import KkcError

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    """The number of CPUs this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Outcome(Generic[R]):
    """One site's result, or the kkc error its work raised."""

    value: R | None = None
    error: KkcError | None = None

    def get(self) -> R:
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


def _attempt(fn: Callable[[Any], R], item: Any) -> Outcome[R]:
    try:
        return Outcome(value=fn(item))
    except KkcError as exc:
        return Outcome(error=exc)


def run_all(fn: Callable[[T], R], items: Iterable[T], jobs: int) -> list[Outcome[R]]:
    """``fn`` applied to every item, in the items' order; a kkc error of one item does not
    stop the others. ``fn`` must be picklable (a module-level function or a partial of one)
    when ``jobs > 1``. Other exceptions propagate, as they would in-process."""
    todo = list(items)
    if jobs <= 1 or len(todo) <= 1:
        return [_attempt(fn, item) for item in todo]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(jobs, len(todo)),
        mp_context=context,
        initializer=cache.use,
        initargs=(cache.enabled(),),
    ) as ex:
        return list(ex.map(_attempt, [fn] * len(todo), todo))


def first_failure(outcomes: list[Outcome[Any]]) -> list[Any]:
    """The values, or the first error (in the items' order) raised."""
    return [o.get() for o in outcomes]
