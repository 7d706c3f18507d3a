"""Agent API v1, networking: a host's datapath desired state and what its agent observed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from kumo.api.agent import authorize_host
from kumo.api.body import json_body
from kumo.api.state import AppState, app_state
from kumo.core import wakeup
from kumo.core.compute import reports
from kumo.core.errors import BadRequest, NotFound
from kumo.core.network import floating_ips, host_state, port_status
from kumo.db import models as m
from kumo.protocol import NetworkStatus

router = APIRouter(prefix="/agent/v1")


@router.get("/hosts/{host_id}/network")
def host_network(
    host_id: str, request: Request, state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """Everything of the network this host should carry (complete, with a revision digest:
    the agent applies it only when the digest moved)."""
    authorize_host(request, state)
    with state.db.session() as session:
        return host_state.desired_for_host(session, host_id)


@router.get("/hosts/{host_id}/network/changes")
def host_network_changes(
    host_id: str,
    request: Request,
    wait: float = 0.0,
    since: int = -1,
    state: AppState = Depends(app_state),
) -> dict[str, int]:
    """A long-poll that only wakes: with ``wait`` and the ``mark`` of its previous answer
    as ``since``, it answers as soon as a networking write commits in this process, else
    after ``wait`` seconds (at most 30). The agent then fetches the state itself."""
    authorize_host(request, state)
    if wait > 0 and since >= 0:
        wakeup.wait(wakeup.NETWORK, since, min(wait, 30.0))
    return {"mark": wakeup.mark(wakeup.NETWORK)}


@router.post("/hosts/{host_id}/network/status", status_code=204)
def host_network_status(
    host_id: str,
    request: Request,
    body: Any = Depends(json_body),
    state: AppState = Depends(app_state),
) -> Response:
    """What the host's agent observed after applying its datapath (kumo.protocol
    NetworkStatus): its ports' statuses and faults, its routers' floating IPs."""
    authorize_host(request, state)
    try:
        report = NetworkStatus.from_dict(body)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    with state.db.session() as session:
        port_status.record(session, host_id, report)
        floating_ips.record_status(session, host_id, report.floating_ips)
    return Response(status_code=204)


@router.get("/hosts/{host_id}/metadata")
def instance_metadata(
    host_id: str, network_id: str, ip: str, request: Request, state: AppState = Depends(app_state)
) -> dict[str, Any]:
    """For the host's metadata service: the server behind a guest's address on a network,
    as the agent's work item (what the config drive is built from)."""
    authorize_host(request, state)
    with state.db.session() as session:
        instance_id = host_state.instance_at(session, host_id, network_id, ip)
        instance = session.get(m.Instance, instance_id) if instance_id else None
        if instance is None or instance.deleted:
            raise NotFound(f"No server of this host has address {ip} on network {network_id}.")
        return {"item": reports.work_item(session, instance)}
