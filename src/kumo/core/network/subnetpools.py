"""Subnet pools (Neutron's subnet_allocation): prefixes that subnets are carved from, with
the smallest, largest and default prefix length of a carved subnet."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.core.network import ipam, quotas, standard, tags
from kumo.core.network.scope import owner_project, owns
from kumo.core.policy import Context
from kumo.db import models as m

RESOURCE = "subnetpools"
Net = ipaddress.IPv4Network | ipaddress.IPv6Network
ADMIN_ONLY = ("shared", "is_default")


def not_found(pool_id: str) -> NotFound:
    return NotFound(f"Subnet pool {pool_id} could not be found.", kind="SubnetPoolNotFound")


def visible(ctx: Context) -> ColumnElement[bool]:
    if ctx.is_admin:
        return true()
    return or_(m.SubnetPool.project_id == (ctx.project_id or ""), m.SubnetPool.shared.is_(True))


def get_subnetpool(session: Session, ctx: Context, pool_id: Any) -> m.SubnetPool:
    pool = session.get(m.SubnetPool, pool_id) if isinstance(pool_id, str) else None
    if pool is None or not (ctx.is_admin or pool.shared or pool.project_id == ctx.project_id):
        raise not_found(str(pool_id))
    return pool


def owned_subnetpool(session: Session, ctx: Context, pool_id: str) -> m.SubnetPool:
    pool = get_subnetpool(session, ctx, pool_id)
    if not owns(ctx, pool.project_id):
        raise Forbidden(f"(rule:update_subnetpool) is disallowed by policy for {pool_id}")
    return pool


def list_subnetpools(session: Session, ctx: Context) -> list[m.SubnetPool]:
    return list(
        session.scalars(select(m.SubnetPool).where(visible(ctx)).order_by(m.SubnetPool.created_at))
    )


def default_pool(session: Session, ip_version: int) -> m.SubnetPool | None:
    return session.scalar(
        select(m.SubnetPool).where(
            m.SubnetPool.is_default.is_(True), m.SubnetPool.ip_version == ip_version
        )
    )


def _prefixes(raw: Any) -> list[Net]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise BadRequest(
            "Invalid input for prefixes. Reason: a non-empty list of CIDRs is required."
        )
    from kumo.core.network.subnets import parse_cidr

    nets = [parse_cidr(p, "prefixes") for p in raw]
    if len({n.version for n in nets}) > 1:
        raise BadRequest(
            "Illegal subnetpool prefix: cannot mix IPv4 and IPv6 prefixes in a pool.",
            kind="PrefixVersionMismatch",
        )
    return list(ipaddress.collapse_addresses(nets))  # type: ignore[type-var]


def _length(attrs: dict[str, Any], key: str, default: int, maximum: int) -> int:
    raw = attrs.get(key)
    if raw is None:
        return default
    if isinstance(raw, bool):
        raise BadRequest(f"Invalid input for {key}. Reason: '{raw}' is not an integer.")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for {key}. Reason: '{raw}' is not an integer.") from None
    if not 0 <= value <= maximum:
        raise BadRequest(f"Invalid input for {key}. Reason: '{value}' is not in 0..{maximum}.")
    return value


def _lengths(
    attrs: dict[str, Any], version: int, current: m.SubnetPool | None
) -> tuple[int, int, int]:
    """(min, default, max) prefix lengths: Neutron's defaults are 8 (IPv4) or 64 (IPv6),
    the minimum, and the address length."""
    top = 32 if version == 4 else 128
    minimum = _length(
        attrs,
        "min_prefixlen",
        current.min_prefixlen if current else (8 if version == 4 else 64),
        top,
    )
    maximum = _length(attrs, "max_prefixlen", current.max_prefixlen if current else top, top)
    default = _length(
        attrs, "default_prefixlen", current.default_prefixlen if current else minimum, top
    )
    if not minimum <= default <= maximum:
        raise BadRequest(
            f"Illegal prefix bounds: min_prefixlen={minimum}, default_prefixlen={default}, "
            f"max_prefixlen={maximum}: min <= default <= max is required.",
            kind="IllegalSubnetPoolPrefixBounds",
        )
    return minimum, default, maximum


def create_subnetpool(session: Session, ctx: Context, attrs: dict[str, Any]) -> m.SubnetPool:
    project_id = owner_project(ctx, attrs)
    for key in ADMIN_ONLY:
        if attrs.get(key) not in (None, False) and not ctx.is_admin:
            raise Forbidden(f"(rule:create_subnetpool:{key}) is disallowed by policy")
    if attrs.get("prefixes") is None:
        raise BadRequest("Failed to parse request. Required attribute 'prefixes' not specified")
    quotas.check_quota(session, project_id, "subnetpool")
    nets = _prefixes(attrs["prefixes"])
    version = nets[0].version
    minimum, default, maximum = _lengths(attrs, version, None)
    pool = m.SubnetPool(
        id=str(uuid.uuid4()),
        project_id=project_id,
        name=standard.text(attrs, "name") or "",
        description=standard.text(attrs, "description") or "",
        ip_version=version,
        prefixes=[str(n) for n in nets],
        min_prefixlen=minimum,
        default_prefixlen=default,
        max_prefixlen=maximum,
        default_quota=_quota(attrs),
        shared=bool(standard.boolean(attrs, "shared")),
        is_default=bool(standard.boolean(attrs, "is_default")),
        address_scope_id=attrs.get("address_scope_id"),
        revision_number=0,
    )
    _check_default(session, pool)
    session.add(pool)
    session.flush()
    return pool


def _quota(attrs: dict[str, Any]) -> int | None:
    raw = attrs.get("default_quota")
    if raw is None:
        return None
    return _length({"default_quota": raw}, "default_quota", 0, 2**31 - 1)


def _check_default(session: Session, pool: m.SubnetPool) -> None:
    if not pool.is_default:
        return
    other = session.scalar(
        select(m.SubnetPool.id).where(
            m.SubnetPool.is_default.is_(True),
            m.SubnetPool.ip_version == pool.ip_version,
            m.SubnetPool.id != pool.id,
        )
    )
    if other:
        raise BadRequest(
            f"Invalid input for operation: A default subnetpool for IPv{pool.ip_version} "
            f"already exists ({other}).",
            kind="InvalidInput",
        )


def update_subnetpool(
    session: Session, ctx: Context, pool_id: str, attrs: dict[str, Any]
) -> m.SubnetPool:
    pool = owned_subnetpool(session, ctx, pool_id)
    for key in ADMIN_ONLY:
        if key in attrs and attrs[key] != getattr(pool, key) and not ctx.is_admin:
            raise Forbidden(f"(rule:update_subnetpool:{key}) is disallowed by policy")
    for key in ("name", "description"):
        text = standard.text(attrs, key)
        if text is not None:
            setattr(pool, key, text)
    nets = [ipaddress.ip_network(p) for p in pool.prefixes]
    if attrs.get("prefixes") is not None:
        wanted = _prefixes(attrs["prefixes"])
        if wanted[0].version != pool.ip_version:
            raise BadRequest("Illegal subnetpool prefix: the pool's IP version cannot change.")
        for old in nets:
            if not any(ipam.within(old, new) for new in wanted):
                raise BadRequest(
                    "Illegal update to prefixes: existing prefixes must be a subset of the new "
                    f"prefixes ({old} is missing).",
                    kind="IllegalSubnetPoolPrefixUpdate",
                )
        nets = wanted
        pool.prefixes = [str(n) for n in wanted]
    pool.min_prefixlen, pool.default_prefixlen, pool.max_prefixlen = _lengths(
        attrs, pool.ip_version, pool
    )
    if "default_quota" in attrs:
        pool.default_quota = _quota(attrs)
    for key in ADMIN_ONLY:
        value = standard.boolean(attrs, key)
        if value is not None:
            setattr(pool, key, value)
    _check_default(session, pool)
    if "address_scope_id" in attrs:
        pool.address_scope_id = attrs["address_scope_id"]
    standard.touch(pool)
    session.flush()
    return pool


def delete_subnetpool(session: Session, ctx: Context, pool_id: str) -> None:
    pool = owned_subnetpool(session, ctx, pool_id)
    used = session.scalar(select(m.Subnet.id).where(m.Subnet.subnetpool_id == pool.id))
    if used:
        raise Conflict(
            f"Unable to complete operation on subnetpool {pool.id}: subnets are allocated "
            "from it; delete them first.",
            kind="SubnetPoolInUse",
        )
    tags.drop_tags(session, RESOURCE, pool.id)
    session.delete(pool)
    session.flush()


def _used(session: Session, pool: m.SubnetPool) -> list[Net]:
    return [
        ipaddress.ip_network(c)
        for c in session.scalars(select(m.Subnet.cidr).where(m.Subnet.subnetpool_id == pool.id))
    ]


def check_request(session: Session, pool: m.SubnetPool, net: Net) -> None:
    """A specific CIDR asked of a pool must lie in it, within its prefix bounds, and be free."""
    if net.version != pool.ip_version or not any(
        ipam.within(net, ipaddress.ip_network(p)) for p in pool.prefixes
    ):
        raise BadRequest(
            f"Unsupported request type: cidr {net} is not within the prefixes of subnet pool "
            f"{pool.id}.",
            kind="SubnetAllocationError",
        )
    if not pool.min_prefixlen <= net.prefixlen <= pool.max_prefixlen:
        raise BadRequest(
            f"Unable to allocate subnet with prefix length {net.prefixlen}, allowed prefix "
            f"lengths are {pool.min_prefixlen}-{pool.max_prefixlen}.",
            kind="IllegalSubnetPoolPrefixLength",
        )
    for used in _used(session, pool):
        if used.overlaps(net):
            raise Conflict(
                f"Unable to allocate subnet with cidr {net}: it overlaps {used}, already "
                f"allocated from subnet pool {pool.id}.",
                kind="SubnetAllocationError",
            )


def carve(session: Session, pool: m.SubnetPool, prefixlen: Any) -> Net:
    """The first free prefix of the requested (or the pool's default) length."""
    length = _length({"prefixlen": prefixlen}, "prefixlen", pool.default_prefixlen, 128)
    if not pool.min_prefixlen <= length <= pool.max_prefixlen:
        raise BadRequest(
            f"Unable to allocate subnet with prefix length {length}, allowed prefix lengths "
            f"are {pool.min_prefixlen}-{pool.max_prefixlen}.",
            kind="IllegalSubnetPoolPrefixLength",
        )
    used = _used(session, pool)
    for prefix in pool.prefixes:
        parent = ipaddress.ip_network(prefix)
        if parent.prefixlen > length:
            continue
        for candidate in parent.subnets(new_prefix=length):
            if not any(candidate.overlaps(u) for u in used):
                return candidate
    raise Conflict(
        f"Unable to allocate a /{length} subnet from subnet pool {pool.id}: no free prefix "
        "is left.",
        kind="SubnetAllocationError",
    )
