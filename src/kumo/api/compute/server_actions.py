"""POST /servers/{id}/action: each action's JSON, in the caller's microversion, turned into
its operation's typed request (kumo.core.compute.server_operations); the lifecycle runner
does the rest. This is the only place a server action's body or microversion is read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kumo.api.compute import move_bodies, server_bodies
from kumo.core.compute import server_operations as ops
from kumo.core.compute import servers
from kumo.core.errors import BadRequest
from kumo.core.microversion import APIVersion

Parse = Callable[[str, Any, APIVersion], Any]


def _arg(args: Any, key: str) -> Any:
    if not isinstance(args, dict) or key not in args:
        raise BadRequest(f"Invalid input for field/attribute {key}: it is required.")
    return args[key]


def _check_body(action: str, body: Any, allowed: set[str], required: tuple[str, ...]) -> None:
    if not isinstance(body, dict):
        raise BadRequest(f"Invalid input for field/attribute {action}: an object expected.")
    unknown = set(body) - allowed
    if unknown:
        raise BadRequest(
            f"Invalid input for field/attribute {action}. Additional properties are not "
            f"allowed ({', '.join(sorted(unknown))} unexpected)"
        )
    for key in required:
        if key not in body:
            raise BadRequest(
                f"Invalid input for field/attribute {action}. '{key}' is a required property"
            )


def _rotation(value: Any) -> int:
    """Nova's non-negative integer: an int or a string of digits."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRequest(
            f"Invalid input for field/attribute rotation. Value: {value}. "
            f"{value!r} is not of type 'integer', 'string'"
        )
    text = str(value).strip()
    if not text.lstrip("-").isdigit() or int(text) < 0:
        raise BadRequest(
            f"Invalid input for field/attribute rotation. Value: {value}. "
            f"{value!r} does not match '^[0-9]*$'"
        )
    return int(text)


def _plain(server_id: str, args: Any, version: APIVersion) -> ops.ServerRequest:
    return ops.ServerRequest(server_id)


def _resize(server_id: str, args: Any, version: APIVersion) -> ops.Resize:
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute resize: an object expected.")
    return ops.Resize(server_id, args.get("flavorRef"))


def _reboot(server_id: str, args: Any, version: APIVersion) -> ops.Reboot:
    kind = args.get("type") if isinstance(args, dict) else None
    if kind not in ("SOFT", "HARD"):
        raise BadRequest("Invalid input for field/attribute type: SOFT or HARD expected.")
    return ops.Reboot(server_id, kind)


def _no_arguments(action: str) -> Parse:
    """shelve, shelveOffload, unshelve: before 2.77 no arguments (``{"shelve": null}``;
    unshelve's availability_zone (2.77) and host (2.91) are above this cloud's maximum)."""

    def parse(server_id: str, args: Any, version: APIVersion) -> ops.ServerRequest:
        if args not in (None, {}):
            raise BadRequest(f"Invalid input for field/attribute {action}: null expected.")
        return ops.ServerRequest(server_id)

    return parse


def _create_image(server_id: str, args: Any, version: APIVersion) -> ops.Snapshot:
    _check_body("createImage", args, {"name", "metadata"}, ())
    return ops.Snapshot(server_id, servers.check_name(args.get("name")), args.get("metadata"))


def _create_backup(server_id: str, args: Any, version: APIVersion) -> ops.Backup:
    _check_body(
        "createBackup",
        args,
        {"name", "backup_type", "rotation", "metadata"},
        ("name", "backup_type", "rotation"),
    )
    backup_type = args["backup_type"]
    if not isinstance(backup_type, str):
        raise BadRequest(
            f"Invalid input for field/attribute backup_type. Value: {backup_type}. "
            f"{backup_type!r} is not of type 'string'"
        )
    rotation = _rotation(args["rotation"])
    name = servers.check_name(args["name"])
    return ops.Backup(server_id, name, args.get("metadata"), backup_type, rotation)


def _rescue(server_id: str, args: Any, version: APIVersion) -> ops.Rescue:
    if args is None:
        args = {}
    _check_body("rescue", args, {"adminPass", "rescue_image_ref"}, ())
    password = args.get("adminPass")
    if password is not None and (not isinstance(password, str) or not password):
        raise BadRequest("Invalid input for field/attribute adminPass.")
    return ops.Rescue(server_id, password, args.get("rescue_image_ref"))


def _lock(server_id: str, args: Any, version: APIVersion) -> ops.Lock:
    return ops.Lock(server_id, args.get("locked_reason") if isinstance(args, dict) else None)


# Rebuild's JSON members -> the request's fields (absent ones stay servers.ABSENT).
_REBUILD_FIELDS = {
    "name": "name",
    "metadata": "metadata",
    "accessIPv4": "access_ipv4",
    "accessIPv6": "access_ipv6",
    "description": "description",
}


