"""The one interface every hypervisor driver implements, and the plain data it speaks.

The agent reconciles desired against observed state, so every operation here is idempotent
and every answer is an observation (`GuestState`), never a promise. Specs are plain, JSON-able
dataclasses so a driver can persist them next to the guest and find them again after the
agent restarts (guests outlive agents: DESIGN.md section 4).
"""

from __future__ import annotations

import enum
import uuid as _uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from kumo.protocol import ConsoleEndpoints


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


# PCI slots on pci.0 reserved for extra disks with a fixed address (DiskSpec.pci_slot).
# QEMU gives every other device (root disk, config drive, NICs, extra disks without a slot)
# the lowest free slot from 2 up, so these stay clear of them unless a guest has more than
# 13 such devices (12 with a display, whose slot is 0xf); a slot QEMU has given away is
# skipped when one is chosen.
EXTRA_DISK_SLOTS = range(0x10, 0x20)
VIRTIO_SERIAL_BYTES = 20  # what virtio-blk shows the guest (VIRTIO_BLK_ID_BYTES)

DiskKind = Literal["file", "block"]

# A guest's display device, as Nova's ``hw_video_model`` names them: ``vga`` (QEMU's std
# VGA: cheap under TCG, drawn by every BIOS and OS) or ``none``. Part of the guest's
# hardware: it never changes under an existing guest, and a live migration's destination
# must have the source's (`check_display`).
DisplayModel = Literal["none", "vga"]
DISPLAY_MODELS: tuple[DisplayModel, ...] = ("none", "vga")


@dataclass(frozen=True)
class DiskSpec:
    """An extra disk: a file (or host block device) handed to the guest as virtio-blk.

    ``serial`` is the disk's identity (a volume's UUID): attach and detach find disks by
    it. The guest sees only its first 20 bytes (`virtio_serial`), as with Nova/libvirt.
    ``kind``: ``file`` (an image file) or ``block`` (a host block device such as a loop
    device or an iSCSI LUN: QEMU's ``host_device`` driver).
    ``pci_slot``: the fixed slot on pci.0 the disk sits in (`EXTRA_DISK_SLOTS`), chosen at
    attach time and kept, so every QEMU started for the guest (power-on, reboot, a live
    migration's destination) puts the disk where a hot-plug put it. None: a disk from a
    spec written before slots existed, which keeps its old, QEMU-chosen place."""

    path: str
    format: str = "qcow2"
    readonly: bool = False
    serial: str = ""
    kind: DiskKind = "file"
    pci_slot: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DiskSpec:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def virtio_serial(serial: str) -> str:
    """The serial as a virtio-blk guest sees it: its first 20 bytes (Nova and libvirt hand
    the whole volume UUID to QEMU, and the guest's /dev/disk/by-id/virtio-... shows the
    first 20 characters). Cut on a character boundary."""
    return serial.encode()[:VIRTIO_SERIAL_BYTES].decode(errors="ignore")


@dataclass(frozen=True)
class NicSpec:
    """A NIC. `tap` names an existing tap device; empty means user-mode NAT (tests only).
    With `netns`, the tap lives in that network namespace: the driver opens it there and
    hands QEMU (which stays in the root namespace) its file descriptor."""

    mac: str
    tap: str = ""
    netns: str = ""


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
    # "none" when unsaid: guests persisted before displays existed have none (from_dict),
    # as do specs built by callers that do not choose one.
    display: DisplayModel = "none"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuestSpec:
        """The spec persisted as `to_dict` wrote it, by this version or an older one (a
        spec without ``display`` is a guest started before guests had displays: none)."""
        data = dict(data)
        data["extra_disks"] = tuple(DiskSpec.from_dict(d) for d in data.get("extra_disks", ()))
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
    # Where its remote consoles listen while it runs (None: it has none, or not running).
    consoles: ConsoleEndpoints | None = None


RebootKind = Literal["soft", "hard"]


