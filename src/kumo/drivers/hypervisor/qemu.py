"""The QEMU driver: one daemonized qemu-system-x86_64 per guest, controlled over QMP.

Everything about a guest lives in its instance directory, so a restarted agent (a new
driver instance) finds every guest again without touching it:

    <state>/instances/<uuid>/spec.json      the GuestSpec (to power on / resume again)
                             qemu.pid       pidfile; QEMU removes it on a clean exit
                             qmp            QMP socket (or <runtime>/<hash>.qmp when this
                                            path is too long for a UNIX socket: qmp_socket)
                             console.log    serial console, appended across power cycles
                             qemu.argv      the last command line (for humans)
                             suspended.state  saved memory + device state while suspended

Power states are derived, never stored: a live process (verified by its command line
naming the UUID) is asked over QMP; no process and a saved state file means SUSPENDED; a
pidfile left behind by a process that died means CRASHED; otherwise SHUTDOWN.

No `-no-shutdown`: when the guest powers itself off, QEMU exits, so the agent sees SHUTOFF
without having to poll QMP for a `shutdown` run state. Never `vhost=on` (LAB.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from qemu.qmp import ExecuteError, QMPClient, QMPError

from kumo.drivers.disks import DiskError, convert_to_qcow2, grow_to
from kumo.drivers.hypervisor import accel, qmp
from kumo.drivers.hypervisor.base import (
    DiskSpec,
    GuestNotFound,
    GuestSpec,
    GuestState,
    HypervisorError,
    PowerState,
    RebootKind,
    carry_display,
    carry_pci_slots,
    check_new_disk,
    choose_pci_slot,
    find_disk,
    rescue_spec,
    slot_disks,
    storage_id,
    virtio_serial,
)
from kumo.drivers.hypervisor.qemu_migration import QemuMigration
from kumo.drivers.hypervisor.qemu_process import (
    QemuProcesses,
    blockdev_args,
    device_args,
    disk_ids,
    process_alive,
    qmp_socket,
)

__all__ = ["QemuDriver", "QemuProcesses", "disk_ids", "qmp_socket"]


class QemuDriver(QemuMigration):
    """HypervisorDriver for QEMU (KVM when the timed probe says so, else TCG)."""

    name = "qemu"

    # -- the interface ---------------------------------------------------------------------

    def capabilities(self) -> dict[str, Any]:
        decision = accel.decide() if self._accelerator is None else None
        version = ""
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            version = subprocess.run(
                [self.binary, "--version"], capture_output=True, text=True, timeout=10
            ).stdout.splitlines()[0]
        return {
            "driver": self.name,
            "accelerator": self.accelerator(),
            "accelerator_reason": decision.reason if decision else "configured",
            "qemu_version": version,
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
        with self._lock(spec.uuid):
            directory = self._dir(spec.uuid)
            if self._pid(spec.uuid) is not None:
                return self.get_state(spec.uuid)
            directory.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(GuestNotFound):
                previous = self._own_spec(spec.uuid)
                spec = carry_display(carry_pci_slots(spec, previous), previous)
            suspended = (directory / "suspended.state").exists()
            if not suspended:  # a fresh start: its saved device state holds no slots
                spec = slot_disks(spec)
            self._write_json(directory / "spec.json", spec)
            if suspended:
                return self.resume(spec.uuid)
            self._start(spec)
            return self.get_state(spec.uuid)

    def resize(self, uuid: str, vcpus: int, memory_mb: int, disk_gb: int) -> GuestState:
        with self._lock(uuid):
            spec = self._own_spec(uuid)
            if self._pid(uuid) is not None:
                raise HypervisorError(f"guest {uuid} must be shut down to resize")
            if spec.root_disk and disk_gb > 0:
                grow_to(Path(spec.root_disk), disk_gb << 30)
            resized = dataclasses.replace(spec, vcpus=vcpus, memory_mb=memory_mb)
            directory = self._dir(uuid)
            tmp = directory / "spec.json.tmp"
            tmp.write_text(json.dumps(resized.to_dict(), indent=1))
            tmp.replace(directory / "spec.json")
            return self.get_state(uuid)

    def power_on(self, uuid: str) -> GuestState:
        with self._lock(uuid):
            spec = self._spec(uuid)
            state = self.get_state(uuid)
            if state.power_state == PowerState.SUSPENDED:
                return self.resume(uuid)
            if state.pid is None:
                self._start(spec)
            return self.get_state(uuid)

    def power_off(self, uuid: str, timeout: float = 30.0) -> GuestState:
        with self._lock(uuid):
            self._spec(uuid)
            pid = self._pid(uuid)
            if pid is not None:
                deadline = time.monotonic() + timeout
                state = self.get_state(uuid)
                if state.power_state == PowerState.RUNNING:
                    with contextlib.suppress(Exception):
                        self._qmp(uuid, "system_powerdown")
                    self._wait_gone(uuid, pid, deadline)
                if process_alive(pid):
                    self._kill(uuid, pid)
            with contextlib.suppress(FileNotFoundError):
                (self._dir(uuid) / "qemu.pid").unlink()  # a crashed guest is now just off
            return self.get_state(uuid)

    def reboot(self, uuid: str, kind: RebootKind = "soft", timeout: float = 30.0) -> GuestState:
        with self._lock(uuid):
            if kind == "hard":
                if self._pid(uuid) is None:
                    return self.power_on(uuid)
                self._qmp(uuid, "system_reset")
                state = self.get_state(uuid)
                if state.power_state == PowerState.PAUSED:
                    self._qmp(uuid, "cont")
                return self.get_state(uuid)
            self.power_off(uuid, timeout)
            return self.power_on(uuid)

    def pause(self, uuid: str) -> GuestState:
        with self._lock(uuid):
            self._require_running(uuid)
            self._qmp(uuid, "stop")
            return self.get_state(uuid)

    def unpause(self, uuid: str) -> GuestState:
        with self._lock(uuid):
            self._require_running(uuid)
            self._qmp(uuid, "cont")
            return self.get_state(uuid)

    def inject_nmi(self, uuid: str) -> None:
        """QMP ``inject-nmi``: QEMU raises an NMI on every vCPU (a paused guest takes it
        when it continues)."""
        with self._lock(uuid):
            self._require_running(uuid)
            try:
                self._qmp(uuid, "inject-nmi")
            except (qmp.QMPUnavailable, QMPError) as exc:
                raise HypervisorError(f"guest {uuid}: inject-nmi failed: {exc}") from exc

    def suspend(self, uuid: str) -> GuestState:
        """Stop the vCPUs, stream the state to a file via `migrate exec:`, then quit.

        The file is written under a temporary name and renamed only once the migration
        completed, so a SUSPENDED guest always has a whole state file."""
        with self._lock(uuid):
            self._spec(uuid)
            directory = self._dir(uuid)
            pid = self._pid(uuid)
            if pid is None:
                if (directory / "suspended.state").exists():
                    return self.get_state(uuid)
                raise HypervisorError(f"guest {uuid} has no running process to suspend")
            partial = directory / "suspended.state.partial"

            async def save(client: QMPClient) -> None:
                await client.execute("stop")
                await client.execute("migrate", {"uri": f"exec:cat > {shlex.quote(str(partial))}"})
                while True:
                    info = await client.execute("query-migrate")
                    status = info.get("status") if isinstance(info, dict) else None
                    if status == "completed":
                        break
                    if status in ("failed", "cancelled"):
                        await client.execute("cont")
                        raise HypervisorError(f"saving guest state {status}: {info}")
                    await asyncio.sleep(0.05)

            qmp.session(qmp_socket(directory), save, timeout=300.0)
            partial.replace(directory / "suspended.state")
            self._kill(uuid, pid)
            return self.get_state(uuid)

    def resume(self, uuid: str) -> GuestState:
        with self._lock(uuid):
            spec = self._spec(uuid)
            directory = self._dir(uuid)
            saved = directory / "suspended.state"
            if self._pid(uuid) is not None:
                return self.get_state(uuid)
            if not saved.exists():
                raise HypervisorError(f"guest {uuid} is not suspended")
            self._start(spec, incoming=saved)

            async def restore(client: QMPClient) -> None:
                while True:
                    status = await client.execute("query-status")
                    if not isinstance(status, dict) or status.get("status") != "inmigrate":
                        break
                    await asyncio.sleep(0.05)
                await client.execute("cont")

            try:
                qmp.session(qmp_socket(directory), restore, timeout=300.0)
            except BaseException:
                pid = self._pid(uuid)
                if pid is not None:
                    self._kill(uuid, pid)
                raise
            saved.unlink()
            return self.get_state(uuid)

    def snapshot(self, uuid: str, target: Path) -> None:
        """Copy the root disk (the overlay and its cached base, flattened by `qemu-img
        convert`) to a standalone qcow2. A running guest is paused for the copy (QMP `stop`
        drains and flushes its I/O, so the disk is consistent) and continued after."""
        with self._lock(uuid):
            spec = self._own_spec(uuid)
            if not spec.root_disk:
                raise HypervisorError(f"guest {uuid} has no root disk to snapshot")
            paused_here = False
            if self._pid(uuid) is not None:
                status = self._qmp(uuid, "query-status", timeout=5.0)["status"]
                if status == "running":
                    self._qmp(uuid, "stop", timeout=30.0)
                    paused_here = True
            try:
                convert_to_qcow2(Path(spec.root_disk), target)
            except DiskError as exc:
                raise HypervisorError(f"snapshot of {uuid} failed: {exc}") from exc
            finally:
                if paused_here:
                    self._qmp(uuid, "cont")

    def is_rescued(self, uuid: str) -> bool:
        return (self._dir(uuid) / "rescue.json").exists()

    def rescue(self, uuid: str, boot: GuestSpec) -> GuestState:
        """Power off, then boot the rescue spec (kept as rescue.json next to spec.json, which
        is left untouched): every later power-on boots the rescue until `unrescue`."""
        with self._lock(uuid):
            own = self._own_spec(uuid)
            directory = self._dir(uuid)
            if not self.is_rescued(uuid):
                if self.get_state(uuid).power_state == PowerState.SUSPENDED:
                    self.resume(uuid)
                self.power_off(uuid, timeout=15.0)
                self._write_json(directory / "rescue.json", rescue_spec(own, boot))
            if self._pid(uuid) is None:
                self._start(self._spec(uuid))
            return self.get_state(uuid)

    def unrescue(self, uuid: str) -> GuestState:
        """Stop the rescue boot (hard, as Nova does), forget the rescue spec and its disk,
        and start the guest from its own disk."""
        with self._lock(uuid):
            own = self._own_spec(uuid)
            directory = self._dir(uuid)
            if not self.is_rescued(uuid):
                return self.get_state(uuid)
            rescued = self._spec(uuid)
            pid = self._pid(uuid)
            if pid is not None:
                self._kill(uuid, pid)
            (directory / "rescue.json").unlink()
            if rescued.root_disk and Path(rescued.root_disk).parent == directory:
                Path(rescued.root_disk).unlink(missing_ok=True)
            self._start(own)
            return self.get_state(uuid)

    def destroy(self, uuid: str) -> None:
        with self._lock(uuid):
            directory = self._dir(uuid)
            self.end_export(uuid)
            pid = self._pid(uuid)
            if pid is not None:
                self._kill(uuid, pid)
            socket = qmp_socket(directory)
            if socket.parent != directory:
                with contextlib.suppress(FileNotFoundError):
                    socket.unlink()
            shutil.rmtree(directory, ignore_errors=True)
            self._consoles.pop(uuid, None)
        with self._locks_guard:
            self._locks.pop(uuid, None)

    def console_log(self, uuid: str, tail_bytes: int = 65536) -> bytes:
        self._spec(uuid)
        path = self._dir(uuid) / "console.log"
        try:
            with path.open("rb") as log:
                size = log.seek(0, os.SEEK_END)
                log.seek(max(0, size - tail_bytes))
                return log.read()
        except FileNotFoundError:
            return b""

    # -- extra disks -------------------------------------------------------------------------
    #
    # A disk with a PCI slot is two block nodes named for its serial (`disk_ids`: format
    # "vol-<hash>-d" over protocol "vol-<hash>-f") and a virtio-blk-pci device "vol-<hash>"
    # at pci.0, its slot: on the command line (-blockdev, -device) or hot-plugged
    # (blockdev-add, device_add), the same. Disks from specs written before slots existed
    # (-drive id=drive-diskN, device diskN, wherever QEMU put it) are found by their serial.

    def _live_disks(self, uuid: str) -> dict[str, str]:
        """Serial (as the guest sees it) -> device id of every virtio-blk device of the
        running guest that has a disk in it, from query-block and each device's serial."""

        async def work(client: QMPClient) -> dict[str, str]:
            found: dict[str, str] = {}
            for backend in await qmp.call(client, "query-block"):
                qdev = str(backend.get("qdev") or "")
                if not backend.get("inserted") or not qdev.startswith("/machine/peripheral/"):
                    continue
                device = qdev.split("/")[3]
                if device in ("root", "config"):
                    continue
                serial = await qmp.call(
                    client,
                    "qom-get",
                    {"path": f"/machine/peripheral/{device}", "property": "serial"},
                )
                found[str(serial or "")] = device
            return found

        return qmp.session(qmp_socket(self._dir(uuid)), work)

    def _check_live(self, uuid: str, verb: str) -> int | None:
        """The PID when the guest runs (RUNNING), None when it is shut down; otherwise
        HypervisorError with the reason `verb` (attach, detach) cannot be done now."""
        directory = self._dir(uuid)
        if self.is_rescued(uuid):
            raise HypervisorError(f"guest {uuid} is rescued: unrescue it to {verb} disks")
        state = self.get_state(uuid)
        if state.power_state == PowerState.SUSPENDED:
            raise HypervisorError(
                f"guest {uuid} is suspended: resume it to {verb} a disk (its saved device "
                "state would not match a changed set of disks)"
            )
        if state.pid is None:
            return None
        if (directory / "incoming.json").exists() or self._migrating(uuid):
            raise HypervisorError(f"guest {uuid} is being migrated: {verb} a disk afterwards")
        if verb == "detach" and state.power_state != PowerState.RUNNING:
            raise HypervisorError(
                f"guest {uuid} is {state.power_state.value} ({state.detail}): it cannot "
                "acknowledge the unplug; unpause it, or stop it, to detach the disk"
            )
        return state.pid

    def _migrating(self, uuid: str) -> bool:
        """Whether the guest is leaving (its disks being copied, its memory moving) or has
        left (a completed migration stops it for good: run state postmigrate), as QEMU
        says. (A destination's query-migrate says "completed" for good once it arrived.)"""
        if any(str(j["device"]).startswith("mig-") for j in self._qmp(uuid, "query-block-jobs")):
            return True
        if self._qmp(uuid, "query-status")["status"] in ("postmigrate", "finish-migrate"):
            return True
        status = self._qmp(uuid, "query-migrate").get("status", "none")
        return status not in ("none", "failed", "cancelled", "completed")

    def _write_own(self, spec: GuestSpec) -> None:
        self._write_json(self._dir(spec.uuid) / "spec.json", spec)

    def attach_disk(self, uuid: str, disk: DiskSpec) -> GuestState:
        """Shut-down guest: the spec only. Running or paused guest: the spec first (so an
        interrupted attach is finished by the next one, which finds the serial there),
        then QMP `blockdev-add` and `device_add`; a hot-plug QEMU refuses takes the disk
        out of the spec again and raises HypervisorError with QEMU's reason."""
        with self._lock(uuid):
            own = self._own_spec(uuid)
            pid = self._check_live(uuid, "attach")
            known = find_disk(own, disk.serial)
            if known is None:
                check_new_disk(own, disk)
                if not Path(disk.path).exists():
                    raise HypervisorError(f"disk {disk.serial}: no {disk.kind} {disk.path}")
                if disk.pci_slot is None:
                    busy = self._busy_slots(uuid) if pid is not None else set()
                    disk = dataclasses.replace(
                        disk, pci_slot=choose_pci_slot(own.extra_disks, busy)
                    )
                self._write_own(dataclasses.replace(own, extra_disks=(*own.extra_disks, disk)))
            elif known.pci_slot is None or pid is None:
                return self.get_state(uuid)  # a disk on the command line it started with
            else:
                disk = known
            if pid is not None:
                try:
                    self._plug(uuid, disk)
                except (QMPError, qmp.QMPUnavailable) as exc:
                    if known is None:
                        self._write_own(own)
                    raise HypervisorError(f"guest {uuid}: attaching {disk.serial}: {exc}") from exc
            return self.get_state(uuid)

    def _busy_slots(self, uuid: str) -> set[int]:
        return {
            int(device["slot"])
            for bus in self._qmp(uuid, "query-pci")
            if bus.get("bus") == 0
            for device in bus.get("devices", ())
        }

    def _plug(self, uuid: str, disk: DiskSpec) -> None:
        """Hot-plug `disk` (with a slot), skipping what the guest has already: repeatable."""
        device, node = disk_ids(disk.serial)

        async def work(client: QMPClient) -> None:
            nodes = await qmp.call(client, "query-named-block-nodes", {"flat": True})
            added = False
            if node not in {n.get("node-name") for n in nodes}:
                await qmp.call(client, "blockdev-add", blockdev_args(disk))
                added = True
            present = await qmp.call(client, "qom-list", {"path": "/machine/peripheral"})
            if device in {p["name"] for p in present}:
                return
            try:
                await qmp.call(client, "device_add", device_args(disk))
            except QMPError:
                if added:
                    with contextlib.suppress(QMPError):
                        await qmp.call(client, "blockdev-del", {"node-name": node})
                raise

        qmp.session(qmp_socket(self._dir(uuid)), work, timeout=30.0)

    def detach_disk(self, uuid: str, serial: str, timeout: float = 30.0) -> GuestState:
        """Running guest: QMP `device_del`, then wait (up to `timeout`) for the
        DEVICE_DELETED event naming the device (the guest ejected it; a second such event
        names its virtio backend and is not the one), then `blockdev-del`, then the spec.
        The guest gone quiet: HypervisorError and the disk stays in the spec; the unplug
        request stands, so a later call finds the device gone and finishes the job."""
        with self._lock(uuid):
            own = self._own_spec(uuid)
            disk = find_disk(own, serial)
            if disk is None:
                return self.get_state(uuid)
            pid = self._check_live(uuid, "detach")
            if pid is not None:
                try:
                    self._unplug(uuid, disk, timeout)
                except (QMPError, qmp.QMPUnavailable) as exc:
                    raise HypervisorError(f"guest {uuid}: detaching {serial}: {exc}") from exc
            own = dataclasses.replace(
                own, extra_disks=tuple(d for d in own.extra_disks if d.serial != serial)
            )
            self._write_own(own)
            return self.get_state(uuid)

    def _unplug(self, uuid: str, disk: DiskSpec, timeout: float) -> None:
        if disk.pci_slot is not None:
            device, node = disk_ids(disk.serial)
        else:  # started from an old spec: -drive's backend goes with its device
            found = self._live_disks(uuid).get(virtio_serial(disk.serial))
            if found is None:
                return
            device, node = found, ""
        path = f"/machine/peripheral/{device}"

        async def present(client: QMPClient) -> bool:
            children = await qmp.call(client, "qom-list", {"path": "/machine/peripheral"})
            return device in {c["name"] for c in children}

        async def work(client: QMPClient) -> bool:
            with client.listener("DEVICE_DELETED") as listener:
                if await present(client):
                    try:
                        await qmp.call(client, "device_del", {"id": device})
                    except ExecuteError as exc:  # asked before and still pending: wait on
                        if "already in the process of unplug" not in str(exc):
                            raise
                    deadline = time.monotonic() + timeout
                    while True:
                        left = deadline - time.monotonic()
                        try:
                            event = await asyncio.wait_for(listener.get(), min(0.25, left))
                        except TimeoutError:
                            if not await present(client):  # its event went to no one
                                break
                            if time.monotonic() >= deadline:
                                return False
                            continue
                        data = event.get("data")
                        if isinstance(data, dict) and (
                            data.get("device") == device or data.get("path") == path
                        ):
                            break
            if node:
                await _drop_node(client, node)
            return True

        if not qmp.session(qmp_socket(self._dir(uuid)), work, timeout=timeout + 15.0):
            raise HypervisorError(
                f"guest {uuid}: the guest did not release the disk {disk.serial} within "
                f"{timeout:g} s (it may be in use, or the guest ignores unplug requests); "
                "retry, or stop the server and detach"
            )

    def disks(self, uuid: str) -> list[DiskSpec]:
        """The spec's extra disks; for a guest with a QEMU process, only those QEMU really
        has a device for (query-block and the device's serial). So the spec says what a
        disk is and where it goes, the running QEMU whether it is there: a disk whose
        hot-plug was interrupted, or whose device the guest released after a detach timed
        out, is not reported until an attach or detach call has finished the job."""
        with self._lock(uuid):
            own = self._own_spec(uuid)
            if self._pid(uuid) is None or self.is_rescued(uuid):
                return list(own.extra_disks)
            try:
                live = self._live_disks(uuid)
            except (QMPError, qmp.QMPUnavailable):
                return list(own.extra_disks)  # busy QMP: the spec is the best answer
            return [d for d in own.extra_disks if virtio_serial(d.serial) in live]


NODE_RELEASE_WAIT = 10.0  # how long a node may stay busy after its device is gone


async def _drop_node(client: QMPClient, node: str) -> None:
    """Close a block node once its device is gone. Right after DEVICE_DELETED the node can
    still be busy for a moment (the device's teardown finishes after the event), so
    ``blockdev-del`` is retried briefly instead of leaving the image open and locked."""
    deadline = time.monotonic() + NODE_RELEASE_WAIT
    while True:
        nodes = await qmp.call(client, "query-named-block-nodes", {"flat": True})
        if node not in {n.get("node-name") for n in nodes}:
            return
        try:
            await qmp.call(client, "blockdev-del", {"node-name": node})
            return
        except ExecuteError as exc:
            if "in use" not in str(exc) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(0.1)
