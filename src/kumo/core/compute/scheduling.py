"""Placing new (and unshelved) servers, as a lifecycle operation (kumo.core.operations):
the scheduler (kumo.controller.scheduler) runs ``PLACE`` for each batch of waiting
servers. Under the claims lock the operation declares, the hosts' free capacity is read
once and decremented in memory as each server is placed; each placed server's task moves
from waiting to ``spawning`` and the runner wakes the chosen hosts' agents after the
commit. No host fits: the server goes to ERROR with a fault that says why (an unshelve
waits SHELVED_OFFLOADED). Placement records no instance action (Nova records none).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.compute import instance_actions, nics, placement, shelve
from kumo.core.compute.servers import TASK_DEADLINE
from kumo.core.operations import CLAIMS, Env, Operation, Result
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.types import utcnow

log = logging.getLogger(__name__)

# A new server waits for a host in "scheduling", an unshelved one in "unshelving".
WAITING_TASKS = ("scheduling", shelve.UNSHELVING)


@dataclass(frozen=True)
class PlaceRequest:
    """The servers to place, in this order."""

    instance_ids: tuple[str, ...]


def _place(
    session: Session, ctx: Context, req: PlaceRequest, env: Env
) -> Result[dict[str, str | None]]:
    """Per server looked at, the chosen host id or None (ERROR, or nothing to do)."""
    cfg, heartbeat_timeout = env.scheduler, env.heartbeat_timeout
    instance_ids = list(req.instance_ids)
    placed: dict[str, str | None] = {}
    states = placement.host_states(session, cfg, heartbeat_timeout)
    # No host registered at all: a cloud starting up (kumo up's agent registers a moment
    # after the API answers). Servers wait that long for one before No valid host.
    if not states:
        young = utcnow() - dt.timedelta(seconds=heartbeat_timeout)
        instance_ids = _old_enough_to_fail(session, instance_ids, young)
    # The batch's rows and which of them belong to a server group, in two queries.
    rows = {
        i.id: i for i in session.scalars(select(m.Instance).where(m.Instance.id.in_(instance_ids)))
    }
    grouped = set(
        session.scalars(
            select(m.ServerGroupMember.instance_id).where(
                m.ServerGroupMember.instance_id.in_(instance_ids)
            )
        )
    )
    for instance_id in instance_ids:
        instance = rows.get(instance_id)
        if (
            instance is None
            or instance.deleted
            or instance.host_id is not None
            or instance.task_state not in WAITING_TASKS
        ):
            placed[instance_id] = None
            continue
        # A member's peers are read as placed so far (earlier ones of this batch too).
        request = placement.request_for(
            session, instance, placement.BOOT, in_group=instance_id in grouped
        )
        selection = placement.select_hosts(request, states, cfg)
        chosen = selection.best
        if chosen is None:
            _no_valid_host(session, instance, selection)
            placed[instance_id] = None
            continue
        placement.claim(session, instance.id, chosen, request.need)
        instance.host_id = chosen.host.id
        nics.follow_host(session, instance)
        # As Nova's conductor: the server is now in its host's zone.
        instance.availability_zone = chosen.zone
        instance.requested_host_id = None
        instance.task_state = "spawning"
        instance.task_deadline = utcnow() + TASK_DEADLINE
        placed[instance_id] = chosen.host.id
    hosts = tuple(dict.fromkeys(h for h in placed.values() if h))
    return Result(placed, other_hosts=hosts)


PLACE = Operation("schedule", PlaceRequest, _place, locks=(CLAIMS,))


def _old_enough_to_fail(session: Session, instance_ids: list[str], young: dt.datetime) -> list[str]:
    """Of `instance_ids`, those created before `young` (they fail: no host came)."""
    if not instance_ids:
        return []
    query = select(m.Instance.id).where(
        m.Instance.id.in_(instance_ids), m.Instance.created_at < young
    )
    old = set(session.scalars(query))
    kept = [i for i in instance_ids if i in old]
    if len(kept) < len(instance_ids):
        log.info("%d server(s) wait for a host to register", len(instance_ids) - len(kept))
    return kept


def _no_valid_host(session: Session, instance: m.Instance, selection: placement.Selection) -> None:
    """No host fits: an unshelve waits SHELVED_OFFLOADED, a new server goes to ERROR, with
    a fault that says, host by host, why."""
    detail = selection.explain() or "no hosts are registered"
    if shelve.no_host(session, instance, detail):
        log.info("server %s: no valid host to unshelve on (%s)", instance.id, detail)
        return
    instance.vm_state = "error"
    instance.task_state = None
    instance.task_deadline = None
    instance.fault = {
        "code": 500,
        "created": utcnow().isoformat() + "Z",
        "message": f"{placement.NO_VALID_HOST} There are not enough hosts available.",
        "details": detail,
    }
    instance_actions.end_action(session, instance.id, "create", f"Error: {placement.NO_VALID_HOST}")
    log.info("server %s: no valid host (%s)", instance.id, detail)
