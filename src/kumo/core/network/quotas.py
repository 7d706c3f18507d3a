"""Networking quotas (Neutron's quota extension). Limits live in the quota_limits table
next to compute's (one row per project and resource, Neutron's singular resource names);
usage is counted from rows, never from a counter (DESIGN.md section 3.4)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.core.compute import quota_sets
from kumo.core.compute import quotas as compute_quotas
from kumo.core.errors import BadRequest, Conflict
from kumo.db import models as m
from kumo.db.locking import lock_for_claims

# Neutron's defaults (neutron.conf [quotas]).
DEFAULTS: dict[str, int] = {
    "network": 100,
    "subnet": 100,
    "port": 500,
    "router": 10,
    "floatingip": 50,
    "security_group": 10,
    "security_group_rule": 100,
    "subnetpool": -1,
}
UNLIMITED = -1

# How each resource is counted: the model whose rows of the project are in use.
_COUNTED: dict[str, Any] = {
    "network": m.Network,
    "subnet": m.Subnet,
    "port": m.Port,
    "router": m.Router,
    "floatingip": m.FloatingIP,
    "security_group": m.SecurityGroup,
    "security_group_rule": m.SecurityGroupRule,
    "subnetpool": m.SubnetPool,
}

# Another module may count a resource differently (register here, keyed by resource).
Counter = Callable[[Session, str], int]
COUNTERS: dict[str, Counter] = {}


def limits(session: Session, project_id: str) -> dict[str, int]:
    """The project's limits: its own rows over the default class over Neutron's defaults."""
    stored = compute_quotas.limits(session, project_id)
    return {name: stored.get(name, default) for name, default in DEFAULTS.items()}


def defaults(session: Session) -> dict[str, int]:
    return limits(session, compute_quotas.class_row_id(compute_quotas.DEFAULT_CLASS))


def used(session: Session, project_id: str, resource: str) -> int:
    counter = COUNTERS.get(resource)
    if counter is not None:
        return counter(session, project_id)
    model = _COUNTED[resource]
    return int(
        session.execute(
            select(func.count()).select_from(model).where(model.project_id == project_id)
        ).scalar_one()
    )


def usage(session: Session, project_id: str) -> dict[str, int]:
    return {name: used(session, project_id, name) for name in DEFAULTS}


def check_quota(session: Session, project_id: str, resource: str, adding: int = 1) -> None:
    """Refuse (409 OverQuota, Neutron's message) if ``adding`` more ``resource`` rows would
    exceed the project's limit. Takes the project's claims lock first, so two racing creates
    see each other: call it before reading anything else in the transaction."""
    lock_for_claims(session, project_id=project_id)
    limit = limits(session, project_id)[resource]
    if limit == UNLIMITED:
        return
    if used(session, project_id, resource) + adding > limit:
        raise Conflict(f"Quota exceeded for resources: ['{resource}'].", kind="OverQuota")


def check_value(name: str, raw: Any) -> int:
    """A limit as Neutron takes one: an integer (or its string) from -1 to the maximum."""
    if isinstance(raw, bool):
        raise BadRequest(f"Invalid input for {name}. Reason: '{raw}' is not an integer.")
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(f"Invalid input for {name}. Reason: '{raw}' is not an integer.") from None
    if value < UNLIMITED:
        raise BadRequest(
            f"Invalid input for {name}. Reason: '{value}' should be greater than or equal to -1."
        )
    if value > quota_sets.MAX_LIMIT:
        raise BadRequest(
            f"Invalid input for {name}. Reason: '{value}' is too large - must be no larger "
            f"than '{quota_sets.MAX_LIMIT}'."
        )
    return value


def update(
    session: Session, project_id: str, wanted: dict[str, int], check_limit: bool = False
) -> dict[str, int]:
    """Set some of a project's limits (admin), named and checked by the API (check_value).
    As Neutron, a limit below what is in use is accepted unless ``check_limit``."""
    if check_limit:
        for name, value in wanted.items():
            in_use = used(session, project_id, name)
            if value != UNLIMITED and value < in_use:
                raise BadRequest(
                    f"Quota limit {value} for {name} must be greater than or equal to "
                    f"already used and reserved {in_use}."
                )
    quota_sets.store(session, project_id, wanted)
    return limits(session, project_id)


def reset(session: Session, project_id: str) -> None:
    """Back to the defaults for the networking resources (compute's limits stay)."""
    for name in DEFAULTS:
        row = session.get(m.QuotaLimit, (project_id, name))
        if row is not None:
            session.delete(row)


def projects_with_limits(session: Session) -> list[str]:
    """Projects that have a networking limit of their own (GET /v2.0/quotas)."""
    rows = session.execute(
        select(m.QuotaLimit.project_id).where(m.QuotaLimit.resource.in_(list(DEFAULTS))).distinct()
    ).scalars()
    return sorted(p for p in rows if not p.startswith("__"))
