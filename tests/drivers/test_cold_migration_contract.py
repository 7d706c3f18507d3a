"""Cold migration in the driver contract: the source serves the shut-off guest's root disk,
a second host of the same kind copies it into place and boots the guest from the copy.
Serving is refused while the guest runs, repeated requests give the same endpoint, and a
disk no longer served cannot be copied. qemu: qemu-nbd and `qemu-img convert` over
loopback; the copy has the same contents as the source's overlay (`qemu-img compare`)."""

from __future__ import annotations

import dataclasses
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hvharness import Harness

from kumo.drivers.disks import create_overlay
from kumo.drivers.hypervisor import HypervisorError, PowerState
from kumo.drivers.hypervisor.base import instance_dir

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def other(harness: Harness) -> Iterator[Harness]:
    """A second host of the same kind, with state of its own."""
    h = Harness(harness.kind, Path(tempfile.mkdtemp(prefix="kd-", dir="/tmp")), harness.guest)
    try:
        yield h
    finally:
        h.cleanup()


def test_disk_moves_to_another_host_and_boots_there(harness: Harness, other: Harness) -> None:
    spec = harness.spec(name="vm-cold")
    if spec.root_disk is not None:
        spec = dataclasses.replace(
            spec,
            root_disk=str(
                create_overlay(Path(spec.root_disk), harness.state_dir / f"{spec.uuid}.qcow2")
            ),
        )
    source, dest = harness.driver, other.driver
    source.spawn(spec)
    harness.wait_line(spec.uuid, "kumo-guest: alive 1")
    with pytest.raises(HypervisorError):
        source.export_disk(spec.uuid)  # running: shut it off first
    source.power_off(spec.uuid)
    endpoint = source.export_disk(spec.uuid)
    assert source.export_disk(spec.uuid) == endpoint  # idempotent
    dest.import_disk(spec.uuid, endpoint)
    dest.import_disk(spec.uuid, endpoint)  # repeatable
    copied = instance_dir(other.state_dir, spec.uuid) / "disk"
    if spec.root_disk is not None:
        assert copied.exists() and not (copied.parent / "disk.import").exists()
        result = subprocess.run(
            ["qemu-img", "compare", "-U", spec.root_disk, str(copied)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    source.end_export(spec.uuid)
    source.end_export(spec.uuid)  # nothing served: nothing to do
    with pytest.raises(HypervisorError):
        dest.import_disk(spec.uuid, endpoint)
    dest_spec = spec if spec.root_disk is None else dataclasses.replace(spec, root_disk=str(copied))
    dest.spawn(dest_spec)
    other.wait_line(spec.uuid, "kumo-guest: alive 1")
    assert dest.get_state(spec.uuid).power_state == PowerState.RUNNING
    assert source.get_state(spec.uuid).power_state == PowerState.SHUTDOWN
    source.destroy(spec.uuid)
    dest.destroy(spec.uuid)
    assert source.get_state(spec.uuid).power_state == PowerState.NOSTATE
