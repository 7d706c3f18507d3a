"""DHCP ports: DHCP is served on each host for the networks its guests are on (each host's
dnsmasq answers its own guests), from a port of that network bound to that host
(device_owner ``network:dhcp``), as Neutron's DHCP agent holds one per agent.

The port is made when the first port of the network is bound to the host, and removed
when the last one leaves, in the same transaction as the binding change.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.network import ports as port_core
from kumo.core.policy import SERVICE
from kumo.db import models as m

DHCP_OWNER = "network:dhcp"
COMPUTE_PREFIX = "compute:"


def dhcp_device_id(host_id: str) -> str:
    return f"dhcp-{host_id}"


def _needs_dhcp(session: Session, network_id: str) -> bool:
    return (
        session.scalar(
            select(m.Subnet.id).where(
                m.Subnet.network_id == network_id, m.Subnet.enable_dhcp.is_(True)
            )
        )
        is not None
    )


def ensure(session: Session, network_id: str, host_id: str) -> m.Port | None:
    """The network's DHCP port on the host, made if missing (None: no DHCP subnet)."""
    found = session.scalars(
        select(m.Port).where(
            m.Port.network_id == network_id,
            m.Port.device_owner == DHCP_OWNER,
            m.Port.binding_host_id == host_id,
        )
    ).first()
    if found is not None or not _needs_dhcp(session, network_id):
        return found
    network = session.get(m.Network, network_id)
    if network is None:
        return None
    port = port_core.create_port(
        session,
        SERVICE,
        {
            "network_id": network_id,
            "device_owner": DHCP_OWNER,
            "device_id": dhcp_device_id(host_id),
            "project_id": network.project_id,
            "binding:host_id": host_id,
        },
    )
    port.binding_host_id = host_id
    port.binding_vif_type = "tap"
    return port


def prune(session: Session, network_ids: Iterable[str]) -> None:
    """Remove DHCP ports on hosts where no guest of that network remains."""
    wanted = list(set(network_ids))
    if not wanted:
        return
    in_use = set(
        session.execute(
            select(m.Port.network_id, m.Port.binding_host_id).where(
                m.Port.network_id.in_(wanted),
                m.Port.device_owner.like(COMPUTE_PREFIX + "%"),
                m.Port.binding_host_id.is_not(None),
            )
        ).all()
    )
    for port in session.scalars(
        select(m.Port).where(m.Port.network_id.in_(wanted), m.Port.device_owner == DHCP_OWNER)
    ):
        if (port.network_id, port.binding_host_id) not in in_use:
            port_core.remove(session, port)
