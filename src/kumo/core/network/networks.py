"""Networks: who sees which, and their lifecycle (provider segment, sharing, deletion)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from kumo.config import NetworkConfig
from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.core.network import quotas, segments, standard, tags
from kumo.core.network.scope import owner_project, owns
from kumo.core.policy import Context
from kumo.db import models as m

RESOURCE = "networks"
MIN_MTU = 68
MAX_MTU = 9216
ADMIN_ONLY = (
    "provider:network_type",
    "provider:physical_network",
    "provider:segmentation_id",
    "router:external",
    "is_default",
    "shared",
)


def visible(ctx: Context) -> ColumnElement[bool]:
    """Networks the caller may see: its own, shared and external ones (admins: all)."""
    if ctx.is_admin:
        return true()
    return or_(
        m.Network.project_id == (ctx.project_id or ""),
        m.Network.shared.is_(True),
        m.Network.external.is_(True),
    )


def can_see(ctx: Context, network: m.Network) -> bool:
    return (
        ctx.is_admin or network.project_id == ctx.project_id or network.shared or network.external
    )


def not_found(network_id: str) -> NotFound:
    return NotFound(f"Network {network_id} could not be found.", kind="NetworkNotFound")


def get_network(session: Session, ctx: Context, network_id: str, lock: bool = False) -> m.Network:
    """The network if the caller may see it, else Neutron's 404 NetworkNotFound."""
    network = session.get(m.Network, network_id, with_for_update=lock or None)
    if network is None or not can_see(ctx, network):
        raise not_found(network_id)
    return network


def _forbidden(action: str, key: str) -> Forbidden:
    return Forbidden(f"(rule:{action}_network:{key}) is disallowed by policy")


def owned_network(session: Session, ctx: Context, network_id: str) -> m.Network:
    """A network the caller may change: 404 if it cannot see it, 403 if it only sees it
    (shared or external networks of another project)."""
    network = get_network(session, ctx, network_id)
    if not owns(ctx, network.project_id):
        raise Forbidden(f"(rule:update_network) is disallowed by policy for network {network_id}")
    return network


def _admin_only(ctx: Context, attrs: dict[str, Any], action: str) -> None:
    """Neutron's policy: provider attributes, router:external, is_default and shared are for
    admins (a value equal to the default is not "set")."""
    if ctx.is_admin:
        return
    for key in ADMIN_ONLY:
        if key in attrs and attrs[key] not in (None, False):
            raise _forbidden(action, key)


def _zone_hints(attrs: dict[str, Any]) -> list[str] | None:
    if "availability_zone_hints" not in attrs:
        return None
    hints = attrs["availability_zone_hints"]
    if hints is None:
        return []
    if not isinstance(hints, list) or not all(isinstance(h, str) and h for h in hints):
        raise BadRequest(
            f"Invalid input for availability_zone_hints. Reason: '{hints}' is not a list of "
            "zone names."
        )
    return sorted(set(hints))


def _mtu(attrs: dict[str, Any], maximum: int) -> int | None:
    if attrs.get("mtu") is None:
        return None
    raw = attrs["mtu"]
    if isinstance(raw, bool):
        raise BadRequest(f"Invalid input for mtu. Reason: '{raw}' is not an integer.")
    try:
        mtu = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for mtu. Reason: '{raw}' is not an integer.") from None
    if mtu < MIN_MTU:
        raise BadRequest(
            f"Invalid input for mtu. Reason: '{mtu}' is too small - must be at least '{MIN_MTU}'."
        )
    if mtu > maximum:
        raise BadRequest(f"Requested MTU is too big, maximum is {maximum}.", kind="InvalidInput")
    return mtu


def _check_default(session: Session, network: m.Network) -> None:
    """Only one external network may be the default (for auto-allocated topologies)."""
    if not network.is_default:
        return
    if not network.external:
        raise BadRequest("Only an external network (router:external) can be the default.")
    other = session.scalar(
        select(m.Network.id).where(
            m.Network.is_default.is_(True), m.Network.external.is_(True), m.Network.id != network.id
        )
    )
    if other:
        raise Conflict(
            f"Unable to set network {network.id} as default: network {other} already is.",
            kind="DefaultExternalNetworkExists",
        )


def _insert(session: Session, network: m.Network, segment: segments.Segment) -> bool:
    network.network_type = segment.network_type
    network.physical_network = segment.physical_network
    network.segmentation_id = segment.segmentation_id
    network.segment_key = segment.key
    try:
        with session.begin_nested():
            session.add(network)
            session.flush()
    except IntegrityError:
        if network in session:
            session.expunge(network)
        return False
    return True


