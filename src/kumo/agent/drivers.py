"""Which hypervisor driver and volume backends this host's agent runs, from configuration."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from kumo.config import Config
from kumo.drivers.hypervisor import registry
from kumo.drivers.hypervisor.base import HypervisorDriver
from kumo.drivers.storage.volumes import registry as volume_registry
from kumo.drivers.storage.volumes.base import VolumeBackend

log = logging.getLogger(__name__)


QEMU_BINARIES = ("qemu-system-x86_64", "qemu-img")


def resolve_name(config: Config) -> str:
    """ "auto" means qemu when qemu-system-x86_64 and qemu-img are installed, else fake."""
    if config.compute.hypervisor != "auto":
        return config.compute.hypervisor
    return "qemu" if all(shutil.which(b) for b in QEMU_BINARIES) else "fake"


def make_driver(config: Config, state_dir: Path | None = None) -> HypervisorDriver:
    name = resolve_name(config)
    driver = registry.create(name, (state_dir or config.state_dir) / "agent")
    log.info("hypervisor driver: %s", name)
    return driver


def make_volume_backends(config: Config, state_dir: Path | None = None) -> dict[str, VolumeBackend]:
    """The backends of ``[volumes] backends``, keeping their data under the agent's state
    directory (``volumes/<backend>/``)."""
    root = (state_dir or config.state_dir) / "agent"
    options: dict[str, dict[str, Any]] = {
        "raw": {
            "preallocate": config.volumes.raw_preallocate,
            "loop_device": config.volumes.raw_loop_device,
        }
    }
    backends = {
        name: volume_registry.create(name, root, **options.get(name, {}))
        for name in config.volumes.backends
    }
    log.info("volume backends: %s", ", ".join(backends) or "none")
    return backends
