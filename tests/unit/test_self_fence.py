"""Self-fencing (kumo.agent.self_fence) on the fake driver with a clock the test moves: an
agent alone for longer than self_fence_after stops every live guest once, writes its
marker and stops renewing its storage lease; a renewed heartbeat ends it."""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest

from kumo.agent.self_fence import SelfFence, guard
from kumo.drivers.hypervisor.base import GuestSpec, HypervisorError, PowerState
from kumo.drivers.hypervisor.fake import FakeDriver

A, B, C = (str(uuid.uuid4()) for _ in range(3))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_alone_too_long_stops_live_guests_once(tmp_path: Path) -> None:
    driver = FakeDriver(tmp_path / "fake")
    for name in (A, B, C):
        driver.spawn(GuestSpec(uuid=name, name=name, vcpus=1, memory_mb=128))
    driver.power_off(C)
    driver.pause(B)
    clock = Clock()
    lease = tmp_path / "leases" / "host-1"
    marker = tmp_path / "agent" / "self-fenced"
    fence = SelfFence(driver, 30.0, marker, lease, clock)

    clock.now += 29
    assert not fence.check()
    assert lease.exists() and not marker.exists()
    assert driver.get_state(A).power_state == PowerState.RUNNING
    old = time.time() - 100
    os.utime(lease, (old, old))

    clock.now += 2
    assert fence.check()
    assert {g.uuid: g.power_state for g in driver.list_guests()} == {
        A: PowerState.SHUTDOWN,
        B: PowerState.SHUTDOWN,
        C: PowerState.SHUTDOWN,
    }
    record = json.loads(marker.read_text())
    assert sorted(record["stopped"]) == sorted([A, B]) and record["after"] == 30.0
    assert lease.stat().st_mtime < time.time() - 50  # no renewal while fenced

    driver.power_on(A)  # whatever happens next, a fenced host does not fence twice
    assert fence.check()
    assert driver.get_state(A).power_state == PowerState.RUNNING

    fence.renewed()
    assert not fence.fenced
    assert not fence.check()
    assert lease.stat().st_mtime > time.time() - 50


def test_lease_only_never_fences(tmp_path: Path) -> None:
    driver = FakeDriver(tmp_path / "fake")
    driver.spawn(GuestSpec(uuid=A, name="a", vcpus=1, memory_mb=128))
    clock = Clock()
    lease = tmp_path / "leases" / "host-1"
    fence = SelfFence(driver, 0.0, tmp_path / "marker", lease, clock)
    clock.now += 10_000
    assert not fence.check()
    assert lease.exists()
    assert driver.get_state(A).power_state == PowerState.RUNNING


def test_fenced_driver_starts_nothing_until_not_forced_down(tmp_path: Path) -> None:
    driver = FakeDriver(tmp_path / "fake")
    driver.spawn(GuestSpec(uuid=A, name="a", vcpus=1, memory_mb=128))
    clock = Clock()
    fence = SelfFence(driver, 5.0, tmp_path / "marker", None, clock)
    guarded = guard(driver, fence)
    assert guarded.name == "fake"
    guarded.power_off(A)
    guarded.power_on(A)  # not fenced: as the driver
    clock.now += 6
    assert fence.check()
    assert driver.get_state(A).power_state == PowerState.SHUTDOWN
    with pytest.raises(HypervisorError, match="fenced itself"):
        guarded.power_on(A)
    with pytest.raises(HypervisorError, match="fenced itself"):
        guarded.spawn(GuestSpec(uuid=B, name="b", vcpus=1, memory_mb=128))
    assert guarded.get_state(A).power_state == PowerState.SHUTDOWN  # reading is allowed
    fence.renewed(forced_down=True)  # the API answers, but holds the host down
    assert fence.fenced
    with pytest.raises(HypervisorError):
        guarded.power_on(A)
    guarded.destroy(A)  # cleaning up what moved is allowed
    fence.renewed(forced_down=False)
    assert not fence.fenced
    guarded.spawn(GuestSpec(uuid=B, name="b", vcpus=1, memory_mb=128))
    assert driver.get_state(B).power_state == PowerState.RUNNING
