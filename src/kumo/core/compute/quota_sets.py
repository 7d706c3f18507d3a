"""Quota sets (os-quota-sets) and absolute limits (/limits) over kumo.core.compute.quotas.

A project's limits are rows over defaults; usage is counted from rows (never a counter).
Nova still shows network quotas (floating IPs, security groups) before microversion 2.36
and injected-file quotas before 2.57: kumo keeps them as plain numbers, enforced elsewhere
(by the network service) or not at all (kumo has no file injection). Which names a caller
sees is the API's to say (kumo.api.compute.quota_sets.resources, from the microversion):
these functions take the names shown, and the values as numbers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from kumo.core.compute import quotas, server_groups
from kumo.core.errors import BadRequest
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


def project_exists(session: Session, project_id: str) -> None:
    if session.get(m.Project, project_id) is None:
        raise BadRequest(f"Project ID {project_id} is not a valid project.")


def defaults(session: Session, names: tuple[str, ...]) -> dict[str, int]:
    """The ``default`` quota class: what a project without limits of its own gets."""
    return limits(session, quotas.class_row_id(quotas.DEFAULT_CLASS), names)


def limits(session: Session, project_id: str, names: tuple[str, ...]) -> dict[str, int]:
    """The project's limits of the quotas ``names`` (those the caller is shown)."""
    every = {**NETWORK_DEFAULTS, **quotas.limits(session, project_id)}
    return {name: every[name] for name in names}


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


def detail(session: Session, project_id: str, names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    used = usage(session, project_id)
    return {
        name: {"limit": limit, "in_use": used.get(name, 0), "reserved": 0}
        for name, limit in limits(session, project_id, names).items()
    }


# Quota classes (os-quota-class-sets) ------------------------------------------------------

# Nova shows server group quotas on classes only from 2.50 (kumo stops at 2.25).
CLASS_HIDDEN = ("server_groups", "server_group_members")
MAX_CLASS_NAME = 64 - len(quotas.CLASS_ROW_PREFIX)


def _class_id(class_name: str) -> str:
    if not 0 < len(class_name) <= MAX_CLASS_NAME:
        raise BadRequest(f"Quota class name must be 1 to {MAX_CLASS_NAME} characters.")
    return quotas.class_row_id(class_name)


def show_class(session: Session, class_name: str, names: tuple[str, ...]) -> dict[str, int]:
    """A class's limits over the defaults (an unknown class is the defaults, as in Nova),
    of the quotas ``names`` (a class's, those the caller is shown)."""
    return limits(session, _class_id(class_name), names)


def update_class(
    session: Session, class_name: str, wanted: dict[str, int], names: tuple[str, ...]
) -> dict[str, int]:
    """Set some of a class's limits. Changing the ``default`` class changes the limit of
    every project that has none of its own for that resource."""
    row_id = _class_id(class_name)
    store(session, row_id, wanted)
    return show_class(session, class_name, names)


def store(session: Session, row_id: str, wanted: dict[str, int]) -> None:
    for name, value in wanted.items():
        row = session.get(m.QuotaLimit, (row_id, name))
        if row is None:
            session.add(m.QuotaLimit(project_id=row_id, resource=name, hard_limit=value))
        else:
            row.hard_limit = value
    session.flush()


def value_of(name: str, raw: Any) -> int:
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
    session: Session,
    project_id: str,
    wanted: dict[str, int],
    force: bool,
    names: tuple[str, ...],
) -> dict[str, int]:
    """Set some limits. A limit below what is in use is refused unless ``force`` is true.
    The answer: the limits of the quotas ``names`` (those the caller is shown)."""
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
    return limits(session, project_id, names)


def reset(session: Session, project_id: str) -> None:
    """Back to the defaults: the project's own rows go."""
    project_exists(session, project_id)
    session.execute(delete(m.QuotaLimit).where(m.QuotaLimit.project_id == project_id))
