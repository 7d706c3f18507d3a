"""Quota sets (os-quota-sets) and absolute limits (/limits) over kumo.core.compute.quotas.

A project's limits are rows over defaults; usage is counted from rows (never a counter).
Nova still shows network quotas (floating IPs, security groups) before microversion 2.36
and injected-file quotas before 2.57: kumo keeps them as plain numbers, enforced elsewhere
(by the network service) or not at all (kumo has no file injection).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kumo.core.compute import quotas, server_groups
from kumo.core.errors import BadRequest
from kumo.core.microversion import APIVersion
from kumo.db import models as m

NETWORK_DEFAULTS = {
    "floating_ips": 10,
    "fixed_ips": -1,
    "security_groups": 10,
    "security_group_rules": 20,
}
NETWORK = tuple(NETWORK_DEFAULTS)
INJECTED = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
CORE = (
    "instances",
    "cores",
    "ram",
    "metadata_items",
    "key_pairs",
    "server_groups",
    "server_group_members",
)
MAX_LIMIT = 0x7FFFFFFF


def resources(version: APIVersion) -> tuple[str, ...]:
    """The quota names a response shows at this microversion."""
    names: tuple[str, ...] = CORE
    if not version.at_least("2.36"):
        names += NETWORK
    if not version.at_least("2.57"):
        names += INJECTED
    return names


def project_exists(session: Session, project_id: str) -> None:
    if session.get(m.Project, project_id) is None:
        raise BadRequest(f"Project ID {project_id} is not a valid project.")


def defaults(session: Session, version: APIVersion) -> dict[str, int]:
    """The ``default`` quota class: what a project without limits of its own gets."""
    return limits(session, quotas.class_row_id(quotas.DEFAULT_CLASS), version)


def limits(session: Session, project_id: str, version: APIVersion) -> dict[str, int]:
    every = {**NETWORK_DEFAULTS, **quotas.limits(session, project_id)}
    return {name: every[name] for name in resources(version)}


def usage(session: Session, project_id: str) -> dict[str, int]:
    """What the project holds now; resources not counted by kumo show 0, as in Nova."""
    used = quotas.usage(session, project_id)
    used["key_pairs"] = int(
        session.execute(
            select(func.count(m.KeyPair.id)).where(m.KeyPair.project_id == project_id)
        ).scalar_one()
    )
    used["server_groups"] = server_groups.count_groups(session, project_id)
    return used


def detail(session: Session, project_id: str, version: APIVersion) -> dict[str, dict[str, int]]:
    used = usage(session, project_id)
    return {
        name: {"limit": limit, "in_use": used.get(name, 0), "reserved": 0}
        for name, limit in limits(session, project_id, version).items()
    }


# Quota classes (os-quota-class-sets) ------------------------------------------------------

# Nova shows server group quotas on classes only from 2.50 (kumo stops at 2.25).
CLASS_HIDDEN = ("server_groups", "server_group_members")
MAX_CLASS_NAME = 64 - len(quotas.CLASS_ROW_PREFIX)


def class_resources(version: APIVersion) -> tuple[str, ...]:
    return tuple(name for name in resources(version) if name not in CLASS_HIDDEN)


def _class_id(class_name: str) -> str:
    if not 0 < len(class_name) <= MAX_CLASS_NAME:
        raise BadRequest(f"Quota class name must be 1 to {MAX_CLASS_NAME} characters.")
    return quotas.class_row_id(class_name)


def show_class(session: Session, class_name: str, version: APIVersion) -> dict[str, int]:
    """A class's limits over the defaults (an unknown class is the defaults, as in Nova)."""
    found = limits(session, _class_id(class_name), version)
    return {name: found[name] for name in class_resources(version)}


def update_class(
    session: Session, class_name: str, body: dict[str, Any], version: APIVersion
) -> dict[str, int]:
    """Set some of a class's limits. Changing the ``default`` class changes the limit of
    every project that has none of its own for that resource."""
    row_id = _class_id(class_name)
    unknown = set(body) - set(class_resources(version))
    if unknown:
        raise BadRequest(
            "Invalid input for field/attribute quota_class_set. Additional properties are not "
            f"allowed ({', '.join(sorted(unknown))} unexpected)"
        )
    wanted = {name: _value(name, raw) for name, raw in body.items()}
    store(session, row_id, wanted)
    return show_class(session, class_name, version)


def store(session: Session, row_id: str, wanted: dict[str, int]) -> None:
    for name, value in wanted.items():
        row = session.get(m.QuotaLimit, (row_id, name))
        if row is None:
            session.add(m.QuotaLimit(project_id=row_id, resource=name, hard_limit=value))
        else:
            row.hard_limit = value
    session.flush()


def _value(name: str, raw: Any) -> int:
    """Nova's schema: an integer (or a string of one) from -1 to 2**31-1."""
    if isinstance(raw, bool):
        raise BadRequest(
            f"Invalid input for field/attribute {name}. Value: {raw}. "
            f"{raw} is not of type 'integer', 'string'"
        )
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise BadRequest(
            f"Invalid input for field/attribute {name}. Value: {raw}. "
            f"'{raw}' does not match '^-?[0-9]+$'"
        ) from None
    if value < -1:
        raise BadRequest(
            f"Invalid input for field/attribute {name}. Value: {raw}. "
            f"{value} is less than the minimum of -1"
        )
    if value > MAX_LIMIT:
        raise BadRequest(
            f"Invalid input for field/attribute {name}. Value: {raw}. "
            f"{value} is greater than the maximum of {MAX_LIMIT}"
        )
    return value


def update(
    session: Session, project_id: str, body: dict[str, Any], version: APIVersion
) -> dict[str, int]:
    """Set some limits. A limit below what is in use is refused unless ``force`` is true."""
    allowed = set(resources(version))
    unknown = set(body) - allowed - {"force"}
    if unknown:
        raise BadRequest(
            "Invalid input for field/attribute quota_set. Additional properties are not "
            f"allowed ({', '.join(sorted(unknown))} unexpected)"
        )
    force = body.get("force", False)
    if force in ("True", "true", "1", 1):
        force = True
    elif force in ("False", "false", "0", 0, None):
        force = False
    if not isinstance(force, bool):
        raise BadRequest(f"Invalid input for field/attribute force. Value: {force}.")
    wanted = {name: _value(name, raw) for name, raw in body.items() if name != "force"}
    project_exists(session, project_id)
    if not force:
        used = usage(session, project_id)
        for name, value in wanted.items():
            if value != quotas.UNLIMITED and value < used.get(name, 0):
                raise BadRequest(
                    f"Quota limit {value} for {name} must be greater than or equal to "
                    f"already used and reserved {used[name]}."
                )
    store(session, project_id, wanted)
    return limits(session, project_id, version)


def reset(session: Session, project_id: str) -> None:
    """Back to the defaults: the project's own rows go."""
    project_exists(session, project_id)
    session.execute(delete(m.QuotaLimit).where(m.QuotaLimit.project_id == project_id))
