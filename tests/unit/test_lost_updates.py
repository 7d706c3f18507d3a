"""retry_lost_updates: a write that lost to a concurrent one is repeated, a bounded number
of times, and only for that error."""

from __future__ import annotations

import pytest
from sqlalchemy.orm.exc import StaleDataError

from kumo.db.lost_updates import ATTEMPTS, retry_lost_updates


def test_a_lost_update_is_repeated_until_it_goes_through() -> None:
    calls: list[int] = []

    def work() -> str:
        calls.append(1)
        if len(calls) < ATTEMPTS:
            raise StaleDataError("row changed")
        return "done"

    assert retry_lost_updates(work) == "done"
    assert len(calls) == ATTEMPTS


def test_it_gives_up_after_the_last_attempt_and_other_errors_pass_at_once() -> None:
    calls: list[int] = []

    def always_stale() -> None:
        calls.append(1)
        raise StaleDataError("row changed")

    with pytest.raises(StaleDataError):
        retry_lost_updates(always_stale)
    assert len(calls) == ATTEMPTS

    def broken() -> None:
        calls.append(1)
        raise KeyError("x")

    calls.clear()
    with pytest.raises(KeyError):
        retry_lost_updates(broken)
    assert len(calls) == 1