def create_network(
    session: Session, ctx: Context, config: NetworkConfig, attrs: dict[str, Any]
) -> m.Network:
    """Create a network from Neutron request attributes (names already checked)."""
    project_id = owner_project(ctx, attrs)
    _admin_only(ctx, attrs, "create")
    quotas.check_quota(session, project_id, "network")
    network_type, physnet, seg_id = segments.requested(config, attrs)
    network = m.Network(
        id=str(uuid.uuid4()),
        project_id=project_id,
        name=standard.text(attrs, "name") or "",
        description=standard.text(attrs, "description") or "",
        status="ACTIVE",
        revision_number=0,
        dns_domain=standard.text(attrs, "dns_domain") or "",
    )
    network.admin_state_up = _bool(attrs, "admin_state_up", True)
    network.shared = _bool(attrs, "shared", False)
    network.external = _bool(attrs, "router:external", False)
    network.is_default = _bool(attrs, "is_default", False)
    network.port_security_enabled = _bool(attrs, "port_security_enabled", True)
    network.availability_zone_hints = _zone_hints(attrs) or []
    maximum = segments.mtu_for(config, network_type)
    network.mtu = _mtu(attrs, maximum) or maximum
    _check_default(session, network)
    if seg_id is not None or network_type in ("flat", "local"):
        segment = segments.Segment(network_type, physnet, seg_id)
        if not _insert(session, network, segment):
            raise segments.taken_error(segment)
    else:
        for segment in segments.candidates(session, config, network_type, physnet):
            if _insert(session, network, segment):
                break
        else:
            raise segments.Unavailable(
                "Unable to create the network. No tenant network is available for allocation.",
                kind="NoNetworkAvailable",
            )
    return network


def _bool(attrs: dict[str, Any], key: str, default: bool) -> bool:
    value = standard.boolean(attrs, key)
    return default if value is None else value


def update_network(
    session: Session, ctx: Context, network_id: str, attrs: dict[str, Any]
) -> m.Network:
    network = owned_network(session, ctx, network_id)
    _admin_only(ctx, {k: v for k, v in attrs.items() if k != "shared"}, "update")
    for key in ("provider:network_type", "provider:physical_network", "provider:segmentation_id"):
        if key in attrs and attrs[key] != _provider(network)[key]:
            raise BadRequest(
                "Plugin does not support updating the following provider network attributes: " + key
            )
    for key in ("name", "description", "dns_domain"):
        text = standard.text(attrs, key)
        if text is not None:
            setattr(network, key, text)
    for key, column in (
        ("admin_state_up", "admin_state_up"),
        ("port_security_enabled", "port_security_enabled"),
        ("router:external", "external"),
        ("is_default", "is_default"),
    ):
        value = standard.boolean(attrs, key)
        if value is not None:
            setattr(network, column, value)
    shared = standard.boolean(attrs, "shared")
    if shared is not None and shared != network.shared:
        if not ctx.is_admin:
            raise _forbidden("update", "shared")
        if not shared:
            _check_unshare(session, network)
        network.shared = shared
    if network.is_default and "router:external" in attrs and not network.external:
        network.is_default = False
    _check_default(session, network)
    hints = _zone_hints(attrs)
    if hints is not None:
        network.availability_zone_hints = hints
    mtu = _mtu(attrs, MAX_MTU)
    if mtu is not None:
        network.mtu = mtu
    standard.touch(network)
    session.flush()
    return network


def _provider(network: m.Network) -> dict[str, Any]:
    return {
        "provider:network_type": network.network_type,
        "provider:physical_network": network.physical_network,
        "provider:segmentation_id": network.segmentation_id,
    }


def _check_unshare(session: Session, network: m.Network) -> None:
    """A network other projects have ports on cannot stop being shared (Neutron 409)."""
    other = session.scalar(
        select(m.Port.id).where(
            m.Port.network_id == network.id,
            m.Port.project_id != network.project_id,
            ~m.Port.device_owner.startswith("network:"),
        )
    )
    if other:
        raise Conflict(
            f"Unable to reconfigure sharing settings for network {network.id}. Multiple "
            "tenants are using it.",
            kind="InvalidSharedSetting",
        )


def delete_network(session: Session, ctx: Context, network_id: str) -> None:
    """Delete a network with its subnets. DHCP ports go with it; any other port keeps it
    (409 NetworkInUse: delete those ports, or detach the servers, first)."""
    # ports and floating_ips look networks up: import at use.
    from kumo.core.network import floating_ips, ports

    network = owned_network(session, ctx, network_id)
    # As in Neutron, an external network's floating IPs go with it.
    floating_ips.delete_on_network(session, network.id)
    on_it = list(session.scalars(select(m.Port).where(m.Port.network_id == network.id)))
    if any(p.device_owner != ports.DHCP_OWNER for p in on_it):
        raise Conflict(
            f"Unable to complete operation on network {network.id}. There are one or more "
            "ports still in use on the network.",
            kind="NetworkInUse",
        )
    for port in on_it:
        ports.remove(session, port)
    for subnet in session.scalars(select(m.Subnet).where(m.Subnet.network_id == network.id)):
        session.execute(delete(m.IPAllocation).where(m.IPAllocation.subnet_id == subnet.id))
        tags.drop_tags(session, "subnets", subnet.id)
        session.delete(subnet)
    session.flush()
    tags.drop_tags(session, RESOURCE, network.id)
    session.delete(network)
    session.flush()


def subnet_ids_of(session: Session, network_ids: Iterable[str]) -> dict[str, list[str]]:
    """Subnet ids of many networks in one query (the ``subnets`` of a network's view)."""
    wanted = list(network_ids)
    found: dict[str, list[str]] = {n: [] for n in wanted}
    if not wanted:
        return found
    rows = session.execute(
        select(m.Subnet.network_id, m.Subnet.id)
        .where(m.Subnet.network_id.in_(wanted))
        .order_by(m.Subnet.created_at, m.Subnet.id)
    )
    for network_id, subnet_id in rows:
        found.setdefault(network_id, []).append(subnet_id)
    return found


def list_networks(session: Session, ctx: Context) -> list[m.Network]:
    return list(
        session.scalars(
            select(m.Network).where(visible(ctx)).order_by(m.Network.created_at, m.Network.id)
        )
    )
