"""What a host agent sees and says: the servers assigned to it, and what it observed.

The agent is level-triggered: it gets every server of its host with the desired state and
generation, makes the guests match, and reports power state plus the generation it acted
on. Reports for an older generation are still recorded as observations but never finish a
newer task.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.compute import (
    consoles,
    guest_restart,
    instance_actions,
    moves,
    nics,
    servers,
    shelve,
    states,
)
from kumo.core.errors import BadRequest, Conflict, NotFound
from kumo.core.images import data
from kumo.db import models as m
from kumo.db.types import utcnow
from kumo.protocol import ConsoleEndpoints


def work_for_host(
    session: Session, host_id: str, pending_only: bool = False
) -> list[dict[str, Any]]:
    """The servers of this host, each with its migration if one involves this host, plus
    the servers that are moving to it (before the switch) or away from it (the source
    still cleans up after the switch): ``on_host`` says which is which.

    ``pending_only``: of the host's own servers, just those with a request the agent has
    not yet reported on (``generation`` ahead of ``observed_generation``) or a migration
    under way: the answer to a wake-up. The full list, which also lets the agent notice
    guests that changed by themselves, is the periodic resync."""
    from kumo.core.compute import migrations  # imports this module

    moving: dict[str, m.Migration] = {}
    for row in migrations.pending_for_host(session, host_id):
        known = moving.get(row.instance_uuid)
        if known is None or row.id > known.id:  # the latest one counts
            moving[row.instance_uuid] = row
    query = select(m.Instance).where(m.Instance.host_id == host_id, m.Instance.deleted.is_(False))
    if pending_only:
        wanted = m.Instance.generation > m.Instance.observed_generation
        if moving:
            wanted = wanted | m.Instance.id.in_(list(moving))
        query = query.where(wanted)
    from kumo.core.volume import reports as volume_reports  # block storage imports compute

    items = []
    instances = list(session.scalars(query))
    disks = volume_reports.disks_for_servers(session, [i.id for i in instances])
    nic_views = nics.work_nics(session, instances)
    for i in instances:
        mine = moving.pop(i.id, None)
        view = migrations.agent_view(mine, host_id) if mine is not None else None
        item = work_item(session, i, disks.get(i.id, []), nic_views.get(i.id, []))
        items.append({**item, "on_host": True, "migration": view})
    for instance_id, row in sorted(moving.items()):
        instance = session.get(m.Instance, instance_id)
        if instance is None:
            continue
        view = migrations.agent_view(row, host_id)
        if view["role"] == "dest":  # it starts the guest with the source's display
            view["source_display"] = consoles.display_on(session, instance_id, row.source_host_id)
        items.append({**work_item(session, instance), "on_host": False, "migration": view})
    return items


def work_item(
    session: Session,
    i: m.Instance,
    disks: list[dict[str, Any]] | None = None,
    nic_views: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One server as its agent sees it. Some requests live in another row: createImage (the
    snapshot image to fill, found by its ``instance_uuid``), rescue (the rescue image,
    recorded with the rescue instance action) and trigger_crash_dump (its unfinished
    instance action, which has no task state: ``crash_dump``). ``disks`` and ``nic_views``:
    its volumes and NICs, when the caller read them for many servers at once."""
    extra: dict[str, Any] = {}
    if i.task_state in states.UPLOAD_TASKS:
        snapshot = instance_actions.pending_snapshot(session, i)
        extra["snapshot_image_id"] = snapshot.id if snapshot is not None else None
    if i.task_state in states.SHELVE_TASKS:
        # Uploaded already (the agent stopped before destroying the guest): offload only.
        extra["shelved_image_ready"] = shelve.image_ready(session, i)
    if i.desired_state == "rescued":
        extra["rescue_image_id"] = instance_actions.rescue_image_id(session, i)
    if nic_views is None:
        nic_views = nics.work_nics(session, [i]).get(i.id, [])
    if nic_views:
        extra["nics"] = nic_views
    if disks is None:
        from kumo.core.volume import reports as volume_reports  # block storage imports compute

        disks = volume_reports.disks_for_server(session, i)
    if disks:
        extra["volumes"] = disks
    if (
        i.generation > i.observed_generation
        and i.task_state is None
        and instance_actions.pending_crash_dumps(session, i)
    ):
        extra["crash_dump"] = True
    return {
        "id": i.id,
        "name": i.name,
        "hostname": i.hostname,
        "project_id": i.project_id,
        "flavor": i.flavor,
        "image_id": shelve.boot_image(i),
        "key_name": i.key_name,
        "key_data": i.key_data,
        "user_data": i.user_data,
        "metadata": i.meta,
        "config_drive": i.config_drive,
        "availability_zone": i.availability_zone,
        "desired_state": i.desired_state,
        "reboot_kind": i.reboot_kind,
        "generation": i.generation,
        "observed_generation": i.observed_generation,
        "vm_state": i.vm_state,
        "task_state": i.task_state,
        "launch_index": i.launch_index,
        **extra,
    }


