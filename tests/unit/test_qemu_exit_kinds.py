"""How the qemu driver tells the ways a guest's QEMU ended apart, from what QEMU leaves in
the instance directory (no QEMU runs here): a pidfile left by a QEMU of this boot is a
kill or a crash (CRASHED, which the cloud restarts); one of an earlier boot of the host,
or none at all (QEMU removes it when the guest powers off), is SHUTDOWN."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

from kumo.drivers.hypervisor.base import GuestSpec, PowerState
from kumo.drivers.hypervisor.qemu import QemuDriver
from kumo.drivers.hypervisor.qemu_process import this_boot


def _guest(tmp_path: Path) -> tuple[QemuDriver, str, Path]:
    driver = QemuDriver(tmp_path)
    guest_uuid = str(uuid.uuid4())
    directory = tmp_path / "instances" / guest_uuid
    directory.mkdir(parents=True)
    spec = GuestSpec(uuid=guest_uuid, name="vm", vcpus=1, memory_mb=64)
    (directory / "spec.json").write_text(json.dumps(spec.to_dict()))
    return driver, guest_uuid, directory


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid  # reaped: no process with its command line naming the guest


def test_a_pidfile_left_this_boot_is_a_kill(tmp_path: Path) -> None:
    driver, guest_uuid, directory = _guest(tmp_path)
    pid = _dead_pid()
    (directory / "qemu.pid").write_text(f"{pid}\n")
    (directory / "boot_id").write_text(this_boot() + "\n")
    state = driver.get_state(guest_uuid)
    assert state.power_state == PowerState.CRASHED
    assert f"QEMU (pid {pid}) exited without cleaning up" in state.detail
    assert not driver.has_process(guest_uuid)


def test_a_pidfile_from_an_earlier_boot_is_a_host_restart(tmp_path: Path) -> None:
    driver, guest_uuid, directory = _guest(tmp_path)
    (directory / "qemu.pid").write_text(f"{_dead_pid()}\n")
    (directory / "boot_id").write_text(str(uuid.uuid4()) + "\n")
    state = driver.get_state(guest_uuid)
    assert state.power_state == PowerState.SHUTDOWN
    assert "host restarted" in state.detail


def test_a_guest_started_before_boot_ids_is_judged_by_its_pidfile(tmp_path: Path) -> None:
    driver, guest_uuid, directory = _guest(tmp_path)
    pidfile = directory / "qemu.pid"
    pidfile.write_text(f"{_dead_pid()}\n")  # written now: this boot
    assert driver.get_state(guest_uuid).power_state == PowerState.CRASHED
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    old = pidfile.stat().st_mtime - uptime - 3600
    os.utime(pidfile, (old, old))
    assert driver.get_state(guest_uuid).power_state == PowerState.SHUTDOWN


def test_no_pidfile_is_a_clean_exit(tmp_path: Path) -> None:
    driver, guest_uuid, _ = _guest(tmp_path)
    assert driver.get_state(guest_uuid).power_state == PowerState.SHUTDOWN
    assert not driver.has_process(guest_uuid)
    # Stopping a crashed guest clears what it left: it is then simply off.
    assert driver.power_off(guest_uuid).power_state == PowerState.SHUTDOWN
