"""The one interface every hypervisor driver implements, and the plain data it speaks.

The agent reconciles desired against observed state, so every operation here is idempotent
and every answer is an observation (`GuestState`), never a promise. Specs are plain, JSON-able
dataclasses so a driver can persist them next to the guest and find them again after the
agent restarts (guests outlive agents: DESIGN.md section 4).
"""

from __future__ import annotations

import enum
import uuid as _uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable


class HypervisorError(RuntimeError):
    """A driver could not do what was asked; the message says why, for the instance fault."""


class GuestNotFound(HypervisorError):
    """The driver knows no guest with this UUID on this host."""


class PowerState(enum.StrEnum):
    """Nova's power_state vocabulary (what the process is doing, not what the user asked)."""

    NOSTATE = "nostate"
    RUNNING = "running"
    PAUSED = "paused"
    SHUTDOWN = "shutdown"
    CRASHED = "crashed"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class DiskSpec:
    """An extra disk: a file (or host block device) handed to the guest as virtio-blk."""

    path: str
    format: str = "qcow2"
    readonly: bool = False
    serial: str = ""


@dataclass(frozen=True)
class NicSpec:
    """A NIC. `tap` names an existing tap device; empty means user-mode NAT (tests only)."""

    mac: str
    tap: str = ""


@dataclass(frozen=True)
class GuestSpec:
    """Everything a driver needs to (re)create a guest; persisted by the driver as JSON."""

    uuid: str
    name: str
    vcpus: int
    memory_mb: int
    root_disk: str | None = None
    root_disk_format: str = "qcow2"
    kernel: str | None = None
    ramdisk: str | None = None
    cmdline: str | None = None
    config_drive: str | None = None
    extra_disks: tuple[DiskSpec, ...] = ()
    nics: tuple[NicSpec, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuestSpec:
        data = dict(data)
        data["extra_disks"] = tuple(DiskSpec(**d) for d in data.get("extra_disks", ()))
        data["nics"] = tuple(NicSpec(**n) for n in data.get("nics", ()))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class GuestState:
    """One observation of a guest. `pid` is None when no process runs it."""

    uuid: str
    power_state: PowerState
    pid: int | None = None
    name: str = ""
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


RebootKind = Literal["soft", "hard"]


@runtime_checkable
class HypervisorDriver(Protocol):
    """What the agent may ask of a hypervisor on its host.

    Every mutating call is idempotent: asking for the state a guest is already in is a
    no-op that returns the current observation. Calls on an unknown UUID raise
    `GuestNotFound`, except `destroy` (already gone is success) and `get_state`
    (answers NOSTATE).
    """

    name: str

    def capabilities(self) -> dict[str, Any]:
        """What this driver can do here (accelerator, features), for host registration."""
        ...

    def spawn(self, spec: GuestSpec) -> GuestState:
        """Create the guest and start it; a guest already running is left untouched."""
        ...

    def destroy(self, uuid: str) -> None:
        """Stop the guest hard and remove its runtime directory; already gone is success."""
        ...

    def power_on(self, uuid: str) -> GuestState:
        """Start a shut-down (or crashed) guest from its persisted spec."""
        ...

    def power_off(self, uuid: str, timeout: float = 30.0) -> GuestState:
        """Ask the guest to power down (ACPI); force it off once `timeout` has passed."""
        ...

    def reboot(self, uuid: str, kind: RebootKind = "soft", timeout: float = 30.0) -> GuestState:
        """Soft: a clean power-off (forced after `timeout`) then power-on. Hard: reset."""
        ...

    def pause(self, uuid: str) -> GuestState: ...

    def unpause(self, uuid: str) -> GuestState: ...

    def suspend(self, uuid: str) -> GuestState:
        """Save the guest's memory and device state to a file; its process exits."""
        ...

    def resume(self, uuid: str) -> GuestState:
        """Restore a suspended guest from its saved state; it continues where it stopped."""
        ...

    def get_state(self, uuid: str) -> GuestState: ...

    def inject_nmi(self, uuid: str) -> None:
        """Send a non-maskable interrupt to the guest's vCPUs (Nova's trigger_crash_dump):
        a guest kernel set up for it (kdump, ``unknown_nmi_panic``) dumps its memory, any
        other at least logs it. Not idempotent by nature: each call is one NMI. Raises
        HypervisorError when the guest has no running process (shut down or suspended)."""
        ...

    def resize(self, uuid: str, vcpus: int, memory_mb: int, disk_gb: int) -> GuestState:
        """Give a shut-down guest new CPUs and memory (its persisted spec) and grow its root
        disk to `disk_gb` (never shrinks it); it starts with them at the next power-on."""
        ...

    def console_log(self, uuid: str, tail_bytes: int = 65536) -> bytes:
        """The last `tail_bytes` of the serial console, across power cycles."""
        ...

    def snapshot(self, uuid: str, target: Path) -> None:
        """Write a consistent copy of the guest's root disk to `target` as one standalone
        qcow2 (no backing file), in any power state; the guest ends in the state it was in
        (a running guest is paused for the copy). Raises HypervisorError when it has no
        root disk to copy."""
        ...

    def rescue(self, uuid: str, boot: GuestSpec) -> GuestState:
        """Power the guest off and boot it from `boot`'s root disk, kernel, ramdisk and
        command line, with the guest's own root disk attached as an extra disk (serial
        ``rescued-root``; see `rescue_spec`). The guest's own spec is kept, so `unrescue`
        (and an agent restart) find it again. Already rescued: just running."""
        ...

    def unrescue(self, uuid: str) -> GuestState:
        """Stop the rescue boot and start the guest from its own disk again; the rescue
        disk is removed. A guest that is not rescued is left as it is."""
        ...

    def is_rescued(self, uuid: str) -> bool: ...

    def list_guests(self) -> list[GuestState]:
        """Every guest this driver finds on the host, running or not (for adoption)."""
        ...


def rescue_spec(own: GuestSpec, boot: GuestSpec) -> GuestSpec:
    """The spec a rescued guest runs: `boot`'s disk and kernel, the guest's own root disk
    next (its data, to repair), then its config drive, disks and NICs, its size."""
    extra = list(own.extra_disks)
    if own.root_disk:
        extra.insert(0, DiskSpec(own.root_disk, own.root_disk_format, serial="rescued-root"))
    return GuestSpec(
        uuid=own.uuid,
        name=own.name,
        vcpus=own.vcpus,
        memory_mb=own.memory_mb,
        root_disk=boot.root_disk,
        root_disk_format=boot.root_disk_format,
        kernel=boot.kernel,
        ramdisk=boot.ramdisk,
        cmdline=boot.cmdline,
        config_drive=own.config_drive,
        extra_disks=tuple(extra),
        nics=own.nics,
    )


def instance_dir(state_dir: Path, uuid: str) -> Path:
    """Where a guest's runtime files live; one directory per guest, removed by destroy.

    The UUID is validated because it becomes a path that destroy deletes recursively.
    """
    try:
        canonical = str(_uuid.UUID(uuid))
    except ValueError:
        raise HypervisorError(f"not a UUID: {uuid!r}") from None
    return state_dir / "instances" / canonical
