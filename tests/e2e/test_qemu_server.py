"""Real guests: `kumo up` with the qemu driver, driven by the real `openstack` CLI.

The kumo-tiny image `kumo up` registers boots under TCG, reads its config drive and prints
its hostname and key on the serial console; the console reaches the CLI through the agent.
Every QEMU these tests caused is killed by PID in a finalizer (verified by its command line).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kumoproc import (
    OPENSTACK,
    Cloud,
    Result,
    alive,
    command_lines,
    in_ci,
    kill_group,
    run,
    start_cloud,
    wait_for,
)

pytestmark = pytest.mark.clients

# A real ed25519 public key (the cloud refuses ones that do not load); its private half
# was never kept.
TEST_KEY = (
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFU85FwUatG35B3QD0foC7p4qKZg/6qMM1KR6ro5BFSn e2e@kumo"
)
BOOT = 180.0  # TCG on a busy 2-vCPU machine; a quiet one prints its hostname in a few s


def _require_qemu() -> None:
    missing = [b for b in ("qemu-system-x86_64", "qemu-img") if not shutil.which(b)]
    if not glob.glob("/boot/vmlinuz-*"):
        missing.append("a kernel in /boot (linux-image-amd64)")
    if not Path("/usr/bin/busybox").exists():
        missing.append("/usr/bin/busybox (busybox-static)")
    if missing:
        reason = f"{', '.join(missing)} missing: no real guests here"
        if in_ci():
            pytest.fail(reason + "; CI=true requires the real hypervisor")
        pytest.skip(reason)


class Guests:
    """Remembers every QEMU PID a test saw, and kills the ones still running at the end."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.seen: dict[int, str] = {}

    def pid(self, server_id: str) -> int:
        path = self.state_dir / "agent" / "instances" / server_id / "qemu.pid"
        pid = int(wait_for(lambda: path.exists() and path.read_text().strip(), 30, str(path)))
        self.seen[pid] = server_id
        return pid

    def cleanup(self) -> None:
        """Kill every QEMU whose pidfile lies under this state directory, seen or not: a
        test that failed before asking for a guest's PID must not leave that guest behind."""
        instances = str(self.state_dir / "agent" / "instances").encode()
        for pid, argv in command_lines():
            if any(arg.startswith(instances) for arg in argv):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def openstack(cloud: Cloud, *args: str, timeout: float = 300) -> Result:
    return run([OPENSTACK, "--os-cloud", "kumo", *args], cloud.env(), timeout)


def ok(result: Result) -> Result:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result


def show(cloud: Cloud, name: str) -> dict[str, Any]:
    shown: dict[str, Any] = ok(openstack(cloud, "server", "show", name, "-f", "json")).json()
    return shown


def wait_status(cloud: Cloud, name: str, status: str, timeout: float = 120) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        shown = show(cloud, name)
        assert shown["status"] != "ERROR", shown
        return shown if shown["status"] == status else None

    return wait_for(probe, timeout, f"{name} {status}", interval=1.0)


def console(cloud: Cloud, name: str) -> str:
    return ok(openstack(cloud, "console", "log", "show", name)).stdout


def wait_console(cloud: Cloud, name: str, *needles: str) -> str:
    return wait_for(
        lambda: (text := console(cloud, name)) and all(n in text for n in needles) and text,
        BOOT,
        f"console of {name} to show {needles}",
        interval=2.0,
    )


@pytest.fixture
def qemu_cloud(tmp_path: Path) -> Iterator[tuple[Cloud, Guests]]:
    _require_qemu()
    state = tmp_path / "state"
    cloud = start_cloud(state, env=None)
    guests = Guests(state)
    try:
        yield cloud, guests
    finally:
        cloud.stop()
        guests.cleanup()


def create_server(cloud: Cloud, tmp_path: Path, name: str) -> dict[str, Any]:
    key = tmp_path / "key.pub"
    key.write_text(TEST_KEY + "\n")
    ok(openstack(cloud, "keypair", "create", "--public-key", str(key), "k"))
    user_data = tmp_path / "user-data"
    user_data.write_text("#!/bin/sh\necho hello from user data\n")
    created: dict[str, Any] = ok(
        openstack(
            cloud,
            "server",
            "create",
            "--image",
            "kumo-tiny",
            "--flavor",
            "m1.tiny",
            "--key-name",
            "k",
            "--user-data",
            str(user_data),
            "--wait",
            name,
            "-f",
            "json",
        )
    ).json()
    assert created["status"] == "ACTIVE", created
    return created


def test_server_lifecycle_on_qemu(qemu_cloud: tuple[Cloud, Guests], tmp_path: Path) -> None:
    cloud, guests = qemu_cloud
    images = ok(openstack(cloud, "image", "list", "-f", "json")).json()
    assert "kumo-tiny" in {i["Name"] for i in images}, (images, cloud.output())

    server = create_server(cloud, tmp_path, "vm1")
    server_id = server["id"]
    pid = guests.pid(server_id)
    assert alive(pid)
    text = wait_console(cloud, "vm1", "kumo-guest: hostname vm1", f"kumo-guest: key {TEST_KEY}")
    assert "kumo-guest: user-data #!/bin/sh" in text
    lines = ok(openstack(cloud, "console", "log", "show", "--lines", "2", "vm1")).stdout
    assert 1 <= len(lines.strip().splitlines()) <= 2

    ok(openstack(cloud, "server", "stop", "vm1"))
    wait_status(cloud, "vm1", "SHUTOFF")
    wait_for(lambda: not alive(pid), 30, f"qemu {pid} to exit")

    ok(openstack(cloud, "server", "start", "vm1"))
    wait_status(cloud, "vm1", "ACTIVE")
    new_pid = guests.pid(server_id)
    assert new_pid != pid and alive(new_pid)

    instance = cloud.state_dir / "agent" / "instances" / server_id
    assert (instance / "disk").exists() and (instance / "disk.config").exists()
    ok(openstack(cloud, "server", "delete", "--wait", "vm1"))
    gone = openstack(cloud, "server", "show", server_id)
    assert gone.returncode != 0
    wait_for(lambda: not alive(new_pid), 30, f"qemu {new_pid} to exit")
    assert not instance.exists()


def test_guest_survives_kill_of_kumo_up(qemu_cloud: tuple[Cloud, Guests], tmp_path: Path) -> None:
    cloud, guests = qemu_cloud
    server_id = create_server(cloud, tmp_path, "vm2")["id"]
    pid = guests.pid(server_id)
    wait_console(cloud, "vm2", "kumo-guest: hostname vm2")

    kill_group(cloud.process)  # SIGKILL: no clean-up of any kind
    assert alive(pid), "the guest must outlive kumo up"
    second = start_cloud(cloud.state_dir)
    try:
        time.sleep(3)  # let the agent register, adopt and report
        shown = wait_status(second, "vm2", "ACTIVE")
        assert shown["OS-EXT-STS:power_state"] in ("Running", 1), shown
        assert guests.pid(server_id) == pid and alive(pid)
        log = (cloud.state_dir / "agent" / "instances" / server_id / "console.log").read_text()
        assert log.count("kumo-guest: start") == 1, "the guest was restarted"
        ok(openstack(second, "server", "delete", "--wait", "vm2"))
        wait_for(lambda: not alive(pid), 30, f"qemu {pid} to exit")
    finally:
        second.stop()
