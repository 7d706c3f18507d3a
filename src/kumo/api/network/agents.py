"""/network/v2.0/agents: the hosts' kumo agents, which carry every network function of
their host (L2, DHCP, routers, metadata). Admins only: others get an empty list, as
Neutron's policy filters them. Not advertised as the ``agent`` extension: agents cannot be
changed or deleted here (``kumo host`` does that)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from kumo.api.auth import Caller, caller
from kumo.api.network.common import V2, list_response, neutron_time, show_fields
from kumo.api.state import AppState, app_state
from kumo.core import hosts
from kumo.core.errors import NotFound

router = APIRouter(prefix=V2)


def _view(status: hosts.HostStatus) -> dict[str, Any]:
    host = status.host
    return {
        "id": host.id,
        "agent_type": "kumo agent",
        "binary": "kumo-agent",
        "topic": "N/A",
        "host": host.name,
        "admin_state_up": host.enabled,
        "alive": status.up,
        "availability_zone": "nova",
        "configurations": dict(host.capabilities or {}),
        "created_at": neutron_time(host.registered_at),
        "started_at": neutron_time(host.registered_at),
        "heartbeat_timestamp": neutron_time(host.last_heartbeat_at),
        "description": host.disabled_reason or "",
        "resources_synced": None,
    }


@router.get("/agents")
def list_agents(
    request: Request, who: Caller = Depends(caller), state: AppState = Depends(app_state)
) -> dict[str, Any]:
    found: list[dict[str, Any]] = []
    if who.ctx.is_admin:
        with state.db.session() as session:
            timeout = state.config.hosts.heartbeat_timeout
            found = [_view(s) for s in hosts.list_hosts(session, timeout)]
    return list_response(
        request.query_params, "agents", found, state.config.public_url + V2 + "/agents"
    )


@router.get("/agents/{agent_id}")
def show_agent(
    agent_id: str,
    request: Request,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    if who.ctx.is_admin:
        with state.db.session() as session:
            timeout = state.config.hosts.heartbeat_timeout
            for status in hosts.list_hosts(session, timeout):
                if status.host.id == agent_id:
                    return {"agent": show_fields(request.query_params, _view(status))}
    raise NotFound(f"Agent {agent_id} could not be found.", kind="AgentNotFound")
