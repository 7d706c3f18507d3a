"""`kumo db check` finds and repairs compute inconsistencies: leaked or missing allocations,
servers on unknown hosts, tasks past their deadline."""

from __future__ import annotations

import datetime as dt
import uuid

from kumo.core.checks import repair_by_operations, run_checks
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.types import utcnow

FLAVOR = {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 128, "disk": 1}


def _host(database: Database) -> str:
    host_id = str(uuid.uuid4())
    with database.session() as session:
        session.add(
            m.Host(
                id=host_id,
                name=f"h-{host_id[:6]}",
                agent_api_versions=["v1"],
                capabilities={},
                inventory={},
            )
        )
    return host_id


def _server(database: Database, host_id: str | None, **fields: object) -> str:
    server_id = str(uuid.uuid4())
    with database.session() as session:
        session.add(
            m.Instance(
                id=server_id,
                name="vm",
                project_id="p",
                user_id="u",
                host_id=host_id,
                flavor_id="1",
                flavor=FLAVOR,
                vm_state="active",
                **fields,
            )
        )
    return server_id


def _checks(database: Database, repair: bool = False) -> list[str]:
    """As `kumo db check [--repair]` runs them."""
    with database.session() as session:
        found = [p.check for p in run_checks(session, repair=repair)]
    if repair:
        repair_by_operations(database)
    return found


def test_leaked_and_missing_allocations_are_repaired(database: Database) -> None:
    host_id = _host(database)
    gone = _server(database, host_id, deleted=True)
    live = _server(database, host_id)
    with database.session() as session:
        session.add(
            m.Allocation(instance_id=gone, host_id=host_id, vcpus=1, memory_mb=128, disk_gb=1)
        )
    found = _checks(database)
    assert "allocations of deleted servers" in found
    assert "servers without their allocation" in found
    _checks(database, repair=True)
    assert _checks(database) == []
    with database.session() as session:
        assert session.get(m.Allocation, gone) is None
        claim = session.get(m.Allocation, live)
        assert (claim.host_id, claim.vcpus, claim.memory_mb, claim.disk_gb) == (host_id, 1, 128, 1)


def test_server_on_unknown_host_needs_an_operator(database: Database) -> None:
    server_id = _server(database, str(uuid.uuid4()))
    with database.session() as session:
        problems = run_checks(session, repair=True)
    orphan = [p for p in problems if p.check == "servers on unregistered hosts"]
    assert orphan and not orphan[0].repairable and server_id in orphan[0].detail


def test_task_past_deadline_is_resolved_to_error(database: Database) -> None:
    server_id = _server(
        database, None, task_state="powering-off", task_deadline=utcnow() - dt.timedelta(minutes=1)
    )
    assert "tasks past their deadline" in _checks(database)
    _checks(database, repair=True)
    with database.session() as session:
        server = session.get(m.Instance, server_id)
        assert (server.vm_state, server.task_state) == ("error", None)
        assert "did not finish in time" in server.fault["message"]