@dataclass(frozen=True)
class MigrationProgress:
    """One look at an outgoing live migration, as the source's hypervisor sees it.

    ``status``: ``none`` (nothing started), ``active`` (copying disks or memory),
    ``completed`` (the destination has everything; the source guest is stopped for good),
    ``failed`` or ``cancelled`` (the source guest carries on as it was). Byte counts are
    None when the hypervisor does not know them (yet)."""

    status: str
    memory_total_bytes: int | None = None
    memory_processed_bytes: int | None = None
    memory_remaining_bytes: int | None = None
    disk_total_bytes: int | None = None
    disk_processed_bytes: int | None = None
    disk_remaining_bytes: int | None = None
    total_time_ms: int | None = None
    downtime_ms: int | None = None
    message: str = ""

    def report(self) -> dict[str, Any]:
        """The fields a migration row keeps (for the agent API)."""
        return {k: v for k, v in asdict(self).items() if k not in ("status", "message")}


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

    def get_state(self, uuid: str) -> GuestState:
        """What the guest is doing now. A guest whose process ended without being asked
        to (killed, crashed, out of memory) is CRASHED, with the driver's word on it in
        ``detail``; one that powered itself off (the guest's own ``poweroff``), was shut
        down cleanly or whose host restarted since it started is SHUTDOWN: the agent's
        guest restart (kumo.agent.guest_watch, kumo.core.compute.guest_restart) tells
        them apart by this alone."""
        ...

    def has_process(self, uuid: str) -> bool:
        """Whether a process runs the guest now: cheap (no QMP), for the agent's watch on
        the guests it saw running (kumo.agent.guest_watch), which asks once a second."""
        ...

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

    # Extra disks (block volumes), found by their serial. A disk is part of the guest's
    # persisted spec from attach to detach, so every later start of the guest (power-on,
    # soft reboot, a restarted agent's adoption, a migration's destination when its spec
    # carries `disks()`'s answer) has it, in the same PCI slot. Capability `disk_hotplug`.

    def attach_disk(self, uuid: str, disk: DiskSpec) -> GuestState:
        """Give the guest `disk`; a disk with this serial attached already: nothing.

        Running or paused guest: hot-plugged now (the guest sees a new virtio disk) into
        `disk.pci_slot`, or the lowest free slot of `EXTRA_DISK_SLOTS` when None; shut-down
        guest: only its spec changes, it sees the disk at the next boot. Raises
        HypervisorError for a suspended guest (resume it first: its saved device state has
        no such disk), a rescued one (unrescue first), or a disk QEMU could not open (the
        spec is left as it was)."""
        ...

    def detach_disk(self, uuid: str, serial: str, timeout: float = 30.0) -> GuestState:
        """Take the disk `serial` from the guest; a serial it does not have: nothing.

        Running guest: the guest is asked to release the device (ACPI unplug) and the
        disk is closed once it did; within `timeout`, else HypervisorError and the disk
        stays attached (the request stands: retry later, or stop the server and detach).
        Shut-down guest: only the spec changes. Paused, suspended, crashed or rescued
        guest: HypervisorError (it cannot acknowledge an unplug)."""
        ...

    def disks(self, uuid: str) -> list[DiskSpec]:
        """The extra disks the guest has now, each with the PCI slot it sits in (callers
        keep it and pass it back in later specs, a migration's destination above all)."""
        ...

    # Live migration: the destination prepares, the source copies, the destination
    # continues. Every step is idempotent and derived from what the hypervisor itself says,
    # so an agent restarted mid-migration picks up where it was.

    def prepare_incoming(self, spec: GuestSpec, block: bool) -> dict[str, Any]:
        """Destination: start the guest from `spec`, stopped, waiting for its state; with
        `block`, its (fresh) writable disks also wait to be filled over the network. Returns
        the endpoint (JSON-able) the source's `migrate_to` needs; asked again, the same."""
        ...

    def migrate_to(self, uuid: str, endpoint: dict[str, Any], block: bool) -> None:
        """Source: start copying the guest (its disks first with `block`) to `endpoint`;
        already under way there: nothing. Progress is read with `migration_progress`."""
        ...

    def migration_progress(self, uuid: str) -> MigrationProgress:
        """Source: how the outgoing migration stands; also moves it on (starts the memory
        copy once the disks are in step, tidies up the disk copies once it completed)."""
        ...

    def force_complete_migration(self, uuid: str) -> None:
        """Source: make a migration that does not converge finish, by pausing the guest
        (nothing dirties memory any more). A failure later leaves it paused."""
        ...

    def abort_migration(self, uuid: str) -> MigrationProgress:
        """Source: cancel the outgoing migration; the guest carries on here. One that had
        completed already cannot be taken back: the answer says `completed` then."""
        ...

    def finish_incoming(self, uuid: str, run: bool) -> GuestState:
        """Destination, after the switch: stop serving the disks, and continue the guest
        (`run`) or leave it paused. Raises HypervisorError while the state has not fully
        arrived (try again later) or when the incoming guest is gone."""
        ...

    # Cold migration: the source serves the root disk of its shut-off guest, the
    # destination copies it into place (the guest is then spawned there as usual, from the
    # copied disk); capability ``cold_migration``.

    def export_disk(self, uuid: str) -> dict[str, Any]:
        """Source: serve the shut-off guest's root disk, read-only, for `import_disk`.
        Returns the endpoint (JSON-able); asked again, the same one."""
        ...

    def end_export(self, uuid: str) -> None:
        """Source: stop serving the disk (nothing when it is not served)."""
        ...

    def import_disk(self, uuid: str, endpoint: dict[str, Any]) -> None:
        """Destination: copy the disk served at `endpoint` to where this host keeps the
        guest's root disk, as one whole file (a partial copy is never left in place)."""
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
        display=own.display,
    )


