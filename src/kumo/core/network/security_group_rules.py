"""Security group rules (Neutron): one allow rule each, validated as Neutron validates them.

A rule is a direction and ethertype, optionally a protocol (a Neutron name or a number
0-255; ``any``/0 means all and is stored as none), a port range (TCP, UDP, SCTP, UDPLITE,
DCCP: 1-65535) or an ICMP type/code (0-255), and a remote: an IP prefix (kept as given, with
its mask; ``normalized_cidr`` is its network) or another group. Rules are never changed, only
added and deleted; a duplicate of an existing rule is a 409 naming it.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from kumo.core.errors import BadRequest, Conflict, NotFound
from kumo.core.network import protocols, quotas, standard
from kumo.core.network.scope import owner_project
from kumo.core.network.security_groups import ensure_default, get_group
from kumo.core.policy import Context
from kumo.db import models as m

CREATE_ATTRS = frozenset(
    {
        "security_group_id",
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "remote_group_id",
        "remote_address_group_id",
        "description",
        "project_id",
        "tenant_id",
    }
)
UPDATE_ATTRS = frozenset({"description"})
DIRECTIONS = ("ingress", "egress")
ETHERTYPES = ("IPv4", "IPv6")


def not_found(rule_id: str) -> NotFound:
    return NotFound(
        f"Security group rule {rule_id} does not exist", kind="SecurityGroupRuleNotFound"
    )


@dataclass(frozen=True)
class RuleSpec:
    """A validated rule request, before it is stored."""

    security_group_id: str
    direction: str
    ethertype: str
    protocol: str | None
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None
    description: str
    project_id: str | None

    def key(self) -> tuple[Any, ...]:
        """What makes two rules the same rule (Neutron's duplicate check): the protocol
        by number, the prefix by network, and a prefix of all addresses as none."""
        return rule_key(
            self.security_group_id,
            self.direction,
            self.ethertype,
            self.protocol,
            self.port_range_min,
            self.port_range_max,
            self.remote_ip_prefix,
            self.remote_group_id,
        )


def rule_key(
    group_id: str,
    direction: str,
    ethertype: str,
    protocol: str | None,
    port_min: int | None,
    port_max: int | None,
    prefix: str | None,
    remote_group_id: str | None,
) -> tuple[Any, ...]:
    cidr = normalized_cidr(prefix)
    if cidr in ("0.0.0.0/0", "::/0"):
        cidr = None
    return (
        group_id,
        direction,
        ethertype,
        protocols.number(protocol),
        port_min,
        port_max,
        cidr,
        remote_group_id,
    )


def normalized_cidr(prefix: str | None) -> str | None:
    """The network a remote prefix names (``10.0.0.5/24`` -> ``10.0.0.0/24``)."""
    if prefix is None:
        return None
    return str(ipaddress.ip_interface(prefix).network)


# --- validation -------------------------------------------------------------------------


def _required(attrs: Mapping[str, Any], key: str) -> Any:
    if attrs.get(key) is None:
        raise BadRequest(f"Failed to parse request. Required attribute '{key}' not specified")
    return attrs[key]


def _one_of(attrs: Mapping[str, Any], key: str, values: tuple[str, ...], default: str) -> str:
    raw = attrs.get(key, default)
    if raw is None:
        raw = default
    if isinstance(raw, str):
        for value in values:
            if raw.lower() == value.lower():
                return value
    raise BadRequest(f"Invalid input for {key}. Reason: '{raw}' is not in {list(values)}.")


def _protocol(raw: Any) -> str | None:
    """Neutron's protocol conversion: ``None``, ``any`` and 0 mean all protocols; a number
    0-255 (or its digits) is kept as that number's text; a known name, lowercased."""
    if raw is None or (raw == 0 and not isinstance(raw, bool)):
        return None
    if isinstance(raw, str) and raw.lower() in protocols.ANY:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw <= 255:
        return str(raw)
    if isinstance(raw, str):
        if raw.isdigit() and 0 <= int(raw) <= 255:
            return str(int(raw))
        if raw.lower() in protocols.NUMBERS:
            return raw.lower()
    raise BadRequest(
        f"Security group rule protocol {raw} not supported. Only protocol values "
        f"{protocols.supported()} and their integer representation (0 to 255) are supported.",
        kind="SecurityGroupRuleInvalidProtocol",
    )


def _port(attrs: Mapping[str, Any], key: str) -> int | None:
    raw = attrs.get(key)
    if raw is None:
        return None
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
        value = int(raw)
    if value is None or not 0 <= value <= 65535:
        raise BadRequest(f"Invalid value for port {raw}", kind="SecurityGroupInvalidPortValue")
    return value


def _prefix(raw: Any, ethertype: str) -> str | None:
    """The remote prefix with its mask made explicit (``10.0.0.5`` -> ``10.0.0.5/32``),
    host bits kept as given; its family must be the rule's ethertype."""
    if raw is None or raw == "":
        return None
    try:
        if not isinstance(raw, str):
            raise ValueError(raw)
        iface = ipaddress.ip_interface(raw.strip())
    except ValueError:
        raise BadRequest(
            f"Invalid CIDR {raw} given as IP prefix: use an address with an optional "
            "prefix length, such as 192.0.2.0/24 or 2001:db8::/64.",
            kind="InvalidCIDR",
        ) from None
    if f"IPv{iface.version}" != ethertype:
        raise BadRequest(
            f"Conflicting value ethertype {ethertype} for CIDR {raw}",
            kind="SecurityGroupRuleParameterConflict",
        )
    return f"{iface.ip}/{iface.network.prefixlen}"


def _check_ports(protocol: str | None, pmin: int | None, pmax: int | None) -> None:
    if pmin is None and pmax is None:
        return
    number = protocols.number(protocol)
    if number is None:
        raise BadRequest(
            "Must also specify protocol if port range is given.",
            kind="SecurityGroupProtocolRequiredWithPorts",
        )
    if number in protocols.PORT_PROTOCOLS:
        if pmin == 0 or pmax == 0:
            raise BadRequest("Invalid value for port 0", kind="SecurityGroupInvalidPortValue")
        if pmin is None or pmax is None or pmin > pmax:
            raise BadRequest(
                "For TCP/UDP protocols, port_range_min must be <= port_range_max "
                "(give both; equal values name a single port).",
                kind="SecurityGroupInvalidPortRange",
            )
    elif number in protocols.ICMP_PROTOCOLS:
        for key, field, value in (
            ("port_range_min", "type", pmin),
            ("port_range_max", "code", pmax),
        ):
            if value is not None and not 0 <= value <= 255:
                raise BadRequest(
                    f"Invalid value for ICMP {field} ({key}) {value}. It must be 0 to 255.",
                    kind="SecurityGroupInvalidIcmpValue",
                )
        if pmin is None:
            raise BadRequest(
                f"ICMP code (port-range-max) {pmax} is provided but ICMP type "
                "(port-range-min) is missing.",
                kind="SecurityGroupMissingIcmpType",
            )
    else:
        raise BadRequest(
            f"Invalid protocol {protocol} for port range, only supported for "
            f"{protocols.PORT_PROTOCOL_NAMES} protocols.",
            kind="SecurityGroupInvalidProtocolForPort",
        )


def _canonical_ipv6_icmp(protocol: str | None, ethertype: str) -> str | None:
    """For IPv6, Neutron stores the legacy ICMP names (icmp, icmpv6) as ``ipv6-icmp`` and
    protocol 1 as 58."""
    if ethertype == "IPv6":
        if protocol in ("icmp", "icmpv6"):
            return "ipv6-icmp"
        if protocol == "1":
            return "58"
    return protocol


def validate(attrs: Mapping[str, Any]) -> RuleSpec:
    """A rule request checked field by field (no database access)."""
    group_id = _required(attrs, "security_group_id")
    if not isinstance(group_id, str):
        raise BadRequest(
            f"Invalid input for security_group_id. Reason: '{group_id}' is not a uuid."
        )
    _required(attrs, "direction")
    direction = _one_of(attrs, "direction", DIRECTIONS, "ingress")
    ethertype = _one_of(attrs, "ethertype", ETHERTYPES, "IPv4")
    protocol = _canonical_ipv6_icmp(_protocol(attrs.get("protocol")), ethertype)
    pmin = _port(attrs, "port_range_min")
    pmax = _port(attrs, "port_range_max")
    _check_ports(protocol, pmin, pmax)
    number = protocols.number(protocol)
    if ethertype == "IPv4" and number in protocols.IPV6_ONLY:
        raise BadRequest(
            f"Invalid ethertype {ethertype} for protocol {protocol}: it is an IPv6 "
            "protocol; use ethertype IPv6.",
            kind="SecurityGroupEthertypeConflictWithProtocol",
        )
    prefix = _prefix(attrs.get("remote_ip_prefix"), ethertype)
    remote_group = attrs.get("remote_group_id")
    if remote_group is not None and not isinstance(remote_group, str):
        raise BadRequest(
            f"Invalid input for remote_group_id. Reason: '{remote_group}' is not a uuid."
        )
    remote_group = remote_group or None
    if attrs.get("remote_address_group_id") is not None:
        raise BadRequest(
            "Address groups are not supported by this cloud: use remote_ip_prefix or "
            "remote_group_id.",
        )
    if prefix is not None and remote_group is not None:
        raise BadRequest(
            "Only remote_ip_prefix or remote_group_id may be provided.",
            kind="SecurityGroupRemoteGroupAndRemoteIpPrefix",
        )
    project = attrs.get("project_id") or attrs.get("tenant_id")
    return RuleSpec(
        security_group_id=group_id,
        direction=direction,
        ethertype=ethertype,
        protocol=protocol,
        port_range_min=pmin,
        port_range_max=pmax,
        remote_ip_prefix=prefix,
        remote_group_id=remote_group,
        description=standard.text(dict(attrs), "description", standard.MAX_DESCRIPTION) or "",
        project_id=project if isinstance(project, str) else None,
    )


# --- reading ---------------------------------------------------------------------------


def _visible_query(ctx: Context) -> Any:
    query = select(m.SecurityGroupRule)
    if not ctx.is_admin:
        own_groups = select(m.SecurityGroup.id).where(m.SecurityGroup.project_id == ctx.project_id)
        query = query.where(
            or_(
                m.SecurityGroupRule.security_group_id.in_(own_groups),
                m.SecurityGroupRule.project_id == ctx.project_id,
            )
        )
    return query


def get_rule(session: Session, ctx: Context, rule_id: str) -> m.SecurityGroupRule:
    rule = session.scalar(_visible_query(ctx).where(m.SecurityGroupRule.id == rule_id))
    if rule is None:
        raise not_found(rule_id)
    return rule


def list_rules(
    session: Session, ctx: Context, project_filter: Iterable[str] = ()
) -> list[m.SecurityGroupRule]:
    wanted = [p for p in project_filter if p]
    ensure_default(session, ctx, wanted[0] if wanted else None)
    query = _visible_query(ctx).order_by(m.SecurityGroupRule.created_at, m.SecurityGroupRule.id)
    return list(session.scalars(query))


def rules_of(session: Session, group_ids: Iterable[str]) -> dict[str, list[m.SecurityGroupRule]]:
    """The rules of many groups in one query (a group's view embeds its rules)."""
    ids = list(group_ids)
    found: dict[str, list[m.SecurityGroupRule]] = {i: [] for i in ids}
    if not ids:
        return found
    query = (
        select(m.SecurityGroupRule)
        .where(m.SecurityGroupRule.security_group_id.in_(ids))
        .order_by(m.SecurityGroupRule.created_at, m.SecurityGroupRule.id)
    )
    for rule in session.scalars(query):
        found[rule.security_group_id].append(rule)
    return found


# --- writing ---------------------------------------------------------------------------


def create_rules(
    session: Session, ctx: Context, items: Sequence[Mapping[str, Any]]
) -> list[m.SecurityGroupRule]:
    """Create one or many rules (a bulk request is all or nothing)."""
    specs = [validate(item) for item in items]
    groups: dict[str, m.SecurityGroup] = {}
    for spec in specs:
        if spec.security_group_id not in groups:
            groups[spec.security_group_id] = get_group(session, ctx, spec.security_group_id)
        group = groups[spec.security_group_id]
        if spec.project_id is not None and spec.project_id != group.project_id:
            owner_project(ctx, {"project_id": spec.project_id})
        if spec.remote_group_id is not None and spec.remote_group_id != group.id:
            remote = session.get(m.SecurityGroup, spec.remote_group_id)
            # The remote group must be one the rule's project (or an admin) can see.
            if remote is None or not (ctx.is_admin or remote.project_id == group.project_id):
                raise NotFound(
                    f"Security group {spec.remote_group_id} does not exist",
                    kind="SecurityGroupNotFound",
                )
    # The quota check locks each project's claims, which also serialises racing creates
    # of one rule: the duplicate check below sees the other's rule.
    adding: dict[str, int] = {}
    for spec in specs:
        project_id = groups[spec.security_group_id].project_id
        adding[project_id] = adding.get(project_id, 0) + 1
    for project_id in sorted(adding):
        quotas.check_quota(session, project_id, "security_group_rule", adding[project_id])
    _check_duplicates(session, specs)
    created = []
    for spec in specs:
        group = groups[spec.security_group_id]
        rule = m.SecurityGroupRule(
            id=str(uuid.uuid4()),
            security_group_id=group.id,
            project_id=spec.project_id or group.project_id,
            direction=spec.direction,
            ethertype=spec.ethertype,
            protocol=spec.protocol,
            port_range_min=spec.port_range_min,
            port_range_max=spec.port_range_max,
            remote_ip_prefix=spec.remote_ip_prefix,
            remote_group_id=spec.remote_group_id,
            description=spec.description,
        )
        session.add(rule)
        created.append(rule)
    for group in groups.values():
        # A rule change is a change of the group: agents compare its revision.
        standard.touch(group)
    session.flush()
    return created


def _check_duplicates(session: Session, specs: list[RuleSpec]) -> None:
    seen: set[tuple[Any, ...]] = set()
    for spec in specs:
        key = spec.key()
        if key in seen:
            raise Conflict(
                "Duplicate Security Group Rule in POST.", kind="DuplicateSecurityGroupRuleInPost"
            )
        seen.add(key)
    existing = rules_of(session, {s.security_group_id for s in specs})
    for rules in existing.values():
        for rule in rules:
            key = rule_key(
                rule.security_group_id,
                rule.direction,
                rule.ethertype,
                rule.protocol,
                rule.port_range_min,
                rule.port_range_max,
                rule.remote_ip_prefix,
                rule.remote_group_id,
            )
            if key in seen:
                raise Conflict(
                    f"Security group rule already exists. Rule id is {rule.id}.",
                    kind="SecurityGroupRuleExists",
                )


def update_rule(
    session: Session,
    ctx: Context,
    rule_id: str,
    attrs: Mapping[str, Any],
) -> m.SecurityGroupRule:
    """Only a rule's description may change (standard-attr-description)."""
    rule = get_rule(session, ctx, rule_id)
    if "description" in attrs:
        rule.description = standard.text(dict(attrs), "description", standard.MAX_DESCRIPTION) or ""
    standard.touch(rule)
    return rule


def delete_rule(session: Session, ctx: Context, rule_id: str) -> None:
    rule = get_rule(session, ctx, rule_id)
    group = session.get(m.SecurityGroup, rule.security_group_id)
    if group is not None:
        standard.touch(group)
    session.delete(rule)
