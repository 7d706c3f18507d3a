"""The ``events`` of an instance action as Nova's os-instance-actions show renders them,
per microversion and role (nova/api/openstack/compute/instance_actions.py):

- before 2.51 only those allowed ``os_compute_api:os-instance-actions:events`` (admin by
  default) get ``events`` at all; from 2.51 everyone who may see the action does;
- ``traceback`` is shown to admins only, at every version;
- from 2.62 ``hostId`` (the host hashed with the project, as a server's hostId) is shown
  to all, ``host`` to admins only;
- from 2.84 ``details`` is shown to those allowed ``...:events:details`` (admin by default).
"""

from __future__ import annotations

from typing import Any

from kumo.api.compute.server_views import host_id_hash
from kumo.core.microversion import APIVersion
from kumo.core.policy import Context
from kumo.db.action_events import InstanceActionEvent

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f"  # as the action's own start_time


def shows_events(ctx: Context, version: APIVersion) -> bool:
    """Whether the action's view has an ``events`` member at all."""
    return ctx.is_admin or version.at_least("2.51")


def event_views(
    rows: list[InstanceActionEvent], project_id: str, ctx: Context, version: APIVersion
) -> list[dict[str, Any]]:
    """The events of one action, newest first (Nova orders by creation, then id, desc).
    ``project_id``: the action's (the server's when the action has none), hashed into
    hostId."""
    ordered = sorted(rows, key=lambda e: (e.start_time, e.id), reverse=True)
    return [_view(e, project_id, ctx, version) for e in ordered]


def _view(
    e: InstanceActionEvent, project_id: str, ctx: Context, version: APIVersion
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "event": e.event,
        "start_time": e.start_time.strftime(TIME_FORMAT),
        "finish_time": e.finish_time.strftime(TIME_FORMAT) if e.finish_time else None,
        "result": e.result,
    }
    if ctx.is_admin:
        view["traceback"] = e.traceback
    if version.at_least("2.62"):
        if ctx.is_admin:
            view["host"] = e.host or ""
        view["hostId"] = host_id_hash(project_id, e.host)
    if version.at_least("2.84") and ctx.is_admin:
        view["details"] = e.details
    return view
