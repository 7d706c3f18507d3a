"""What this host offers: CPUs, memory, disk, and what its kernel and tools can do."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Any

from kumo.drivers.hypervisor import registry as hypervisor_registry


def _meminfo_mb() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def inventory(state_dir: Path) -> dict[str, Any]:
    disk = shutil.disk_usage(state_dir)
    return {
        "vcpus": os.cpu_count() or 1,
        "memory_mb": _meminfo_mb(),
        "disk_gb": disk.total // (1 << 30),
    }


def capabilities() -> dict[str, Any]:
    return {
        "arch": platform.machine(),
        "kernel": platform.release(),
        "hypervisor_drivers": hypervisor_registry.available(),
        "network_types": [],
    }
