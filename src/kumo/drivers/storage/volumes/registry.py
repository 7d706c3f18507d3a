"""Backend name -> constructor, so configuration picks a volume backend by name (as
Cinder's ``volume_driver``), with its options (``preallocate``, ``loop_device``, ...).

Constructors are imported lazily, as for hypervisor drivers: the fake backend needs no
qemu-img.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from kumo.drivers.storage.volumes.base import VolumeBackend, VolumeBackendError

_BACKENDS: dict[str, str] = {
    "file": "kumo.drivers.storage.volumes.file:FileBackend",
    "raw": "kumo.drivers.storage.volumes.raw:RawBackend",
    "fake": "kumo.drivers.storage.volumes.fake:FakeBackend",
}


def available() -> list[str]:
    return sorted(_BACKENDS)


def root_for(name: str, state_dir: Path) -> Path:
    """Where the named backend keeps its files: ``<state_dir>/volumes/<name>/``."""
    return Path(state_dir) / "volumes" / name


def create(name: str, state_dir: Path, **options: Any) -> VolumeBackend:
    """Build the named backend keeping its files under ``<state_dir>/volumes/<name>/``.
    An option the backend does not know is an error, not silently ignored."""
    try:
        module_name, _, attr = _BACKENDS[name].partition(":")
    except KeyError:
        raise VolumeBackendError(
            f"unknown volume backend {name!r} (known: {', '.join(available())})"
        ) from None
    cls = getattr(importlib.import_module(module_name), attr)
    try:
        backend: VolumeBackend = cls(root_for(name, state_dir), **options)
    except TypeError as exc:
        raise VolumeBackendError(f"volume backend {name!r}: bad options {options}: {exc}") from exc
    return backend
