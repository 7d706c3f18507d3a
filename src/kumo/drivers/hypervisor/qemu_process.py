"""A guest's QEMU process: its command line, start, stop, PID and QMP, and what state it is
in. The base of the QEMU driver (kumo.drivers.hypervisor.qemu, whose docstring describes the
instance directory); its migration half (qemu_migration) and its operations build on it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from kumo.drivers.hypervisor import accel, qmp
from kumo.drivers.hypervisor.base import (
    DiskSpec,
    GuestNotFound,
    GuestSpec,
    GuestState,
    HypervisorError,
    PowerState,
    instance_dir,
    virtio_serial,
)
from kumo.protocol import ConsoleEndpoints

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


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def process_alive(pid: int) -> bool:
    """True for a live (not zombie) process. Daemonized QEMU is reaped by init, but a
    container's init may be slow to reap, and a zombie is as dead as a guest gets."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def this_boot() -> str:
    """The kernel's id of this boot of the host ("" when it cannot be read)."""
    try:
        return BOOT_ID.read_text().strip()
    except OSError:
        return ""


def started_this_boot(directory: Path) -> bool:
    """Whether the guest's last QEMU was started since the host last booted: by the boot
    id written next to it at start (``boot_id``), else (a guest started before kumo wrote
    one) by its pidfile's age against the host's uptime. A pidfile left by a QEMU of an
    earlier boot says the host went down under it, not that it was killed."""
    try:
        return (directory / "boot_id").read_text().strip() == this_boot()
    except OSError:
        pass
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return (directory / "qemu.pid").stat().st_mtime >= time.time() - uptime - 5.0
    except (OSError, ValueError, IndexError):
        return True


def disk_ids(serial: str) -> tuple[str, str]:
    """(device id, block node name) of an extra disk with a PCI slot, derived from its
    serial: the same in every QEMU that ever runs the disk (hot-plugged or on the command
    line, source or destination of a migration). Hashed, as a serial (a UUID) may not be
    a valid QEMU id and node names are limited to 31 characters."""
    digest = hashlib.sha256(serial.encode()).hexdigest()[:16]
    return f"vol-{digest}", f"vol-{digest}-d"


def blockdev_args(disk: DiskSpec) -> dict[str, Any]:
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


def device_args(disk: DiskSpec) -> dict[str, str]:
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


def console_args(address: str, log: Path) -> list[str]:
    """The serial console and the VNC server of a guest. The serial port is a listening
    TCP socket that one client at a time may attach to live, while QEMU keeps copying all
    the guest writes to ``log`` (console.log, appended across power cycles, as the
    console-log reader expects). Both listen on ``address`` on ports QEMU finds free
    (port 0 for the socket; the first free VNC display from :0 on), read back over QMP
    (``consoles``)."""
    host = f"[{address}]" if ":" in address else address
    return [
        "-chardev",
        f"socket,id=serial0,host={_opt(address)},port=0,server=on,wait=off,"
        f"logfile={_opt(str(log))},logappend=on",
        "-serial",
        "chardev:serial0",
        "-vnc",
        f"{host}:0,to={VNC_DISPLAYS}",
    ]


def serial_port_of(chardevs: list[dict[str, Any]]) -> int | None:
    """The TCP port of the serial console in QMP's ``query-chardev`` answer (its filename
    is e.g. ``disconnected:tcp:127.0.0.1:38347,server=on``); None when the serial console
    is not a TCP socket (a guest started with a log file only)."""
    for chardev in chardevs:
        if chardev.get("label") != "serial0":
            continue
        match = _TCP_CHARDEV.search(str(chardev.get("filename", "")))
        return int(match.group(1)) if match else None
    return None


# The PCI slot of a guest's display device: the last one QEMU hands out by itself (from 2
# up) before the extra disks' fixed slots (EXTRA_DISK_SLOTS). Not slot 2 as libvirt has it:
# a guest that gains a display (started afresh after a cold migration) keeps every other
# device where it was, so its NICs keep their names (ens3 stays ens3).
DISPLAY_SLOT = 0x0F


def display_args(model: str) -> list[str]:
    """The display device of a guest (DisplayModel): std VGA in its fixed slot, or none.
    Drawn on by the BIOS (SeaBIOS's text), a kernel's VGA text console or the ``bochs``
    DRM driver; QEMU's VNC server shows it (without one VNC shows only a placeholder)."""
    if model == "none":
        return []
    if model == "vga":
        return ["-device", f"VGA,id=video0,bus=pci.0,addr={DISPLAY_SLOT:#x}"]
    raise HypervisorError(f"unknown display model {model!r} (none or vga)")


def display_of(peripherals: list[dict[str, Any]]) -> str:
    """The display model of a running QEMU from its ``qom-list /machine/peripheral``
    answer (the devices with an id): the inverse of `display_args`."""
    types = {p.get("name"): p.get("type") for p in peripherals}
    return "vga" if types.get("video0") == "child<VGA>" else "none"


