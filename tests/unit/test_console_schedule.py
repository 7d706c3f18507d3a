"""The agent reads a young guest's console often (its boot is being watched) and an older
one rarely, so the steady load does not grow with the number of guests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kumo.agent.compute import BOOT_WINDOW, ComputeLoop
from kumo.drivers.hypervisor.fake import FakeDriver


def _loop(tmp_path: Path) -> ComputeLoop:
    client: Any = None  # never used: only the schedule is asked
    return ComputeLoop(client, "/agent/v1", "host", FakeDriver(tmp_path),
                       console_interval=5.0, console_boot_interval=0.5)


def test_young_guest_is_due_every_boot_interval(tmp_path: Path) -> None:
    loop = _loop(tmp_path)
    loop._first_seen["vm"] = 100.0
    assert loop._console_due("vm", 100.0)  # never read: due at once
    loop._console_checked["vm"] = 100.0
    assert not loop._console_due("vm", 100.4)
    assert loop._console_due("vm", 100.5)


def test_old_guest_waits_the_console_interval(tmp_path: Path) -> None:
    loop = _loop(tmp_path)
    loop._first_seen["vm"] = 0.0
    now = BOOT_WINDOW + 10.0
    loop._console_checked["vm"] = now
    assert not loop._console_due("vm", now + 0.5)
    assert not loop._console_due("vm", now + 4.9)
    assert loop._console_due("vm", now + 5.0)


def test_boot_interval_never_exceeds_the_console_interval(tmp_path: Path) -> None:
    client: Any = None
    loop = ComputeLoop(client, "/agent/v1", "host", FakeDriver(tmp_path),
                       console_interval=0.2, console_boot_interval=0.5)
    assert loop.console_boot_interval == 0.2
