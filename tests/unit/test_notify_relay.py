"""Wake-ups across processes on PostgreSQL (kumo.db.notify_relay): what one process
notifies reaches the others' waiters, never itself twice, and a dropped connection is
opened again. Two relays in this process stand for two kumo processes."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import psycopg
import pytest
from sqlalchemy import text

from kumo.core import wakeup
from kumo.db.engine import Database
from kumo.db.notify_relay import CHANNEL, MAX_PAYLOAD, NotifyRelay, libpq_url, payloads
from kumo.runtime import wakeups_across_processes

on_postgresql = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)

DEADLINE = 15.0


class Heard:
    """What a relay delivered, with a way to wait for a topic."""

    def __init__(self) -> None:
        self.topics: list[str] = []
        self._cond = threading.Condition()

    def deliver(self, topics: Sequence[str]) -> None:
        with self._cond:
            self.topics.extend(topics)
            self._cond.notify_all()

    def wait_for(self, topic: str) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: topic in self.topics, DEADLINE)

    def wait_for_any(self, prefix: str, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: any(t.startswith(prefix) for t in self.topics), timeout
            )


@pytest.fixture
def relays(database: Database) -> Iterator[list[tuple[NotifyRelay, Heard]]]:
    made: list[tuple[NotifyRelay, Heard]] = []
    for _ in range(2):
        heard = Heard()
        relay = NotifyRelay(database.url, heard.deliver).start()
        made.append((relay, heard))
    try:
        for relay, _ in made:
            assert relay.wait_listening(DEADLINE), "the relay never started listening"
        yield made
    finally:
        for relay, _ in made:
            relay.stop()


@on_postgresql
def test_a_wakeup_reaches_the_other_process_only(relays: list[tuple[NotifyRelay, Heard]]) -> None:
    (a, heard_a), (b, heard_b) = relays
    a.publish(["host:h1", "scheduler", "host:h1"])
    assert heard_b.wait_for("scheduler")
    assert heard_b.topics == ["host:h1", "scheduler"]  # each topic once
    b.publish(["volumes:h2"])
    assert heard_a.wait_for("volumes:h2")
    # a heard its own notification first (sent earlier) and dropped it
    assert heard_a.topics == ["volumes:h2"]


@on_postgresql
def test_notify_in_one_process_wakes_a_waiter_in_another(
    database: Database, relays: list[tuple[NotifyRelay, Heard]]
) -> None:
    """Through kumo.core.wakeup as a served process wires it: its notify() goes out, and a
    topic another process sends wakes its local waiter."""
    (other, heard), _ = relays
    with wakeups_across_processes(database) as mine:
        assert mine is not None and mine.wait_listening(DEADLINE)
        wakeup.notify("host:from-here")
        assert heard.wait_for("host:from-here")
        mark = wakeup.mark("host:from-there")
        other.publish(["host:from-there"])
        assert wakeup.wait("host:from-there", mark, DEADLINE) != mark


@on_postgresql
def test_a_dropped_connection_is_opened_again(
    database: Database, relays: list[tuple[NotifyRelay, Heard]]
) -> None:
    (a, _), (_, heard_b) = relays
    with database.engine.connect() as conn:
        dropped = conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND query LIKE :listen"
            ),
            {"listen": f"LISTEN {CHANNEL}%"},
        ).all()
    assert len(dropped) == 2  # both relays' listening connections
    # Notifications sent while b is away are lost (its loops poll meanwhile); keep sending
    # until b, listening again, hears one.
    for attempt in range(int(DEADLINE)):
        a.publish([f"host:retry-{attempt}"])
        if heard_b.wait_for_any("host:retry-", 1.0):
            break
    else:
        pytest.fail("b did not hear a again after its connection dropped")


@on_postgresql
def test_a_relay_alone_sends_nothing_until_another_listens(database: Database) -> None:
    """kumo up alone on PostgreSQL pays no notification per wake-up; once another process
    listens, it is told."""
    with psycopg.connect(libpq_url(database.url), autocommit=True) as spy:
        spy.execute(f"LISTEN {CHANNEL}")
        spy.execute("SELECT 1")  # hears everything, but is not counted as a kumo process
        alone = NotifyRelay(database.url, Heard().deliver, peer_check=0.2).start()
        peer = None
        try:
            assert alone.wait_listening(DEADLINE)
            alone.publish(["host:nobody"])
            assert [n.payload for n in spy.notifies(timeout=2.0)] == []
            peer = NotifyRelay(database.url, Heard().deliver).start()
            assert peer.wait_listening(DEADLINE)
            for attempt in range(int(DEADLINE)):
                alone.publish([f"host:someone-{attempt}"])
                got = [n.payload for n in spy.notifies(timeout=1.0, stop_after=1)]
                if got:
                    assert got[0].split(" ")[1].startswith("host:someone-"), got
                    break
            else:
                pytest.fail("the relay never noticed the other listening process")
        finally:
            alone.stop()
            if peer is not None:
                peer.stop()


def test_payloads_are_split_below_postgresqls_limit() -> None:
    topics = [f"console:{i:036d}" for i in range(400)]
    found = payloads("origin", topics + topics[:10])
    assert len(found) > 1
    assert all(len(p) <= MAX_PAYLOAD and p.startswith("origin ") for p in found)
    assert [t for p in found for t in p.split(" ")[1:]] == topics
    assert payloads("origin", []) == []


def test_a_notification_kumo_did_not_write_is_dropped() -> None:
    """Anything else on the channel (no topics, or this process's own) delivers nothing;
    no connection is needed to see it."""
    heard = Heard()
    relay = NotifyRelay("postgresql://kumo@127.0.0.1:5432/kumo", heard.deliver)
    for payload in ("", "someone", "someone ", f"{relay.origin} host:h1"):
        relay._receive(payload)
    assert heard.topics == []
    relay._receive("someone host:h1 scheduler")
    assert heard.topics == ["host:h1", "scheduler"]
