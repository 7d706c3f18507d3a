"""The lifecycle runner (kumo.core.operations) on every database backend: an operation's
action is recorded in its own transaction, the hosts are woken only once it committed, a
lost update repeats the whole operation, and a refused one leaves nothing behind."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from test_servers import Compute

from kumo.config import SchedulerConfig
from kumo.core import operations, wakeup
from kumo.core.compute import server_create, servers, stuck
from kumo.core.compute import server_operations as ops
from kumo.core.errors import Conflict
from kumo.core.operations import Env, Operation, Result
from kumo.core.policy import Context
from kumo.db import models as m

ENV = Env(SchedulerConfig(), 60.0)


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _placed(compute: Compute) -> tuple[str, Context]:
    created = compute.create(compute.cloud.admin)
    assert created.status_code == 202, created.text
    server_id: str = created.json()["server"]["id"]
    compute.converge()
    ctx = Context(
        user_id="op-test", user_domain_id="default", roles=frozenset({"admin"}), system=True
    )
    return server_id, ctx


def _actions(compute: Compute, server_id: str) -> list[str]:
    with compute.db.session() as session:
        return list(
            session.scalars(
                select(m.InstanceAction.action).where(m.InstanceAction.instance_id == server_id)
            )
        )


def test_a_lost_update_repeats_the_operation_and_it_is_recorded_once(compute: Compute) -> None:
    server_id, ctx = _placed(compute)
    attempts: list[int] = []

    def rename(session: Session, ctx: Context, req: str, env: Env) -> Result[None]:
        instance = servers.get(session, ctx, req)
        instance.name = f"renamed-{len(attempts)}"
        attempts.append(1)
        if len(attempts) == 1:
            raise StaleDataError("another writer won")
        return Result(None, instance)

    topic = wakeup.host_topic(compute.host_id)
    before = wakeup.mark(topic)
    operations.run(compute.db, ctx, Operation("rename", str, rename), server_id, ENV)
    assert len(attempts) == 2
    assert _actions(compute, server_id).count("rename") == 1
    assert compute.show(server_id, compute.cloud.admin)["name"] == "renamed-1"
    assert wakeup.mark(topic) == before + 1  # once, after the commit


def test_a_refused_operation_writes_records_and_wakes_nothing(compute: Compute) -> None:
    server_id, ctx = _placed(compute)

    def refuse(session: Session, ctx: Context, req: str, env: Env) -> Result[None]:
        instance = servers.get(session, ctx, req)
        instance.name = "half-written"
        raise Conflict("refused after writing")

    topic = wakeup.host_topic(compute.host_id)
    before, recorded = wakeup.mark(topic), _actions(compute, server_id)
    with pytest.raises(Conflict):
        operations.run(compute.db, ctx, Operation("refuse", str, refuse), server_id, ENV)
    assert compute.show(server_id, compute.cloud.admin)["name"] != "half-written"
    assert _actions(compute, server_id) == recorded
    assert wakeup.mark(topic) == before


def test_a_request_of_another_type_is_refused_before_any_transaction(compute: Compute) -> None:
    def never(session: Session, ctx: Context, req: int, env: Env) -> Result[None]:
        raise AssertionError("not reached")

    ctx = Context(
        user_id="op-test", user_domain_id="default", roles=frozenset({"admin"}), system=True
    )
    with pytest.raises(TypeError):
        operations.run(compute.db, ctx, Operation("typed", int, never), "a string", ENV)  # type: ignore[arg-type]


def test_a_create_run_from_core_records_each_server_and_wakes_the_scheduler(
    compute: Compute,
) -> None:
    """No HTTP handler involved: the runner records the ``create`` action of every server
    of a multiple create and wakes the scheduler after the commit."""
    ctx = Context(
        user_id="op-test",
        user_domain_id="default",
        roles=frozenset({"member"}),
        project_id="op-project",
        request_id="req-op-create",
    )
    request = server_create.CreateRequest(
        name="core", flavor_id="1", image_id=compute.image_id, min_count=2, max_count=2
    )
    before = wakeup.mark(wakeup.SCHEDULER)
    done = operations.run(compute.db, ctx, ops.CREATE, request, ENV)
    ids = [i.id for i in done.value.instances]
    assert len(ids) == 2
    assert wakeup.mark(wakeup.SCHEDULER) == before + 1
    with compute.db.session() as session:
        rows = session.scalars(
            select(m.InstanceAction).where(m.InstanceAction.instance_id.in_(ids))
        ).all()
        assert sorted((r.instance_id, r.action, r.request_id) for r in rows) == sorted(
            (i, "create", "req-op-create") for i in ids
        )
    compute.converge()
    assert {compute.show(i, compute.cloud.admin)["status"] for i in ids} == {"ACTIVE"}


def test_the_runner_checks_the_declared_transition_before_execute(compute: Compute) -> None:
    """Phase 3: a server whose state the transition table refuses never reaches execute,
    and nothing is recorded or woken."""
    server_id, ctx = _placed(compute)  # ACTIVE: "start" is refused
    ran: list[str] = []

    def execute(session: Session, ctx: Context, req: ops.ServerRequest, env: Env) -> Result[None]:
        ran.append(req.server_id)
        return Result(None, servers.get(session, ctx, req.server_id))

    op = Operation("start", ops.ServerRequest, execute, transition="start")
    topic = wakeup.host_topic(compute.host_id)
    before = wakeup.mark(topic)
    with pytest.raises(Conflict, match=r"Cannot 'start' instance .* in vm_state active"):
        operations.run(compute.db, ctx, op, ops.ServerRequest(server_id), ENV)
    assert ran == []
    assert "start" not in _actions(compute, server_id)
    assert wakeup.mark(topic) == before


def test_a_stuck_task_is_resolved_as_an_operation_recorded_and_woken(compute: Compute) -> None:
    """The controller's stuck-task resolution runs through the runner: the server's
    ``task_deadline`` action says why, and its host's agent is woken after the commit."""
    server_id, ctx = _placed(compute)
    operations.run(compute.db, ctx, ops.STOP, ops.ServerRequest(server_id), ENV)
    with compute.db.session() as session:
        row = session.get(m.Instance, server_id)
        assert row is not None and row.task_state == "powering-off"
        row.task_deadline = row.task_deadline.replace(year=2000)
    topic = wakeup.host_topic(compute.host_id)
    before = wakeup.mark(topic)
    assert stuck.resolve_all(compute.db) == 1
    assert stuck.resolve_all(compute.db) == 0  # resolved once
    assert wakeup.mark(topic) == before + 1
    with compute.db.session() as session:
        action = session.scalars(
            select(m.InstanceAction).where(
                m.InstanceAction.instance_id == server_id,
                m.InstanceAction.action == stuck.ACTION,
            )
        ).one()
        assert action.finish_time is not None
        assert "powering-off" in (action.message or "")
    assert compute.show(server_id, compute.cloud.admin)["status"] == "ERROR"
