"""The ports a router owns (its gateway and interfaces), and what routers and floating IPs
share about them."""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.core.policy import Context
from kumo.db import models as m

GATEWAY_OWNER = "network:router_gateway"
INTERFACE_OWNER = "network:router_interface"
FLOATING_OWNER = "network:floatingip"


def elevated(ctx: Context) -> Context:
    """The caller with admin rights, for the ports a router or floating IP makes on its
    behalf (on an external network the caller may not create ports on)."""
    return dataclasses.replace(ctx, roles=ctx.roles | {"admin"})


# A router's new port is DOWN until the agent of the host carrying the router reports it
# plugged into the router's namespace (kumo.core.network.port_status), as Neutron's L3
# agent does: the status is what the datapath observed, not what placement promised.
NEW_PORT_STATUS = "DOWN"


def interface_ports(session: Session, router_id: str) -> list[m.Port]:
    return list(
        session.scalars(
            select(m.Port)
            .where(m.Port.device_id == router_id, m.Port.device_owner == INTERFACE_OWNER)
            .order_by(m.Port.created_at, m.Port.id)
        )
    )


def routes_via(routes: Iterable[dict[str, str]], cidr: str) -> list[dict[str, str]]:
    """The routes whose nexthop lies in ``cidr``."""
    network = ipaddress.ip_network(cidr)
    return [r for r in routes if ipaddress.ip_address(r["nexthop"]) in network]
