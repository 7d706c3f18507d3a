"""Remote consoles (Nova's os-remote-consoles and os-console-auth-tokens): where a guest's
consoles listen, the tokens that open them, and the checks in between.

A console URL carries a token made here. Only its SHA-256 is stored, with the server, the
console type and the endpoint (host, address, port) it opens; it lives ``ttl`` seconds and
opens one connection: the proxy consumes it with a conditional UPDATE (two proxies racing
for one token: one wins). It dies with its server: the proxy refuses it once the server
is deleted, has moved to another host, or its console listens elsewhere (a restart).
A token is the authorization of whoever holds it (Nova's rule: the CLI's URL opened in
any browser), except that a holder the proxy knows (a browser signed in to the
dashboard) must also be one who may open the server's console: a user of another
project who got hold of a URL is refused, and the token stays unused for its owner.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from kumo.core.compute import servers
from kumo.core.errors import BadRequest, Conflict, NotFound, Unauthorized
from kumo.core.policy import Context, allowed, enforce
from kumo.db import models as m
from kumo.db.console_tables import ConsoleAuthToken, ConsoleEndpoint
from kumo.db.types import utcnow
from kumo.protocol import ConsoleEndpoints

# Nova's schema of POST /servers/{id}/remote-consoles: 2.6 and 2.8 (mks, webmks).
PROTOCOLS = ("vnc", "spice", "rdp", "serial")
TYPES = ("novnc", "xvpvnc", "rdp-html5", "spice-html5", "serial")
PROTOCOLS_2_8 = (*PROTOCOLS, "mks")
TYPES_2_8 = (*TYPES, "webmks")
# The legacy actions (before 2.6): each one's name, its protocol and the types its schema allows.
LEGACY_ACTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "os-getVNCConsole": ("vnc", ("novnc", "xvpvnc")),
    "os-getSPICEConsole": ("spice", ("spice-html5",)),
    "os-getRDPConsole": ("rdp", ("rdp-html5",)),
    "os-getSerialConsole": ("serial", ("serial",)),
}
# What kumo serves: protocol -> the one console type it offers for it.
SERVED = {"vnc": "novnc", "serial": "serial"}
# vm_states whose guest runs (or is paused in memory): those have a console to reach.
RUNNING_VM_STATES = ("active", "paused", "rescued", "resized")


@dataclass(frozen=True)
class Request:
    """A checked console request: Nova's protocol and console type."""

    protocol: str
    console_type: str


def _enum(field: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Value: {value}. "
            f"{value!r} is not one of {list(allowed)}"
        )
    return value


def _object(name: str, body: Any, required: tuple[str, ...], allowed: set[str]) -> dict[str, Any]:
    """``body[name]``: an object with the required keys and no others (Nova's schemas)."""
    if not isinstance(body, dict) or set(body) != {name}:
        raise BadRequest(
            f"Invalid input for field/attribute {name}. Value: {body}. "
            f"'{name}' is a required property"
        )
    member = body[name]
    if not isinstance(member, dict):
        raise BadRequest(
            f"Invalid input for field/attribute {name}. Value: {member}. "
            f"{member!r} is not of type 'object'"
        )
    for key in required:
        if key not in member:
            raise BadRequest(
                f"Invalid input for field/attribute {name}. Value: {member}. "
                f"'{key}' is a required property"
            )
    unknown = sorted(set(member) - allowed)
    if unknown:
        raise BadRequest(
            "Additional properties are not allowed "
            f"({', '.join(repr(k) for k in unknown)} {'was' if len(unknown) == 1 else 'were'}"
            " unexpected)"
        )
    return member


def parse_remote_console(body: Any, mks: bool) -> Request:
    """The body of POST /servers/{id}/remote-consoles (``mks``: microversion 2.8 or later)."""
    member = _object("remote_console", body, ("protocol", "type"), {"protocol", "type"})
    protocol = _enum("protocol", member["protocol"], PROTOCOLS_2_8 if mks else PROTOCOLS)
    console_type = _enum("type", member["type"], TYPES_2_8 if mks else TYPES)
    return Request(protocol, console_type)


def parse_legacy(action: str, args: Any) -> Request:
    """The body of a legacy console action (os-getVNCConsole, os-getSerialConsole...)."""
    protocol, types = LEGACY_ACTIONS[action]
    member = _object(action, {action: args}, ("type",), {"type"})
    return Request(protocol, _enum("type", member["type"], types))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Issued:
    """A token just made (the only time it is known in clear) and what it opens."""

    token: str
    instance_id: str
    console_type: str


