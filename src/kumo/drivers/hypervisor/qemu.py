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
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
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
    MigrationProgress,
    PowerState,
    RebootKind,
    carry_pci_slots,
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

SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with its terminating NUL


def runtime_root() -> Path:
    """Where QMP sockets go when the instance directory is too deep for one: /run/kumo for
    root, else $XDG_RUNTIME_DIR/kumo or /tmp/kumo-<uid>."""
    if os.geteuid() == 0:
        return Path("/run/kumo")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    return Path(xdg) / "kumo" if xdg else Path(f"/tmp/kumo-{os.geteuid()}")


def qmp_socket(directory: Path) -> Path:
    """The QMP socket of the guest whose instance directory is `directory`.

    UNIX socket paths are limited to 107 bytes. When `directory/qmp` fits, that is the socket;
    otherwise it lives in the runtime root under a name derived from the instance directory
    (so a restarted agent finds it again without any record): `<runtime>/<sha256[:24]>.qmp`."""
    inside = directory / "qmp"
    if len(str(inside)) <= SOCKET_PATH_MAX:
        return inside
    digest = hashlib.sha256(str(directory.absolute()).encode()).hexdigest()[:24]
    return runtime_root() / f"{digest}.qmp"


_RUNSTATE = {
    "running": PowerState.RUNNING,
    "guest-panicked": PowerState.CRASHED,
    "internal-error": PowerState.CRASHED,
    "io-error": PowerState.CRASHED,
    "watchdog": PowerState.CRASHED,
    "shutdown": PowerState.SHUTDOWN,
}  # every other run state (paused, inmigrate, save-vm, ...) is PAUSED


