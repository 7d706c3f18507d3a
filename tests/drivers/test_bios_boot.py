"""Ordinary disk images boot through the BIOS (no kernel_id): the qemu driver starts the
guest from its root disk, a qcow2 overlay on the raw image as the agent makes it."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from biosdisk import BIOS_LINE, write_bios_disk
from hvharness import Harness, require_qemu

from kumo.drivers import disks


def test_disk_image_without_kernel_boots_through_the_bios() -> None:
    require_qemu()
    state_dir = Path(tempfile.mkdtemp(prefix="kb-", dir="/tmp"))
    harness = Harness("qemu", state_dir, None)
    try:
        base = write_bios_disk(state_dir / "bios.raw")
        overlay = disks.create_overlay(base, state_dir / "disk.qcow2", 64 << 20)
        spec = dataclasses.replace(harness.spec("bios"), root_disk=str(overlay))
        assert spec.kernel is None
        harness.driver.spawn(spec)
        harness.wait_line(spec.uuid, BIOS_LINE)
        assert harness.runstate(spec.uuid) == "running"
        harness.driver.destroy(spec.uuid)
        assert harness.driver.get_state(spec.uuid).power_state == "nostate"
    finally:
        harness.cleanup()
