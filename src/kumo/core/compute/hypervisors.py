"""Hypervisors as Nova shows them (os-hypervisors): each host's inventory and its usage.

Usage is summed from allocation and instance rows, the same numbers the scheduler claims
against (DESIGN.md section 3.4), so what an operator reads is what placement decides on.
Before microversion 2.53 Nova's ids are integers; kumo's hosts are UUIDs, so the API shows
a stable integer derived from the UUID (a host keeps it across renames and restarts).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from kumo.config import SchedulerConfig
from kumo.core import hosts
from kumo.core.compute import placement
from kumo.core.errors import BadRequest, NotFound, NotSupported
from kumo.db import models as m
from kumo.db.types import utcnow
from kumo.protocol import HostLoad


def numeric_id(host_id: str) -> int:
    """A stable positive 28-bit integer for a host UUID (Nova's pre-2.53 integer ids)."""
    try:
        return int(uuid.UUID(host_id).hex[:7], 16)
    except ValueError:
        return zlib.crc32(host_id.encode()) & 0x0FFFFFFF


def hypervisor_type(host: m.Host) -> str:
    driver = str((host.capabilities or {}).get("hypervisor", {}).get("driver", ""))
    return "QEMU" if driver == "qemu" else (driver or "fake")


def hypervisor_version(host: m.Host) -> int:
    """Nova encodes version X.Y.Z as X*1000000 + Y*1000 + Z; 1000 when unknown (fake)."""
    text = str((host.capabilities or {}).get("hypervisor", {}).get("qemu_version", ""))
    match = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if match is None:
        return 1000
    major, minor, micro = (int(g or 0) for g in match.groups())
    return major * 1_000_000 + minor * 1000 + micro


@dataclass(frozen=True)
class HostUsage:
    status: hosts.HostStatus
    vcpus: int
    memory_mb: int
    local_gb: int
    vcpus_used: int
    memory_mb_used: int
    local_gb_used: int
    running_vms: int
    current_workload: int

    @property
    def host(self) -> m.Host:
        return self.status.host

    @property
    def id(self) -> int:
        return numeric_id(self.host.id)

    @property
    def host_ip(self) -> str | None:
        caps, inv = self.host.capabilities or {}, self.host.inventory or {}
        value = caps.get("host_ip") or inv.get("host_ip")
        return str(value) if value else None

    def cpu_info(self) -> dict[str, Any]:
        inv = self.host.inventory or {}
        return {
            "arch": inv.get("arch", "x86_64"),
            "model": inv.get("cpu_model", ""),
            "vendor": inv.get("cpu_vendor", ""),
            "topology": {"cells": 1, "sockets": 1, "cores": self.vcpus, "threads": 1},
            "features": [],
        }

    def cpu_info_text(self) -> str:
        return json.dumps(self.cpu_info())


def usages(session: Session, cfg: SchedulerConfig, timeout: float) -> list[HostUsage]:
    """Every host with its usage; reserved RAM and disk count as used, as in Nova."""
    held = placement.allocated(session)
    vms: dict[str, tuple[int, int]] = {}
    for host_id, task_state in session.execute(
        select(m.Instance.host_id, m.Instance.task_state).where(
            m.Instance.host_id.is_not(None), m.Instance.deleted.is_(False)
        )
    ):
        if host_id is None:
            continue
        running, busy = vms.get(host_id, (0, 0))
        vms[host_id] = (running + 1, busy + (task_state is not None))
    now = utcnow()
    result = []
    for host in session.scalars(select(m.Host).order_by(m.Host.name)):
        inv = host.inventory or {}
        vcpus_used, memory_mb_used, disk_gb_used = held.get(host.id, (0, 0, 0))
        running, busy = vms.get(host.id, (0, 0))
        result.append(
            HostUsage(
                status=hosts.status_of(host, timeout, now),
                vcpus=int(inv.get("vcpus", 0)),
                memory_mb=int(inv.get("memory_mb", 0)),
                local_gb=int(inv.get("disk_gb", 0)),
                vcpus_used=vcpus_used,
                memory_mb_used=memory_mb_used + cfg.reserved_host_memory_mb,
                local_gb_used=disk_gb_used + cfg.reserved_host_disk_gb,
                running_vms=running,
                current_workload=busy,
            )
        )
    return result


def find(all_usages: list[HostUsage], ref: str) -> HostUsage:
    """By the integer id the API shows, or by the host's UUID."""
    for usage in all_usages:
        if ref in (str(usage.id), usage.host.id):
            return usage
    raise NotFound(f"Hypervisor with ID {ref} could not be found.")


def search(all_usages: list[HostUsage], pattern: str) -> list[HostUsage]:
    """Nova's hostname search: a substring match; nothing found is a 404."""
    found = [u for u in all_usages if pattern in u.host.name]
    if not found:
        raise NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return found


def statistics(all_usages: list[HostUsage]) -> dict[str, int]:
    keys = (
        "vcpus",
        "vcpus_used",
        "memory_mb",
        "memory_mb_used",
        "local_gb",
        "local_gb_used",
        "running_vms",
        "current_workload",
    )
    stats = {k: sum(int(getattr(u, k)) for u in all_usages) for k in keys}
    stats["count"] = len(all_usages)
    stats["free_ram_mb"] = stats["memory_mb"] - stats["memory_mb_used"]
    stats["free_disk_gb"] = stats["local_gb"] - stats["local_gb_used"]
    stats["disk_available_least"] = stats["free_disk_gb"]
    return stats


def servers_on(session: Session, host_ids: list[str]) -> dict[str, list[dict[str, str]]]:
    """Live servers on each host, as ``{uuid, name}`` (os-hypervisors/{pattern}/servers)."""
    result: dict[str, list[dict[str, str]]] = {h: [] for h in host_ids}
    rows = session.execute(
        select(m.Instance.host_id, m.Instance.id, m.Instance.name)
        .where(m.Instance.host_id.in_(host_ids), m.Instance.deleted.is_(False))
        .order_by(m.Instance.created_at, m.Instance.id)
    )
    for host_id, instance_id, name in rows:
        result[str(host_id)].append({"uuid": instance_id, "name": name})
    return result


def uptime_text(load: HostLoad, now: dt.datetime) -> str:
    """The line procps' `uptime` prints (Nova's libvirt driver answers with it): the
    time, how long the host has been up, its users and its load averages."""
    seconds = int(load.uptime_seconds)
    days, rest = divmod(seconds, 86400)
    hours, minutes = rest // 3600, rest % 3600 // 60
    up = f"{days} day{'s' if days != 1 else ''}, " if days else ""
    up += f"{hours:2d}:{minutes:02d}, " if hours else f"{minutes} min, "
    users = f"{load.users:2d} user{'' if load.users == 1 else 's'},  "
    averages = ", ".join(f"{x:.2f}" for x in load.load_average)
    return f" {now:%H:%M:%S} up {up}{users}load average: {averages}"


def uptime(usage: HostUsage, now: dt.datetime | None = None) -> str:
    """The host's `uptime` line, as its agent last reported it (each heartbeat does). A
    host that is down cannot say (400, as Nova's ComputeServiceUnavailable); an agent too
    old to report it is a 501, as a virt driver without get_host_uptime."""
    now = now or utcnow()
    if not usage.status.up:
        raise BadRequest(f"Compute service of {usage.host.name} is unavailable at this time.")
    load = hosts.last_load(usage.host, now)
    if load is None:
        raise NotSupported("The requested functionality is not supported.")
    return uptime_text(load, now)
