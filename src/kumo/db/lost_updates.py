"""Retrying a request whose write lost to a concurrent one (row versions, DESIGN.md 3.5).

A lost update is a 409 for requests that depend on what the client saw. Some do not: a
server delete must win over the scheduler or an agent report touching the same row a
moment earlier (Nova never refuses a delete for that), so it reads the row again and
repeats. The work opens its own session, so each attempt sees fresh rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm.exc import StaleDataError

T = TypeVar("T")

ATTEMPTS = 3


def retry_lost_updates(work: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """work(), run again (up to `attempts` in all) when its commit lost to another writer."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except StaleDataError:
            if attempt == attempts:
                raise
    raise ValueError("attempts must be at least 1")