def choose_pci_slot(disks: tuple[DiskSpec, ...], busy: set[int] | None = None) -> int:
    """The lowest slot of `EXTRA_DISK_SLOTS` neither another disk nor (`busy`) any other
    device of the running guest holds."""
    taken = {d.pci_slot for d in disks if d.pci_slot is not None} | (busy or set())
    for slot in EXTRA_DISK_SLOTS:
        if slot not in taken:
            return slot
    raise HypervisorError(f"no free PCI slot for another disk (at most {len(EXTRA_DISK_SLOTS)})")


def check_new_disk(spec: GuestSpec, disk: DiskSpec) -> None:
    """Refuse a disk `attach_disk` cannot give a guest: no serial (its identity), a serial
    the guest could not tell from an attached disk's, a slot another disk holds."""
    if not disk.serial:
        raise HypervisorError("a disk to attach needs a serial (its volume's identity)")
    if disk.kind not in ("file", "block"):
        raise HypervisorError(f"unknown disk kind {disk.kind!r} (file or block)")
    for other in spec.extra_disks:
        if virtio_serial(other.serial) == virtio_serial(disk.serial):
            raise HypervisorError(
                f"disk {disk.serial}: its first {VIRTIO_SERIAL_BYTES} bytes equal those of "
                f"attached disk {other.serial}; the guest could not tell them apart"
            )
        if disk.pci_slot is not None and other.pci_slot == disk.pci_slot:
            raise HypervisorError(f"PCI slot {disk.pci_slot:#x} already holds {other.serial}")
    if disk.pci_slot is not None and disk.pci_slot not in EXTRA_DISK_SLOTS:
        raise HypervisorError(
            f"PCI slot {disk.pci_slot:#x} is outside {EXTRA_DISK_SLOTS.start:#x}-"
            f"{EXTRA_DISK_SLOTS.stop - 1:#x}"
        )


def find_disk(spec: GuestSpec, serial: str) -> DiskSpec | None:
    return next((d for d in spec.extra_disks if d.serial == serial), None)


