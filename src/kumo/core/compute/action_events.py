"""The events of instance actions, written by a recorder (kumo.core.recording).

Nova's compute manager and conductor wrap each piece of work they do for an action in an
event (``compute_stop_instance``, ``conductor_live_migrate_instance``, ...) that
``openstack server event show`` lists with its start, finish and result. kumo's work is
done by agents that report observations, not by functions that return, so the events are
derived from what the database already says, in the flush that says it:

- an instance action inserted (by the lifecycle runner, or by create) opens the events
  ``EVENTS`` names for it, on the host that does the work;
- the action's ``finish_time`` going from None to a value (``end_action``, a runner
  operation with nothing left for an agent) finishes its open events, with result Error
  when its message says so (the message is then the event's traceback);
- the server's ``task_state`` ending (the agent reported the work done, or it failed and
  the server is in ERROR) finishes the actions that the task carried and their events
  (not those an agent's report ends: ``ENDED_BY_REPORT``).

Every path that finishes a server's work therefore records the event, including the ones
that know nothing of events (agent reports, stuck-task resolution, HA).

Unlike recording.py's general rule, this recorder changes rows besides its own, on
purpose: an action whose task ended gets its ``finish_time`` (and ``Error`` as its message
when the server went to ERROR, as Nova marks an action with a failed event), because that
task's end *is* the action's end and no path records it otherwise. Explicit ends are
handled first, so an ``end_action`` message in the same flush decides the result
(``end_action`` does not autoflush, so the task's end and its message flush together).

kumo runs each action's parts as one unit of agent work, so an action with several Nova
events (a resize's prep/resize/finish) opens them together and finishes them together.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from kumo.db import models as m
from kumo.db.action_events import ERROR, SUCCESS, InstanceActionEvent
from kumo.db.types import utcnow

# Nova's events for each action kumo records, in the order Nova opens them (the names are
# Nova's: ``<prefix>_<function>`` of the conductor or compute manager method, or the
# EventReporter names it uses inline). Actions Nova runs in its API alone (lock, fixed IPs,
# security groups) have none.
EVENTS: dict[str, tuple[str, ...]] = {
    "create": ("compute__do_build_and_run_instance",),
    "delete": ("compute_terminate_instance",),
    "start": ("compute_start_instance",),
    "stop": ("compute_stop_instance",),
    "reboot": ("compute_reboot_instance",),
    "pause": ("compute_pause_instance",),
    "unpause": ("compute_unpause_instance",),
    "suspend": ("compute_suspend_instance",),
    "resume": ("compute_resume_instance",),
    "rebuild": ("rebuild_server", "compute_rebuild_instance"),
    "evacuate": ("rebuild_server", "compute_rebuild_instance"),
    "resize": (
        "conductor_migrate_server",
        "cold_migrate",
        "compute_prep_resize",
        "compute_resize_instance",
        "compute_finish_resize",
    ),
    "migrate": (
        "conductor_migrate_server",
        "cold_migrate",
        "compute_prep_resize",
        "compute_resize_instance",
        "compute_finish_resize",
    ),
    "confirmResize": ("compute_confirm_resize",),
    "revertResize": ("compute_revert_resize", "compute_finish_revert_resize"),
    "live-migration": (
        "conductor_live_migrate_instance",
        "compute_check_can_live_migrate_destination",
        "compute_check_can_live_migrate_source",
        "compute_pre_live_migration",
        "compute_live_migration",
        "compute_post_live_migration_at_destination",
    ),
    "live_migration_force_complete": ("compute_live_migration_force_complete",),
    "live_migration_cancel": ("compute_live_migration_abort",),
    "shelve": ("compute_shelve_instance",),
    "shelveOffload": ("compute_shelve_offload_instance",),
    "unshelve": ("get_image_info", "schedule_instances", "compute_unshelve_instance"),
    "createImage": ("compute_snapshot_instance",),
    "createBackup": ("compute_backup_instance",),
    "rescue": ("compute_rescue_instance",),
    "unrescue": ("compute_unrescue_instance",),
    "trigger_crash_dump": ("compute_trigger_crash_dump",),
    # kumo's own: a guest that exited unexpectedly, started again by the cloud
    # (kumo.core.compute.guest_restart); named as Nova would name its compute method.
    "restart": ("compute_restart_instance",),
    "attach_volume": ("compute_attach_volume",),
    "detach_volume": ("compute_detach_volume",),
    "attach_interface": ("compute_attach_interface",),
    "detach_interface": ("compute_detach_interface",),
}

# Actions whose end is an agent's report on them (end_action), not the end of a task: they
# set none, so another action's task ending says nothing about them.
ENDED_BY_REPORT = frozenset({"attach_volume", "detach_volume", "trigger_crash_dump"})

# Events Nova runs in its conductor, on the conductor's host rather than the server's.
_CONDUCTOR = frozenset(
    {
        "conductor_migrate_server",
        "cold_migrate",
        "conductor_live_migrate_instance",
        "rebuild_server",
        "get_image_info",
        "schedule_instances",
    }
)

# Nova's words when a server is deleted while it is still being built.
DISAPPEARED = "Instance disappeared during build."

# The messages end_action writes for a failure ("Error: ...", "Cancelled: ...").
_FAILED = ("Error", "Cancelled")


def failed(message: str | None) -> bool:
    """Whether an action's message says its work failed."""
    return message is not None and message.startswith(_FAILED)


def record(session: Session) -> None:
    """The recorder: open, then finish, the events this flush's changes imply."""
    with session.no_autoflush:
        opened = _open(session, [a for a in session.new if isinstance(a, m.InstanceAction)])
        for action in _ended_actions(session):
            _finish_action_events(session, action, opened.get(id(action), []))
        for instance in _ended_tasks(session):
            _finish_task(session, instance, opened)


