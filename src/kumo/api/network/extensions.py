"""/network/v2.0/extensions: the Neutron extensions kumo implements, in one table.

A module that implements another extension adds its row here: clients (and Tempest) decide
from this list which attributes and resources to use, so it must never claim more.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from kumo.api.auth import Caller, caller
from kumo.api.network.common import V2
from kumo.core.errors import NotFound

router = APIRouter(prefix=V2)

UPDATED = "2026-01-01T00:00:00-00:00"

# alias -> (name, description)
EXTENSIONS: dict[str, tuple[str, str]] = {
    # Networks, subnets, subnet pools, ports, tags, quotas (this package).
    "external-net": ("External networks", "router:external on networks."),
    "provider": ("Provider networks", "provider:* attributes: a network's physical segment."),
    "binding": ("Port binding", "binding:* attributes: where and how a port is plugged."),
    "net-mtu": ("Network MTU", "The mtu attribute of networks."),
    "port-security": ("Port security", "port_security_enabled on networks and ports."),
    "allowed-address-pairs": ("Allowed address pairs", "Extra addresses a port may send from."),
    "extra_dhcp_opt": ("Extra DHCP options", "Per-port DHCP options (extra_dhcp_opts)."),
    "subnet_allocation": ("Subnet allocation", "Subnet pools, and subnets carved from them."),
    "default-subnetpools": ("Default subnet pools", "is_default pools, use_default_subnetpool."),
    "availability_zone": ("Availability zones", "The availability_zones resource."),
    "network_availability_zone": ("Network availability zones", "Zone hints on networks."),
    "project-id": ("Project id", "project_id beside tenant_id in every resource."),
    "quotas": ("Quotas", "Per-project limits of networking resources."),
    "quota_details": ("Quota details", "Limit, usage and reservations per resource."),
    "tag": ("Network tags", "Tags on networks (the first tag extension)."),
    "standard-attr-tag": ("Tags", "Tags on networks, subnets, ports, pools, routers, ..."),
    "standard-attr-description": ("Descriptions", "A description on every resource."),
    "standard-attr-revisions": ("Revisions", "revision_number, bumped by every change."),
    "standard-attr-timestamp": ("Timestamps", "created_at and updated_at on every resource."),
    "revision-if-match": ("If-Match on revisions", "If-Match: revision_number=N on changes."),
    "ip-substring-filtering": ("IP substring filter", "fixed_ips=ip_address_substr=... filter."),
    "subnet-external-network": (
        "Subnets of external networks",
        "Every project sees the subnets of external networks.",
    ),
    "network-ip-availability": (
        "Network IP availability",
        "Total and used addresses of each network and subnet (admins).",
    ),
    "sorting": ("Sorting", "sort_key and sort_dir on lists."),
    "pagination": ("Pagination", "limit, marker and page_reverse on lists."),
    # Routers and floating IPs, security groups (their own modules).
    "router": ("Routers", "Routers between networks, with a NAT gateway to external ones."),
    "ext-gw-mode": ("Gateway SNAT mode", "enable_snat on a router's external gateway."),
    "extraroute": ("Extra routes", "Static routes on routers."),
    "fip-port-details": ("Floating IP port details", "port_details on floating IPs."),
    "security-group": ("Security groups", "Security groups and their rules."),
    "stateful-security-group": ("Stateful security groups", "stateful on security groups."),
    "security-groups-normalized-cidr": (
        "Normalized CIDR",
        "normalized_cidr: the network of a rule's remote_ip_prefix.",
    ),
    "security-groups-rules-belongs-to-default-sg": (
        "Default group rules",
        "belongs_to_default_sg on security group rules.",
    ),
    "security-groups-shared-filtering": ("Shared filtering", "shared on security groups."),
    "router_availability_zone": (
        "Router availability zones",
        "availability_zone_hints and availability_zones on routers.",
    ),
}


def _body(alias: str) -> dict[str, Any]:
    name, description = EXTENSIONS[alias]
    return {
        "alias": alias,
        "name": name,
        "description": description,
        "updated": UPDATED,
        "links": [],
    }


@router.get("/extensions")
def list_extensions(_who: Caller = Depends(caller)) -> dict[str, Any]:
    return {"extensions": [_body(alias) for alias in EXTENSIONS]}


@router.get("/extensions/{alias}")
def show_extension(alias: str, _who: Caller = Depends(caller)) -> dict[str, Any]:
    if alias not in EXTENSIONS:
        raise NotFound(f"Extension with alias {alias} does not exist")
    return {"extension": _body(alias)}
