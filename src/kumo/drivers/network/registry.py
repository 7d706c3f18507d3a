"""Network driver name -> constructor, imported lazily (model: hypervisor/registry.py)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from kumo.drivers.network.base import NetworkDriver, NetworkError

_DRIVERS: dict[str, str] = {
    "linux": "kumo.drivers.network.linux:LinuxNetworkDriver",
    "fake": "kumo.drivers.network.fake:FakeNetworkDriver",
}


def available() -> list[str]:
    return sorted(_DRIVERS)


def create(name: str, state_dir: Path, **options: Any) -> NetworkDriver:
    """Build the named driver keeping its files under `state_dir`."""
    try:
        module_name, _, attr = _DRIVERS[name].partition(":")
    except KeyError:
        raise NetworkError(
            f"unknown network driver {name!r} (known: {', '.join(available())})"
        ) from None
    cls = getattr(importlib.import_module(module_name), attr)
    driver: NetworkDriver = cls(state_dir, **options)
    return driver
