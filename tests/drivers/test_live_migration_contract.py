"""Live migration in the driver contract: two drivers of the same kind (two hosts) move a
running guest between them, with its disks (block) or over a shared disk path (memory only),
and an outgoing migration can be cancelled. The qemu runs boot kumo-tiny under TCG and judge
by its serial console: the alive counter continues on the destination."""

from __future__ import annotations

import dataclasses
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hvharness import Harness

from kumo.drivers.disks import create_overlay
from kumo.drivers.hypervisor import HypervisorError, PowerState
from kumo.drivers.hypervisor import fake as fake_driver
from kumo.drivers.hypervisor.base import GuestSpec, MigrationProgress

pytestmark = pytest.mark.timeout(600)
DEADLINE = 120.0


def _alive(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"kumo-guest: alive (\d+)", text)]


@pytest.fixture
def other(harness: Harness) -> Iterator[Harness]:
    """A second host of the same kind, with state of its own."""
    h = Harness(harness.kind, Path(tempfile.mkdtemp(prefix="kd-", dir="/tmp")), harness.guest)
    try:
        yield h
    finally:
        h.cleanup()


def _overlay(h: Harness, spec: GuestSpec, where: Path) -> GuestSpec:
    if spec.root_disk is None:
        return spec
    return dataclasses.replace(
        spec, root_disk=str(create_overlay(Path(spec.root_disk), where / f"{spec.uuid}.qcow2"))
    )


def _until_done(h: Harness, uuid: str) -> tuple[list[str], MigrationProgress]:
    seen = []
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        progress = h.driver.migration_progress(uuid)
        seen.append(progress.status)
        if progress.status not in ("active", "none"):
            return seen, progress
        time.sleep(0.05)
    raise AssertionError(f"the migration did not end in {DEADLINE}s: {seen[-5:]}")


@pytest.mark.parametrize("block", [True, False], ids=["block", "shared-disk"])
def test_live_migration_continues_on_destination(
    harness: Harness, other: Harness, block: bool
) -> None:
    shared = Path(tempfile.mkdtemp(prefix="ks-", dir="/tmp"))
    spec = _overlay(
        harness, harness.spec(name="vm-move"), shared if not block else harness.state_dir
    )
    source, dest = harness.driver, other.driver
    first = source.spawn(spec)
    harness.wait_line(spec.uuid, "kumo-guest: alive 1")
    # The destination's own copy of the disk (block) or the very same file (shared).
    dest_spec = _overlay(other, spec, other.state_dir) if block and harness.guest else spec
    if block and harness.guest:
        dest_spec = dataclasses.replace(
            dest_spec,
            root_disk=str(
                create_overlay(
                    Path(harness.guest.root_disk), other.state_dir / f"{spec.uuid}.qcow2"
                )
            ),
        )
    endpoint = dest.prepare_incoming(dest_spec, block)
    assert dest.prepare_incoming(dest_spec, block) == endpoint  # idempotent
    assert dest.get_state(spec.uuid).power_state == PowerState.PAUSED
    assert source.migration_progress(spec.uuid).status == "none"

    source.migrate_to(spec.uuid, endpoint, block)
    source.migrate_to(spec.uuid, endpoint, block)  # idempotent
    if harness.kind == "fake":  # (for qemu, how early is early depends on timing)
        with pytest.raises(HypervisorError):
            dest.finish_incoming(spec.uuid, run=True)  # the state has not arrived yet
    seen, progress = _until_done(harness, spec.uuid)
    assert progress.status == "completed", (seen, progress)
    assert progress.memory_total_bytes and progress.memory_remaining_bytes == 0
    assert progress.total_time_ms is not None and progress.downtime_ms is not None
    assert source.migration_progress(spec.uuid).status == "completed"  # stays completed
    assert source.get_state(spec.uuid).power_state == PowerState.PAUSED  # stopped for good
    last = max(_alive(harness.console(spec.uuid)))

    state = dest.finish_incoming(spec.uuid, run=True)
    assert state.power_state == PowerState.RUNNING
    assert dest.finish_incoming(spec.uuid, run=True).pid == state.pid  # idempotent
    text = other.wait_console(
        spec.uuid,
        lambda t: bool(_alive(t)) and max(_alive(t)) > last,
        f"the alive counter past {last} on the destination",
    )
    assert "kumo-guest: start" not in text.split(f"alive {last}")[-1]  # no second boot
    source.destroy(spec.uuid)
    assert first.pid is not None and not harness.pid_alive(first.pid)
    assert other.new_driver().get_state(spec.uuid).power_state == PowerState.RUNNING
    dest.destroy(spec.uuid)


