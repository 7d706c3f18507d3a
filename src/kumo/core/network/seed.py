"""The all-in-one cloud's first networks: a ``public`` external network on the physical
network the provider namespace stands behind, a ``private`` tenant network for the demo
project and a router between them, so a newcomer's first server has an address and a
way out. Made once (a settings row remembers it): networks an operator deletes later
stay deleted."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sqlalchemy.orm import Session

from kumo.config import NetworkConfig
from kumo.core.network import networks, routers, subnets
from kumo.core.network.router_interfaces import add_interface
from kumo.core.policy import SERVICE
from kumo.db import models as m

SEEDED = "networks_seeded"
PRIVATE_CIDR = "10.0.0.0/24"


@dataclass(frozen=True)
class Seeded:
    public_id: str
    private_id: str
    router_id: str


def seed_networks(
    session: Session,
    config: NetworkConfig,
    provider_gateway: str,
    admin_project_id: str,
    demo_project_id: str,
    heartbeat_timeout: float,
) -> Seeded | None:
    """Create the first networks unless done before (or no provider gateway is set)."""
    if not provider_gateway or session.get(m.Setting, SEEDED) is not None:
        return None
    gateway = ipaddress.ip_interface(provider_gateway)
    public_net = gateway.network
    hosts = list(public_net.hosts())
    public = networks.create_network(
        session,
        SERVICE,
        config,
        {
            "name": "public",
            "project_id": admin_project_id,
            "router:external": True,
            "provider:network_type": "flat",
            "provider:physical_network": "public",
        },
    )
    subnets.create_subnet(
        session,
        SERVICE,
        {
            "network_id": public.id,
            "project_id": admin_project_id,
            "name": "public-subnet",
            "ip_version": 4,
            "cidr": str(public_net),
            "gateway_ip": str(gateway.ip),
            "enable_dhcp": False,
            # Leave the low addresses to the outside world's own hosts.
            "allocation_pools": [{"start": str(hosts[min(9, len(hosts) - 2)]),
                                  "end": str(hosts[-1])}],
        },
    )  # fmt: skip
    private = networks.create_network(
        session, SERVICE, config, {"name": "private", "project_id": demo_project_id}
    )
    private_subnet = subnets.create_subnet(
        session,
        SERVICE,
        {
            "network_id": private.id,
            "project_id": demo_project_id,
            "name": "private-subnet",
            "ip_version": 4,
            "cidr": PRIVATE_CIDR,
        },
    )
    router = routers.create_router(
        session,
        SERVICE,
        {
            "name": "router1",
            "project_id": demo_project_id,
            "external_gateway_info": {"network_id": public.id},
        },
        heartbeat_timeout,
    )
    add_interface(session, SERVICE, router, private_subnet.id, None)
    session.add(m.Setting(key=SEEDED, value=public.id))
    session.flush()
    return Seeded(public.id, private.id, router.id)
