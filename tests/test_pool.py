"""kkc.pool streaming a fleet: items prepared in this process only as their turn comes, a
kkc error of preparing one is that item's outcome (not loaded), and each outcome reduced by
``keep`` in order as it arrives; the same for any ``jobs`` (no site, no kustomize: ``abs``
on numbers stands in for rendering)."""

from __future__ import annotations

import pytest

from kkc import pool
from kkc.errors import InputError, Problem


@pytest.mark.parametrize("jobs", [1, 2])
def test_prepared_lazily_kept_in_order_and_a_failed_preparation_is_its_outcome(
    jobs: int,
) -> None:
    names = ["-1", "2", "x", "-4", "5", "-6", "7"]
    prepared: list[str] = []
    kept: list[int] = []
    ahead: list[int] = []  # how many were prepared when each outcome arrived

    def prepare(name: str) -> int:
        prepared.append(name)
        if name == "x":
            raise InputError(Problem("sites/x/site.yaml", 1, 1, "KKC101", "does not parse"))
        return int(name)

    def keep(index: int, outcome: pool.Outcome[int]) -> pool.Outcome[str]:
        kept.append(index)
        ahead.append(len(prepared))
        return outcome if outcome.error else pool.Outcome(value=f"#{outcome.value}")

    outcomes = pool.run_all(abs, names, jobs, names, keep=keep, prepare=prepare)
    assert [o.value for o in outcomes] == ["#1", "#2", None, "#4", "#5", "#6", "#7"]
    assert [o.loaded for o in outcomes] == [True, True, False, True, True, True, True]
    assert "does not parse" in str(outcomes[2].error)
    assert kept == list(range(7)) and prepared == names
    # in-process: one at a time; a pool: at most two per worker ahead of the results
    limit = 1 if jobs == 1 else 1 + 2 * pool.workers(jobs, len(names))
    assert all(n <= min(i + limit, len(names)) for i, n in enumerate(ahead)), ahead
    assert ahead[0] < len(names)
    assert list(pool.failures(outcomes, names)) == ["x"]
