"""Driver name -> constructor, so configuration picks a driver by name (like Incus).

Constructors are imported lazily: a host without QEMU can still run the fake driver.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from kumo.drivers.hypervisor.base import HypervisorDriver, HypervisorError

_DRIVERS: dict[str, str] = {
    "qemu": "kumo.drivers.hypervisor.qemu:QemuDriver",
    "fake": "kumo.drivers.hypervisor.fake:FakeDriver",
}


def available() -> list[str]:
    return sorted(_DRIVERS)


def create(name: str, state_dir: Path, **options: Any) -> HypervisorDriver:
    """Build the named driver keeping its files under `state_dir`."""
    try:
        module_name, _, attr = _DRIVERS[name].partition(":")
    except KeyError:
        raise HypervisorError(
            f"unknown hypervisor driver {name!r} (known: {', '.join(available())})"
        ) from None
    cls = getattr(importlib.import_module(module_name), attr)
    driver: HypervisorDriver = cls(state_dir, **options)
    return driver
