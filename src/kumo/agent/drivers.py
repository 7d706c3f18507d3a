"""Which hypervisor driver and volume backends this host's agent runs, from configuration."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kumo.config import Config
from kumo.drivers.hypervisor import registry
from kumo.drivers.hypervisor.base import HypervisorDriver
from kumo.drivers.storage.volumes import registry as volume_registry
from kumo.drivers.storage.volumes.base import VolumeBackend

log = logging.getLogger(__name__)


QEMU_BINARIES = ("qemu-system-x86_64", "qemu-img")
FAKE_WARNING = (
    "servers will be simulated in memory by the fake driver: no guest boots. Install "
    "qemu-system-x86 and qemu-utils (make up does), or set [compute] hypervisor = "
    '"fake" to ask for the fake driver by name'
)


class NoHypervisor(Exception):
    """``hypervisor = "auto"`` found no QEMU, and the fake driver was not asked for."""


@dataclass(frozen=True)
class HypervisorChoice:
    name: str
    reason: str
    fallback: bool  # "auto" found no QEMU: the fake driver stands in


def choose(config: Config) -> HypervisorChoice:
    """What ``[compute] hypervisor`` means on this host, and why."""
    configured = config.compute.hypervisor
    if configured != "auto":
        return HypervisorChoice(configured, f'hypervisor = "{configured}"', False)
    missing = [b for b in QEMU_BINARIES if not shutil.which(b)]
    if not missing:
        return HypervisorChoice("qemu", 'hypervisor = "auto" and qemu is installed', False)
    return HypervisorChoice(
        "fake", f'hypervisor = "auto" but {", ".join(missing)} not found on PATH', True
    )


def make_driver(
    config: Config, state_dir: Path | None = None, allow_fallback: bool = False
) -> HypervisorDriver:
    """The configured driver. "auto" without QEMU raises NoHypervisor: a production agent
    that cannot run guests must not pretend it can. Only the all-in-one trial (`kumo up`)
    passes ``allow_fallback``, and then the fallback is a warning, not a debug line."""
    choice = choose(config)
    if choice.fallback:
        if not allow_fallback:
            raise NoHypervisor(
                f"{choice.reason}: this host cannot run guests. Install qemu-system-x86 and "
                'qemu-utils, or set [compute] hypervisor = "fake" (KUMO_COMPUTE_HYPERVISOR=fake) '
                "to run simulated guests"
            )
        log.warning("%s: %s", choice.reason, FAKE_WARNING)
    # Only QEMU guests have consoles to place (the fake driver reports none).
    options = {"console_address": config.agent.console_address} if choice.name == "qemu" else {}
    driver = registry.create(choice.name, (state_dir or config.state_dir) / "agent", **options)
    log.info("hypervisor driver: %s (%s)", choice.name, choice.reason)
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