@dataclass(frozen=True)
class Observation:
    power_state: str
    generation: int
    fault: str | None = None
    gone: bool = False
    # A request that failed without harming the guest (a snapshot): the server keeps its
    # state, the task ends, the instance action says why.
    task_error: str | None = None
    # Where the guest's consoles listen (kumo.protocol.ConsoleEndpoints; None: none). Only
    # when ``consoles_seen``: an observation that did not look (or an older agent's)
    # leaves what was known.
    consoles: ConsoleEndpoints | None = None
    consoles_seen: bool = False
    # The driver's word on the power state (why a CRASHED guest is: killed, crashed...).
    detail: str | None = None

    @classmethod
    def parse(cls, body: Any) -> Observation:
        if not isinstance(body, dict):
            raise BadRequest("Expecting an observation object.")
        power = body.get("power_state")
        generation = body.get("generation")
        if power not in states.POWER_BY_NAME or not isinstance(generation, int):
            raise BadRequest(
                "An observation needs power_state (one of "
                f"{sorted(states.POWER_BY_NAME)}) and an integer generation."
            )
        fault = body.get("fault")
        task_error = body.get("task_error")
        endpoints = None
        if body.get("consoles") is not None:
            try:
                endpoints = ConsoleEndpoints.from_dict(body["consoles"])
            except ValueError as exc:
                raise BadRequest(str(exc)) from None
        return cls(
            power,
            generation,
            str(fault)[:4000] if fault else None,
            bool(body.get("gone")),
            str(task_error)[:4000] if task_error else None,
            endpoints,
            "consoles" in body,
            str(body["detail"])[:1000] if body.get("detail") else None,
        )


def record(session: Session, host_id: str, instance_id: str, obs: Observation) -> list[str]:
    """Record what the agent saw and finish the request it answers. Returns the images
    deleted on the way (an unshelved server's snapshot), whose data the caller removes."""
    instance = session.get(m.Instance, instance_id)
    if instance is None or instance.deleted or instance.host_id != host_id:
        raise NotFound(f"Instance {instance_id} is not on host {host_id}.")
    if obs.gone:
        consoles.forget(session, instance_id)
    elif obs.consoles_seen:
        consoles.observe(session, host_id, instance_id, obs.consoles)
    instance.power_state = states.POWER_BY_NAME[obs.power_state]
    if obs.generation != instance.generation:
        return []  # about an older request: keep waiting for the current one
    if instance.task_state == "migrating" and not obs.gone:
        return []  # the migration's own reports end that task (kumo.core.compute.migrations)
    if instance.task_state in states.SHELVE_TASKS and instance.desired_state != "deleted":
        if obs.gone:
            shelve.shelved(session, instance)
        else:
            shelve.failed(session, instance, obs.task_error or obs.fault or "not shelved")
        return []
    unshelving = instance.vm_state in shelve.UNSHELVE_VM_STATES
    _record(session, host_id, instance, obs)
    if instance.deleted:  # deleted while unshelving: its snapshot went with it
        return [instance.shelved_image_id] if instance.shelved_image_id else []
    if unshelving and instance.vm_state in ("active", "stopped"):
        dropped = shelve.unshelved(session, instance)
        return [dropped] if dropped else []
    return []


