"""The bodies of the moves (os-migrateLive, migrate, evacuate) in each microversion, as
Nova's schemas check them, turned into the typed requests of their operations
(kumo.core.compute.server_operations): the API's part, so that core sees values only."""

from __future__ import annotations

import secrets
from typing import Any

from kumo.core.compute import migrations, moves
from kumo.core.errors import BadRequest
from kumo.core.microversion import APIVersion
from kumo.core.params import body_bool


def _unexpected(action: str, unknown: set[str]) -> BadRequest:
    return BadRequest(
        f"Invalid input for field/attribute {action}. Additional properties are not "
        f"allowed ({', '.join(repr(k) for k in sorted(unknown))} "
        f"{'was' if len(unknown) == 1 else 'were'} unexpected)"
    )


def _host_name(value: Any) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 255:
        raise BadRequest(f"Invalid input for field/attribute host. Value: {value}.")
    return value


def parse_live(args: Any, version: APIVersion) -> migrations.LiveRequest:
    """os-migrateLive's body as Nova validates it: 2.1-2.24 need ``host``,
    ``block_migration`` and ``disk_over_commit`` (booleans); from 2.25 ``block_migration`` may
    be "auto" and ``disk_over_commit`` is gone (giving it is a 400). Later fields (``force``
    at 2.30) are not served here yet, so they are unexpected."""
    if not isinstance(args, dict):
        raise BadRequest("Invalid input for field/attribute os-migrateLive: an object expected.")
    v225 = version.at_least("2.25")
    allowed = {"host", "block_migration"} | (set() if v225 else {"disk_over_commit"})
    unknown = set(args) - allowed
    if unknown:
        raise _unexpected("os-migrateLive", unknown)
    for key in sorted(allowed):
        if key not in args:
            raise BadRequest(
                f"Invalid input for field/attribute os-migrateLive. Value: {args}. "
                f"'{key}' is a required property"
            )
    host = _host_name(args["host"]) if args["host"] is not None else None
    block: bool | str = (
        "auto"
        if v225 and args["block_migration"] == "auto"  # 2.25: Nova's boolean or "auto"
        else body_bool(args["block_migration"], "block_migration")
    )
    if not v225:
        body_bool(args["disk_over_commit"], "disk_over_commit")
    return migrations.LiveRequest(host, block)


def parse_migrate(args: Any, version: APIVersion) -> None:
    """``{"migrate": null}``; a ``host`` is served from 2.56 only (beyond this cloud's
    maximum), so a body naming one is a 400 rather than a request silently not honoured."""
    if args is None or args == {}:
        return
    if isinstance(args, dict):
        raise _unexpected("migrate", set(args))
    raise BadRequest(
        f"Invalid input for field/attribute migrate. Value: {args}. {args!r} is not of type 'null'"
    )


def parse_evacuate(args: Any, version: APIVersion) -> moves.EvacuateRequest:
    """The evacuate body as Nova's schemas check it: 2.1-2.13 ``onSharedStorage``
    (required boolean), ``host``, ``adminPass``; from 2.14 ``onSharedStorage`` is gone
    (giving it is a 400). An admin password cannot be set on a disk that is kept."""
    if not isinstance(args, dict):
        raise BadRequest(
            f"Invalid input for field/attribute evacuate. Value: {args}. "
            f"{args!r} is not of type 'object'"
        )
    v214 = version.at_least("2.14")
    allowed = {"host", "adminPass"} | (set() if v214 else {"onSharedStorage"})
    unknown = set(args) - allowed
    if unknown:
        raise _unexpected("evacuate", unknown)
    if not v214 and "onSharedStorage" not in args:
        raise BadRequest(
            f"Invalid input for field/attribute evacuate. Value: {args}. "
            "'onSharedStorage' is a required property"
        )
    host = _host_name(args["host"]) if args.get("host") is not None else None
    password = args.get("adminPass")
    if password is not None and not isinstance(password, str):
        raise BadRequest(f"Invalid input for field/attribute adminPass. Value: {password}.")
    shared = False if v214 else body_bool(args["onSharedStorage"], "onSharedStorage")
    if shared and password is not None:
        raise BadRequest("admin password can't be changed on existing disk")
    if password is None and not shared:
        password = secrets.token_urlsafe(9)
    return moves.EvacuateRequest(host, password, shared)
