"""The hypervisor driver contract: every driver (fake and qemu) must pass all of it.

The qemu runs boot the real kumo-tiny guest under whatever accelerator the host really
offers (TCG here) and judge by what the guest itself prints on its serial console.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from pathlib import Path

import pytest
from hvharness import TEST_KEY, Harness

from kumo.drivers.disks import create_overlay
from kumo.drivers.disks import info as disks_info
from kumo.drivers.hypervisor import HypervisorDriver, HypervisorError, PowerState
from kumo.drivers.hypervisor.base import GuestNotFound, GuestSpec

pytestmark = pytest.mark.timeout(600)

BOOT = "kumo-guest: start"


def _alive_numbers(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"kumo-guest: alive (\d+)", text)]


def test_implements_the_interface(harness: Harness) -> None:
    assert isinstance(harness.driver, HypervisorDriver)
    capabilities = harness.driver.capabilities()
    assert capabilities["driver"] == harness.kind
    assert capabilities["vhost_net"] is False
    assert capabilities["accelerator"] in ("kvm", "tcg", "fake")


def test_unknown_guests(harness: Harness) -> None:
    ghost = str(uuid.uuid4())
    assert harness.driver.get_state(ghost).power_state == PowerState.NOSTATE
    harness.driver.destroy(ghost)  # already gone is success
    with pytest.raises(GuestNotFound):
        harness.driver.power_on(ghost)
    with pytest.raises(HypervisorError):
        harness.driver.spawn(
            harness.spec().__class__(uuid="../../etc", name="x", vcpus=1, memory_mb=128)
        )
    assert harness.driver.list_guests() == []


def test_spawn_reads_config_drive_pause_and_readopt(harness: Harness) -> None:
    spec = harness.spec(name="vm1")
    driver = harness.driver
    state = driver.spawn(spec)
    assert state.power_state == PowerState.RUNNING
    assert state.pid is not None and harness.pid_alive(state.pid)
    assert harness.runstate(spec.uuid) == "running"

    text = harness.wait_line(spec.uuid, "kumo-guest: user-data kumo says hello")  # printed last
    assert "kumo-guest: hostname vm1" in text
    assert f"kumo-guest: key {TEST_KEY}" in text

    again = driver.spawn(spec)  # idempotent: the same process, not a second guest
    assert again.pid == state.pid

    paused = driver.pause(spec.uuid)
    assert paused.power_state == PowerState.PAUSED
    assert harness.runstate(spec.uuid) == "paused"
    assert driver.unpause(spec.uuid).power_state == PowerState.RUNNING
    assert harness.runstate(spec.uuid) == "running"

    # The agent restarts: a new driver finds the guest, same process, untouched.
    adopted = harness.new_driver()
    listed = {g.uuid: g for g in adopted.list_guests()}
    assert listed[spec.uuid].pid == state.pid
    assert listed[spec.uuid].power_state == PowerState.RUNNING
    assert adopted.spawn(spec).pid == state.pid
    assert adopted.console_log(spec.uuid).decode().count(BOOT) == 1
    assert harness.pid_alive(state.pid)


def test_power_off_then_on(harness: Harness) -> None:
    spec = harness.spec()
    driver = harness.driver
    first = driver.spawn(spec)
    harness.wait_line(spec.uuid, "kumo-guest: hostname")
    assert first.pid is not None

    off = driver.power_off(spec.uuid, timeout=60)
    assert off.power_state == PowerState.SHUTDOWN
    assert off.pid is None
    assert not harness.pid_alive(first.pid)
    assert "kumo-guest: power button" in harness.console(spec.uuid)  # clean ACPI shutdown
    assert driver.power_off(spec.uuid).power_state == PowerState.SHUTDOWN  # idempotent

    on = driver.power_on(spec.uuid)
    assert on.power_state == PowerState.RUNNING and on.pid is not None
    harness.wait_line(spec.uuid, "kumo-guest: hostname", count=2)  # console kept across boots


def test_inject_nmi_reaches_the_guest_kernel(harness: Harness) -> None:
    """trigger_crash_dump: the NMI reaches the running guest, whose kernel (with no crash
    kernel loaded) logs it and carries on; a guest with no process cannot take one."""
    driver = harness.driver
    with pytest.raises(GuestNotFound):
        driver.inject_nmi(str(uuid.uuid4()))
    spec = harness.spec(name="nmi")
    driver.spawn(spec)
    harness.wait_line(spec.uuid, "kumo-guest: user-data kumo says hello")
    assert "NMI received" not in harness.console(spec.uuid)
    driver.inject_nmi(spec.uuid)
    harness.wait_line(spec.uuid, "NMI received", timeout=30)
    assert driver.get_state(spec.uuid).power_state == PowerState.RUNNING
    driver.power_off(spec.uuid, timeout=10)
    with pytest.raises(HypervisorError):
        driver.inject_nmi(spec.uuid)


def test_reboot_hard_boots_again(harness: Harness) -> None:
    spec = harness.spec()
    driver = harness.driver
    first = driver.spawn(spec)
    harness.wait_line(spec.uuid, "kumo-guest: user-data")  # the first boot is complete
    state = driver.reboot(spec.uuid, "hard")
    assert state.power_state == PowerState.RUNNING
    assert state.pid == first.pid  # a reset, not a new process
    text = harness.wait_line(spec.uuid, "kumo-guest: user-data", count=2)
    assert text.count(BOOT) == 2
    assert text.count(f"kumo-guest: key {TEST_KEY}") == 2


def test_suspend_resume_continues(harness: Harness) -> None:
    spec = harness.spec()
    driver = harness.driver
    first = driver.spawn(spec)
    harness.wait_line(spec.uuid, "kumo-guest: alive 1")

    suspended = driver.suspend(spec.uuid)
    assert suspended.power_state == PowerState.SUSPENDED and suspended.pid is None
    assert first.pid is not None and not harness.pid_alive(first.pid)
    assert harness.new_driver().get_state(spec.uuid).power_state == PowerState.SUSPENDED
    assert driver.suspend(spec.uuid).power_state == PowerState.SUSPENDED  # idempotent
    last = max(_alive_numbers(harness.console(spec.uuid)))

    resumed = driver.resume(spec.uuid)
    assert resumed.power_state == PowerState.RUNNING
    assert harness.runstate(spec.uuid) == "running"
    text = harness.wait_console(
        spec.uuid, lambda t: max(_alive_numbers(t)) > last, f"an alive counter above {last}"
    )
    assert text.count(BOOT) == 1  # it continued; it did not boot again
    numbers = _alive_numbers(text)
    assert numbers == sorted(numbers)


def test_destroy_removes_process_and_files(harness: Harness) -> None:
    spec = harness.spec()
    driver = harness.driver
    state = driver.spawn(spec)
    assert state.pid is not None
    driver.destroy(spec.uuid)
    assert not harness.pid_alive(state.pid)
    assert not (harness.state_dir / "instances" / spec.uuid).exists()
    assert driver.get_state(spec.uuid).power_state == PowerState.NOSTATE
    assert spec.uuid not in {g.uuid for g in driver.list_guests()}
    driver.destroy(spec.uuid)  # idempotent


def test_resize_takes_effect_at_next_power_on(harness: Harness) -> None:
    spec = harness.spec(name="vm-resize")
    driver = harness.driver
    driver.spawn(spec)
    with pytest.raises(HypervisorError):
        driver.resize(spec.uuid, 2, 192, 2)  # only a shut-down guest can be resized
    harness.wait_line(spec.uuid, "kumo-guest: hostname vm-resize")
    driver.power_off(spec.uuid, timeout=10)
    state = driver.resize(spec.uuid, 2, 192, 2)
    assert state.power_state == PowerState.SHUTDOWN
    assert driver.power_on(spec.uuid).power_state == PowerState.RUNNING
    if harness.kind == "qemu":
        cpus = harness.qmp(spec.uuid, "query-cpus-fast")
        assert len(cpus) == 2
        assert spec.root_disk is not None
        assert disks_info(Path(spec.root_disk)).virtual_size >= 2 << 30
    driver.destroy(spec.uuid)


def _own_disks(harness: Harness, spec: GuestSpec) -> GuestSpec:
    """The spec with a root disk of its own (an overlay on the guest image, as the agent
    makes one), so a rescue boot can open the image as its backing file beside it."""
    if spec.root_disk is None:
        return spec
    overlay = create_overlay(Path(spec.root_disk), harness.state_dir / f"{spec.uuid}.qcow2")
    return dataclasses.replace(spec, root_disk=str(overlay))


def test_snapshot_is_standalone_and_guest_keeps_running(harness: Harness) -> None:
    spec = _own_disks(harness, harness.spec(name="vm-snap"))
    driver = harness.driver
    driver.spawn(spec)
    harness.wait_line(spec.uuid, "kumo-guest: hostname vm-snap")
    target = harness.state_dir / "snap.qcow2"
    driver.snapshot(spec.uuid, target)
    info = disks_info(target, force_share=False)
    assert (info.format, info.backing_file) == ("qcow2", None)
    assert driver.get_state(spec.uuid).power_state == PowerState.RUNNING
    assert harness.runstate(spec.uuid) == "running"  # paused for the copy only
    # A shut-down guest is copied as it is.
    driver.power_off(spec.uuid, timeout=10)
    driver.snapshot(spec.uuid, target)
    assert driver.get_state(spec.uuid).power_state == PowerState.SHUTDOWN
    with pytest.raises(GuestNotFound):
        driver.snapshot(str(uuid.uuid4()), target)
    driver.destroy(spec.uuid)


def test_rescue_boots_the_rescue_disk_then_unrescue(harness: Harness) -> None:
    spec = _own_disks(harness, harness.spec(name="vm-rescue"))
    driver = harness.driver
    driver.spawn(spec)
    harness.wait_line(spec.uuid, "kumo-guest: hostname vm-rescue")
    assert "kumo-guest: disk vdc" not in harness.console(spec.uuid)
    boot = _own_disks(harness, harness.spec(name="rescue-boot"))
    boot = dataclasses.replace(boot, uuid=spec.uuid, config_drive=None)
    state = driver.rescue(spec.uuid, boot)
    assert state.power_state == PowerState.RUNNING and driver.is_rescued(spec.uuid)
    text = harness.wait_line(spec.uuid, BOOT, count=2)
    if harness.kind == "qemu":
        # The rescue boot sees its own disk, the config drive and the guest's disk as vdc.
        text = harness.wait_line(spec.uuid, "kumo-guest: disk vdc")
    assert text.count(BOOT) == 2
    assert driver.rescue(spec.uuid, boot).pid == state.pid  # idempotent
    adopted = harness.new_driver()  # an agent restart keeps the rescue
    assert adopted.is_rescued(spec.uuid)
    state = adopted.unrescue(spec.uuid)
    assert state.power_state == PowerState.RUNNING and not adopted.is_rescued(spec.uuid)
    harness.wait_line(spec.uuid, BOOT, count=3)
    assert adopted.unrescue(spec.uuid).pid == state.pid  # not rescued: nothing happens
    adopted.destroy(spec.uuid)
