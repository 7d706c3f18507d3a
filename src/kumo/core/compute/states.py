"""Nova's server vocabulary: vm_state, task_state, power_state and the status they show.

The API writes what the user wants (``desired_state``) and a task; the agent reports power
state; the status a client sees is derived here, in one place.
"""

from __future__ import annotations

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
