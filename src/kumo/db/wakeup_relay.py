"""Wake-ups across processes (DESIGN.md sections 2 and 3.2): what the relays share.

A wake-up (``kumo.core.wakeup``) lives in one process. With several API copies and a
separate controller, the process that writes a request is often not the one whose loop or
long-poll should act on it: a server placed by the controller waits for its agent's next
periodic resync (up to 20 s) unless the API copy holding that agent's long-poll hears of
it. So every such process relays its wake-ups through the database and delivers the
others' to its own waiters: by LISTEN/NOTIFY on PostgreSQL (``notify_relay``), through a
small polled table on MariaDB (``table_relay``).

Only an accelerator, like the wake-ups themselves: a lost wake-up, or a database
connection that drops, costs latency until the next poll, never correctness. So errors
here are logged and retried, never raised into a request. Each process sends from one
thread, batching whatever wake-ups queued up meanwhile, and listens on another; its own
wake-ups come back to it and are dropped by their origin id. A process that finds no other
listening sends nothing (``kumo up`` alone pays nothing per wake-up).
"""

from __future__ import annotations

import logging
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence

log = logging.getLogger(__name__)

MAX_PAYLOAD = 7900  # PostgreSQL refuses a NOTIFY payload of 8000 bytes or more
RETRY = 2.0  # seconds before a dropped connection is opened again
TICK = 1.0  # seconds each thread blocks at most, so that stop() is heard
# Seconds between looks for other processes listening: a process that starts is missed
# that long by the others (at 5 s, a server created through one API copy just after another
# copy started waited out its agent's 20 s long-poll in the e2e test on MariaDB).
PEER_CHECK = 1.0


def payloads(origin: str, topics: Iterable[str]) -> list[str]:
    """``origin topic topic ...``, each topic once, split so none exceeds MAX_PAYLOAD."""
    found, current = [], origin
    for topic in dict.fromkeys(topics):
        if len(current) + 1 + len(topic) > MAX_PAYLOAD and current != origin:
            found.append(current)
            current = origin
        current += " " + topic
    if current != origin:
        found.append(current)
    return found


class WakeupRelay(ABC):
    """Publish this process's wake-ups; deliver other processes' through ``deliver``.

    A transport supplies how a batch goes out (``_send``, which also decides whether
    anyone listens), how to listen until stopped (``_listen``) and which exceptions mean
    "the database is away" (``errors``)."""

    errors: tuple[type[Exception], ...] = ()

    def __init__(self, deliver: Callable[[Sequence[str]], None], peer_check: float) -> None:
        self.deliver = deliver
        self.origin = uuid.uuid4().hex[:12]
        self.peer_check = peer_check
        # Topics waiting to be sent, each once: bounded by the distinct topics (hosts,
        # servers' consoles), however long the database is away.
        self._pending: dict[str, None] = {}
        self._pending_lock = threading.Lock()
        self._wanted = threading.Event()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._threads = [
            threading.Thread(target=self._send_loop, name="wakeup-send", daemon=True),
            threading.Thread(target=self._listen_loop, name="wakeup-listen", daemon=True),
        ]

    def start(self) -> WakeupRelay:
        for thread in self._threads:
            thread.start()
        return self

    def wait_listening(self, timeout: float) -> bool:
        """True once the listening side is up (tests: nothing sent before is heard)."""
        return self._listening.wait(timeout)

    def publish(self, topics: Sequence[str]) -> None:
        """Queue wake-ups for the other processes; never blocks a request."""
        if topics and not self._stop.is_set():
            with self._pending_lock:
                self._pending.update(dict.fromkeys(topics))
            self._wanted.set()

    def stop(self, timeout: float = TICK + 1.0) -> None:
        self._stop.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout)

    # -- what a transport supplies -------------------------------------------------------
    @abstractmethod
    def _send(self, topics: list[str]) -> None:
        """Send ``topics`` to the other processes, if any listens; raise ``errors``."""

    @abstractmethod
    def _close_sender(self) -> None:
        """Drop the sending side's connection (after an error, and at the end)."""

    @abstractmethod
    def _listen(self) -> None:
        """Set ``_listening`` and deliver what others send (``_receive``) until
        ``_stop`` is set; raise ``errors`` when the connection fails."""

    @abstractmethod
    def _close_listener(self) -> None:
        """Drop the listening side's connection."""

    # -- the loops -----------------------------------------------------------------------
    def _send_loop(self) -> None:
        while not self._stop.is_set():
            if not self._wanted.wait(TICK):
                continue
            with self._pending_lock:  # everything queued meanwhile goes out together
                topics, self._pending = list(self._pending), {}
                self._wanted.clear()
            try:
                self._send(topics)
            except self.errors as exc:
                log.warning("wake-ups not relayed to other processes (%s); retrying", exc)
                self._close_sender()
                self.publish(topics)  # sent again, with what comes meanwhile, once back
                self._stop.wait(RETRY)
        self._close_sender()

    def _listen_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except self.errors as exc:
                self._listening.clear()
                if not self._stop.is_set():
                    log.warning("not hearing other processes' wake-ups (%s); retrying", exc)
                    self._stop.wait(RETRY)
            finally:
                self._close_listener()

    def _receive(self, payload: str) -> None:
        origin, _, rest = payload.partition(" ")
        if origin == self.origin or not rest:
            return
        try:
            self.deliver(rest.split(" "))
        except Exception:  # a waiter's bug must not end the relay
            log.exception("delivering relayed wake-ups failed")
