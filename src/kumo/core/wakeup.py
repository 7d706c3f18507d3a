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
_stopping = False  # set once by interrupt(), when the process stops serving

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
        # Only the agents' long polls (host topics) end early when stopping; in-process
        # loops keep their pace until their own stop event.
        stops = topic.startswith("host:")
        _cond.wait_for(lambda: (_stopping and stops) or _counters[topic] != since, timeout)
        return _counters[topic]


def interrupt() -> None:
    """The server is stopping: wake the agents' long polls now and let no later one block,
    so none holds the graceful shutdown for its whole wait."""
    global _stopping
    with _cond:
        _stopping = True
        _cond.notify_all()


def host_topic(host_id: str) -> str:
    return f"host:{host_id}"
