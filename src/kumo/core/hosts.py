"""Hypervisor hosts: registration, heartbeats and liveness (like `nova service-list`)."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, NotFound, Unauthorized
from kumo.db import models as m
from kumo.db.types import utcnow
from kumo.protocol import AGENT_API_VERSIONS, HostLoad

HOST_CREDENTIAL_SETTING = "host_credential"
# Agent API versions this control plane serves (current and previous, DESIGN.md section 4).
SERVED_AGENT_API_VERSIONS = AGENT_API_VERSIONS


def ensure_host_credential(session: Session) -> str:
    row = session.get(m.Setting, HOST_CREDENTIAL_SETTING)
    if row is None:
        row = m.Setting(key=HOST_CREDENTIAL_SETTING, value=secrets.token_urlsafe(32))
        session.add(row)
        session.flush()
    return row.value


def check_host_credential(session: Session, presented: str | None) -> None:
    row = session.get(m.Setting, HOST_CREDENTIAL_SETTING)
    if row is None or not presented or not hmac.compare_digest(row.value, presented):
        raise Unauthorized(
            "A valid host credential is required (X-Kumo-Host-Credential); "
            "copy it from the controller's STATE_DIR/host-credential."
        )


def _uuid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError as exc:
        raise BadRequest(f"Invalid host id {value!r}: a UUID is expected.") from exc


def register(session: Session, body: dict[str, Any]) -> m.Host:
    """Create or refresh a host. The UUID is the identity; the name may change."""
    host_id = _uuid(body.get("id"))
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise BadRequest("Invalid host name: a non-empty string of at most 255 characters.")
    versions = body.get("agent_api_versions", [])
    if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
        raise BadRequest("agent_api_versions must be a list of strings.")
    if not set(versions) & set(SERVED_AGENT_API_VERSIONS):
        raise BadRequest(
            f"This control plane serves agent API {SERVED_AGENT_API_VERSIONS}; "
            f"the agent speaks {versions}. Upgrade the older side."
        )
    for key in ("capabilities", "inventory"):
        if not isinstance(body.get(key, {}), dict):
            raise BadRequest(f"{key} must be an object.")
    clash = session.scalars(select(m.Host).where(m.Host.name == name, m.Host.id != host_id)).first()
    if clash is not None:
        raise Conflict(
            f"Host name {name!r} already belongs to host {clash.id}; remove that "
            "host or give this one another name."
        )
    host = session.get(m.Host, host_id)
    now = utcnow()
    if host is None:
        host = m.Host(id=host_id, registered_at=now)
        session.add(host)
    host.name = name
    host.agent_version = str(body.get("agent_version", ""))[:64]
    host.agent_api_versions = versions
    load = _load(body.get("load"))
    host.capabilities = body.get("capabilities", {})
    host.inventory = body.get("inventory", {})
    host.last_heartbeat_at = now
    _record_load(host, load, now)
    session.flush()
    return host


def heartbeat(session: Session, host_id: str, body: Any = None) -> m.Host:
    """The agent is alive; a body's ``load`` (kumo.protocol.HostLoad, from agents that send
    one) is kept for os-hypervisors' uptime. An agent that sends none keeps what it had."""
    load = _load(body.get("load") if isinstance(body, dict) else None)
    host = session.get(m.Host, _uuid(host_id))
    if host is None:
        raise NotFound(f"Host {host_id} is not registered; the agent must register again.")
    host.last_heartbeat_at = utcnow()
    _record_load(host, load, host.last_heartbeat_at)
    return host


# The host's last reported load, kept with its inventory: seconds up when reported, the
# report's time (on this side's clock, so host clocks need not agree), load and users.
LOAD_KEY = "load"


def _load(raw: Any) -> HostLoad | None:
    if raw is None:
        return None
    try:
        return HostLoad.from_dict(raw)
    except ValueError as exc:
        raise BadRequest(f"Invalid host report: {exc}.") from None


def _record_load(host: m.Host, load: HostLoad | None, now: dt.datetime) -> None:
    if load is None:
        return
    host.inventory = {
        **(host.inventory or {}),
        LOAD_KEY: {**load.to_dict(), "reported_at": now.isoformat()},
    }


def last_load(host: m.Host, now: dt.datetime) -> HostLoad | None:
    """The host's load as last reported, its uptime carried forward to ``now``; None when
    its agent never reported one (an agent older than this report)."""
    raw = (host.inventory or {}).get(LOAD_KEY)
    if not isinstance(raw, dict):
        return None
    try:
        load = HostLoad.from_dict(raw)
        reported = dt.datetime.fromisoformat(str(raw["reported_at"]))
    except (ValueError, KeyError):
        return None
    since = max(0.0, (now - reported).total_seconds())
    return HostLoad(load.uptime_seconds + since, load.load_average, load.users)


@dataclass(frozen=True)
class HostStatus:
    host: m.Host
    up: bool
    seconds_since_heartbeat: float | None

    @property
    def state(self) -> str:
        return "up" if self.up else "down"


def status_of(host: m.Host, timeout: float, now: dt.datetime | None = None) -> HostStatus:
    """Up means a fresh heartbeat and not forced down: an operator who forced a host down
    (it is fenced, or about to be evacuated) is believed over the heartbeat, as in Nova."""
    now = now or utcnow()
    if host.last_heartbeat_at is None:
        return HostStatus(host, False, None)
    age = (now - host.last_heartbeat_at).total_seconds()
    return HostStatus(host, age <= timeout and not host.forced_down, age)


def list_hosts(session: Session, timeout: float) -> list[HostStatus]:
    now = utcnow()
    return [
        status_of(h, timeout, now) for h in session.scalars(select(m.Host).order_by(m.Host.name))
    ]


def find_host(session: Session, ref: str) -> m.Host:
    host = (
        session.get(m.Host, ref)
        or session.scalars(select(m.Host).where(m.Host.name == ref)).first()
    )
    if host is None:
        raise NotFound(f"No host with id or name {ref!r}; `kumo host list` shows them.")
    return host


def set_enabled(session: Session, ref: str, enabled: bool, reason: str | None = None) -> m.Host:
    host = find_host(session, ref)
    host.enabled = enabled
    host.disabled_reason = None if enabled else reason
    return host
