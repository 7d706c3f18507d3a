"""What one host's network datapath should be, computed from the database for its agent.

The answer is complete, not a delta (DESIGN.md rule 2): the networks with something of
this host on them, the guest ports bound here with their security-group rules compiled
(remote groups expanded into the members' addresses), DHCP for those networks from the
host's DHCP ports with a static lease per guest, and the routers this host carries with
their interfaces, gateway and floating IPs. Its field names are those of the datapath's
``HostNetworkSpec`` (kumo.drivers.network.spec); the agent adds what only it knows (its
namespace, underlay interface and physical interface names, tap names).

``revision`` is a digest of the answer, so an agent can tell "nothing changed" cheaply;
``floating_ip_statuses`` (what the API recorded, not what to build) stays out of it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections import defaultdict
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.core.network import protocols
from kumo.db import models as m

COMPUTE_PREFIX = "compute:"
DHCP_OWNER = "network:dhcp"
ROUTER_INTERFACE = "network:router_interface"
ROUTER_GATEWAY = "network:router_gateway"


def _prefixlen(cidr: str) -> int:
    return ipaddress.ip_network(cidr, strict=False).prefixlen


def _compile_rule(rule: m.SecurityGroupRule, members: dict[str, list[str]]) -> list[dict[str, Any]]:
    """One Neutron rule as the datapath's neutral rules (one per remote prefix)."""
    number = protocols.number(rule.protocol)
    base: dict[str, Any] = {
        "direction": rule.direction,
        "ethertype": rule.ethertype,
        "protocol": number,
        "port_range_min": None,
        "port_range_max": None,
        "icmp_type": None,
        "icmp_code": None,
    }
    if number in protocols.ICMP_PROTOCOLS:
        base["icmp_type"] = rule.port_range_min
        base["icmp_code"] = rule.port_range_max
    else:
        base["port_range_min"] = rule.port_range_min
        base["port_range_max"] = rule.port_range_max
    if rule.remote_group_id is not None:
        version = 4 if rule.ethertype == "IPv4" else 6
        prefixes = [
            f"{ip}/{32 if version == 4 else 128}"
            for ip in members.get(rule.remote_group_id, [])
            if ipaddress.ip_address(ip).version == version
        ]
        return [{**base, "remote_ip_prefix": p} for p in prefixes]
    return [{**base, "remote_ip_prefix": rule.remote_ip_prefix}]


