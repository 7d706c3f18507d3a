"""Wake-ups across processes (kumo.db.wakeup_relay): what one process relays reaches the
others' waiters, never itself twice, and a failing database is tried again. Two relays in
this process stand for two kumo processes: LISTEN/NOTIFY on PostgreSQL
(kumo.db.notify_relay), a polled table on MariaDB (kumo.db.table_relay)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

import psycopg
import pytest
from sqlalchemy import func, select, text

from kumo.core import wakeup
from kumo.db.engine import Database
from kumo.db.models import WakeupNote
from kumo.db.notify_relay import CHANNEL, NotifyRelay, libpq_url
from kumo.db.table_relay import TableRelay
from kumo.db.wakeup_relay import MAX_PAYLOAD, WakeupRelay, payloads
from kumo.runtime import wakeups_across_processes

on_postgresql = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
on_mariadb = pytest.mark.parametrize("backend", ["mariadb"], indirect=True)
relaying_backends = pytest.mark.parametrize("backend", ["postgresql", "mariadb"], indirect=True)

DEADLINE = 15.0
FAST = 0.2  # seconds between heartbeats in these tests, so peers are seen at once


def make_relay(
    database: Database, deliver: Callable[[Sequence[str]], None], peer_check: float = FAST
) -> WakeupRelay:
    """The relay kumo runs on this backend, as wakeups_across_processes picks it."""
    if database.backend == "postgresql":
        return NotifyRelay(database.url, deliver, peer_check=peer_check)
    return TableRelay(database.engine, deliver, peer_check=peer_check, poll=0.05)


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


def sees_peers(relay: WakeupRelay, count: int) -> bool:
    """Whether the relay counts exactly ``count`` other listeners within the deadline (a
    table relay learns of them by heartbeats; LISTEN/NOTIFY looks when it sends)."""
    if not isinstance(relay, TableRelay):
        return True
    waited = threading.Event()
    for _ in range(int(DEADLINE / 0.05)):
        if relay.peers == count:
            return True
        waited.wait(0.05)
    return False


def notes(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(WakeupNote)).scalar_one())


@pytest.fixture
def relays(database: Database) -> Iterator[list[tuple[WakeupRelay, Heard]]]:
    made: list[tuple[WakeupRelay, Heard]] = []
    for _ in range(2):
        heard = Heard()
        relay = make_relay(database, heard.deliver).start()
        made.append((relay, heard))
    try:
        for relay, _ in made:
            assert relay.wait_listening(DEADLINE), "the relay never started listening"
            assert sees_peers(relay, 1), "the relay never saw the other one listening"
        yield made
    finally:
        for relay, _ in made:
            relay.stop()


@relaying_backends
def test_a_wakeup_reaches_the_other_process_only(relays: list[tuple[WakeupRelay, Heard]]) -> None:
    (a, heard_a), (b, heard_b) = relays
    a.publish(["host:h1", "scheduler", "host:h1"])
    assert heard_b.wait_for("scheduler")
    assert heard_b.topics == ["host:h1", "scheduler"]  # each topic once
    b.publish(["volumes:h2"])
    assert heard_a.wait_for("volumes:h2")
    # a heard its own notification first (sent earlier) and dropped it
    assert heard_a.topics == ["volumes:h2"]


@relaying_backends
def test_notify_in_one_process_wakes_a_waiter_in_another(
    database: Database, relays: list[tuple[WakeupRelay, Heard]]
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
    database: Database, relays: list[tuple[WakeupRelay, Heard]]
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


@on_mariadb
def test_a_table_relay_alone_writes_no_notes_until_another_listens(database: Database) -> None:
    """kumo up alone on MariaDB writes nothing per wake-up; once another process
    heartbeats, it is told, and a stopped one is forgotten at once."""
    alone = make_relay(database, Heard().deliver).start()
    peer = None
    try:
        assert alone.wait_listening(DEADLINE)
        alone.publish(["host:nobody"])
        alone.publish(["host:nobody-either"])
        heard = Heard()
        peer = make_relay(database, heard.deliver).start()
        assert peer.wait_listening(DEADLINE) and sees_peers(alone, 1)
        # Only the topics published once a peer listened are ever written.
        alone.publish(["host:someone"])
        assert heard.wait_for("host:someone")
        assert "host:nobody" not in heard.topics and "host:nobody-either" not in heard.topics
        assert notes(database) == 1
        peer.stop()
        peer = None
        assert isinstance(alone, TableRelay)
        assert sees_peers(alone, 0), "a stopped relay still counted as listening"
    finally:
        alone.stop()
        if peer is not None:
            peer.stop()


@on_mariadb
def test_a_table_relay_retries_while_its_table_is_away(
    database: Database, relays: list[tuple[WakeupRelay, Heard]]
) -> None:
    """Errors (here: the notes table renamed away) are retried, and what could not be
    sent goes out once the table is back."""
    (a, _), (_, heard_b) = relays
    with database.engine.begin() as conn:
        conn.execute(text("RENAME TABLE wakeup_notes TO wakeup_notes_away"))
    try:
        a.publish(["host:while-away"])
        assert not heard_b.wait_for_any("host:while-away", 0.5)
    finally:
        with database.engine.begin() as conn:
            conn.execute(text("RENAME TABLE wakeup_notes_away TO wakeup_notes"))
    assert heard_b.wait_for("host:while-away")


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