def _opt(value: str) -> str:
    """Escape a value for a QEMU option list, where a comma is written twice."""
    return value.replace(",", ",,")


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _process_alive(pid: int) -> bool:
    """True for a live (not zombie) process. Daemonized QEMU is reaped by init, but a
    container's init may be slow to reap, and a zombie is as dead as a guest gets."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def disk_ids(serial: str) -> tuple[str, str]:
    """(device id, block node name) of an extra disk with a PCI slot, derived from its
    serial: the same in every QEMU that ever runs the disk (hot-plugged or on the command
    line, source or destination of a migration). Hashed, as a serial (a UUID) may not be
    a valid QEMU id and node names are limited to 31 characters."""
    digest = hashlib.sha256(serial.encode()).hexdigest()[:16]
    return f"vol-{digest}", f"vol-{digest}-d"


def _blockdev(disk: DiskSpec) -> dict[str, Any]:
    """The `blockdev-add` arguments (also `-blockdev` JSON) of an extra disk's nodes: its
    format over the file or, for kind ``block``, the host block device."""
    device, node = disk_ids(disk.serial)
    return {
        "driver": disk.format,
        "node-name": node,
        "read-only": disk.readonly,
        "file": {
            "driver": "host_device" if disk.kind == "block" else "file",
            "filename": disk.path,
            "node-name": f"{device}-f",
            "read-only": disk.readonly,
        },
    }


def _device(disk: DiskSpec) -> dict[str, str]:
    """The `device_add` arguments of an extra disk: virtio-blk at its fixed PCI slot."""
    assert disk.pci_slot is not None
    device, node = disk_ids(disk.serial)
    args = {
        "driver": "virtio-blk-pci",
        "id": device,
        "drive": node,
        "bus": "pci.0",
        "addr": f"{disk.pci_slot:#x}",
    }
    if disk.serial:
        args["serial"] = virtio_serial(disk.serial)
    return args


def _open_taps(spec: GuestSpec) -> dict[int, int]:
    """NIC index -> fd of its tap, for NICs whose tap lives in a network namespace."""
    from kumo.drivers.network.netns import NetworkError, open_tap_fd

    fds: dict[int, int] = {}
    try:
        for i, nic in enumerate(spec.nics):
            if nic.netns and nic.tap:
                fds[i] = open_tap_fd(nic.netns, nic.tap)
    except (NetworkError, OSError) as exc:
        for fd in fds.values():
            os.close(fd)
        raise HypervisorError(f"cannot open the tap of a NIC: {exc}") from None
    return fds


class QemuDriver:
    """HypervisorDriver for QEMU (KVM when the timed probe says so, else TCG)."""

    name = "qemu"

    def __init__(
        self,
        state_dir: Path,
        binary: str = "qemu-system-x86_64",
        accelerator: str | None = None,
        start_timeout: float = 30.0,
        migration_address: str = "127.0.0.1",
    ) -> None:
        self.state_dir = Path(state_dir)
        # Where a destination listens for a guest's state and disks (the host's address on
        # the migration network; loopback when all hosts are one machine).
        self.migration_address = migration_address
        self.binary = binary
        self._accelerator = accelerator
        self.start_timeout = start_timeout
        self._locks: dict[str, threading.RLock] = {}
        self._locks_guard = threading.Lock()

    # -- helpers ---------------------------------------------------------------------------

    def _lock(self, uuid: str) -> threading.RLock:
        with self._locks_guard:
            return self._locks.setdefault(uuid, threading.RLock())

    def _dir(self, uuid: str) -> Path:
        return instance_dir(self.state_dir, uuid)

    def _spec(self, uuid: str) -> GuestSpec:
        """The spec the guest boots with: its rescue spec while rescued, else its own."""
        own = self._own_spec(uuid)
        try:
            return GuestSpec.from_dict(json.loads((self._dir(uuid) / "rescue.json").read_text()))
        except FileNotFoundError:
            return own

    def _own_spec(self, uuid: str) -> GuestSpec:
        path = self._dir(uuid) / "spec.json"
        try:
            return GuestSpec.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise GuestNotFound(f"no guest {uuid} on this host") from None

    def _write_json(self, path: Path, spec: GuestSpec) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(spec.to_dict(), indent=1))
        tmp.replace(path)

    def accelerator(self) -> str:
        if self._accelerator is None:
            self._accelerator = accel.decide().accel
        return self._accelerator

    def _pid(self, uuid: str) -> int | None:
        """The PID of this guest's live QEMU, verified by its command line (PIDs recycle)."""
        try:
            pid = int((self._dir(uuid) / "qemu.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        if not _process_alive(pid):
            return None
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return None
        return pid if uuid.encode() in argv else None

    def _qmp(
        self, uuid: str, command: str, arguments: dict[str, Any] | None = None, timeout: float = 5.0
    ) -> Any:
        return qmp.execute(qmp_socket(self._dir(uuid)), command, arguments, timeout)

    def _argv(
        self,
        spec: GuestSpec,
        incoming: Path | str | None,
        tap_fds: dict[int, int] | None = None,
    ) -> list[str]:
        directory = self._dir(spec.uuid)
        accelerator = self.accelerator()
        argv = [
            self.binary,
            "-name",
            f"guest={_opt(spec.name)},process=kumo-{spec.uuid[:8]}",
            "-uuid",
            spec.uuid,
            "-machine",
            "pc",
            "-accel",
            accelerator,
            "-cpu",
            "host" if accelerator == "kvm" else "qemu64",
            "-m",
            str(spec.memory_mb),
            "-smp",
            str(spec.vcpus),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-daemonize",
            "-pidfile",
            str(directory / "qemu.pid"),
            "-qmp",
            f"unix:{_opt(str(qmp_socket(directory)))},server=on,wait=off",
            "-chardev",
            f"file,id=serial0,path={_opt(str(directory / 'console.log'))},append=on",
            "-serial",
            "chardev:serial0",
        ]
        if spec.kernel:
            argv += ["-kernel", spec.kernel]
            if spec.ramdisk:
                argv += ["-initrd", spec.ramdisk]
            if spec.cmdline:
                argv += ["-append", spec.cmdline]
        disks: list[tuple[str, str, str, bool, str]] = []
        if spec.root_disk:
            disks.append(("root", spec.root_disk, spec.root_disk_format, False, "root"))
        if spec.config_drive:
            disks.append(("config", spec.config_drive, "raw", True, "config-2"))
        fixed: list[DiskSpec] = []
        for i, disk in enumerate(spec.extra_disks):
            if disk.pci_slot is not None:
                fixed.append(disk)
            else:  # a spec from before PCI slots: as it always was started
                disks.append((f"disk{i}", disk.path, disk.format, disk.readonly, disk.serial))
        for ident, path, fmt, readonly, serial in disks:
            drive = f"file={_opt(path)},format={fmt},if=none,id=drive-{ident}"
            argv += ["-drive", drive + (",readonly=on" if readonly else "")]
            device = f"virtio-blk-pci,drive=drive-{ident},id={ident}"
            argv += ["-device", device + (f",serial={_opt(serial[:20])}" if serial else "")]
        for i, nic in enumerate(spec.nics):
            if tap_fds and i in tap_fds:
                netdev = f"tap,id=net{i},fd={tap_fds[i]}"  # never vhost=on (see LAB.md)
            elif nic.tap:
                netdev = f"tap,id=net{i},ifname={_opt(nic.tap)},script=no,downscript=no"
            else:
                netdev = f"user,id=net{i}"
            argv += [
                "-netdev",
                netdev,
                "-device",
                f"virtio-net-pci,netdev=net{i},mac={nic.mac},id=nic{i}",
            ]
        # Last, so QEMU places every device without a fixed address exactly as it would
        # without these (as in a guest that had them hot-plugged later).
        for disk in fixed:
            options = ",".join(
                f"{k}={_opt(v)}" if k != "driver" else v for k, v in _device(disk).items()
            )
            argv += ["-blockdev", json.dumps(_blockdev(disk)), "-device", options]
        if isinstance(incoming, str):
            # A live migration's destination: stopped (-S) until the switch is committed,
            # listening once told where (migrate-incoming).
            argv += ["-S", "-incoming", incoming]
        elif incoming:
            argv += ["-incoming", f"exec:cat {shlex.quote(str(incoming))}"]
        return argv

    def _start(self, spec: GuestSpec, incoming: Path | str | None = None) -> None:
        directory = self._dir(spec.uuid)
        socket = qmp_socket(directory)
        if len(str(socket)) > SOCKET_PATH_MAX:
            raise HypervisorError(f"no short enough path for a QMP socket: {socket}")
        socket.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in (directory / "qemu.pid", socket):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        tap_fds = _open_taps(spec)
        try:
            argv = self._argv(spec, incoming, tap_fds)
            (directory / "qemu.argv").write_text(shlex.join(argv) + "\n")
            result = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=self.start_timeout,
                stdin=subprocess.DEVNULL,
                pass_fds=tuple(tap_fds.values()),
            )
        except FileNotFoundError:
            raise HypervisorError(f"{self.binary} not found") from None
        except subprocess.TimeoutExpired:
            raise HypervisorError(f"{self.binary} did not daemonize in time") from None
        finally:
            for fd in tap_fds.values():
                os.close(fd)  # the daemonized QEMU holds its own copies
        if result.returncode != 0:
            raise HypervisorError(f"qemu failed to start: {result.stderr.strip()[-2000:]}")

    def _wait_gone(self, uuid: str, pid: int, deadline: float) -> bool:
        while time.monotonic() < deadline:
            if not _process_alive(pid):
                return True
            time.sleep(0.02)
        return not _process_alive(pid)

    def _kill(self, uuid: str, pid: int) -> None:
        """Stop the process now: QMP `quit` (clean, removes the pidfile), else SIGKILL."""
        with contextlib.suppress(qmp.QMPUnavailable, Exception):
            self._qmp(uuid, "quit", timeout=2.0)
        if not self._wait_gone(uuid, pid, time.monotonic() + 3.0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            self._wait_gone(uuid, pid, time.monotonic() + 5.0)
        with contextlib.suppress(FileNotFoundError):
            (self._dir(uuid) / "qemu.pid").unlink()

    def _require_running(self, uuid: str) -> int:
        self._spec(uuid)
        pid = self._pid(uuid)
        if pid is None:
            raise HypervisorError(f"guest {uuid} has no running process")
        return pid

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

    def get_state(self, uuid: str) -> GuestState:
        with self._lock(uuid):
            try:
                spec = self._spec(uuid)
            except GuestNotFound:
                return GuestState(uuid, PowerState.NOSTATE)
            directory = self._dir(uuid)
            pid = self._pid(uuid)
            if pid is None:
                if (directory / "suspended.state").exists():
                    return GuestState(uuid, PowerState.SUSPENDED, None, spec.name)
                if (directory / "qemu.pid").exists():
                    return GuestState(
                        uuid,
                        PowerState.CRASHED,
                        None,
                        spec.name,
                        "qemu exited without cleaning up (killed?)",
                    )
                return GuestState(uuid, PowerState.SHUTDOWN, None, spec.name)
            try:
                status = self._qmp(uuid, "query-status", timeout=3.0)["status"]
            except Exception as exc:  # alive but QMP busy or wedged: still running
                return GuestState(
                    uuid, PowerState.RUNNING, pid, spec.name, f"QMP unavailable: {exc}"
                )
            power = _RUNSTATE.get(status, PowerState.PAUSED)
            return GuestState(uuid, power, pid, spec.name, status)

    def list_guests(self) -> list[GuestState]:
        root = self.state_dir / "instances"
        if not root.is_dir():
            return []
        return [
            self.get_state(d.name) for d in sorted(root.iterdir()) if (d / "spec.json").exists()
        ]

    def spawn(self, spec: GuestSpec) -> GuestState:
        with self._lock(spec.uuid):
            directory = self._dir(spec.uuid)
            if self._pid(spec.uuid) is not None:
                return self.get_state(spec.uuid)
            directory.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(GuestNotFound):
                spec = carry_pci_slots(spec, self._own_spec(spec.uuid))
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
                if _process_alive(pid):
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
                await qmp.call(client, "blockdev-add", _blockdev(disk))
                added = True
            present = await qmp.call(client, "qom-list", {"path": "/machine/peripheral"})
            if device in {p["name"] for p in present}:
                return
            try:
                await qmp.call(client, "device_add", _device(disk))
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

    # -- cold migration ----------------------------------------------------------------------
    #
    # The source serves the shut-off guest's root disk read-only with qemu-nbd (the qcow2
    # chain as the guest sees it: the destination needs no base image); the destination
    # copies it with `qemu-img convert` into a standalone qcow2 where its spec builder keeps
    # an existing root disk. export.json and nbd.pid in the instance directory make both
    # steps repeatable.

    def _nbd_pid(self, uuid: str) -> int | None:
        try:
            pid = int((self._dir(uuid) / "nbd.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return pid if _process_alive(pid) and b"qemu-nbd" in argv else None

    def export_disk(self, uuid: str) -> dict[str, Any]:
        with self._lock(uuid):
            spec = self._own_spec(uuid)
            directory = self._dir(uuid)
            record = directory / "export.json"
            if record.exists() and self._nbd_pid(uuid) is not None:
                endpoint: dict[str, Any] = json.loads(record.read_text())
                return endpoint
            if self._pid(uuid) is not None:
                raise HypervisorError(f"guest {uuid} is running: shut it off first")
            if not spec.root_disk:
                raise HypervisorError(f"guest {uuid} has no root disk to serve")
            address = self.migration_address
            port = _free_port(address)
            argv = [
                "qemu-nbd",
                "--read-only",
                "--persistent",
                "--shared=4",
                "--fork",
                f"--pid-file={directory / 'nbd.pid'}",
                "-f",
                spec.root_disk_format,
                "-b",
                address,
                "-p",
                str(port),
                "-x",
                "disk",
                spec.root_disk,
            ]
            try:
                result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
            except (OSError, subprocess.SubprocessError) as exc:
                raise HypervisorError(f"qemu-nbd could not start: {exc}") from exc
            if result.returncode != 0:
                raise HypervisorError(f"qemu-nbd failed: {result.stderr.strip()[:500]}")
            endpoint = {"host": address, "port": port, "export": "disk"}
            tmp = record.with_name("export.json.tmp")
            tmp.write_text(json.dumps(endpoint))
            tmp.replace(record)
            return endpoint

    def end_export(self, uuid: str) -> None:
        with self._lock(uuid):
            pid = self._nbd_pid(uuid)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 5.0
                while _process_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if _process_alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            directory = self._dir(uuid)
            for name in ("nbd.pid", "export.json"):
                with contextlib.suppress(FileNotFoundError):
                    (directory / name).unlink()

    def import_disk(self, uuid: str, endpoint: dict[str, Any]) -> None:
        with self._lock(uuid):
            if self._pid(uuid) is not None:
                raise HypervisorError(f"guest {uuid} already runs on this host")
            directory = self._dir(uuid)
            directory.mkdir(parents=True, exist_ok=True)
            url = (
                f"nbd://{endpoint.get('host')}:{int(endpoint.get('port') or 0)}/"
                f"{endpoint.get('export') or 'disk'}"
            )
            tmp = directory / "disk.import"
            argv = ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", url, str(tmp)]
            try:
                result = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
            except (OSError, subprocess.SubprocessError) as exc:
                tmp.unlink(missing_ok=True)
                raise HypervisorError(f"copying the disk from {url} failed: {exc}") from exc
            if result.returncode != 0:
                tmp.unlink(missing_ok=True)
                raise HypervisorError(
                    f"copying the disk from {url} failed: {result.stderr.strip()[:500]}"
                )
            tmp.replace(directory / "disk")

    # -- live migration ----------------------------------------------------------------------
    #
    # Files in the instance directory say what this host is doing in a migration; QEMU says
    # how far it got (query-migrate, query-block-jobs), so every step can be repeated:
    #     incoming.json   destination: the endpoint it waits on
    #     outgoing.json   source: the endpoint, block or not, and whether `migrate` was issued

    def _writable_drives(self, spec: GuestSpec) -> list[str]:
        """The block backends whose contents move with a block migration: the root disk and
        writable extra disks (the config drive is read-only and rebuilt by the destination)."""
        drives = ["drive-root"] if spec.root_disk else []
        for i, disk in enumerate(spec.extra_disks):
            if not disk.readonly:  # a disk with a slot is a node: named for its serial
                slotted = disk.pci_slot is not None
                drives.append(disk_ids(disk.serial)[1] if slotted else f"drive-disk{i}")
        return drives

    def prepare_incoming(self, spec: GuestSpec, block: bool) -> dict[str, Any]:
        with self._lock(spec.uuid):
            directory = self._dir(spec.uuid)
            record = directory / "incoming.json"
            pid = self._pid(spec.uuid)
            if pid is not None:
                if record.exists():
                    endpoint: dict[str, Any] = json.loads(record.read_text())
                    return endpoint
                raise HypervisorError(f"guest {spec.uuid} already runs on this host")
            directory.mkdir(parents=True, exist_ok=True)
            self._write_json(directory / "spec.json", spec)
            record.unlink(missing_ok=True)
            self._start(spec, incoming="defer")
            address = self.migration_address
            try:
                self._qmp(spec.uuid, "migrate-incoming", {"uri": f"tcp:{address}:0"})
                info = self._qmp(spec.uuid, "query-migrate")
                port = int(info["socket-address"][0]["port"])
                endpoint = {
                    "host": address,
                    "port": port,
                    "block": block,
                    "nbd_port": None,
                    "drives": [],
                    "pci_slots": pci_slots(spec),
                }
                if block:
                    endpoint["nbd_port"] = self._serve_disks(spec)
                    endpoint["drives"] = self._writable_drives(spec)
            except BaseException:
                pid = self._pid(spec.uuid)
                if pid is not None:
                    self._kill(spec.uuid, pid)
                raise
            tmp = directory / "incoming.json.tmp"
            tmp.write_text(json.dumps(endpoint))
            tmp.replace(record)
            return endpoint

    def _serve_disks(self, spec: GuestSpec) -> int:
        """Export the destination's writable disks over NBD for the source's mirror jobs.
        QEMU cannot tell which port it bound for NBD, so a free one is picked here; one
        taken meanwhile by someone else is retried."""
        last: Exception | None = None
        for _ in range(5):
            port = _free_port(self.migration_address)
            try:
                self._qmp(
                    spec.uuid,
                    "nbd-server-start",
                    {
                        "addr": {
                            "type": "inet",
                            "data": {"host": self.migration_address, "port": str(port)},
                        }
                    },
                )
            except Exception as exc:  # the port went to someone else: another one
                last = exc
                continue
            nodes: dict[str, str] = {}
            for backend in self._qmp(spec.uuid, "query-block"):
                if backend.get("inserted"):  # by drive name (-drive) or node name
                    node = backend["inserted"]["node-name"]
                    nodes[backend["device"] or node] = node
            for drive in self._writable_drives(spec):
                self._qmp(
                    spec.uuid,
                    "block-export-add",
                    {
                        "type": "nbd",
                        "id": f"mig-{drive}",
                        "node-name": nodes[drive],
                        "name": drive,
                        "writable": True,
                    },
                )
            return port
        raise HypervisorError(f"could not serve the disks of {spec.uuid} over NBD: {last}")

    def migrate_to(self, uuid: str, endpoint: dict[str, Any], block: bool) -> None:
        with self._lock(uuid):
            self._require_running(uuid)
            record = self._dir(uuid) / "outgoing.json"
            if record.exists():
                known = json.loads(record.read_text())
                status = self._qmp(uuid, "query-migrate").get("status", "none")
                if known.get("endpoint") == endpoint and (
                    not known.get("started") or status not in ("failed", "cancelled", "none")
                ):
                    return  # under way (or done) to this very endpoint
            check_pci_slots(uuid, self._spec(uuid), endpoint)
            self._write_outgoing(uuid, {"endpoint": endpoint, "block": block, "started": False})
            if block:
                self._start_mirrors(uuid, endpoint)

    def _write_outgoing(self, uuid: str, data: dict[str, Any]) -> None:
        directory = self._dir(uuid)
        tmp = directory / "outgoing.json.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(directory / "outgoing.json")

    def _start_mirrors(self, uuid: str, endpoint: dict[str, Any]) -> None:
        jobs = {j["device"] for j in self._qmp(uuid, "query-block-jobs")}
        nodes = {
            n.get("node-name") for n in self._qmp(uuid, "query-named-block-nodes", {"flat": True})
        }
        for drive in endpoint.get("drives") or []:
            node = f"mig-{drive}"
            if node not in nodes:
                self._qmp(
                    uuid,
                    "blockdev-add",
                    {
                        "driver": "nbd",
                        "node-name": node,
                        "export": drive,
                        "server": {
                            "type": "inet",
                            "host": str(endpoint["host"]),
                            "port": str(endpoint["nbd_port"]),
                        },
                    },
                    timeout=30.0,
                )
            if node not in jobs:
                self._qmp(
                    uuid,
                    "blockdev-mirror",
                    {"job-id": node, "device": drive, "target": node, "sync": "full"},
                )

    def _stop_mirrors(self, uuid: str) -> None:
        """Drop the disk copies to the destination (after the memory copy completed, or
        when it failed): cancel the jobs, wait for them to go, remove the NBD nodes."""
        try:
            jobs = [
                j["device"]
                for j in self._qmp(uuid, "query-block-jobs")
                if str(j["device"]).startswith("mig-")
            ]
            for job in jobs:
                with contextlib.suppress(Exception):
                    self._qmp(uuid, "block-job-cancel", {"device": job, "force": True})
            deadline = time.monotonic() + 30
            while jobs and time.monotonic() < deadline:
                running = {j["device"] for j in self._qmp(uuid, "query-block-jobs")}
                jobs = [j for j in jobs if j in running]
                if jobs:
                    time.sleep(0.05)
            for node in self._qmp(uuid, "query-named-block-nodes", {"flat": True}):
                name = str(node.get("node-name") or "")
                if name.startswith("mig-"):
                    with contextlib.suppress(Exception):
                        self._qmp(uuid, "blockdev-del", {"node-name": name})
        except qmp.QMPUnavailable:
            pass

    def migration_progress(self, uuid: str) -> MigrationProgress:
        with self._lock(uuid):
            self._spec(uuid)
            record = self._dir(uuid) / "outgoing.json"
            if self._pid(uuid) is None:
                return MigrationProgress("failed", message="the source guest is not running")
            if not record.exists():
                return MigrationProgress("none")
            known = json.loads(record.read_text())
            info = self._qmp(uuid, "query-migrate")
            status = str(info.get("status", "none"))
            disk = self._disk_progress(uuid)
            if known.get("started") and status == "completed":
                if "total-time" not in info or "downtime" not in info:
                    time.sleep(0.05)  # LAB.md: completed may come before the times
                    info = self._qmp(uuid, "query-migrate")
                self._stop_mirrors(uuid)
                return self._progress("completed", info, disk)
            if known.get("started") and status in ("failed", "cancelled"):
                self._stop_mirrors(uuid)
                return MigrationProgress(
                    status, message=str(info.get("error-desc") or f"migration {status}")
                )
            if known.get("started") or status not in ("none", "failed", "cancelled", "completed"):
                return self._progress("active", info, disk)
            # Not started yet: the memory copy begins once every disk copy is in step.
            if known.get("block"):
                jobs = [
                    j
                    for j in self._qmp(uuid, "query-block-jobs")
                    if str(j["device"]).startswith("mig-")
                ]
                if any(j.get("status") in ("aborting", "concluded", "null") for j in jobs) or (
                    len(jobs) < len(known["endpoint"].get("drives") or [])
                ):
                    self._stop_mirrors(uuid)
                    return MigrationProgress("failed", message="copying the disks failed")
                if not all(j.get("ready") for j in jobs):
                    return self._progress("active", {}, disk)
            endpoint = known["endpoint"]
            self._qmp(uuid, "migrate", {"uri": f"tcp:{endpoint['host']}:{endpoint['port']}"})
            self._write_outgoing(uuid, {**known, "started": True})
            return self._progress("active", self._qmp(uuid, "query-migrate"), disk)

    def _disk_progress(self, uuid: str) -> tuple[int, int] | None:
        jobs = [
            j for j in self._qmp(uuid, "query-block-jobs") if str(j["device"]).startswith("mig-")
        ]
        if not jobs:
            return None
        return sum(int(j.get("len", 0)) for j in jobs), sum(int(j.get("offset", 0)) for j in jobs)

    @staticmethod
    def _progress(
        status: str, info: dict[str, Any], disk: tuple[int, int] | None
    ) -> MigrationProgress:
        ram = info.get("ram") or {}
        total = ram.get("total")
        done = ram.get("transferred")
        left = ram.get("remaining")
        if status == "completed" and total is not None:
            done, left = total, 0
        return MigrationProgress(
            status,
            memory_total_bytes=total,
            memory_processed_bytes=done,
            memory_remaining_bytes=left,
            disk_total_bytes=disk[0] if disk else None,
            disk_processed_bytes=disk[1] if disk else None,
            disk_remaining_bytes=max(0, disk[0] - disk[1]) if disk else None,
            total_time_ms=info.get("total-time"),
            downtime_ms=info.get("downtime"),
        )

    def force_complete_migration(self, uuid: str) -> None:
        with self._lock(uuid):
            self._require_running(uuid)
            status = self._qmp(uuid, "query-status")["status"]
            if status == "running":
                self._qmp(uuid, "stop")

    def abort_migration(self, uuid: str) -> MigrationProgress:
        with self._lock(uuid):
            self._spec(uuid)
            if self._pid(uuid) is None:
                return MigrationProgress("failed", message="the source guest is not running")
            record = self._dir(uuid) / "outgoing.json"
            status = str(self._qmp(uuid, "query-migrate").get("status", "none"))
            started = record.exists() and json.loads(record.read_text()).get("started")
            if started and status == "completed":
                return self.migration_progress(uuid)
            if started and status not in ("failed", "cancelled", "none"):
                self._qmp(uuid, "migrate_cancel")
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    status = str(self._qmp(uuid, "query-migrate").get("status", "none"))
                    if status in ("cancelled", "failed", "completed"):
                        break
                    time.sleep(0.05)
                if status == "completed":
                    return self.migration_progress(uuid)
            self._stop_mirrors(uuid)
            record.unlink(missing_ok=True)
            return MigrationProgress("cancelled", message="cancelled on request")

    def finish_incoming(self, uuid: str, run: bool) -> GuestState:
        with self._lock(uuid):
            self._spec(uuid)
            record = self._dir(uuid) / "incoming.json"
            if self._pid(uuid) is None:
                record.unlink(missing_ok=True)
                raise HypervisorError(f"the incoming guest {uuid} is gone")
            if record.exists():
                status = self._qmp(uuid, "query-status")["status"]
                if status == "inmigrate":
                    raise HypervisorError(f"guest {uuid}: its state has not fully arrived")
                endpoint = json.loads(record.read_text())
                for drive in endpoint.get("drives") or []:
                    with contextlib.suppress(Exception):
                        self._qmp(uuid, "block-export-del", {"id": f"mig-{drive}"})
                if endpoint.get("nbd_port"):
                    with contextlib.suppress(Exception):
                        self._qmp(uuid, "nbd-server-stop")
                record.unlink()
                if run and self._qmp(uuid, "query-status")["status"] != "running":
                    self._qmp(uuid, "cont")
            return self.get_state(uuid)


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
