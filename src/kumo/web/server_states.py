"""Which server actions the dashboard offers, in one table: status -> actions, plus the
admin-only set. It only decides what to *show*: Nova still decides what runs, and its 409
or 403 is shown in its own words when the table and the cloud disagree (a state that
changed since the page was drawn, a policy stricter than the role suggests).

The table mirrors Nova's documented transitions per status (what ``openstack server stop``
and friends accept), so a user is not offered a button that can only fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Action:
    """One action as the dashboard offers it.

    ``nova`` is the key of Nova's ``POST /servers/{id}/action`` body (``""`` for delete,
    which is ``DELETE /servers/{id}``) and ``args`` its value when the action takes no
    input. ``form`` names the input asked first on a page of its own (a flavor, an image
    name, or the confirmation of a delete)."""

    slug: str
    label: str
    nova: str
    args: Any = None
    admin: bool = False
    form: str = ""
    danger: bool = False


_ALL = (
    Action("start", "Start", "os-start"),
    Action("stop", "Stop", "os-stop"),
    Action("reboot", "Reboot", "reboot", {"type": "SOFT"}),
    Action("reboot-hard", "Hard reboot", "reboot", {"type": "HARD"}),
    Action("pause", "Pause", "pause"),
    Action("unpause", "Unpause", "unpause"),
    Action("suspend", "Suspend", "suspend"),
    Action("resume", "Resume", "resume"),
    Action("resize", "Resize", "resize", form="flavor"),
    Action("confirm-resize", "Confirm resize", "confirmResize"),
    Action("revert-resize", "Revert resize", "revertResize"),
    Action("snapshot", "Create snapshot", "createImage", form="name"),
    Action("rescue", "Rescue", "rescue", {}),
    Action("unrescue", "Unrescue", "unrescue"),
    Action("shelve", "Shelve", "shelve"),
    Action("unshelve", "Unshelve", "unshelve"),
    Action("migrate", "Migrate", "migrate", admin=True),
    Action(
        "live-migrate",
        "Live migrate",
        "os-migrateLive",
        {"host": None, "block_migration": "auto"},
        admin=True,
    ),
    Action("delete", "Delete", "", form="confirm", danger=True),
)
ACTIONS: dict[str, Action] = {a.slug: a for a in _ALL}
ADMIN_ONLY = frozenset(a.slug for a in _ALL if a.admin)

# Status (no task in flight) -> the actions offered, in the menu's order.
ALLOWED: dict[str, tuple[str, ...]] = {
    "ACTIVE": (
        "stop", "reboot", "reboot-hard", "pause", "suspend", "resize", "snapshot", "rescue",
        "shelve", "migrate", "live-migrate", "delete",
    ),
    "SHUTOFF": (
        "start", "reboot-hard", "resize", "snapshot", "rescue", "shelve", "migrate", "delete",
    ),
    "PAUSED": ("unpause", "reboot-hard", "snapshot", "shelve", "live-migrate", "delete"),
    "SUSPENDED": ("resume", "reboot-hard", "snapshot", "shelve", "delete"),
    "RESCUE": ("unrescue", "delete"),
    "VERIFY_RESIZE": ("confirm-resize", "revert-resize", "delete"),
    "SHELVED": ("unshelve", "delete"),
    "SHELVED_OFFLOADED": ("unshelve", "delete"),
    "ERROR": ("stop", "reboot-hard", "rescue", "delete"),
}  # fmt: skip
# While a task is in flight only these are offered (a hard reboot may take over a soft
# one, as Nova allows); any other task leaves delete alone.
DURING_TASK: dict[str, tuple[str, ...]] = {
    "rebooting": ("reboot-hard", "delete"),
    "reboot_pending": ("reboot-hard", "delete"),
}
DEFAULT: tuple[str, ...] = ("delete",)


def offered(status: str, task_state: str | None, is_admin: bool) -> list[Action]:
    """The actions to show for a server in ``status``/``task_state`` to this caller."""
    if task_state:
        slugs = DURING_TASK.get(task_state, DEFAULT)
    else:
        slugs = ALLOWED.get(status.upper(), DEFAULT)
    return [ACTIONS[s] for s in slugs if is_admin or s not in ADMIN_ONLY]


def request_body(action: Action, fields: dict[str, str]) -> dict[str, Any]:
    """Nova's action body for ``action`` with the form's input (the flavor of a resize,
    the image name of a snapshot); what the form left empty Nova refuses in its words."""
    if action.form == "flavor":
        return {action.nova: {"flavorRef": fields.get("flavor", "")}}
    if action.form == "name":
        return {action.nova: {"name": fields.get("name", "")}}
    return {action.nova: action.args}
