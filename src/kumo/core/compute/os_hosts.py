"""Nova's os-hosts (served up to microversion 2.42): the cloud's service hosts, one host's
resources and, for compute hosts, enable/disable.

Nova's libvirt driver implements neither maintenance mode nor host power actions, and Nova
answers 501 for them; kumo's agents have neither, so it answers the same.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.config import SchedulerConfig
from kumo.core import hosts
from kumo.core.compute import hypervisors, services
from kumo.core.errors import NotFound, NotSupported
from kumo.db import models as m

NOT_SUPPORTED = "The requested functionality is not supported."


def list_hosts(session: Session, timeout: float, zone: str | None) -> list[dict[str, str]]:
    """Every enabled service's host (Nova lists only enabled services), with its topic
    (``compute``, ``scheduler``, ``conductor``) and zone; a blank zone is no filter."""
    result = []
    for r in services.list_services(session, timeout):
        if not r.enabled:
            continue
        row = {
            "host_name": r.host,
            "service": r.binary.removeprefix("nova-"),
            "zone": r.zone,  # a compute host's from its aggregates (kumo.core.compute.services)
        }
        if not zone or row["zone"] == zone:
            result.append(row)
    return result


def _host(session: Session, name: str) -> m.Host:
    row = session.scalars(select(m.Host).where(m.Host.name == name)).first()
    if row is None:
        raise NotFound(f"Compute host {name} could not be found.")
    return row


def _resource(host: str, project: str, cpu: int, memory_mb: int, disk_gb: int) -> dict[str, Any]:
    return {
        "resource": {
            "host": host,
            "project": project,
            "cpu": cpu,
            "memory_mb": memory_mb,
            "disk_gb": disk_gb,
        }
    }


def show(session: Session, cfg: SchedulerConfig, timeout: float, name: str) -> list[dict[str, Any]]:
    """Nova's resource rows: ``(total)`` (the inventory), ``(used_now)`` (what the host's
    allocations use, reserved memory and disk included, as the hypervisor view counts
    them), ``(used_max)`` (the sum of its servers' flavors) and one row per project."""
    host = _host(session, name)
    usage = next(u for u in hypervisors.usages(session, cfg, timeout) if u.host.id == host.id)
    rows = [
        _resource(name, "(total)", usage.vcpus, usage.memory_mb, usage.local_gb),
        _resource(name, "(used_now)", usage.vcpus_used, usage.memory_mb_used, usage.local_gb_used),
    ]
    per_project: dict[str, list[int]] = {}
    total = [0, 0, 0]
    for project_id, flavor in session.execute(
        select(m.Instance.project_id, m.Instance.flavor).where(
            m.Instance.host_id == host.id, m.Instance.deleted.is_(False)
        )
    ):
        need = [
            int(flavor.get("vcpus") or 0),
            int(flavor.get("ram") or 0),
            int(flavor.get("disk") or 0) + int(flavor.get("ephemeral") or 0),
        ]
        sums = per_project.setdefault(project_id, [0, 0, 0])
        for i, value in enumerate(need):
            sums[i] += value
            total[i] += value
    rows.append(_resource(name, "(used_max)", *total))
    rows.extend(_resource(name, project, *sums) for project, sums in sorted(per_project.items()))
    return rows


def update(
    session: Session, name: str, status: bool | None, maintenance: bool | None
) -> dict[str, Any]:
    """``status`` (True: enable) enables or disables the host for new servers;
    ``maintenance_mode`` is not supported (501, as Nova with libvirt). The API checked the
    body whole first (at least one of the two is set)."""
    host = _host(session, name)
    if maintenance is not None:
        raise NotSupported(NOT_SUPPORTED)
    assert status is not None
    hosts.set_enabled(session, host.id, status)
    return {"host": name, "status": "enabled" if status else "disabled"}


def power_action(session: Session, name: str, action: str) -> None:
    """startup, shutdown, reboot: the host must exist; then 501 (no driver powers hosts)."""
    _host(session, name)
    raise NotSupported(NOT_SUPPORTED)
