"""What each host can still take: inventory minus reservations, times the allocation ratios,
minus what allocations already hold; and why the hosts that can take nothing are out.

Shared by the scheduler (placing new servers) and resize in place."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kumo.config import SchedulerConfig
from kumo.core import hosts
from kumo.db import models as m
from kumo.db.types import utcnow


@dataclass(frozen=True)
class Capacity:
    host: m.Host
    vcpus: float
    memory_mb: float
    disk_gb: float

    @property
    def free(self) -> tuple[float, float, float]:
        return self.vcpus, self.memory_mb, self.disk_gb


def shortfalls(free: Sequence[float], need: tuple[int, int, int]) -> list[str]:
    """What a host lacks for a need (vCPUs, MiB of RAM, GiB of disk, in that order), by
    name, for the scheduler's "not enough ..." reasons; empty when it fits."""
    return [
        what for what, have, want in zip(("vCPUs", "RAM", "disk"), free, need, strict=True)
        if have < want
    ]  # fmt: skip


def capacities(
    session: Session,
    cfg: SchedulerConfig,
    heartbeat_timeout: float,
) -> tuple[list[Capacity], list[str]]:
    """Free resources of every host that may take work, and why the others may not."""
    used = {
        row.host_id: row
        for row in session.execute(
            select(
                m.Allocation.host_id,
                func.sum(m.Allocation.vcpus).label("vcpus"),
                func.sum(m.Allocation.memory_mb).label("memory_mb"),
                func.sum(m.Allocation.disk_gb).label("disk_gb"),
            ).group_by(m.Allocation.host_id)
        )
    }
    result, reasons = [], []
    now = utcnow()
    for host in session.scalars(select(m.Host).order_by(m.Host.name)):
        if not host.enabled:
            reasons.append(f"{host.name}: disabled")
            continue
        if host.forced_down:
            reasons.append(f"{host.name}: forced down")
            continue
        if not hosts.status_of(host, heartbeat_timeout, now).up:
            reasons.append(f"{host.name}: down")
            continue
        if not (host.capabilities or {}).get("hypervisor"):
            reasons.append(f"{host.name}: no hypervisor driver")
            continue
        inv = host.inventory or {}
        u = used.get(host.id)
        result.append(
            Capacity(
                host,
                inv.get("vcpus", 0) * cfg.cpu_allocation_ratio - float(u.vcpus if u else 0),
                (inv.get("memory_mb", 0) - cfg.reserved_host_memory_mb) * cfg.ram_allocation_ratio
                - float(u.memory_mb if u else 0),
                (inv.get("disk_gb", 0) - cfg.reserved_host_disk_gb) * cfg.disk_allocation_ratio
                - float(u.disk_gb if u else 0),
            )
        )
    return result, reasons