def _open(
    session: Session, actions: list[m.InstanceAction]
) -> dict[int, list[InstanceActionEvent]]:
    """The events of each new action, keyed by the action object's identity (it has no
    id before the flush)."""
    opened: dict[int, list[InstanceActionEvent]] = {}
    for action in actions:
        if action.start_time is None:
            # Fixed now rather than by the column default at INSERT, so that its events
            # begin with it and an action finished in its own transaction ends after it.
            action.start_time = utcnow()
            if action.finish_time is not None:
                action.finish_time = max(action.finish_time, action.start_time)
        names = EVENTS.get(action.action, ())
        if not names:
            continue
        instance = session.get(m.Instance, action.instance_id)
        start = action.start_time
        rows = [
            InstanceActionEvent(
                action=action, event=name, start_time=start, host=_host(session, name, instance)
            )
            for name in names
        ]
        session.add_all(rows)
        opened[id(action)] = rows
        if action.finish_time is not None:  # finished already (nothing left for an agent)
            _finish(rows, action.message, instance, session)
    return opened


def _ended_actions(session: Session) -> Iterable[m.InstanceAction]:
    for obj in session.dirty:
        if isinstance(obj, m.InstanceAction) and obj.finish_time is not None:
            history = inspect(obj).attrs.finish_time.history
            if history.added and None in (history.deleted or [None]):
                yield obj


def _ended_tasks(session: Session) -> Iterable[m.Instance]:
    for obj in session.dirty:
        if isinstance(obj, m.Instance) and obj.task_state is None:
            history = inspect(obj).attrs.task_state.history
            if history.added == [None] and history.deleted != [None]:
                yield obj


def _open_events(session: Session, action_ids: list[int]) -> list[InstanceActionEvent]:
    if not action_ids:
        return []
    return list(
        session.scalars(
            select(InstanceActionEvent).where(
                InstanceActionEvent.action_id.in_(action_ids),
                InstanceActionEvent.finish_time.is_(None),
            )
        )
    )


def _finish_action_events(
    session: Session, action: m.InstanceAction, pending: list[InstanceActionEvent]
) -> None:
    rows = pending + _open_events(session, [action.id] if action.id is not None else [])
    _finish(rows, action.message, session.get(m.Instance, action.instance_id), session)


def _finish_task(
    session: Session, instance: m.Instance, opened: dict[int, list[InstanceActionEvent]]
) -> None:
    """The server's task ended: the actions it carried are done, in ERROR if it is."""
    actions = [
        a
        for a in session.scalars(
            select(m.InstanceAction).where(
                m.InstanceAction.instance_id == instance.id,
                m.InstanceAction.finish_time.is_(None),
            )
        )
        if a.finish_time is None and a.action in EVENTS and a.action not in ENDED_BY_REPORT
    ]
    actions += [
        a
        for a in session.new
        if isinstance(a, m.InstanceAction)
        and a.instance_id == instance.id
        and a.finish_time is None
        and a.action in EVENTS
        and a.action not in ENDED_BY_REPORT
    ]
    if not actions:
        return
    error = _fault(instance)
    now = utcnow()
    stored = _open_events(session, [a.id for a in actions if a.id is not None])
    for action in actions:
        rows = [r for r in stored if r.action_id == action.id] + opened.get(id(action), [])
        action.finish_time = now
        why = error
        if action.action == "restart" and (instance.deleted or instance.desired_state != "active"):
            # A guest restart (kumo.core.compute.guest_restart) waiting out its back-off when
            # the owner stopped or deleted the server: it did not happen, and says why.
            undone = "deleted" if instance.deleted else "stopped"
            note = f"; not restarted: the server was {undone} first"
            action.message = ((action.message or "The guest exited") + note)[-4000:]
        elif action.action == "create" and instance.deleted:
            why = DISAPPEARED  # deleted before its build ended: the build did not succeed
        if why is not None and action.message is None:
            action.message = ERROR  # as Nova marks an action one of whose events failed
        _finish(rows, f"{ERROR}: {why}" if why is not None else None, instance, session)


def _fault(instance: m.Instance) -> str | None:
    """What went wrong when a task ended with the server in ERROR (None: it went well)."""
    if instance.vm_state != "error":
        return None
    fault = instance.fault or {}
    return str(fault.get("details") or fault.get("message") or "the server went to ERROR")


def _finish(
    rows: list[InstanceActionEvent],
    message: str | None,
    instance: m.Instance | None,
    session: Session,
) -> None:
    now = utcnow()
    bad = failed(message)
    detail = (message or "").split(": ", 1)[-1] if bad else None
    for row in rows:
        if row.finish_time is not None:
            continue
        row.finish_time = now
        row.result = ERROR if bad else SUCCESS
        if bad:
            row.traceback = message
            row.details = detail
        if row.host is None:  # placed after it began (a create): where it ended
            row.host = _host(session, row.event, instance)


def _host(session: Session, event: str, instance: m.Instance | None) -> str | None:
    """Where the event's work runs: the conductor's events here (Nova records its
    conductor's host), the others on the server's host by name (None: not placed yet)."""
    if event in _CONDUCTOR:
        return socket.gethostname()
    if instance is None or instance.host_id is None:
        return None
    host = session.get(m.Host, instance.host_id)
    return host.name if host is not None else None


def events_of(session: Session, action: m.InstanceAction) -> list[InstanceActionEvent]:
    """The events of one action (the caller has checked it may see the action)."""
    return list(
        session.scalars(
            select(InstanceActionEvent).where(InstanceActionEvent.action_id == action.id)
        )
    )
