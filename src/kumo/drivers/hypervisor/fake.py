"""The fake driver: the same contract as QEMU, in memory and instant.

For scale tests (thousands of guests on one machine) and hosts with no QEMU. Guests belong
to a simulated host keyed by the state directory, not to the driver object, so a new
driver on the same directory (an agent restart) adopts them just as the QEMU driver does.
Its console replays what the kumo-tiny guest would print, reading the real config drive.
Its guests have no remote console (``GuestState.consoles`` is None, so the API answers
"Unavailable console type"): a port it made up would point the API's console proxy at
whatever else listens on this machine.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from kumo.drivers import disks
from kumo.drivers.hypervisor.base import (
    DiskSpec,
    GuestNotFound,
    GuestSpec,
    GuestState,
    HypervisorError,
    MigrationProgress,
    PowerState,
    RebootKind,
    carry_display,
    carry_pci_slots,
    check_display,
    check_new_disk,
    check_pci_slots,
    choose_pci_slot,
    find_disk,
    instance_dir,
    pci_slots,
    rescue_spec,
    slot_disks,
    storage_id,
    virtio_serial,
)
from kumo.protocol import virtio_disk_name

_pids = itertools.count(1_000_000)


@dataclass
class _Guest:
    spec: GuestSpec
    power: PowerState = PowerState.SHUTDOWN
    pid: int | None = None
    console: list[str] = field(default_factory=list)
    alive: int = 0
    last_alive: float = 0.0
    own: GuestSpec | None = None  # the guest's own spec while it runs a rescue boot
    nmis: int = 0  # NMIs injected (trigger_crash_dump), for tests to check
    incoming: dict[str, Any] | None = None  # destination: the endpoint it waits on
    received: bool = False  # destination: the whole state arrived
    outgoing: _Outgoing | None = None  # source: the migration under way
    exported: dict[str, Any] | None = None  # source of a cold migration: the disk served
    # The running guest's disks: key (_disk_key) -> the name its kernel gave it.
    names: dict[str, str] = field(default_factory=dict)


@dataclass
class _Outgoing:
    """A fake migration: it takes `steps` progress reads to converge (None: never, like a
    busy guest under TCG, until force-completed)."""

    endpoint: dict[str, Any]
    steps: int | None
    status: str = "active"
    force: bool = False


@dataclass
class _Host:
    guests: dict[str, _Guest] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)


_HOSTS: dict[str, _Host] = {}
_HOSTS_LOCK = threading.Lock()
# Endpoints of guests waiting for their state, across every fake host in this process.
_INCOMING: dict[str, tuple[_Host, str]] = {}
# Disks served for cold migrations, by token.
_EXPORTS: dict[str, tuple[_Host, str]] = {}
_ports = itertools.count(49152)
# Progress reads a fake migration takes to converge; None: it never does by itself.
MIGRATION_STEPS: int | None = 2


def _host(state_dir: Path) -> _Host:
    with _HOSTS_LOCK:
        return _HOSTS.setdefault(str(Path(state_dir).resolve()), _Host())


def _boot_lines(spec: GuestSpec) -> list[str]:
    """What kumo-tiny prints at boot, from the same config drive it would read."""
    lines = ["kumo-guest: start 0.00"]
    meta: dict[str, Any] = {}
    user_data = b""
    if spec.config_drive and Path(spec.config_drive).exists():
        import json

        from kumo.drivers.configdrive import read_config_drive

        files = read_config_drive(Path(spec.config_drive))
        meta = json.loads(files.get("openstack/latest/meta_data.json", b"{}"))
        user_data = files.get("openstack/latest/user_data", b"")
    lines.append(f"kumo-guest: hostname {meta.get('hostname') or 'kumo-tiny'}")
    lines += [f"kumo-guest: key {key}" for key in meta.get("public_keys", {}).values()]
    if user_data:
        first = user_data.decode(errors="replace").splitlines()[0] if user_data.strip() else ""
        lines.append(f"kumo-guest: user-data {first}")
    lines += [_disk_line(name, key) for key, name in _boot_names(spec).items()]
    lines += [f"kumo-guest: ip eth{i} 10.0.2.{15 + i}" for i, _ in enumerate(spec.nics)]
    return lines


def _disk_line(name: str, key: str) -> str:
    """What kumo-tiny prints for a disk it sees: its name and the serial it shows."""
    serial = "" if key.startswith("#") else {"root": "root", "config": "config-2"}.get(key, key)
    return f"kumo-guest: disk {name} {virtio_serial(serial)}".rstrip()


def _disk_key(index: int, disk: DiskSpec) -> str:
    return disk.serial or f"#{index}"


def _boot_names(spec: GuestSpec) -> dict[str, str]:
    """Disk key -> vdX as the guest's kernel names them at boot: in PCI slot order, so
    the root disk, the config drive, disks without a fixed slot (which QEMU places next),
    then the rest by slot."""
    keys = ["root"] if spec.root_disk else []
    keys += ["config"] if spec.config_drive else []
    extra = list(enumerate(spec.extra_disks))
    keys += [_disk_key(i, d) for i, d in extra if d.pci_slot is None]
    slotted = sorted((d.pci_slot, _disk_key(i, d)) for i, d in extra if d.pci_slot is not None)
    keys += [key for _, key in slotted]
    return {key: virtio_disk_name(n) for n, key in enumerate(keys)}


class FakeDriver:
    """HypervisorDriver with no processes: PIDs are made up, state changes are instant."""

    name = "fake"

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self._host = _host(self.state_dir)

    def _get(self, uuid: str) -> _Guest:
        instance_dir(self.state_dir, uuid)  # same UUID validation as the real driver
        try:
            return self._host.guests[uuid]
        except KeyError:
            raise GuestNotFound(f"no guest {uuid} on this host") from None

    def _state(self, guest: _Guest) -> GuestState:
        detail = "its process was killed (simulated)" if guest.power == PowerState.CRASHED else ""
        return GuestState(guest.spec.uuid, guest.power, guest.pid, guest.spec.name, detail)

    def _boot(self, guest: _Guest) -> None:
        guest.power, guest.pid = PowerState.RUNNING, next(_pids)
        guest.console += _boot_lines(guest.spec)
        guest.names = _boot_names(guest.spec)

    def is_process(self, pid: int) -> bool:
        """Whether a made-up PID belongs to a running fake guest (for contract tests)."""
        with self._host.lock:
            return any(g.pid == pid for g in self._host.guests.values())

    def capabilities(self) -> dict[str, Any]:
        return {
            "driver": self.name,
            "accelerator": "fake",
            "vhost_net": False,
            "suspend": True,
            "direct_kernel_boot": True,
            "nmi": True,
            "live_migration": True,
            "evacuate": True,
            "cold_migration": True,
            "disk_hotplug": True,
            "storage_id": storage_id(self.state_dir),
        }

    def spawn(self, spec: GuestSpec) -> GuestState:
        instance_dir(self.state_dir, spec.uuid)
        with self._host.lock:
            guest = self._host.guests.get(spec.uuid)
            if guest is None:
                guest = self._host.guests[spec.uuid] = _Guest(spec)
            elif guest.pid is not None:
                return self._state(guest)
            guest.spec = carry_display(carry_pci_slots(spec, guest.spec), guest.spec)
            if guest.power == PowerState.SUSPENDED:
                return self.resume(spec.uuid)
            guest.spec = slot_disks(guest.spec)
            self._boot(guest)
            return self._state(guest)

    def destroy(self, uuid: str) -> None:
        instance_dir(self.state_dir, uuid)
        with self._host.lock:
            guest = self._host.guests.pop(uuid, None)
            if guest is not None and guest.incoming is not None:
                with _HOSTS_LOCK:
                    _INCOMING.pop(str(guest.incoming.get("token")), None)
            if guest is not None and guest.exported is not None:
                with _HOSTS_LOCK:
                    _EXPORTS.pop(str(guest.exported.get("token")), None)

    def power_on(self, uuid: str) -> GuestState:
        with self._host.lock:
            guest = self._get(uuid)
            if guest.power == PowerState.SUSPENDED:
                return self.resume(uuid)
            if guest.pid is None:
                self._boot(guest)
            return self._state(guest)

    def power_off(self, uuid: str, timeout: float = 30.0) -> GuestState:
        with self._host.lock:
            guest = self._get(uuid)
            if guest.pid is not None:
                if guest.power == PowerState.RUNNING:
                    guest.console.append("kumo-guest: power button")
                guest.power, guest.pid = PowerState.SHUTDOWN, None
            elif guest.power == PowerState.CRASHED:
                guest.power = PowerState.SHUTDOWN
            return self._state(guest)

    def reboot(self, uuid: str, kind: RebootKind = "soft", timeout: float = 30.0) -> GuestState:
        with self._host.lock:
            guest = self._get(uuid)
            if kind == "hard" and guest.pid is not None:
                guest.power = PowerState.RUNNING
                guest.console += _boot_lines(guest.spec)
                guest.names = _boot_names(guest.spec)
                return self._state(guest)
            self.power_off(uuid, timeout)
            return self.power_on(uuid)

    def pause(self, uuid: str) -> GuestState:
        return self._set_running(uuid, PowerState.PAUSED)

    def unpause(self, uuid: str) -> GuestState:
        return self._set_running(uuid, PowerState.RUNNING)

    def _set_running(self, uuid: str, power: PowerState) -> GuestState:
        with self._host.lock:
            guest = self._get(uuid)
            if guest.pid is None:
                raise HypervisorError(f"guest {uuid} has no running process")
            guest.power = power
            return self._state(guest)

    def suspend(self, uuid: str) -> GuestState:
        with self._host.lock:
            guest = self._get(uuid)
            if guest.power == PowerState.SUSPENDED:
                return self._state(guest)
            if guest.pid is None:
                raise HypervisorError(f"guest {uuid} has no running process to suspend")
            guest.power, guest.pid = PowerState.SUSPENDED, None
            return self._state(guest)

    def resume(self, uuid: str) -> GuestState:
        with self._host.lock:
            guest = self._get(uuid)
            if guest.pid is not None:
                return self._state(guest)
            if guest.power != PowerState.SUSPENDED:
                raise HypervisorError(f"guest {uuid} is not suspended")
            guest.power, guest.pid = PowerState.RUNNING, next(_pids)
            return self._state(guest)

    def resize(self, uuid: str, vcpus: int, memory_mb: int, disk_gb: int) -> GuestState:
        with self._host.lock:
            guest = self._get(uuid)
            if guest.pid is not None:
                raise HypervisorError(f"guest {uuid} must be shut down to resize")
            guest.spec = dataclasses.replace(guest.spec, vcpus=vcpus, memory_mb=memory_mb)
            return self._state(guest)

    def snapshot(self, uuid: str, target: Path) -> None:
        """A small blank qcow2 stands for the root disk (fake guests have no data)."""
        with self._host.lock:
            guest = self._get(uuid)
            spec = guest.own or guest.spec
            if spec.root_disk and Path(spec.root_disk).is_file():
                try:
                    disks.convert_to_qcow2(Path(spec.root_disk), target)
                except disks.DiskError as exc:
                    raise HypervisorError(f"snapshot of {uuid} failed: {exc}") from exc
                return
        try:
            disks.create_blank(target, 1 << 20)
        except (disks.DiskError, OSError) as exc:
            raise HypervisorError(f"snapshot of {uuid} failed: {exc}") from exc

    def rescue(self, uuid: str, boot: GuestSpec) -> GuestState:
        with self._host.lock:
            guest = self._get(uuid)
            if guest.own is None:
                if guest.power == PowerState.SUSPENDED:
                    self.resume(uuid)
                self.power_off(uuid)
                guest.own = guest.spec
                guest.spec = rescue_spec(guest.own, boot)
            return self.power_on(uuid)

    def unrescue(self, uuid: str) -> GuestState:
        with self._host.lock:
            guest = self._get(uuid)
            if guest.own is None:
                return self._state(guest)
            guest.power, guest.pid = PowerState.SHUTDOWN, None
            guest.spec, guest.own = guest.own, None
            return self.power_on(uuid)

    def is_rescued(self, uuid: str) -> bool:
        with self._host.lock:
            guest = self._host.guests.get(uuid)
            return guest is not None and guest.own is not None

    def inject_nmi(self, uuid: str) -> None:
        """Counted, and logged on the console as the kumo-tiny kernel logs an NMI it has no
        handler for."""
        with self._host.lock:
            guest = self._get(uuid)
            if guest.pid is None:
                raise HypervisorError(f"guest {uuid} has no running process to send an NMI to")
            guest.nmis += 1
            guest.console.append("Uhhuh. NMI received for unknown reason 30 on CPU 0.")

    def nmi_count(self, uuid: str) -> int:
        """How many NMIs the guest received (0 for an unknown guest): for tests."""
        with self._host.lock:
            guest = self._host.guests.get(uuid)
            return guest.nmis if guest is not None else 0

    def get_state(self, uuid: str) -> GuestState:
        with self._host.lock:
            guest = self._host.guests.get(uuid)
            return self._state(guest) if guest else GuestState(uuid, PowerState.NOSTATE)

    def has_process(self, uuid: str) -> bool:
        with self._host.lock:
            guest = self._host.guests.get(uuid)
            return guest is not None and guest.pid is not None

    def simulate_exit(self, uuid: str, how: Literal["killed", "poweroff"]) -> None:
        """Tests: the guest's process ends by itself, as the qemu driver would see it: a
        ``kill -9`` (or a crash, or the OOM killer) leaves it CRASHED, the guest's own
        ``poweroff`` SHUTDOWN."""
        with self._host.lock:
            guest = self._get(uuid)
            if how == "poweroff":
                guest.console.append("kumo-guest: power button")
                guest.power = PowerState.SHUTDOWN
            else:
                guest.power = PowerState.CRASHED
            guest.pid = None

    def console_log(self, uuid: str, tail_bytes: int = 65536) -> bytes:
        with self._host.lock:
            guest = self._get(uuid)
            now = time.monotonic()
            # Time passes for a running guest, as on a real one: at most a line a second, so
            # a console that nobody watches does not look changed at every read.
            if guest.power == PowerState.RUNNING and now - guest.last_alive >= 1.0:
                guest.console.append(f"kumo-guest: alive {guest.alive}")
                guest.alive += 1
                guest.last_alive = now
            text = "".join(line + "\n" for line in guest.console).encode()
            return text[-tail_bytes:]

    def list_guests(self) -> list[GuestState]:
        with self._host.lock:
            return [self._state(g) for _, g in sorted(self._host.guests.items())]

    # -- extra disks ----------------------------------------------------------------------
    #
    # The guest's spec holds its disks (as the QEMU driver's spec.json does), `names` what
    # the running guest sees; the console says what the kumo-tiny guest would: "disk vdX"
    # for a disk that appears, "disk-gone vdX" for one that goes. A `detach_disk` with
    # timeout <= 0 stands for a guest that answers too late: it raises as QEMU's would,
    # and the guest releases the disk right after (the next detach call finishes it).

    def _check_disks(self, guest: _Guest, verb: str) -> None:
        uuid = guest.spec.uuid
        if guest.own is not None:
            raise HypervisorError(f"guest {uuid} is rescued: unrescue it to {verb} disks")
        if guest.power == PowerState.SUSPENDED:
            raise HypervisorError(
                f"guest {uuid} is suspended: resume it to {verb} a disk (its saved device "
                "state would not match a changed set of disks)"
            )
        if guest.incoming is not None or (
            guest.outgoing is not None and guest.outgoing.status in ("active", "completed")
        ):
            raise HypervisorError(f"guest {uuid} is being migrated: {verb} a disk afterwards")
        if verb == "detach" and guest.pid is not None and guest.power != PowerState.RUNNING:
            raise HypervisorError(
                f"guest {uuid} is {guest.power.value}: it cannot acknowledge the unplug; "
                "unpause it, or stop it, to detach the disk"
            )

    def attach_disk(self, uuid: str, disk: DiskSpec) -> GuestState:
        """The disk's file is not opened (fake guests have no data)."""
        with self._host.lock:
            guest = self._get(uuid)
            self._check_disks(guest, "attach")
            spec = guest.spec
            known = find_disk(spec, disk.serial)
            if known is None:
                check_new_disk(spec, disk)
                if disk.pci_slot is None:
                    slot = choose_pci_slot(spec.extra_disks)
                    disk = dataclasses.replace(disk, pci_slot=slot)
                guest.spec = dataclasses.replace(spec, extra_disks=(*spec.extra_disks, disk))
            if guest.pid is not None and disk.serial not in guest.names:
                used = set(guest.names.values())
                name = next(
                    virtio_disk_name(n)
                    for n in itertools.count()
                    if virtio_disk_name(n) not in used
                )
                guest.names[disk.serial] = name
                guest.console.append(_disk_line(name, disk.serial))
            return self._state(guest)

    def detach_disk(self, uuid: str, serial: str, timeout: float = 30.0) -> GuestState:
        with self._host.lock:
            guest = self._get(uuid)
            spec = guest.spec
            if find_disk(spec, serial) is None:
                return self._state(guest)
            self._check_disks(guest, "detach")
            if guest.pid is not None and serial in guest.names:
                name = guest.names.pop(serial)
                guest.console.append(f"kumo-guest: disk-gone {name}")
                if timeout <= 0:
                    raise HypervisorError(
                        f"guest {uuid}: the guest did not release the disk {serial} within "
                        f"{timeout:g} s; retry, or stop the server and detach"
                    )
            extra = tuple(d for d in spec.extra_disks if d.serial != serial)
            guest.spec = dataclasses.replace(spec, extra_disks=extra)
            return self._state(guest)

    def disks(self, uuid: str) -> list[DiskSpec]:
        """The spec's disks; for a running guest only those it has (as with QEMU)."""
        with self._host.lock:
            guest = self._get(uuid)
            spec = guest.own or guest.spec
            if guest.pid is None or guest.own is not None:
                return list(spec.extra_disks)
            return [d for i, d in enumerate(spec.extra_disks) if _disk_key(i, d) in guest.names]

    # -- live migration -------------------------------------------------------------------

    def prepare_incoming(self, spec: GuestSpec, block: bool) -> dict[str, Any]:
        instance_dir(self.state_dir, spec.uuid)
        with self._host.lock:
            guest = self._host.guests.get(spec.uuid)
            if guest is not None and guest.incoming is not None:
                return dict(guest.incoming)
            if guest is not None and guest.pid is not None:
                raise HypervisorError(f"guest {spec.uuid} already runs on this host")
            token = f"{spec.uuid}:{next(_ports)}"
            endpoint = {
                "host": "fake",
                "port": int(token.rsplit(":", 1)[1]),
                "token": token,
                "block": block,
                "pci_slots": pci_slots(spec),
                "display": spec.display,
            }
            guest = _Guest(spec, PowerState.PAUSED, next(_pids), incoming=endpoint)
            self._host.guests[spec.uuid] = guest
            with _HOSTS_LOCK:
                _INCOMING[token] = (self._host, spec.uuid)
            return dict(endpoint)

    def _target(self, outgoing: _Outgoing) -> _Guest | None:
        with _HOSTS_LOCK:
            found = _INCOMING.get(str(outgoing.endpoint.get("token")))
        if found is None:
            return None
        host, uuid = found
        guest = host.guests.get(uuid)
        return guest if guest is not None and guest.incoming is not None else None

    def migrate_to(self, uuid: str, endpoint: dict[str, Any], block: bool) -> None:
        with self._host.lock:
            guest = self._get(uuid)
            out = guest.outgoing
            if (
                out is not None
                and out.endpoint == endpoint
                and out.status in ("active", "completed")
            ):
                return
            if guest.pid is None:
                raise HypervisorError(f"guest {uuid} has no running process to migrate")
            check_pci_slots(uuid, guest.spec, endpoint)
            check_display(uuid, guest.spec, endpoint)
            guest.outgoing = _Outgoing(dict(endpoint), MIGRATION_STEPS)
            if self._target(guest.outgoing) is None:
                guest.outgoing.status = "failed"

    def migration_progress(self, uuid: str) -> MigrationProgress:
        with self._host.lock:
            guest = self._get(uuid)
            out = guest.outgoing
            total = guest.spec.memory_mb << 20
            if out is None:
                return MigrationProgress("none")
            if out.status == "active":
                target = self._target(out)
                if target is None:
                    out.status = "failed"
                elif out.force or guest.power == PowerState.PAUSED or out.steps == 0:
                    # Everything is copied: the destination holds the guest's state now.
                    target.console = list(guest.console)
                    target.alive, target.last_alive = guest.alive, guest.last_alive
                    target.names = dict(guest.names)
                    target.received = True
                    guest.power = PowerState.PAUSED
                    out.status = "completed"
                elif out.steps is not None:
                    out.steps -= 1
            if out.status == "completed":
                return MigrationProgress(
                    "completed", total, total, 0, total_time_ms=1, downtime_ms=1
                )
            if out.status == "active":
                left = total // 2
                return MigrationProgress("active", total, total - left, left)
            return MigrationProgress(out.status, message=f"migration {out.status}")

    def force_complete_migration(self, uuid: str) -> None:
        with self._host.lock:
            guest = self._get(uuid)
            if guest.outgoing is not None and guest.outgoing.status == "active":
                guest.outgoing.force = True
                guest.power = PowerState.PAUSED

    def abort_migration(self, uuid: str) -> MigrationProgress:
        with self._host.lock:
            guest = self._get(uuid)
            if guest.outgoing is not None and guest.outgoing.status == "active":
                guest.outgoing.status = "cancelled"
            return self.migration_progress(uuid)

    def finish_incoming(self, uuid: str, run: bool) -> GuestState:
        with self._host.lock:
            guest = self._get(uuid)
            if guest.incoming is not None:
                if not guest.received:
                    raise HypervisorError(f"guest {uuid}: its state has not fully arrived")
                with _HOSTS_LOCK:
                    _INCOMING.pop(str(guest.incoming.get("token")), None)
                guest.incoming = None
                guest.power = PowerState.RUNNING if run else PowerState.PAUSED
            return self._state(guest)

    # -- cold migration -------------------------------------------------------------------

    def export_disk(self, uuid: str) -> dict[str, Any]:
        with self._host.lock:
            guest = self._get(uuid)
            if guest.exported is not None:
                return dict(guest.exported)
            if guest.pid is not None:
                raise HypervisorError(f"guest {uuid} is running: shut it off first")
            token = f"disk:{uuid}:{next(_ports)}"
            guest.exported = {"host": "fake", "port": int(token.rsplit(":", 1)[1]), "token": token}
            with _HOSTS_LOCK:
                _EXPORTS[token] = (self._host, uuid)
            return dict(guest.exported)

    def end_export(self, uuid: str) -> None:
        instance_dir(self.state_dir, uuid)
        with self._host.lock:
            guest = self._host.guests.get(uuid)
            if guest is not None and guest.exported is not None:
                with _HOSTS_LOCK:
                    _EXPORTS.pop(str(guest.exported.get("token")), None)
                guest.exported = None

    def import_disk(self, uuid: str, endpoint: dict[str, Any]) -> None:
        """The "disk" of a fake guest is its spec and console: the copy is a shut-off
        guest here whose console goes on from the source's."""
        instance_dir(self.state_dir, uuid)
        with _HOSTS_LOCK:
            found = _EXPORTS.get(str(endpoint.get("token")))
        if found is None:
            raise HypervisorError(f"no disk of guest {uuid} is served at {endpoint}")
        host, source_uuid = found
        with host.lock:
            source = host.guests.get(source_uuid)
            if source is None or source.exported is None:
                raise HypervisorError(f"the disk of guest {uuid} is no longer served")
            spec, console = source.spec, list(source.console)
        with self._host.lock:
            guest = self._host.guests.get(uuid)
            if guest is None or guest.pid is None:
                self._host.guests[uuid] = _Guest(spec, console=console)