def _rebuild(server_id: str, args: Any, version: APIVersion) -> servers.Rebuild:
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute rebuild: an object expected.")
    server_bodies.no_description_before_2_19(args, version)
    given = {field: args[key] for key, field in _REBUILD_FIELDS.items() if key in args}
    return servers.Rebuild(
        server_id, args.get("imageRef"), admin_pass=args.get("adminPass"), **given
    )


def _crash_dump(server_id: str, args: Any, version: APIVersion) -> ops.ServerRequest:
    if args is not None:
        raise BadRequest(
            f"Invalid input for field/attribute trigger_crash_dump. Value: {args}. "
            f"{args!r} is not of type 'null'"
        )
    return ops.ServerRequest(server_id)


def _force_delete(server_id: str, args: Any, version: APIVersion) -> ops.Delete:
    return ops.Delete(server_id, force=True)


def _live(server_id: str, args: Any, version: APIVersion) -> ops.LiveMigrate:
    return ops.LiveMigrate(server_id, move_bodies.parse_live(args, version))


def _migrate(server_id: str, args: Any, version: APIVersion) -> ops.ServerRequest:
    move_bodies.parse_migrate(args, version)
    return ops.ServerRequest(server_id)


def _evacuate(server_id: str, args: Any, version: APIVersion) -> ops.Evacuate:
    return ops.Evacuate(server_id, move_bodies.parse_evacuate(args, version))


def _add_fixed_ip(server_id: str, args: Any, version: APIVersion) -> ops.AddFixedIp:
    return ops.AddFixedIp(server_id, _arg(args, "networkId"))


def _remove_fixed_ip(server_id: str, args: Any, version: APIVersion) -> ops.RemoveFixedIp:
    return ops.RemoveFixedIp(server_id, _arg(args, "address"))


def _group(server_id: str, args: Any, version: APIVersion) -> ops.SecurityGroup:
    return ops.SecurityGroup(server_id, _arg(args, "name"))


# Action name in the body -> (its parser, its operation, the microversion it needs).
ACTIONS: dict[str, tuple[Parse, ops.ServerOperation, str]] = {
    "os-start": (_plain, ops.START, "2.1"),
    "os-stop": (_plain, ops.STOP, "2.1"),
    "pause": (_plain, ops.PAUSE, "2.1"),
    "unpause": (_plain, ops.UNPAUSE, "2.1"),
    "suspend": (_plain, ops.SUSPEND, "2.1"),
    "resume": (_plain, ops.RESUME, "2.1"),
    "reboot": (_reboot, ops.REBOOT, "2.1"),
    "lock": (_lock, ops.LOCK, "2.1"),
    "unlock": (_plain, ops.UNLOCK, "2.1"),
    "rebuild": (_rebuild, ops.REBUILD, "2.1"),
    "shelve": (_no_arguments("shelve"), ops.SHELVE, "2.1"),
    "shelveOffload": (_no_arguments("shelveOffload"), ops.SHELVE_OFFLOAD, "2.1"),
    "unshelve": (_no_arguments("unshelve"), ops.UNSHELVE, "2.1"),
    "resize": (_resize, ops.RESIZE, "2.1"),
    "confirmResize": (_plain, ops.CONFIRM_RESIZE, "2.1"),
    "revertResize": (_plain, ops.REVERT_RESIZE, "2.1"),
    "forceDelete": (_force_delete, ops.DELETE, "2.1"),
    "createImage": (_create_image, ops.CREATE_IMAGE, "2.1"),
    "createBackup": (_create_backup, ops.CREATE_BACKUP, "2.1"),
    "rescue": (_rescue, ops.RESCUE, "2.1"),
    "unrescue": (_plain, ops.UNRESCUE, "2.1"),
    "trigger_crash_dump": (_crash_dump, ops.TRIGGER_CRASH_DUMP, "2.17"),
    "os-migrateLive": (_live, ops.LIVE_MIGRATE, "2.1"),
    "migrate": (_migrate, ops.MIGRATE, "2.1"),
    "evacuate": (_evacuate, ops.EVACUATE, "2.1"),
    "addFixedIp": (_add_fixed_ip, ops.ADD_FIXED_IP, "2.1"),
    "removeFixedIp": (_remove_fixed_ip, ops.REMOVE_FIXED_IP, "2.1"),
    "addSecurityGroup": (_group, ops.ADD_SECURITY_GROUP, "2.1"),
    "removeSecurityGroup": (_group, ops.REMOVE_SECURITY_GROUP, "2.1"),
}


def lookup(action: str, version: APIVersion) -> tuple[Parse, ops.ServerOperation] | None:
    """The action's parser and operation, or None when there is no such action at this
    microversion."""
    found = ACTIONS.get(action)
    if found is None or not version.at_least(found[2]):
        return None
    return found[0], found[1]
