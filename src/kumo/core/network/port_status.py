"""What a host's agent observed of its ports: up, down, or not bindable (and why)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.core.network.router_ports import GATEWAY_OWNER, INTERFACE_OWNER
from kumo.db import models as m
from kumo.db.types import utcnow
from kumo.protocol import NetworkStatus

ROUTER_OWNERS = (GATEWAY_OWNER, INTERFACE_OWNER)


def record(session: Session, host_id: str, report: NetworkStatus) -> int:
    """Apply the report's port statuses and faults to the ports bound to this host and the
    ports of the routers it carries (others are ignored: the binding or the router moved
    on meanwhile). Returns how many ports changed."""
    statuses, faults = report.ports, report.faults
    wanted = set(statuses) | set(faults)
    if not wanted:
        return 0
    changed = 0
    carried = select(m.Router.id).where(m.Router.host_id == host_id)
    router_port = m.Port.device_owner.in_(ROUTER_OWNERS) & m.Port.device_id.in_(carried)
    for port in session.scalars(
        select(m.Port).where(
            m.Port.id.in_(wanted), or_(m.Port.binding_host_id == host_id, router_port)
        )
    ):
        fault = faults.get(port.id)
        status = "ERROR" if fault else statuses.get(port.id, port.status)
        vif = (
            "binding_failed"
            if fault
            else ("tap" if port.binding_vif_type != "unbound" else "unbound")
        )
        if (port.status, port.binding_fault, port.binding_vif_type) == (status, fault, vif):
            continue
        port.status = status
        port.binding_fault = str(fault)[:4000] if fault else None
        port.binding_vif_type = vif
        port.revision_number += 1
        port.updated_at = utcnow()
        changed += 1
    return changed