def desired_for_host(session: Session, host_id: str) -> dict[str, Any]:
    guest_ports = list(
        session.scalars(
            select(m.Port)
            .where(
                m.Port.binding_host_id == host_id,
                m.Port.device_owner.like(COMPUTE_PREFIX + "%"),
            )
            .order_by(m.Port.id)
        )
    )
    dhcp_ports = list(
        session.scalars(
            select(m.Port).where(
                m.Port.binding_host_id == host_id, m.Port.device_owner == DHCP_OWNER
            )
        )
    )
    routers = list(
        session.scalars(select(m.Router).where(m.Router.host_id == host_id).order_by(m.Router.id))
    )
    router_ids = [r.id for r in routers]
    router_ports = list(
        session.scalars(
            select(m.Port).where(
                m.Port.device_id.in_(router_ids),
                or_(
                    m.Port.device_owner == ROUTER_INTERFACE,
                    m.Port.device_owner == ROUTER_GATEWAY,
                ),
            )
        )
    ) if router_ids else []  # fmt: skip
    network_ids = {p.network_id for p in (*guest_ports, *dhcp_ports, *router_ports)}
    networks = {
        n.id: n for n in session.scalars(select(m.Network).where(m.Network.id.in_(network_ids)))
    }
    subnets = {
        s.id: s
        for s in session.scalars(select(m.Subnet).where(m.Subnet.network_id.in_(network_ids)))
    }
    all_ports = {p.id: p for p in (*guest_ports, *dhcp_ports, *router_ports)}
    fixed: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for port_id, subnet_id, ip in session.execute(
        select(m.IPAllocation.port_id, m.IPAllocation.subnet_id, m.IPAllocation.ip_address).where(
            m.IPAllocation.port_id.in_(list(all_ports))
        )
    ):
        fixed[port_id].append((subnet_id, ip))

    # Security groups of the guest ports, their rules, and the members of remote groups.
    port_groups: dict[str, list[str]] = defaultdict(list)
    for port_id, group_id in session.execute(
        select(m.PortSecurityGroup.port_id, m.PortSecurityGroup.security_group_id).where(
            m.PortSecurityGroup.port_id.in_([p.id for p in guest_ports])
        )
    ):
        port_groups[port_id].append(group_id)
    group_ids = {g for gs in port_groups.values() for g in gs}
    rules: dict[str, list[m.SecurityGroupRule]] = defaultdict(list)
    for rule in session.scalars(
        select(m.SecurityGroupRule)
        .where(m.SecurityGroupRule.security_group_id.in_(group_ids))
        .order_by(m.SecurityGroupRule.id)
    ):
        rules[rule.security_group_id].append(rule)
    remote_ids = {r.remote_group_id for rs in rules.values() for r in rs if r.remote_group_id}
    members: dict[str, list[str]] = defaultdict(list)
    if remote_ids:
        for group_id, ip in session.execute(
            select(m.PortSecurityGroup.security_group_id, m.IPAllocation.ip_address)
            .join(m.IPAllocation, m.IPAllocation.port_id == m.PortSecurityGroup.port_id)
            .where(m.PortSecurityGroup.security_group_id.in_(remote_ids))
            .order_by(m.IPAllocation.ip_address)
        ):
            members[group_id].append(ip)

    # VXLAN peers: other hosts with ports on the same networks, by their underlay address.
    peer_hosts: dict[str, set[str]] = defaultdict(set)
    for network_id, other in session.execute(
        select(m.Port.network_id, m.Port.binding_host_id).where(
            m.Port.network_id.in_(network_ids),
            m.Port.binding_host_id.is_not(None),
            m.Port.binding_host_id != host_id,
        )
    ):
        if other is not None:
            peer_hosts[network_id].add(other)
    router_hosts = session.execute(
        select(m.Port.network_id, m.Router.host_id)
        .join(m.Router, m.Router.id == m.Port.device_id)
        .where(m.Port.network_id.in_(network_ids), m.Router.host_id.is_not(None))
    ).all()
    for network_id, other in router_hosts:
        if other is not None and other != host_id:
            peer_hosts[network_id].add(other)
    underlays = {
        h.id: ((h.capabilities or {}).get("network") or {}).get("underlay_ip")
        for h in session.scalars(
            select(m.Host).where(m.Host.id.in_({h for hs in peer_hosts.values() for h in hs}))
        )
    }

    def fixed_ips(port: m.Port) -> list[dict[str, Any]]:
        return [
            {"ip": ip, "prefixlen": _prefixlen(subnets[s].cidr)}
            for s, ip in sorted(fixed[port.id], key=lambda x: x[1])
            if s in subnets
        ]

    spec_networks = []
    for network_id in sorted(networks):
        net = networks[network_id]
        spec_networks.append(
            {
                "id": net.id,
                "type": net.network_type,
                "segmentation_id": net.segmentation_id,
                "physical_network": net.physical_network,
                "mtu": net.mtu,
                "peers": sorted(
                    {u for h in peer_hosts.get(network_id, ()) if (u := underlays.get(h))}
                ),
            }
        )

    spec_ports = []
    for port in guest_ports:
        compiled = [
            c
            for group_id in sorted(port_groups.get(port.id, []))
            for rule in rules.get(group_id, [])
            for c in _compile_rule(rule, members)
        ]
        spec_ports.append(
            {
                "id": port.id,
                "network_id": port.network_id,
                "mac": port.mac_address,
                "fixed_ips": fixed_ips(port),
                "port_security_enabled": port.port_security_enabled,
                "allowed_address_pairs": [
                    {"ip": pair.get("ip_address", ""), "mac": pair.get("mac_address", "")}
                    for pair in port.allowed_address_pairs or ()
                ],
                "rules": compiled,
                "admin_state_up": port.admin_state_up,
            }
        )

    spec_dhcp = []
    for dhcp in dhcp_ports:
        net = networks[dhcp.network_id]
        own = dict((s, ip) for s, ip in fixed[dhcp.id])
        dhcp_subnets = [
            {
                "cidr": s.cidr,
                "gateway": s.gateway_ip,
                "dns_servers": list(s.dns_nameservers or ()),
                "host_routes": [
                    {"destination": r["destination"], "nexthop": r["nexthop"]}
                    for r in s.host_routes or ()
                ],
                "dhcp_ip": own.get(s.id, ""),
            }
            for s in sorted(subnets.values(), key=lambda s: s.id)
            if s.network_id == net.id and s.enable_dhcp and s.ip_version == 4
        ]
        leases = [
            {"mac": p.mac_address, "ip": ip, "hostname": ""}
            for p in guest_ports
            if p.network_id == net.id
            for s, ip in fixed[p.id]
            if s in subnets and subnets[s].enable_dhcp and subnets[s].ip_version == 4
        ]
        spec_dhcp.append(
            {
                "network_id": net.id,
                "port_id": dhcp.id,
                "mac": dhcp.mac_address,
                "subnets": dhcp_subnets,
                "leases": leases,
                "mtu": net.mtu,
                "metadata": True,
            }
        )

    floating = defaultdict(list)
    recorded: dict[str, str] = {}
    for fip in session.scalars(
        select(m.FloatingIP).where(
            m.FloatingIP.router_id.in_(router_ids), m.FloatingIP.fixed_ip_address.is_not(None)
        )
    ) if router_ids else []:  # fmt: skip
        floating[fip.router_id].append(
            {
                "floating_ip": fip.floating_ip_address,
                "fixed_ip": fip.fixed_ip_address,
                "id": fip.id,  # for the agent's report of what it applied
            }
        )
        recorded[fip.id] = fip.status
    spec_routers = []
    for router in routers:
        interfaces = []
        gateway = None
        for port in router_ports:
            if port.device_id != router.id:
                continue
            for subnet_id, ip in fixed[port.id]:
                subnet = subnets.get(subnet_id)
                if subnet is None or subnet.ip_version != 4:
                    continue
                leg = {
                    "port_id": port.id,  # for the agent's report of what it plugged
                    "network_id": port.network_id,
                    "ip": ip,
                    "prefixlen": _prefixlen(subnet.cidr),
                    "mac": port.mac_address,
                }
                if port.device_owner == ROUTER_GATEWAY:
                    if gateway is None:
                        gateway = {
                            **leg,
                            "gateway_ip": subnet.gateway_ip,
                            "snat": router.enable_snat,
                        }
                else:
                    interfaces.append(leg)
        spec_routers.append(
            {
                "id": router.id,
                "interfaces": sorted(
                    interfaces, key=lambda i: (str(i["network_id"]), str(i["ip"]))
                ),
                "gateway": gateway,
                "floating_ips": sorted(
                    floating.get(router.id, []), key=lambda f: str(f["floating_ip"])
                ),
                "routes": [
                    {"destination": r["destination"], "nexthop": r["nexthop"]}
                    for r in router.routes or ()
                ],
            }
        )

    state: dict[str, Any] = {
        "networks": spec_networks,
        "ports": spec_ports,
        "dhcp": spec_dhcp,
        "routers": spec_routers,
    }
    digest = hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()[:16]
    # Outside the digest: not what the datapath is built from but the status recorded for
    # each floating IP of the host's routers, which the agent compares with what it
    # applied at every fetch (a disassociation and re-association between two of its
    # passes leave the digest as it was, yet the floating IP went DOWN meanwhile).
    return {"revision": digest, **state, "floating_ip_statuses": recorded}


def instance_at(session: Session, host_id: str, network_id: str, ip: str) -> str | None:
    """The server whose port on this host holds ``ip`` on that network (the metadata
    service's question: who is asking?), or None."""
    found: str | None = session.scalar(
        select(m.Port.device_id)
        .join(m.IPAllocation, m.IPAllocation.port_id == m.Port.id)
        .where(
            m.IPAllocation.network_id == network_id,
            m.IPAllocation.ip_address == ip,
            m.Port.binding_host_id == host_id,
            m.Port.device_owner.like(COMPUTE_PREFIX + "%"),
        )
    )
    return found or None
