"""Provider segments (Neutron's ML2 type drivers): which (type, physical network,
segmentation id) a network gets, from the configured ranges or as an admin names it.

Uniqueness is the database's: ``networks.segment_key`` is unique, so two racing creates can
never share a VLAN or a VNI; a loser of the race retries with the next free id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.config import NetworkConfig
from kumo.core.errors import BadRequest, Conflict, KumoError
from kumo.db import models as m

TYPES = ("flat", "vlan", "vxlan", "local")
MAX_VLAN = 4094
MAX_VNI = 2**24 - 1
VXLAN_OVERHEAD = 50


class Unavailable(KumoError):
    """Neutron's 503 when no tenant segment is left."""

    status = 503
    title = "Service Unavailable"


@dataclass(frozen=True)
class Segment:
    network_type: str
    physical_network: str | None
    segmentation_id: int | None

    @property
    def key(self) -> str | None:
        """The unique key; ``local`` networks share nothing, so they have none."""
        if self.network_type == "local":
            return None
        return f"{self.network_type}:{self.physical_network or ''}:{self.segmentation_id or ''}"


def _ranges(spec: str) -> list[tuple[int, int]]:
    found = []
    for part in spec.split(","):
        part = part.strip()
        if part:
            first, last = part.split(":")
            found.append((int(first), int(last)))
    return found


def vlan_ranges(config: NetworkConfig) -> dict[str, list[tuple[int, int]]]:
    """physnet -> VLAN id ranges (an empty list: admin-chosen ids only)."""
    found: dict[str, list[tuple[int, int]]] = {}
    for part in config.vlan_ranges.split(","):
        bits = part.strip().split(":")
        if not bits[0]:
            continue
        found.setdefault(bits[0], [])
        if len(bits) == 3:
            found[bits[0]].append((int(bits[1]), int(bits[2])))
    return found


def tenant_type(config: NetworkConfig) -> str:
    """What a tenant's network is: VXLAN when VNIs are configured, else local."""
    return "vxlan" if _ranges(config.vxlan_vni_ranges) else "local"


def mtu_for(config: NetworkConfig, network_type: str) -> int:
    return config.default_mtu - (VXLAN_OVERHEAD if network_type == "vxlan" else 0)


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool):
        raise BadRequest(f"Invalid input for {key}. Reason: '{value}' is not an integer.")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for {key}. Reason: '{value}' is not an integer.") from None


def requested(config: NetworkConfig, attrs: dict[str, Any]) -> tuple[str, str | None, int | None]:
    """Check an admin's ``provider:*`` attributes: (type, physnet, segmentation id or None to
    allocate)."""
    network_type = attrs.get("provider:network_type") or tenant_type(config)
    physnet = attrs.get("provider:physical_network")
    raw_id = attrs.get("provider:segmentation_id")
    seg_id = None if raw_id is None else _int("provider:segmentation_id", raw_id)
    if network_type not in TYPES:
        raise BadRequest(f"network_type value '{network_type}' not supported")
    if physnet is not None and not isinstance(physnet, str):
        raise BadRequest(f"Invalid input for provider:physical_network: '{physnet}'.")
    if network_type == "local":
        if physnet or seg_id is not None:
            which = "physical_network" if physnet else "segmentation_id"
            raise BadRequest(f"{which} prohibited for local provider network")
        return network_type, None, None
    if network_type == "flat":
        if seg_id is not None:
            raise BadRequest("segmentation_id prohibited for flat provider network")
        if not physnet:
            raise BadRequest("physical_network required for flat provider network")
        if physnet not in config.flat_networks:
            raise BadRequest(f"physical_network '{physnet}' unknown for flat provider network")
        return network_type, physnet, None
    if network_type == "vxlan":
        if physnet:
            raise BadRequest("provider:physical_network specified for vxlan network")
        if seg_id is not None and not 1 <= seg_id <= MAX_VNI:
            raise BadRequest(f"Segmentation ID {seg_id} out of range (1 through {MAX_VNI})")
        return network_type, None, seg_id
    ranges = vlan_ranges(config)
    if physnet and physnet not in ranges:
        raise BadRequest(f"physical_network '{physnet}' unknown for VLAN provider network.")
    if seg_id is not None:
        if not physnet:
            raise BadRequest("segmentation_id requires physical_network for VLAN provider network")
        if not 1 <= seg_id <= MAX_VLAN:
            raise BadRequest(f"segmentation_id out of range (1 through {MAX_VLAN})")
    return network_type, physnet, seg_id


def _taken(session: Session, network_type: str, physnet: str | None) -> set[int]:
    query = select(m.Network.segmentation_id).where(
        m.Network.network_type == network_type, m.Network.segmentation_id.is_not(None)
    )
    if physnet is not None:
        query = query.where(m.Network.physical_network == physnet)
    return {int(v) for v in session.execute(query).scalars() if v is not None}


def candidates(
    session: Session, config: NetworkConfig, network_type: str, physnet: str | None
) -> list[Segment]:
    """Free segments to try in order (lowest id first), for an allocated segment."""
    pools: list[tuple[str | None, tuple[int, int]]]
    if network_type == "vxlan":
        pools = [(None, r) for r in _ranges(config.vxlan_vni_ranges)]
    else:
        pools = [
            (net, r)
            for net, found in vlan_ranges(config).items()
            if physnet is None or net == physnet
            for r in found
        ]
    result: list[Segment] = []
    for net, (first, last) in pools:
        taken = _taken(session, network_type, net)
        for seg_id in range(first, last + 1):
            if seg_id not in taken:
                result.append(Segment(network_type, net, seg_id))
                if len(result) >= 32:
                    return result
    if not result:
        raise Unavailable(
            "Unable to create the network. No tenant network is available for allocation.",
            kind="NoNetworkAvailable",
        )
    return result


def taken_error(segment: Segment) -> Conflict:
    if segment.network_type == "flat":
        return Conflict(
            f"Unable to create the flat network. Physical network {segment.physical_network} "
            "is in use.",
            kind="FlatNetworkInUse",
        )
    if segment.network_type == "vlan":
        return Conflict(
            f"Unable to create the network. The VLAN {segment.segmentation_id} on physical "
            f"network {segment.physical_network} is in use.",
            kind="VlanIdInUse",
        )
    return Conflict(
        f"Unable to create the network. The tunnel ID {segment.segmentation_id} is in use.",
        kind="TunnelIdInUse",
    )
