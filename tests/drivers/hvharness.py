"""Helpers shared by the driver tests: a harness per hypervisor driver that knows how to
look behind the driver's back (is that PID a live process? what does QMP say?) and cleans up
every QEMU it started, by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kumo.drivers.configdrive import ConfigDriveData, build_config_drive
from kumo.drivers.hypervisor import GuestSpec, HypervisorDriver, NicSpec, create
from kumo.drivers.hypervisor import qmp as qmp_client
from kumo.drivers.hypervisor.fake import FakeDriver
from kumo.drivers.hypervisor.qemu import qmp_socket
from kumo.guest import TinyGuest

from kumoproc import in_ci

TEST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKumoTestKeyOnly kumo@contract"
BOOT_DEADLINE = 90.0  # TCG on a busy 2-vCPU machine; a quiet one boots in about 3 s


def require_qemu() -> None:
    missing = [b for b in ("qemu-system-x86_64", "qemu-img") if not shutil.which(b)]
    if missing:
        reason = f"{', '.join(missing)} not installed (apt install qemu-system-x86 qemu-utils)"
        if in_ci():
            pytest.fail(reason + "; CI=true requires the real hypervisor")
        pytest.skip(reason)


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Harness:
    """One driver under test plus the independent checks the contract tests need."""

    def __init__(self, kind: str, state_dir: Path, guest: TinyGuest | None) -> None:
        self.kind = kind
        self.state_dir = state_dir
        self.guest = guest
        self.driver: HypervisorDriver = create(kind, state_dir)

    def new_driver(self) -> HypervisorDriver:
        """A fresh driver on the same host and state directory: an agent restart."""
        return create(self.kind, self.state_dir)

    def spec(self, name: str = "vm1", user_data: bytes = b"kumo says hello\n") -> GuestSpec:
        guest_uuid = str(uuid.uuid4())
        drive = build_config_drive(
            self.state_dir / "config-drives" / f"{guest_uuid}.iso",
            ConfigDriveData(
                uuid=guest_uuid, name=name, public_keys={"k": TEST_KEY}, user_data=user_data
            ),
        )
        guest = self.guest
        return GuestSpec(
            uuid=guest_uuid,
            name=name,
            vcpus=1,
            memory_mb=128,
            root_disk=str(guest.root_disk) if guest else None,
            kernel=str(guest.kernel) if guest else None,
            ramdisk=str(guest.initramfs) if guest else None,
            cmdline=guest.cmdline if guest else None,
            config_drive=str(drive),
            nics=(NicSpec(mac="52:54:00:00:00:01"),),
        )

    def pid_alive(self, pid: int) -> bool:
        if isinstance(self.driver, FakeDriver):
            return self.driver.is_process(pid)
        return _pid_alive(pid)

    def runstate(self, guest_uuid: str) -> str:
        """The hypervisor's own word on the guest: QMP query-status for QEMU."""
        if isinstance(self.driver, FakeDriver):
            return self.driver.get_state(guest_uuid).power_state.value
        socket = qmp_socket(self.state_dir / "instances" / guest_uuid)
        return str(qmp_client.execute(socket, "query-status")["status"])

    def qmp(self, guest_uuid: str, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """A QMP command straight to the guest's QEMU (qemu runs only)."""
        socket = qmp_socket(self.state_dir / "instances" / guest_uuid)
        return qmp_client.execute(socket, command, arguments)

    def console(self, guest_uuid: str) -> str:
        return self.driver.console_log(guest_uuid).decode(errors="replace")

    def wait_console(
        self,
        guest_uuid: str,
        predicate: Callable[[str], bool],
        what: str,
        timeout: float = BOOT_DEADLINE,
    ) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.console(guest_uuid)
            if predicate(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"console never showed {what}; it has:\n{text[-3000:]}")
            time.sleep(0.05)

    def wait_line(
        self, guest_uuid: str, line: str, count: int = 1, timeout: float = BOOT_DEADLINE
    ) -> str:
        return self.wait_console(
            guest_uuid, lambda text: text.count(line) >= count, f"{line!r} x{count}", timeout
        )

    def cleanup(self) -> None:
        """Kill by PID every QEMU this test left behind, whatever state the test ended in."""
        for pidfile in self.state_dir.glob("instances/*/qemu.pid"):
            with contextlib.suppress(OSError, ValueError):
                pid = int(pidfile.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if pidfile.parent.name.encode() in cmdline:
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.state_dir, ignore_errors=True)