VNC_DISPLAYS = 4000  # displays :0 to :4000 (ports 5900-9900) are tried in turn
_TCP_CHARDEV = re.compile(r"tcp:.*:(\d+),server")


class QemuProcesses:
    """The processes of the guests of one state directory, and the ways to reach them."""

    def __init__(
        self,
        state_dir: Path,
        binary: str = "qemu-system-x86_64",
        accelerator: str | None = None,
        start_timeout: float = 30.0,
        migration_address: str = "127.0.0.1",
        console_address: str = "127.0.0.1",
    ) -> None:
        self.state_dir = Path(state_dir)
        # Where a destination listens for a guest's state and disks (the host's address on
        # the migration network; loopback when all hosts are one machine).
        self.migration_address = migration_address
        # Where each guest's VNC server and serial console socket listen (the address the
        # API's console proxy reaches this host on; loopback when all is one machine).
        self.console_address = console_address
        # uuid -> (pid, endpoints) read from that QEMU: they never change while it runs.
        self._consoles: dict[str, tuple[int, ConsoleEndpoints | None]] = {}
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
        if not process_alive(pid):
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
            *console_args(self.console_address, directory / "console.log"),
            # First of the devices: those QEMU places itself go round its fixed slot.
            *display_args(spec.display),
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
                f"{k}={_opt(v)}" if k != "driver" else v for k, v in device_args(disk).items()
            )
            argv += ["-blockdev", json.dumps(blockdev_args(disk)), "-device", options]
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
        (directory / "boot_id").write_text(this_boot() + "\n")
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
            if not process_alive(pid):
                return True
            time.sleep(0.02)
        return not process_alive(pid)

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

    # -- what runs -------------------------------------------------------------------------

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
                    return self._left_behind(uuid, spec.name)
                return GuestState(uuid, PowerState.SHUTDOWN, None, spec.name)
            try:
                status = self._qmp(uuid, "query-status", timeout=3.0)["status"]
            except Exception as exc:  # alive but QMP busy or wedged: still running
                return GuestState(
                    uuid, PowerState.RUNNING, pid, spec.name, f"QMP unavailable: {exc}"
                )
            power = _RUNSTATE.get(status, PowerState.PAUSED)
            return GuestState(
                uuid, power, pid, spec.name, status, consoles=self._console_endpoints(uuid, pid)
            )

    def has_process(self, uuid: str) -> bool:
        return self._pid(uuid) is not None

    def _left_behind(self, uuid: str, name: str) -> GuestState:
        """A guest whose pidfile outlived its QEMU. QEMU removes its pidfile whenever it
        exits by itself: the guest powered off, a QMP ``quit``, SIGTERM. One left behind
        means QEMU was killed (SIGKILL, the OOM killer) or crashed: CRASHED, unless the
        host restarted since it started (SHUTDOWN, as Nova sees guests after a reboot)."""
        directory = self._dir(uuid)
        if not started_this_boot(directory):
            return GuestState(
                uuid, PowerState.SHUTDOWN, None, name, "the host restarted since QEMU started"
            )
        try:
            pid = (directory / "qemu.pid").read_text().strip()
        except OSError:
            pid = "?"
        return GuestState(
            uuid,
            PowerState.CRASHED,
            None,
            name,
            f"QEMU (pid {pid}) exited without cleaning up: killed (kill -9, the OOM "
            "killer) or crashed",
        )

    def _console_endpoints(self, uuid: str, pid: int) -> ConsoleEndpoints | None:
        """Where this QEMU's consoles listen, and the display they show, asked once per
        process over QMP (what QEMU has, not what a spec says). A guest started before
        guests had consoles (adopted, untouched) has neither: None."""
        known = self._consoles.get(uuid)
        if known is not None and known[0] == pid:
            return known[1]
        try:
            vnc = self._qmp(uuid, "query-vnc", timeout=3.0)
            chardevs = self._qmp(uuid, "query-chardev", timeout=3.0)
            devices = self._qmp(uuid, "qom-list", {"path": "/machine/peripheral"}, 3.0)
        except Exception:  # busy or wedged: ask again at the next look
            return None
        vnc_port = int(vnc["service"]) if vnc.get("enabled") and vnc.get("service") else None
        serial_port = serial_port_of(chardevs)
        found = None
        if vnc_port is not None or serial_port is not None:
            display = display_of(devices)
            found = ConsoleEndpoints(self.console_address, vnc_port, serial_port, display)
        self._consoles[uuid] = (pid, found)
        return found

    def list_guests(self) -> list[GuestState]:
        root = self.state_dir / "instances"
        if not root.is_dir():
            return []
        return [
            self.get_state(d.name) for d in sorted(root.iterdir()) if (d / "spec.json").exists()
        ]
