"""In-process wake-ups: make a waiting loop act now instead of at its next poll.

Only an accelerator (DESIGN.md section 3.2): every loop also polls, so a wake-up lost
between processes costs latency, never correctness.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence

_lock = threading.Lock()
_counters: dict[str, int] = defaultdict(int)
_cond = threading.Condition(_lock)
_stopping = False  # set once by interrupt(), when the process stops serving

SCHEDULER = "scheduler"
NETWORK = "network"  # any change to what a host's datapath is built from
OUTBOX = "outbox"  # notifications were committed to the outbox: the publisher sends them


# Where this process's wake-ups also go: other processes' waiters, through the database
# (kumo.db.wakeup_relay on PostgreSQL and MariaDB). Empty in a process alone, or on SQLite.
_relays: list[Callable[[Sequence[str]], None]] = []


def notify(*topics: str) -> None:
    notify_local(topics)
    for publish in _relays:
        publish(topics)


def notify_local(topics: Sequence[str]) -> None:
    """Wake this process's waiters only: wake-ups relayed from another process (among them
    a console reader's ask, see want_console)."""
    with _cond:
        for topic in topics:
            if topic.startswith(CONSOLE_ASK):
                host_id, _, instance_id = topic[len(CONSOLE_ASK) :].partition(":")
                if host_id and instance_id:  # else not an ask kumo wrote: dropped
                    _ask_here(host_id, instance_id)
            else:
                _counters[topic] += 1
        _cond.notify_all()


def relay_to(publish: Callable[[Sequence[str]], None]) -> Callable[[], None]:
    """Send every later wake-up to ``publish`` as well; returns the undo."""
    _relays.append(publish)
    return lambda: _relays.remove(publish)


def mark(topic: str) -> int:
    with _lock:
        return _counters[topic]


def wait(topic: str, since: int, timeout: float) -> int:
    """Block until ``topic`` was notified after ``since`` (a value from :func:`mark`) or the
    timeout passes; return the current mark."""
    with _cond:
        # Only the agents' long polls (servers, volumes, the network) end early when
        # stopping; in-process loops keep their pace until their own stop event.
        stops = topic.startswith(AGENT_POLLS) or topic == NETWORK
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


def volume_topic(host_id: str) -> str:
    """A host's volumes and snapshots changed: its agent's volume loop returns."""
    return f"volumes:{host_id}"


# Prefixes of the topics agents long-poll over HTTP (host_topic, volume_topic): a stopping
# server must not wait for them, or each holds its graceful shutdown for up to 30 s.
AGENT_POLLS = (host_topic(""), volume_topic(""))


def console_topic(instance_id: str) -> str:
    return f"console:{instance_id}"


CONSOLE_ASK = "console-ask:"  # + host id ":" server id: a reader elsewhere wants it


# Consoles a reader is waiting for, per host: handed to the host's agent with its next
# long-poll answer (served by this process; another API copy's agents post periodically).
_consoles_wanted: dict[str, set[str]] = defaultdict(set)
_polled_at: dict[str, float] = {}  # host id -> when its agent last long-polled this process
POLL_FRESH = 60.0  # an agent that long-polled within this many seconds is listening here


def agent_polled(host_id: str) -> None:
    with _lock:
        _polled_at[host_id] = time.monotonic()


def want_console(host_id: str, instance_id: str) -> int | None:
    """Ask the host's agent for this server's console now; returns the mark to wait on
    (``wait(console_topic(instance_id), mark, ...)``) until it has been posted, or None
    when nobody would hear the ask: no agent of that host long-polls this process, and no
    other process is told (no relay). With a relay the ask goes to every other process,
    and the one whose agent it is passes it on; the post's wake-up comes back the same way.
    """
    with _cond:
        mark = _counters[console_topic(instance_id)]
        if _ask_here(host_id, instance_id):
            return mark
        relays = list(_relays)
    if not relays:
        return None
    for publish in relays:
        publish((f"{CONSOLE_ASK}{host_id}:{instance_id}",))
    return mark


def _ask_here(host_id: str, instance_id: str) -> bool:
    """Hand the ask to the host's agent with its next long-poll answer, if that agent
    long-polls this process. The caller holds the lock."""
    if time.monotonic() - _polled_at.get(host_id, -POLL_FRESH) >= POLL_FRESH:
        return False
    _consoles_wanted[host_id].add(instance_id)
    _counters[host_topic(host_id)] += 1
    _cond.notify_all()
    return True


def consoles_wanted(host_id: str) -> list[str]:
    """The consoles asked of this host since its agent's last answer (and forget them)."""
    with _lock:
        return sorted(_consoles_wanted.pop(host_id, set()))
