"""/compute/v2.1/os-security-group-rules: Nova's proxy to Neutron's security group rules
(create and delete; removed by Nova at 2.36), in Nova's shapes: ingress rules only, with
``ip_protocol``, ``from_port``/``to_port`` (-1 for "any" ICMP, 1-65535 for "any" TCP/UDP
port), ``ip_range`` or ``group``."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.compute.microversion import api_version
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.core.microversion import APIVersion
from kumo.core.network import security_group_rules as rules
from kumo.core.network import security_groups as groups
from kumo.db import models as m

router = APIRouter(prefix="/compute/v2.1/os-security-group-rules")

REMOVED_AT = "2.36"


def check_version(version: APIVersion) -> None:
    """Nova removed its network proxies at 2.36: 404 from then on."""
    if version.at_least(REMOVED_AT):
        raise NotFound("The resource could not be found.")


def nova_rule(rule: m.SecurityGroupRule, remotes: dict[str, m.SecurityGroup]) -> dict[str, Any]:
    """A Neutron rule as Nova shows it."""
    protocol = rule.protocol
    from_port: int | None = rule.port_range_min
    to_port: int | None = rule.port_range_max
    if protocol and from_port is None and to_port is None:
        from_port, to_port = (1, 65535) if protocol.upper() in ("TCP", "UDP") else (-1, -1)
    view: dict[str, Any] = {
        "id": rule.id,
        "parent_group_id": rule.security_group_id,
        "ip_protocol": protocol,
        "from_port": from_port,
        "to_port": to_port,
        "group": {},
        "ip_range": {},
    }
    remote = remotes.get(rule.remote_group_id or "")
    if rule.remote_group_id and remote is not None:
        view["group"] = {"name": remote.name, "tenant_id": remote.project_id}
    elif not rule.remote_group_id:
        view["ip_range"] = {"cidr": rule.remote_ip_prefix or "0.0.0.0/0"}
    return view


def remote_groups(session: Session, found: list[m.SecurityGroupRule]) -> dict[str, m.SecurityGroup]:
    ids = {r.remote_group_id for r in found if r.remote_group_id}
    if not ids:
        return {}
    return {g.id: g for g in session.query(m.SecurityGroup).filter(m.SecurityGroup.id.in_(ids))}


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def _port(raw: Any, protocol: str, key: str) -> int:
    if isinstance(raw, bool):
        raw = str(raw)
    try:
        return int(raw)
    except (TypeError, ValueError):
        if protocol.upper() == "ICMP":
            raise BadRequest(
                "Invalid input received: Type and Code must be integers for ICMP protocol type"
            ) from None
        raise BadRequest("Invalid input received: To and From ports must be integers") from None


def _cidr(raw: Any) -> str:
    """Nova's parse_cidr: no cidr means everywhere (IPv4)."""
    if raw is None or raw == "":
        return "0.0.0.0/0"
    try:
        if not isinstance(raw, str):
            raise ValueError(raw)
        iface = ipaddress.ip_interface(raw)
    except ValueError:
        raise BadRequest(f"{raw} is not a valid IP network.") from None
    if iface.network.prefixlen == 0 and str(iface.ip) not in ("0.0.0.0", "::"):
        raise BadRequest(f"Bad prefix for network in cidr {raw}")
    return raw


def neutron_rule(data: dict[str, Any], parent: str) -> dict[str, Any]:
    """Nova's rule arguments turned into a Neutron ingress rule request, with Nova's
    checks (only TCP, UDP and ICMP with ports; TCP/UDP ports 1-65535, ICMP -1-255)."""
    protocol = data.get("ip_protocol")
    from_port = data.get("from_port")
    to_port = data.get("to_port")
    group_id = data.get("group_id")
    cidr = None if group_id is not None else _cidr(data.get("cidr"))
    if protocol is not None and not isinstance(protocol, str):
        protocol = str(protocol)
    if group_id is not None and protocol and from_port is None and to_port is None:
        # A group rule without ports opens all of them.
        from_port, to_port = (-1, -1) if protocol.upper() == "ICMP" else (1, 65535)
    request: dict[str, Any] = {"security_group_id": parent, "direction": "ingress"}
    if protocol and from_port is not None and to_port is not None:
        low = _port(from_port, protocol, "from_port")
        high = _port(to_port, protocol, "to_port")
        upper = protocol.upper()
        if upper not in ("TCP", "UDP", "ICMP"):
            raise BadRequest(f"Invalid IP protocol {protocol}.")
        if upper in ("TCP", "UDP"):
            if low > high:
                raise BadRequest(
                    f"Invalid port range {low}:{high}. Former value cannot be greater than "
                    "the later"
                )
            if low < 1 or high > 65535:
                raise BadRequest(
                    f"Invalid port range {low}:{high}. Valid {upper} ports should be "
                    "between 1-65535"
                )
        elif not (-1 <= low <= 255 and -1 <= high <= 255):
            raise BadRequest(
                f"Invalid port range {low}:{high}. For ICMP, the type:code must be valid"
            )
        request["protocol"] = protocol.lower()
        if low != -1:
            request["port_range_min"] = low
        if high != -1:
            request["port_range_max"] = high
    elif cidr is not None:
        raise BadRequest("Not enough parameters to build a valid rule.")
    if group_id is not None:
        request["remote_group_id"] = group_id
    else:
        request["remote_ip_prefix"] = cidr
        request["ethertype"] = f"IPv{ipaddress.ip_interface(str(cidr)).version}"
    return request


@router.post("")
def create_rule(
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> dict[str, Any]:
    check_version(version)
    if not body:
        raise BadRequest("The request body can't be empty")
    data = body.get("security_group_rule") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        raise BadRequest("Missing parameter security_group_rule")
    parent = data.get("parent_group_id")
    if not isinstance(parent, str) or not parent:
        raise BadRequest("Missing parameter parent_group_id")
    for key in ("parent_group_id", "group_id"):
        if data.get(key) is not None and not _is_uuid(data[key]):
            raise BadRequest(f"Invalid input received: Security group id should be uuid ({key}).")
    with state.db.session() as session:
        groups.get_group(session, who.ctx, parent)
        group_id = data.get("group_id")
        if group_id is not None:
            groups.get_group(session, who.ctx, str(group_id))
        request = neutron_rule(data, parent)
        try:
            (rule,) = rules.create_rules(session, who.ctx, [request])
        except Conflict as exc:
            if exc.kind == "OverQuota":
                raise Forbidden(
                    f"Quota exceeded, too many security group rules: {exc.message}"
                ) from None
            raise BadRequest(f"This rule already exists in group {parent}") from None
        view = nova_rule(rule, remote_groups(session, [rule]))
    return {"security_group_rule": view}


@router.delete("/{rule_id}")
def delete_rule(
    rule_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
    version: APIVersion = Depends(api_version),
) -> Response:
    check_version(version)
    with state.db.session() as session:
        try:
            rules.delete_rule(session, who.ctx, rule_id)
        except NotFound:
            raise NotFound(f"Security group rule {rule_id} not found.") from None
    return Response(status_code=202)
