"""Shelve, shelveOffload and unshelve, with Nova's semantics.

A shelved server gives its host back: the agent stops the guest, uploads its root disk into
a snapshot image named ``<server>-shelved``, then destroys the guest and its disk. The
server keeps its id, ports and quota usage, but no host and no allocation
(SHELVED_OFFLOADED; Nova's default ``shelved_offload_time`` of 0 offloads at once, so the
SHELVED state is never held). Unshelve schedules it again like a new server and boots it
from that snapshot, which is deleted once the server runs.

Every step is a desired state in the database that an agent reconciles, so a crash at any
point resumes, and a shelve that fails leaves the server where it was (stopped) with the
reason in its instance action.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from kumo.core.compute import instance_actions, nics, servers, states
from kumo.core.errors import Conflict
from kumo.core.policy import Context
from kumo.db import models as m
from kumo.db.types import utcnow

UNSHELVE_VM_STATES = ("shelved", "shelved_offloaded")
# The unshelve request's scheduler task: the scheduler places it as it places a new server.
UNSHELVING = "unshelving"


def shelve(session: Session, ctx: Context, server_id: str) -> m.Instance:
    instance = servers.get(session, ctx, server_id)
    if instance.host_id is None:
        raise Conflict(f"Instance {server_id} is not ready")
    image = servers.snapshot_image(
        session, ctx, instance, f"{instance.name}-shelved", {}, "snapshot"
    )
    instance.shelved_image_id = image.id
    servers.ask(instance, None, "shelving")
    session.flush()
    return instance


def shelve_offload(session: Session, ctx: Context, server_id: str) -> m.Instance:
    """Offload a server held SHELVED on its host. This cloud offloads at once, so only a
    server that an older release left SHELVED is in that state; it is offloaded the same
    way (the agent destroys the guest; its snapshot already exists)."""
    instance = servers.get(session, ctx, server_id)
    if instance.host_id is None:
        offloaded(session, instance)
    else:
        servers.ask(instance, None, "shelving_offloading")
    return instance


def unshelve(session: Session, ctx: Context, server_id: str) -> m.Instance:
    instance = servers.get(session, ctx, server_id)
    image = session.get(m.Image, instance.shelved_image_id or "")
    if image is None or image.status != "active":
        raise Conflict(
            f"Instance {server_id} has no shelved image to boot from (it was deleted); "
            "delete the server, or rebuild it elsewhere from a new image."
        )
    if instance.host_id is None:
        from kumo.core.volume import attachments  # block storage imports compute

        # Its volumes on a host's local storage decide where it can run again.
        instance.requested_host_id = attachments.local_volume_host(session, instance)
        servers.ask(instance, "active", UNSHELVING)  # the scheduler places it
    else:
        servers.ask(instance, "active", "spawning")  # still on its host (SHELVED)
    return instance


def boot_image(instance: m.Instance) -> str | None:
    """The image the agent builds the root disk from: the shelved snapshot while unshelving."""
    return instance.shelved_image_id or instance.image_id


def offloaded(session: Session, instance: m.Instance) -> None:
    """The guest is gone from its host: release the claim, unbind the ports."""
    allocation = session.get(m.Allocation, instance.id)
    if allocation is not None:
        session.delete(allocation)
    instance.host_id = None
    nics.follow_host(session, instance)
    instance.vm_state = "shelved_offloaded"
    instance.power_state = states.NOSTATE
    instance.task_state = None
    instance.task_deadline = None
    instance_actions.end_action(session, instance.id, "shelve", None)
    instance_actions.end_action(session, instance.id, "shelveOffload", None)


def shelved(session: Session, instance: m.Instance) -> None:
    """The agent uploaded the snapshot and destroyed the guest (it reports the guest gone)."""
    instance.observed_generation = instance.generation
    offloaded(session, instance)


def image_ready(session: Session, instance: m.Instance) -> bool:
    """The shelved snapshot holds the disk: what is left of a shelve is the offload."""
    image = session.get(m.Image, instance.shelved_image_id or "")
    return image is not None and image.status == "active"


def failed(session: Session, instance: m.Instance, error: str) -> None:
    """The shelve did not happen: the server keeps its host (stopped, if the agent had
    stopped it), the snapshot that will never be filled is dropped, the action says why
    (as for createImage)."""
    snapshot = instance_actions.pending_snapshot(session, instance)
    if snapshot is not None:
        instance_actions.drop_snapshot(session, snapshot)
    instance.shelved_image_id = None
    if instance.power_state == states.SHUTDOWN and instance.vm_state != "stopped":
        # The agent stopped the guest for the snapshot: show it as it is (Nova's power
        # sync does the same), SHUTOFF, and do not start it behind the user's back.
        instance.vm_state = instance.desired_state = "stopped"
    instance.observed_generation = instance.generation
    instance.task_state = None
    instance.task_deadline = None
    instance_actions.end_action(session, instance.id, "shelve", f"Error: {error}")


def unshelved(session: Session, instance: m.Instance) -> str | None:
    """The server runs again: its shelved snapshot is deleted, as Nova deletes it. Returns
    the image whose data the caller removes."""
    dropped = servers.drop_shelved_image(session, instance)
    instance.shelved_image_id = None
    instance_actions.end_action(session, instance.id, "unshelve", None)
    return dropped


def no_host(session: Session, instance: m.Instance, detail: str) -> bool:
    """The scheduler found no host for an unshelve: the server stays SHELVED_OFFLOADED and
    can be unshelved again later (Nova reverts the task the same way). False when the
    server is not unshelving."""
    if instance.vm_state != "shelved_offloaded":
        return False
    instance.task_state = None
    instance.task_deadline = None
    instance.fault = {
        "code": 500,
        "created": utcnow().isoformat() + "Z",
        "message": "No valid host was found. There are not enough hosts available.",
        "details": detail,
    }
    instance_actions.end_action(
        session, instance.id, "unshelve", f"Error: No valid host ({detail})"
    )
    return True
