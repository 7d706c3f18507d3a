"""What this host offers: CPUs, memory, disk, and what its kernel and tools can do."""

from __future__ import annotations

import os
import platform
import shutil
import struct
from pathlib import Path
from typing import Any

from kumo.drivers.hypervisor import registry as hypervisor_registry
from kumo.protocol import HostLoad

UTMP = Path("/run/utmp")
UTMP_RECORD = 384  # sizeof(struct utmp) on Linux (glibc, every 64-bit and 32-bit ABI)
USER_PROCESS = 7  # ut_type of a logged-in user's session


def _meminfo_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def inventory(state_dir: Path, override: dict[str, int] | None = None) -> dict[str, Any]:
    """What the host has; a positive value in ``override`` (the [agent] inventory_* settings)
    replaces the detected one."""
    disk = shutil.disk_usage(state_dir)
    detected = {
        "vcpus": os.cpu_count() or 1,
        "memory_mb": _meminfo_mb(),
        "disk_gb": disk.total // (1 << 30),
    }
    return {key: (override or {}).get(key) or value for key, value in detected.items()}


def override_from(agent: Any) -> dict[str, int]:
    """The inventory override of an ``[agent]`` configuration section (0 = detect)."""
    return {
        "vcpus": agent.inventory_vcpus,
        "memory_mb": agent.inventory_memory_mb,
        "disk_gb": agent.inventory_disk_gb,
    }


def capabilities() -> dict[str, Any]:
    return {
        "arch": platform.machine(),
        "kernel": platform.release(),
        "hypervisor_drivers": hypervisor_registry.available(),
        "network_types": [],
    }


def _users(utmp: Path = UTMP) -> int:
    """Logged-in sessions, as `uptime` and `who` count them: utmp records of type
    USER_PROCESS (ut_type, a native short, opens each record)."""
    try:
        data = utmp.read_bytes()
    except OSError:
        return 0
    return sum(
        1
        for offset in range(0, len(data) - UTMP_RECORD + 1, UTMP_RECORD)
        if struct.unpack_from("=h", data, offset)[0] == USER_PROCESS
    )


def host_load() -> HostLoad:
    """This host's uptime, load averages and logged-in users, read as `uptime` reads them."""
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        uptime = 0.0
    one, five, fifteen = os.getloadavg()
    return HostLoad(uptime, (one, five, fifteen), _users())
