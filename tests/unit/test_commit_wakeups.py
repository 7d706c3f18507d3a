"""Wake-ups asked for in a transaction (kumo.core.commit_wakeups) fire once it commits and
never for one rolled back; a volume asked of its agent (volumes.ask) wakes that agent so,
whoever asked (no HTTP handler is involved here)."""

from __future__ import annotations

import uuid

import pytest

from kumo.core import wakeup
from kumo.core.commit_wakeups import wake_after_commit
from kumo.core.volume import volumes
from kumo.db import models as m
from kumo.db.engine import Database


def test_a_wake_up_fires_after_the_commit_only(database: Database) -> None:
    topic = f"test-{uuid.uuid4()}"
    before = wakeup.mark(topic)
    with database.session() as session:
        wake_after_commit(session, topic, topic)
        session.flush()
        assert wakeup.mark(topic) == before  # not yet: an agent would read the old rows
    assert wakeup.mark(topic) == before + 1  # once, however often it was asked


def test_a_rolled_back_transaction_wakes_nobody(database: Database) -> None:
    topic = f"test-{uuid.uuid4()}"
    before = wakeup.mark(topic)
    with pytest.raises(RuntimeError), database.session() as session:
        wake_after_commit(session, topic)
        raise RuntimeError("refused")
    with database.session():
        pass  # a later transaction of the same kind does not carry it over
    assert wakeup.mark(topic) == before


def test_a_volume_asked_of_its_agent_wakes_it_after_the_commit(database: Database) -> None:
    host_id, volume_id = str(uuid.uuid4()), str(uuid.uuid4())
    with database.session() as session:
        session.add(
            m.Host(id=host_id, name=f"h-{host_id[:6]}", agent_api_versions=["v1"],
                   capabilities={}, inventory={})
        )  # fmt: skip
        session.add(
            m.Volume(id=volume_id, project_id="p", user_id="u", size=1, status="available",
                     host_id=host_id, backend="file", generation=1, observed_generation=1)
        )  # fmt: skip
    topic = wakeup.volume_topic(host_id)
    before = wakeup.mark(topic)
    with database.session() as session:
        volume = session.get(m.Volume, volume_id)
        assert volume is not None
        volumes.ask(volume, "extending")
        assert wakeup.mark(topic) == before
    assert wakeup.mark(topic) == before + 1
