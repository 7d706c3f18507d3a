"""Nova's server vocabulary: vm_state, task_state, power_state and the status they show.

The API writes what the user wants (``desired_state``) and a task; the agent reports power
state; the status a client sees is derived here, in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from kumo.core.errors import Conflict

# power_state integers as Nova reports them.
NOSTATE, RUNNING, PAUSED, SHUTDOWN, CRASHED, SUSPENDED = 0, 1, 3, 4, 6, 7
POWER_BY_NAME = {
    "nostate": NOSTATE,
    "running": RUNNING,
    "paused": PAUSED,
    "shutdown": SHUTDOWN,
    "crashed": CRASHED,
    "suspended": SUSPENDED,
}

# vm_state reached when the agent observes the desired power state.
VM_STATE_FOR_DESIRED = {
    "active": "active",
    "stopped": "stopped",
    "paused": "paused",
    "suspended": "suspended",
    "rescued": "rescued",
}
POWER_FOR_DESIRED = {
    "active": RUNNING,
    "stopped": SHUTDOWN,
    "paused": PAUSED,
    "suspended": SUSPENDED,
    "rescued": RUNNING,
}

STATUS_BY_VM_STATE = {
    "building": "BUILD",
    "active": "ACTIVE",
    "stopped": "SHUTOFF",
    "paused": "PAUSED",
    "suspended": "SUSPENDED",
    "error": "ERROR",
    "deleted": "DELETED",
    "soft-delete": "SOFT_DELETED",
    "resized": "VERIFY_RESIZE",
    "rescued": "RESCUE",
    "shelved": "SHELVED",
    "shelved_offloaded": "SHELVED_OFFLOADED",
}
# Tasks that show through the status while in flight (Nova's state-to-status map).
STATUS_BY_TASK = {
    "rebooting": "REBOOT",
    "reboot_pending": "REBOOT",
    "reboot_started": "REBOOT",
    "rebooting_hard": "HARD_REBOOT",
    "reboot_pending_hard": "HARD_REBOOT",
    "reboot_started_hard": "HARD_REBOOT",
    "rebuilding": "REBUILD",
    "resize_prep": "RESIZE",
    "resize_migrating": "RESIZE",
    "resize_finish": "RESIZE",
    "resize_reverting": "REVERT_RESIZE",
    "migrating": "MIGRATING",
}
# createImage: the snapshot is taken, then waits for upload, then uploads (Nova's names).
SNAPSHOT_TASKS = ("image_snapshot", "image_pending_upload", "image_uploading")
# shelve: the guest is stopped and its disk uploaded the same way, then it is offloaded
# (destroyed on its host, the claim released). Nova's names.
SHELVE_TASKS = (
    "shelving",
    "shelving_image_pending_upload",
    "shelving_image_uploading",
    "shelving_offloading",
)
# The tasks whose agent uploads the root disk into a waiting image.
UPLOAD_TASKS = SNAPSHOT_TASKS + SHELVE_TASKS
ALL_STATUSES = (
    set(STATUS_BY_VM_STATE.values())
    | set(STATUS_BY_TASK.values())
    | {"UNKNOWN", "PASSWORD", "SHUTOFF"}
)


def status(vm_state: str, task_state: str | None) -> str:
    if task_state == "migrating" and vm_state in ("active", "paused"):
        return "MIGRATING"  # a paused server moves too, and shows it (as in Nova)
    if vm_state == "resized" and task_state == "resize_reverting":
        return "REVERT_RESIZE"  # Nova's map: a resized server going back
    if vm_state in ("active", "stopped") and task_state in STATUS_BY_TASK:
        return STATUS_BY_TASK[task_state]
    return STATUS_BY_VM_STATE.get(vm_state, "UNKNOWN")


def vm_states_for_status(wanted: str) -> list[str]:
    return [vm for vm, st in STATUS_BY_VM_STATE.items() if st == wanted]


# The transition table of servers: what each action may start from -------------------------


@dataclass(frozen=True)
class Allowed:
    """The (vm_state, task_state) pairs an action may start from: any of ``vm_states``
    (None: any vm_state) with any of ``task_states`` (by default, no task in flight)."""

    vm_states: frozenset[str] | None
    # None: whatever task is in flight (Nova checks only the vm_state of a tag change).
    task_states: frozenset[str | None] | None = frozenset({None})
    shown: str | None = None  # the action's name in a refusal, when not the table's key


def _allowed(
    *vm_states: str, tasks: tuple[str | None, ...] | None = (None,), shown: str | None = None
) -> Allowed:
    return Allowed(
        frozenset(vm_states) if vm_states else None,
        None if tasks is None else frozenset(tasks),
        shown,
    )


_INTERFACES = _allowed("active", "stopped", "paused")
_METADATA = _allowed("active", "paused", "suspended", "stopped")
# Server tags (2.26): the same vm_states, with or without a task in flight.
_TAGS = _allowed("active", "paused", "suspended", "stopped", tasks=None)


# Action (as the instance action records it) -> the states it may start from. Nova's
# check_instance_state decorators, in one place; a refusal is the 409 ``check`` words.
SERVER_TRANSITIONS: dict[str, Allowed] = {
    "start": _allowed("stopped"),
    "stop": _allowed("active", "error"),
    "pause": _allowed("active"),
    "unpause": _allowed("paused"),
    "suspend": _allowed("active"),
    "resume": _allowed("suspended"),
    "reboot": _allowed("active"),
    # A hard reboot may also take over a soft one still in flight.
    "reboot_hard": _allowed(
        "active",
        "stopped",
        "paused",
        "suspended",
        "error",
        tasks=(None, "rebooting", "reboot_pending"),
        shown="reboot",
    ),
    "rebuild": _allowed("active", "stopped", "error"),
    "resize": _allowed("active", "stopped"),
    "confirmResize": _allowed("resized"),
    "revertResize": _allowed("resized"),
    "createImage": _allowed("active", "stopped", "paused", "suspended"),
    "createBackup": _allowed("active", "stopped"),
    "rescue": _allowed("active", "stopped", "error"),
    "unrescue": _allowed("rescued"),
    "trigger_crash_dump": _allowed("active", "paused", "rescued", "resized", "error"),
    "shelve": _allowed("active", "stopped", "paused", "suspended"),
    "shelveOffload": _allowed("shelved"),
    "unshelve": _allowed("shelved", "shelved_offloaded"),
    "migrate": _allowed("active", "stopped"),
    "os-migrateLive": _allowed("active", "paused"),
    "evacuate": _allowed("active", "stopped", "error"),
    "attach_interface": _INTERFACES,
    "detach_interface": _INTERFACES,
    "addFixedIp": _INTERFACES,
    "removeFixedIp": _INTERFACES,
    "attach_volume": _allowed(
        "active", "paused", "stopped", "resized", "shelved", "shelved_offloaded"
    ),
    "detach_volume": _allowed(),  # in any vm_state, with no task in flight
    # A running live migration is made to converge or aborted: in any vm_state.
    "force_complete": _allowed(tasks=("migrating",)),
    "abort": _allowed(tasks=("migrating",)),
    "update metadata": _METADATA,
    "delete metadata": _METADATA,
    "update tag": _TAGS,
    "update tags": _TAGS,
    "delete tag": _TAGS,
    "delete tags": _TAGS,
}


class _Stateful(Protocol):
    id: str
    vm_state: str
    task_state: str | None


def check(action: str, instance: _Stateful) -> None:
    """Refuse ``action`` (409, Nova's words) unless the table lets it start from the
    server's state. The lifecycle runner calls it (phase 3) for the transition each
    operation declares (kumo.core.operations)."""
    allowed = SERVER_TRANSITIONS[action]
    name = allowed.shown or action
    if allowed.vm_states is not None and instance.vm_state not in allowed.vm_states:
        attr, state = "vm_state", instance.vm_state
    elif allowed.task_states is not None and instance.task_state not in allowed.task_states:
        attr, state = "task_state", str(instance.task_state)
    else:
        return
    raise Conflict(f"Cannot '{name}' instance {instance.id} while it is in {attr} {state}")