def carry_pci_slots(spec: GuestSpec, previous: GuestSpec | None) -> GuestSpec:
    """`spec` with the slots `previous` (the guest's spec persisted here) gave its disks,
    for disks `spec` lists without one (a caller that does not keep slots)."""
    if previous is None:
        return spec
    slots = {d.serial: d.pci_slot for d in previous.extra_disks if d.serial}
    if not any(d.pci_slot is None and slots.get(d.serial) is not None for d in spec.extra_disks):
        return spec
    disks = tuple(
        d if d.pci_slot is not None else replace(d, pci_slot=slots.get(d.serial))
        for d in spec.extra_disks
    )
    return replace(spec, extra_disks=disks)


def slot_disks(spec: GuestSpec) -> GuestSpec:
    """`spec` with a slot for each extra disk that has none, the lowest free one in the
    order listed: for a guest about to start afresh. Every disk then sits in a slot, so a
    disk later hot-plugged where one was unplugged takes that disk's slot, just as the
    guest's kernel gives it that disk's name (virtio-blk takes the lowest free index when
    hot-plugged and names disks in PCI order at boot): the names hold across a reboot."""
    if all(d.pci_slot is not None for d in spec.extra_disks):
        return spec
    disks: list[DiskSpec] = []
    for disk in spec.extra_disks:
        if disk.pci_slot is None:
            taken = (*disks, *(d for d in spec.extra_disks if d.pci_slot is not None))
            disk = replace(disk, pci_slot=choose_pci_slot(tuple(taken)))
        disks.append(disk)
    return replace(spec, extra_disks=tuple(disks))


def pci_slots(spec: GuestSpec) -> dict[str, int | None]:
    """Serial -> PCI slot of the spec's extra disks: what a migration's two ends compare
    (a destination's endpoint carries its own as ``pci_slots``)."""
    return {d.serial: d.pci_slot for d in spec.extra_disks}


def check_pci_slots(uuid: str, spec: GuestSpec, endpoint: dict[str, Any]) -> None:
    """Refuse a live migration to a destination started without the source's extra disks
    in the same PCI slots: QEMU would fail it later, saying much less."""
    theirs = endpoint.get("pci_slots")
    if theirs is None:  # a destination from before hot-plug: nothing to compare
        return
    mine = pci_slots(spec)
    if theirs != mine:
        raise HypervisorError(
            f"guest {uuid}: the destination's extra disks (serial: PCI slot) {theirs} "
            f"differ from the source's {mine}; prepare it with the source's disks()"
        )


def carry_display(spec: GuestSpec, previous: GuestSpec | None) -> GuestSpec:
    """`spec` with the display `previous` (the guest's spec persisted here) has: a guest's
    hardware stays what it booted with for as long as it exists on this host (a suspended
    guest resumes only into the same devices; a guest from before displays keeps none), so
    only a guest started afresh gets the display its builder chose."""
    if previous is None or previous.display == spec.display:
        return spec
    return replace(spec, display=previous.display)


def check_display(uuid: str, spec: GuestSpec, endpoint: dict[str, Any]) -> None:
    """Refuse a live migration to a destination started with another display device than
    the source's: QEMU would fail the migration later, saying much less. A destination
    that does not say (an agent from before displays) started without one."""
    theirs = endpoint.get("display", "none")
    if theirs != spec.display:
        raise HypervisorError(
            f"guest {uuid}: the destination's display is {theirs!r}, the source's is "
            f"{spec.display!r}; prepare it with the source's display"
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


def storage_id(state_dir: Path) -> str:
    """The identity of the storage holding this driver's instance directories: hosts that
    share it (a shared file system) read the same id, so the control plane can tell shared
    storage (memory-only live migration) from local disks (disks copied too)."""
    root = state_dir / "instances"
    path = root / ".storage-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".storage-id.{_uuid.uuid4().hex}"
    tmp.write_text(str(_uuid.uuid4()) + "\n")
    try:
        # Whoever links first wins; a host sharing the directory reads the winner's id.
        import os

        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()
