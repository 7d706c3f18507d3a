"""The QEMU driver's consoles: a new guest's serial console is a TCP socket on loopback that
a client attaches to live while console.log keeps being written, its VNC server answers
RFB, an agent restart finds the same endpoints, and a guest started the old way (serial to
a file only, no VNC) keeps running untouched and reports no console."""

from __future__ import annotations

import re
import socket
import time
from pathlib import Path

import pytest
from hvharness import Harness

from kumo.drivers.hypervisor import qemu_process
from kumo.drivers.hypervisor.base import PowerState

pytestmark = pytest.mark.parametrize("harness", ["qemu"], indirect=True)


def _alive(text: str) -> int:
    numbers = [int(n) for n in re.findall(r"kumo-guest: alive (\d+)", text)]
    return max(numbers) if numbers else -1


def _read_until(sock: socket.socket, needle: bytes, timeout: float = 120) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout
    while needle not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} never came: {seen[-500:]!r}"
        sock.settimeout(left)
        chunk = sock.recv(4096)
        assert chunk, f"the console closed before {needle!r}"
        seen += chunk
    return seen


def test_new_guest_serves_serial_and_vnc_on_loopback(harness: Harness) -> None:
    spec = harness.spec(name="con1")
    state = harness.driver.spawn(spec)
    consoles = state.consoles
    assert consoles is not None and consoles.address == "127.0.0.1"
    assert consoles.vnc_port is not None and consoles.serial_port is not None
    harness.wait_line(spec.uuid, "kumo-guest: hostname con1")

    with socket.create_connection(("127.0.0.1", consoles.serial_port), timeout=10) as serial:
        live = _read_until(serial, b"kumo-guest: alive ").decode(errors="replace")
        _read_until(serial, b"\n")
        assert "kumo-guest: alive" in live
        # The log goes on while a client is attached: the agent's console-log reader
        # still sees what the guest prints.
        counter = _alive(harness.console(spec.uuid))
        harness.wait_console(
            spec.uuid, lambda text: _alive(text) > counter + 1, "the log to keep growing"
        )

    with socket.create_connection(("127.0.0.1", consoles.vnc_port), timeout=10) as vnc:
        vnc.settimeout(10)
        assert vnc.recv(12) == b"RFB 003.008\n"

    # An agent restart asks the same QEMU again and gets the same endpoints.
    adopted = harness.new_driver().get_state(spec.uuid)
    assert (adopted.pid, adopted.consoles) == (state.pid, consoles)
    # Stopped: no console to reach.
    off = harness.driver.power_off(spec.uuid, timeout=60)
    assert off.power_state == PowerState.SHUTDOWN and off.consoles is None


def test_guest_started_without_consoles_is_adopted_untouched(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guest that an older kumo started (its serial console a plain log file, no VNC)."""

    def before_consoles(address: str, log: Path) -> list[str]:
        return ["-chardev", f"file,id=serial0,path={log},append=on", "-serial", "chardev:serial0"]

    spec = harness.spec(name="old1")
    with monkeypatch.context() as patched:
        patched.setattr(qemu_process, "console_args", before_consoles)
        old = harness.driver.spawn(spec)
    assert old.power_state == PowerState.RUNNING and old.consoles is None
    harness.wait_line(spec.uuid, "kumo-guest: hostname old1")
    adopted = harness.new_driver()
    state = adopted.get_state(spec.uuid)
    assert (state.power_state, state.pid, state.consoles) == (
        PowerState.RUNNING,
        old.pid,
        None,
    )
    assert adopted.spawn(spec).pid == old.pid  # left running as it is
    counter = _alive(harness.console(spec.uuid))
    harness.wait_console(spec.uuid, lambda text: _alive(text) > counter, "the old log to go on")