def test_abort_leaves_the_guest_on_the_source(
    harness: Harness, other: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _overlay(harness, harness.spec(name="vm-stay"), harness.state_dir)
    source, dest = harness.driver, other.driver
    source.spawn(spec)
    harness.wait_line(spec.uuid, "kumo-guest: alive 1")
    if harness.kind == "fake":
        monkeypatch.setattr(fake_driver, "MIGRATION_STEPS", None)  # never converges
    else:  # 1 MiB/s: far too slow to finish before the abort
        harness.qmp(spec.uuid, "migrate-set-parameters", {"max-bandwidth": 1 << 20})
    dest_spec = spec
    if harness.guest:
        dest_spec = dataclasses.replace(
            spec,
            root_disk=str(
                create_overlay(
                    Path(harness.guest.root_disk), other.state_dir / f"{spec.uuid}.qcow2"
                )
            ),
        )
    endpoint = dest.prepare_incoming(dest_spec, True)
    source.migrate_to(spec.uuid, endpoint, True)
    deadline = time.monotonic() + DEADLINE
    while harness.kind == "qemu" and time.monotonic() < deadline:
        progress = source.migration_progress(spec.uuid)  # wait for the memory copy to run
        if progress.memory_total_bytes:
            break
        time.sleep(0.1)
    assert source.migration_progress(spec.uuid).status == "active"
    result = source.abort_migration(spec.uuid)
    assert result.status == "cancelled", result
    assert source.abort_migration(spec.uuid).status == "cancelled"  # idempotent
    assert source.get_state(spec.uuid).power_state == PowerState.RUNNING
    before = max(_alive(harness.console(spec.uuid)))
    harness.wait_console(spec.uuid, lambda t: max(_alive(t)) > before, "the guest going on")
    dest.destroy(spec.uuid)
    assert dest.get_state(spec.uuid).power_state == PowerState.NOSTATE
    source.destroy(spec.uuid)


def test_force_complete_pauses_so_it_converges(harness: Harness, other: Harness) -> None:
    spec = _overlay(harness, harness.spec(name="vm-force"), harness.state_dir)
    source, dest = harness.driver, other.driver
    source.spawn(spec)
    harness.wait_line(spec.uuid, "kumo-guest: hostname vm-force")
    dest_spec = spec
    if harness.guest:
        dest_spec = dataclasses.replace(
            spec,
            root_disk=str(
                create_overlay(
                    Path(harness.guest.root_disk), other.state_dir / f"{spec.uuid}.qcow2"
                )
            ),
        )
    endpoint = dest.prepare_incoming(dest_spec, True)
    source.migrate_to(spec.uuid, endpoint, True)
    source.force_complete_migration(spec.uuid)
    _, progress = _until_done(harness, spec.uuid)
    assert progress.status == "completed"
    assert dest.finish_incoming(spec.uuid, run=True).power_state == PowerState.RUNNING
    source.destroy(spec.uuid)
    dest.destroy(spec.uuid)


def test_capabilities_offer_live_migration(harness: Harness, other: Harness) -> None:
    mine, theirs = harness.driver.capabilities(), other.driver.capabilities()
    assert mine["live_migration"] is True
    assert mine["storage_id"] and mine["storage_id"] != theirs["storage_id"]
    assert harness.new_driver().capabilities()["storage_id"] == mine["storage_id"]