def _record(session: Session, host_id: str, instance: m.Instance, obs: Observation) -> None:
    crash_dumps = (
        instance_actions.pending_crash_dumps(session, instance) if not instance.task_state else []
    )
    if crash_dumps:
        # The agent sent the NMI (or says why not); the server's state is not the request's.
        error = obs.task_error or obs.fault
        for row in crash_dumps:
            row.finish_time = utcnow()
            if error:
                row.message = f"Error: {error}"[:4000]
        instance.observed_generation = obs.generation
    if (
        instance.task_state == "powering-on"
        and instance.vm_state == "active"
        and instance.power_state == states.CRASHED
        and guest_restart.exited_again(session, instance, obs.detail)
    ):
        instance.task_state = None  # that restart failed: this exit counts as one more
        instance.task_deadline = None
        # Flushed now: the task's end finishes the actions it carried, not the restart
        # action recorded for this exit below.
        session.flush()
    if (
        instance.task_state is None
        and instance.vm_state == "active"
        and instance.power_state in (states.SHUTDOWN, states.CRASHED, states.NOSTATE)
    ):
        if instance.power_state == states.CRASHED and guest_restart.exited(
            session, instance, obs.detail
        ):
            return  # killed or crashed: ACTIVE until the controller restarts it
        # The guest powered itself off (or vanished, as after a host reboot), or its
        # server opted out of restarts: show it as Nova does, SHUTOFF, not restarted.
        instance.vm_state = "stopped"
        instance.desired_state = "stopped"
        return
    if crash_dumps:
        return
    if obs.gone and instance.desired_state == "deleted":
        from kumo.core.compute import migrations

        migrations.on_server_gone(session, instance, host_id)
        servers.finish_delete(session, instance)
        return
    instance.observed_generation = obs.generation
    if instance.task_state in states.SNAPSHOT_TASKS:
        snapshot = instance_actions.pending_snapshot(session, instance)
        error = obs.task_error or obs.fault
        if snapshot is not None:  # the agent is done, yet the image has no data
            error = error or "the host finished without uploading the snapshot"
            instance_actions.drop_snapshot(session, snapshot)
        for action in instance_actions.SNAPSHOT_ACTIONS:
            instance_actions.end_action(
                session, instance.id, action, f"Error: {error}" if error else None
            )
        if not obs.fault:
            instance.task_state = None
            instance.task_deadline = None
            if error is not None:
                return
    if obs.fault:
        if instance.task_state == "rebuilding":
            moves.evacuation_rebuilt(session, instance, host_id, obs.fault)
        if instance.vm_state == "building":
            instance_actions.end_action(session, instance.id, "create", f"Error: {obs.fault}")
        instance.vm_state = "error"
        instance.task_state = None
        instance.task_deadline = None
        instance.fault = {
            "code": 500,
            "message": obs.fault[:255],
            "details": obs.fault,
            "created": utcnow().isoformat() + "Z",
        }
        return
    wanted = states.POWER_FOR_DESIRED.get(instance.desired_state)
    if wanted is None or instance.power_state != wanted:
        return
    if instance.vm_state == "building":
        instance_actions.end_action(session, instance.id, "create", None)
    if instance.vm_state == "building" or instance.task_state == "rebuilding":
        instance.launched_at = utcnow()
    if instance.task_state == "rebuilding":
        moves.evacuation_rebuilt(session, instance, host_id, None)
    # A finished resize waits for the user's confirm or revert (VERIFY_RESIZE).
    instance.vm_state = (
        "resized"
        if instance.task_state in ("resize_migrating", "resize_finish")
        else states.VM_STATE_FOR_DESIRED[instance.desired_state]
    )
    instance.task_state = None
    instance.reboot_kind = None
    instance.task_deadline = None
    instance.fault = None


# Task steps an agent may report while it works (Nova's createImage progression).
TASK_STEPS = {
    "image_snapshot": "image_pending_upload",
    "image_pending_upload": "image_uploading",
    "shelving": "shelving_image_pending_upload",
    "shelving_image_pending_upload": "shelving_image_uploading",
}


def set_task(
    session: Session, host_id: str, instance_id: str, generation: Any, task_state: Any
) -> None:
    """The agent moved a request one step on (e.g. the snapshot is taken, now uploading)."""
    if not isinstance(generation, int) or not isinstance(task_state, str):
        raise BadRequest("Expecting an integer generation and a task_state.")
    instance = session.get(m.Instance, instance_id)
    if instance is None or instance.deleted or instance.host_id != host_id:
        raise NotFound(f"Instance {instance_id} is not on host {host_id}.")
    if generation != instance.generation or instance.task_state == task_state:
        return
    if TASK_STEPS.get(instance.task_state or "") != task_state:
        raise Conflict(
            f"Instance {instance_id} is in task {instance.task_state}, not one that "
            f"moves on to {task_state}."
        )
    instance.task_state = task_state


# --- snapshot data an agent uploads ------------------------------------------------------
def begin_snapshot_upload(session: Session, image_id: str) -> m.Image:
    """An agent may upload only into a snapshot its server is still waiting for."""
    image = session.get(m.Image, image_id)
    props = (image.properties or {}) if image is not None else {}
    instance = session.get(m.Instance, str(props.get("instance_uuid") or ""))
    if (
        image is None
        or instance is None
        or instance.deleted
        or instance.desired_state == "deleted"
        or instance.task_state not in states.UPLOAD_TASKS
        or instance_actions.pending_snapshot(session, instance) is not image
    ):
        raise NotFound(f"Image {image_id} is not a snapshot in progress.")
    if image.status != "queued":
        raise Conflict(f"Image status transition from {image.status} to saving is not allowed")
    image.status = "saving"
    image.updated_at = utcnow()
    shelving = instance.task_state in states.SHELVE_TASKS
    instance.task_state = "shelving_image_uploading" if shelving else "image_uploading"
    return image