def issue(
    session: Session, ctx: Context, server_id: str, req: Request, ttl: int, action: str
) -> Issued:
    """A console token for the caller's server, after Nova's checks in Nova's order: the
    server exists for the caller (404), the caller may open consoles (403), the protocol
    and type go together (400), the server is on a host (409 not ready) and running (409),
    its host gives it such a console (400 unavailable). ``action`` names the request in a
    state conflict (``get_vnc_console``...)."""
    instance = servers.get(session, ctx, server_id)
    enforce(ctx, "compute:remote_consoles", {"project_id": instance.project_id})
    served = SERVED.get(req.protocol)
    if served is None:
        raise BadRequest(f"Unavailable console type {req.console_type}.")
    if req.console_type != served:
        raise BadRequest(f"Invalid console type {req.console_type}")
    if instance.host_id is None or instance.vm_state == "building":
        raise Conflict(f"Instance {instance.id} is not ready")
    if instance.vm_state not in RUNNING_VM_STATES or instance.task_state in (
        "deleting",
        "migrating",
    ):
        state, value = (
            ("task_state", instance.task_state)
            if instance.vm_state in RUNNING_VM_STATES
            else ("vm_state", instance.vm_state)
        )
        raise Conflict(f"Cannot '{action}' instance {instance.id} while it is in {state} {value}")
    endpoint = session.get(ConsoleEndpoint, instance.id)
    port = _port(endpoint, served) if endpoint and endpoint.host_id == instance.host_id else None
    if endpoint is None or port is None:
        raise BadRequest(f"Unavailable console type {req.console_type}.")
    now = utcnow()
    # Expired tokens are dead weight: drop them as new ones are made.
    session.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.expires_at < now))
    token = secrets.token_urlsafe(32)
    session.add(
        ConsoleAuthToken(
            token_hash=token_hash(token),
            instance_id=instance.id,
            console_type=served,
            host_id=endpoint.host_id,
            address=endpoint.address,
            port=port,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=ttl),
        )
    )
    return Issued(token, instance.id, served)


def _port(endpoint: ConsoleEndpoint, console_type: str) -> int | None:
    return endpoint.vnc_port if console_type == "novnc" else endpoint.serial_port


@dataclass(frozen=True)
class Target:
    """Where a consumed token connects: the guest's console on its host."""

    instance_id: str
    address: str
    port: int


class Refused(Exception):
    """A token that opens nothing (unknown, used, expired, or its server gone or moved)."""


def consume(
    session: Session, token: str, console_type: str, holder: Context | None = None
) -> Target:
    """Use a token once, for a console of ``console_type``; raises Refused. The UPDATE that
    marks it used is conditional on it being unused and alive, so of two connections with
    one token exactly one gets through. ``holder``: who presents the token, when known
    (the dashboard's signed-in user); refused, without using the token, unless they may
    open this server's console (compute:remote_consoles on its project)."""
    if not token:
        raise Refused("no token")
    digest, now = token_hash(token), utcnow()
    row = session.get(ConsoleAuthToken, digest)
    if row is None or row.console_type != console_type:
        raise Refused("unknown token")
    instance = session.get(m.Instance, row.instance_id)
    endpoint = session.get(ConsoleEndpoint, row.instance_id)
    if (
        instance is None
        or instance.deleted
        or instance.desired_state == "deleted"
        or instance.host_id != row.host_id
        or endpoint is None
        or (endpoint.host_id, endpoint.address) != (row.host_id, row.address)
        or _port(endpoint, console_type) != row.port
    ):
        raise Refused("the server was deleted or moved, or its console restarted")
    if holder is not None and not allowed(
        holder, "compute:remote_consoles", {"project_id": instance.project_id}
    ):
        raise Refused(f"user {holder.user_id} may not open this server's console")
    taken = session.execute(
        update(ConsoleAuthToken)
        .where(
            ConsoleAuthToken.token_hash == digest,
            ConsoleAuthToken.used_at.is_(None),
            ConsoleAuthToken.expires_at > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        raise Refused("token used or expired")
    return Target(row.instance_id, row.address, row.port)


def show_token(session: Session, ctx: Context, token: str, any_type: bool) -> dict[str, Any]:
    """GET /os-console-auth-tokens/{token} (admin): where a live token connects. Before
    2.31 (``any_type`` False) only RDP tokens may be shown, as Nova says; kumo has none."""
    enforce(ctx, "compute:console_auth_tokens")
    if not token:
        raise BadRequest("token not provided")
    row = session.get(ConsoleAuthToken, token_hash(token))
    if row is None or row.used_at is not None or row.expires_at <= utcnow():
        raise NotFound("Token not found")
    if not any_type:
        raise Unauthorized("The requested console type details are not accessible")
    return {
        "console": {
            "instance_uuid": row.instance_id,
            "host": row.address,
            "port": row.port,
            "internal_access_path": None,
        }
    }


def observe(
    session: Session, host_id: str, instance_id: str, consoles: ConsoleEndpoints | None
) -> None:
    """Keep where a guest's consoles listen, as its agent just saw them (None: it has none
    now, e.g. stopped or started before consoles existed)."""
    row = session.get(ConsoleEndpoint, instance_id)
    if consoles is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        row = ConsoleEndpoint(instance_id=instance_id)
        session.add(row)
    row.host_id = host_id
    row.address = consoles.address
    row.vnc_port = consoles.vnc_port
    row.serial_port = consoles.serial_port
    row.display = consoles.display
    row.updated_at = utcnow()


def display_on(session: Session, instance_id: str, host_id: str | None) -> str:
    """The display device the guest runs with on ``host_id``, as its agent last reported
    it: what a live migration's destination must start it with. ``none`` when not known
    (no report from there, or one from an agent older than displays: such guests have
    none)."""
    row = session.get(ConsoleEndpoint, instance_id)
    if row is None or row.host_id != host_id or not row.display:
        return "none"
    return row.display


def forget(session: Session, instance_id: str) -> None:
    """The server is gone from its host: its console endpoints and tokens with it."""
    session.execute(delete(ConsoleEndpoint).where(ConsoleEndpoint.instance_id == instance_id))
    session.execute(delete(ConsoleAuthToken).where(ConsoleAuthToken.instance_id == instance_id))
