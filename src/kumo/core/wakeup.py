"""In-process wake-ups: make a waiting loop act now instead of at its next poll.

Only an accelerator (DESIGN.md section 3.2): every loop also polls, so a wake-up lost
between processes costs latency, never correctness.
"""

from __future__ import annotations

import threading
from collections import defaultdict

_lock = threading.Lock()
_counters: dict[str, int] = defaultdict(int)
_cond = threading.Condition(_lock)

SCHEDULER = "scheduler"


def notify(*topics: str) -> None:
    with _cond:
        for topic in topics:
            _counters[topic] += 1
        _cond.notify_all()


def mark(topic: str) -> int:
    with _lock:
        return _counters[topic]


def wait(topic: str, since: int, timeout: float) -> int:
    """Block until ``topic`` was notified after ``since`` (a value from :func:`mark`) or the
    timeout passes; return the current mark."""
    with _cond:
        _cond.wait_for(lambda: _counters[topic] != since, timeout)
        return _counters[topic]


def host_topic(host_id: str) -> str:
    return f"host:{host_id}"