def _snapshot_server_gone(session: Session, image: m.Image) -> bool:
    instance = session.get(m.Instance, str((image.properties or {}).get("instance_uuid") or ""))
    return instance is None or instance.deleted or instance.desired_state == "deleted"


def finish_snapshot_upload(session: Session, image_id: str, stored: data.StoredData) -> list[str]:
    """Active with its data, unless the server was deleted meanwhile (data.Gone: the caller
    discards the data and calls abort_snapshot_upload). A backup then rotates its server's
    older backups out: the ids returned are images deleted, whose data the caller removes."""
    image = session.get(m.Image, image_id)
    if image is not None and _snapshot_server_gone(session, image):
        raise data.Gone("The server was deleted during its snapshot; the data was discarded.")
    return instance_actions.rotate_backups(session, data.finish_upload(session, image_id, stored))


def abort_snapshot_upload(session: Session, image_id: str) -> None:
    """After a failed upload: a snapshot whose server is gone is deleted; otherwise it waits
    queued until the agent reports how the request ended (record drops it then)."""
    image = session.get(m.Image, image_id)
    if image is None or image.status not in ("queued", "saving"):
        return
    if _snapshot_server_gone(session, image):
        instance_actions.drop_snapshot(session, image)
    else:
        data.abort_upload(session, image_id)


# --- images the agent fetches ------------------------------------------------------------
def image_for_host(session: Session, image_id: str) -> m.Image:
    """An image whose data an agent may fetch: any visibility (the host runs servers of every
    project), but only active or deactivated images with data."""
    image = session.get(m.Image, image_id)
    if image is None or image.status not in ("active", "deactivated") or image.size is None:
        raise NotFound(f"Image {image_id} has no data to fetch.")
    return image


def image_view(image: m.Image) -> dict[str, Any]:
    """What an agent needs to cache and boot an image."""
    return {
        "id": image.id,
        "name": image.name,
        "status": image.status,
        "disk_format": image.disk_format,
        "container_format": image.container_format,
        "size": image.size,
        "virtual_size": image.virtual_size,
        "checksum": image.checksum,
        "os_hash_algo": image.os_hash_algo,
        "os_hash_value": image.os_hash_value,
        "min_disk": image.min_disk,
        "min_ram": image.min_ram,
        "properties": dict(image.properties or {}),
    }


# --- console logs ------------------------------------------------------------------------
CONSOLE_MAX_BYTES = 64 * 1024
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f]")


def record_console(session: Session, host_id: str, instance_id: str, content: Any) -> None:
    """Keep the tail of a server's serial console as its agent last saw it."""
    if not isinstance(content, str):
        raise BadRequest("Expecting content: the console tail as a string.")
    instance = session.get(m.Instance, instance_id)
    if instance is None or instance.deleted or instance.host_id != host_id:
        raise NotFound(f"Instance {instance_id} is not on host {host_id}.")
    content = content[-CONSOLE_MAX_BYTES:]
    row = session.get(m.ConsoleLog, instance_id)
    if row is None:
        session.add(m.ConsoleLog(instance_id=instance_id, content=content, updated_at=utcnow()))
    else:
        row.content = content
        row.updated_at = utcnow()


def parse_console_length(args: Any) -> int | None:
    """The ``length`` of os-getConsoleOutput as Nova's schema takes it: an integer (or a
    string of one) >= -1, or null; -1 and null mean the whole log."""
    if not isinstance(args, dict) or set(args) - {"length"}:
        raise BadRequest(
            "Invalid input for field/attribute os-getConsoleOutput. Only 'length' is allowed."
        )
    value = args.get("length")
    if value is None:
        return None
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value))
    ):
        raise BadRequest(f"Invalid input for field/attribute length. Value: {value}.")
    length = int(value)
    if length < -1:
        raise BadRequest(
            f"Invalid input for field/attribute length. Value: {value}. "
            f"{value} is less than the minimum of -1"
        )
    return None if length == -1 else length


def console_output(session: Session, instance: m.Instance, length: int | None) -> str:
    """The last ``length`` lines of the console the agent reported (all when None).

    Like Nova: a server not yet on a host is not ready (409); control characters other than
    tab and newline are removed."""
    if instance.host_id is None:
        raise Conflict(f"Instance {instance.id} is not ready")
    row = session.get(m.ConsoleLog, instance.id)
    output = row.content if row is not None else ""
    if length is not None:
        output = "" if length == 0 else "\n".join(output.split("\n")[-length:])
    return _CONTROL.sub("", output)
