"""Extra disks (block volumes) in the hypervisor driver contract: attach and detach on a
running guest (hot-plug), on a shut-down one (next boot), refusals where a guest cannot take
the change, adoption by a restarted agent, and a live migration of a guest with a
hot-plugged disk. Every driver (fake and qemu) passes the same tests; the qemu runs boot
kumo-tiny under TCG and judge by its serial console, which prints "kumo-guest: disk vdX"
for every disk that appears and "kumo-guest: disk-gone vdX" for every one that goes.

kumo-tiny has its root disk (vda) and config drive (vdb): the first extra disk is vdc (the
fake driver's guests have no root disk: vdb)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hvharness import Harness

from kumo.drivers.disks import DiskError, create_blank, create_overlay
from kumo.drivers.disks import info as disks_info
from kumo.drivers.hypervisor import HypervisorError, PowerState
from kumo.drivers.hypervisor.base import (
    EXTRA_DISK_SLOTS,
    DiskSpec,
    GuestSpec,
    GuestState,
    MigrationProgress,
    carry_pci_slots,
    virtio_serial,
)
from kumo.drivers.hypervisor.qemu import QemuDriver, disk_ids

pytestmark = pytest.mark.timeout(600)

HOTPLUG_DEADLINE = 30.0  # LAB.md: about 0.5 s for the guest to see a hot-plugged disk
MIGRATION_DEADLINE = 120.0
FIRST, SECOND = EXTRA_DISK_SLOTS[0], EXTRA_DISK_SLOTS[1]
BOOT = "kumo-guest: start"
MARKER = b"kumo-volume-data"  # written into a volume by the host before attaching it
GUEST_WROTE = b"GUEST-WROTE-THIS"

# User data (run by kumo-tiny as a script): once the first extra disk shows up, print what
# the host wrote at its start and write something of its own 4 KiB in, flushed.
READ_WRITE_VDC = b"""#!/bin/sh
while [ ! -b /dev/vdc ]; do sleep 0.2; done
echo "kumo-guest: vdc-read $(head -c 16 /dev/vdc)"
printf GUEST-WROTE-THIS | dd of=/dev/vdc bs=4096 seek=1 conv=notrunc,fsync 2>/dev/null
sync
echo "kumo-guest: vdc-written"
"""


def _alive(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"kumo-guest: alive (\d+)", text)]


def _volume(h: Harness, where: Path, name: str, marker: bool = False) -> Path:
    """A 16 MiB qcow2 volume (an empty file for the fake driver, which opens none); with
    `marker`, MARKER at its start, written with qemu-io as a volume with data."""
    path = where / "volumes" / f"{name}.qcow2"
    if h.kind == "fake":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        return path
    create_blank(path, 16 << 20)
    if marker:
        _qemu_io_write(path, 0, MARKER)
    return path


def _qemu_io_write(path: Path, offset: int, data: bytes) -> None:
    """Write `data` at `offset` of a qcow2 image through qemu-io (one pattern per byte)."""
    commands = []
    for i, byte in enumerate(data):
        commands += ["-c", f"write -P {byte} {offset + i} 1"]
    subprocess.run(
        ["qemu-io", "-f", "qcow2", *commands, str(path)], check=True, capture_output=True
    )


def _read(path: Path, offset: int, length: int) -> bytes:
    """Bytes of a qcow2 image as the guest sees them. Without -U: fails while a QEMU still
    holds the image (its lock is released only by blockdev-del)."""
    with tempfile.TemporaryDirectory(prefix="kv-", dir="/tmp") as tmp:
        raw = Path(tmp) / "raw"
        subprocess.run(
            ["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(path), str(raw)],
            check=True,
            capture_output=True,
        )
        with raw.open("rb") as f:
            f.seek(offset)
            return f.read(length)


def _locked(path: Path) -> bool:
    try:
        disks_info(path, force_share=False)
    except DiskError:
        return True
    return False


def _disk(path: Path, serial: str) -> DiskSpec:
    return DiskSpec(path=str(path), format="qcow2", serial=serial)


def _vol_nodes(h: Harness, uuid: str) -> set[str]:
    """Names of the guest's extra-disk block nodes (qemu only)."""
    return {
        str(n.get("node-name"))
        for n in h.qmp(uuid, "query-named-block-nodes", {"flat": True})
        if str(n.get("node-name", "")).startswith("vol-")
    }


def _extra_names(spec: GuestSpec) -> tuple[str, str]:
    """The names the guest gives its first two extra disks (after root disk and config
    drive, which the fake driver's guests lack the first of)."""
    boot = bool(spec.root_disk) + bool(spec.config_drive)
    return f"vd{chr(ord('a') + boot)}", f"vd{chr(ord('a') + boot + 1)}"


def _booted(h: Harness, uuid: str, boots: int) -> str:
    """The console once the guest's `boots`-th boot has listed its disks (kumo-tiny lists
    them in each round of its alive loop, before the alive line)."""
    return h.wait_console(
        uuid,
        lambda t: t.count(BOOT) >= boots and "kumo-guest: alive " in t.rsplit(BOOT, 1)[1],
        f"boot {boots} complete",
    )


def _nodes_of(serial: str) -> set[str]:
    device, node = disk_ids(serial)
    return {node, f"{device}-f"}  # format over protocol


def _with_own_root(h: Harness, spec: GuestSpec, where: Path) -> GuestSpec:
    if spec.root_disk is None:
        return spec
    overlay = create_overlay(Path(spec.root_disk), where / f"{spec.uuid}.qcow2")
    return dataclasses.replace(spec, root_disk=str(overlay))


def test_capability_and_old_specs_load(harness: Harness) -> None:
    assert harness.driver.capabilities()["disk_hotplug"] is True
    # A spec persisted before `kind` and `pci_slot` existed (or by a newer version with a
    # field this one does not know) still loads.
    old = {"uuid": "u", "name": "n", "vcpus": 1, "memory_mb": 128}
    old["extra_disks"] = [{"path": "/v", "format": "raw", "readonly": False, "serial": "s"}]
    spec = GuestSpec.from_dict(old)
    assert spec.extra_disks == (DiskSpec("/v", "raw", serial="s"),)
    assert spec.extra_disks[0].kind == "file" and spec.extra_disks[0].pci_slot is None
    old["extra_disks"][0]["from_the_future"] = 1  # type: ignore[index]
    assert GuestSpec.from_dict(old).extra_disks[0].serial == "s"
    again = GuestSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec


def test_virtio_serial_is_cut_to_20_bytes() -> None:
    serial = "0b3a1c9e-5d7f-4e2a-9c1b-2f6e8d4a7b10"
    assert virtio_serial(serial) == serial[:20]
    assert virtio_serial("é" * 15) == "é" * 10  # on a character boundary
    device, node = disk_ids(serial)
    assert len(node) <= 31 and device != node and disk_ids(serial) == (device, node)


def test_spawn_keeps_the_slots_a_spec_without_them_omits() -> None:
    """A caller that does not keep slots (spawn of a shut-down guest from the database)
    gets the slots the guest's persisted spec gave its disks; new disks stay without."""
    base = GuestSpec(uuid="u", name="n", vcpus=1, memory_mb=128)
    persisted = dataclasses.replace(base, extra_disks=(DiskSpec("/a", serial="a", pci_slot=17),))
    asked = dataclasses.replace(base, extra_disks=(DiskSpec("/a", serial="a"), DiskSpec("/b")))
    carried = carry_pci_slots(asked, persisted)
    assert [d.pci_slot for d in carried.extra_disks] == [17, None]
    assert carry_pci_slots(asked, None) == asked


def test_qemu_command_line_places_slotted_disks_last(tmp_path: Path) -> None:
    """Disks with a slot go last, at their fixed address, so every other device lands
    where it would without them; a disk without one (an old spec) is started as before."""
    driver = QemuDriver(tmp_path, accelerator="tcg")
    legacy = DiskSpec("/old.qcow2", serial="old-disk")
    slotted = DiskSpec("/dev/loop7", "raw", serial="a,b", kind="block", pci_slot=0x11)
    spec = GuestSpec(
        uuid="3f7c2a52-7a4b-4c55-9b0e-3f1f1c1e9a01",
        name="vm",
        vcpus=1,
        memory_mb=128,
        root_disk="/root.qcow2",
        extra_disks=(legacy, slotted),
    )
    argv = driver._argv(spec, None)
    joined = " ".join(argv)
    assert "file=/old.qcow2,format=qcow2,if=none,id=drive-disk0" in joined
    assert "virtio-blk-pci,drive=drive-disk0,id=disk0,serial=old-disk" in joined
    device, node = disk_ids("a,b")
    assert argv[-4] == "-blockdev"
    blockdev = json.loads(argv[-3])
    assert blockdev["node-name"] == node and blockdev["driver"] == "raw"
    assert blockdev["file"] == {
        "driver": "host_device",
        "filename": "/dev/loop7",
        "node-name": f"{device}-f",
        "read-only": False,
    }
    assert argv[-2:] == [
        "-device",
        f"virtio-blk-pci,id={device},drive={node},bus=pci.0,addr=0x11,serial=a,,b",
    ]


def test_hotplug_into_running_guest(harness: Harness) -> None:
    """Attach (idempotent) -> the guest sees vdc and reads and writes it; a restarted agent
    reports it; detach -> gone, the file intact and unlocked; attach again; a guest too
    slow to release the disk leaves it attached until a retry finishes the detach."""
    qemu = harness.kind == "qemu"
    driver = harness.driver
    spec = harness.spec(name="vm-hotplug", user_data=READ_WRITE_VDC)
    vdc, vdd = _extra_names(spec)
    volume = _volume(harness, harness.state_dir, "v1", marker=True)
    serial = "0b3a1c9e-5d7f-4e2a-9c1b-2f6e8d4a7b10"
    driver.spawn(spec)
    harness.wait_line(spec.uuid, "kumo-guest: user-data")  # booted
    assert driver.disks(spec.uuid) == []

    state = driver.attach_disk(spec.uuid, _disk(volume, serial))
    assert state.power_state == PowerState.RUNNING
    harness.wait_line(spec.uuid, f"kumo-guest: disk {vdc}", timeout=HOTPLUG_DEADLINE)
    attached = driver.disks(spec.uuid)
    assert [(d.serial, d.path, d.pci_slot) for d in attached] == [(serial, str(volume), FIRST)]
    assert driver.attach_disk(spec.uuid, _disk(volume, serial)).pid == state.pid  # no-op
    assert driver.disks(spec.uuid) == attached
    if qemu:
        text = harness.wait_line(spec.uuid, "kumo-guest: vdc-written", timeout=HOTPLUG_DEADLINE)
        assert f"kumo-guest: vdc-read {MARKER.decode()}" in text
        assert _vol_nodes(harness, spec.uuid) == _nodes_of(serial)
        assert _locked(volume)  # the running guest holds it
        pci = harness.qmp(spec.uuid, "query-pci")[0]["devices"]
        assert disk_ids(serial)[0] in {d.get("qdev_id") for d in pci if d["slot"] == FIRST}
    # The agent restarts: the new driver reports the same disks, and changes nothing.
    adopted = harness.new_driver()
    assert adopted.disks(spec.uuid) == attached
    assert adopted.get_state(spec.uuid).pid == state.pid

    state = adopted.detach_disk(spec.uuid, serial)
    assert state.power_state == PowerState.RUNNING
    harness.wait_line(spec.uuid, f"kumo-guest: disk-gone {vdc}", timeout=HOTPLUG_DEADLINE)
    assert adopted.disks(spec.uuid) == [] and driver.disks(spec.uuid) == []
    assert adopted.detach_disk(spec.uuid, serial).pid == state.pid  # unknown serial: no-op
    if qemu:
        assert _vol_nodes(harness, spec.uuid) == set()
        assert not any(
            b.get("inserted", {}).get("node-name", "").startswith("vol-")
            for b in harness.qmp(spec.uuid, "query-block")
        )
        assert not _locked(volume)  # blockdev-del released it
        assert _read(volume, 0, len(MARKER)) == MARKER
        assert _read(volume, 4096, len(GUEST_WROTE)) == GUEST_WROTE

    # Attached again: back in the lowest free slot, and the guest sees it again.
    driver.attach_disk(spec.uuid, _disk(volume, serial))
    harness.wait_line(spec.uuid, f"kumo-guest: disk {vdc}", count=2, timeout=HOTPLUG_DEADLINE)
    second = _volume(harness, harness.state_dir, "v2")
    driver.attach_disk(spec.uuid, _disk(second, "second-volume"))
    harness.wait_line(spec.uuid, f"kumo-guest: disk {vdd}", timeout=HOTPLUG_DEADLINE)
    assert [d.pci_slot for d in driver.disks(spec.uuid)] == [FIRST, SECOND]

    # A guest that does not answer in time: an error, and the disk stays in the spec...
    with pytest.raises(HypervisorError, match="did not release"):
        driver.detach_disk(spec.uuid, "second-volume", timeout=0)
    harness.wait_line(spec.uuid, f"kumo-guest: disk-gone {vdd}", timeout=HOTPLUG_DEADLINE)
    # ...until a retry, which finds the guest let it go meanwhile, finishes the job.
    driver.detach_disk(spec.uuid, "second-volume")
    assert [d.serial for d in driver.disks(spec.uuid)] == [serial]
    if qemu:
        assert _vol_nodes(harness, spec.uuid) == _nodes_of(serial)
        assert not _locked(second)
        _loop_device_disk(harness, spec.uuid, vdd)
    driver.destroy(spec.uuid)


def _loop_device_disk(h: Harness, uuid: str, name: str) -> None:
    """A host block device (a loop device over a raw file) as a disk of kind "block"."""
    backing = h.state_dir / "volumes" / "loop.raw"
    with backing.open("wb") as f:
        f.truncate(8 << 20)
    found = subprocess.run(
        ["losetup", "--find", "--show", str(backing)], capture_output=True, text=True
    )
    if found.returncode != 0:
        pytest.skip(f"no loop device here: {found.stderr.strip()}")
    loop = found.stdout.strip()
    try:
        disk = DiskSpec(loop, "raw", serial="loop-volume", kind="block")
        h.driver.attach_disk(uuid, disk)
        h.wait_line(uuid, f"kumo-guest: disk {name}", count=2, timeout=HOTPLUG_DEADLINE)
        assert "loop-volume" in {d.serial for d in h.driver.disks(uuid)}
        h.driver.detach_disk(uuid, "loop-volume")
        h.wait_line(uuid, f"kumo-guest: disk-gone {name}", count=2, timeout=HOTPLUG_DEADLINE)
    finally:
        subprocess.run(["losetup", "--detach", loop], capture_output=True)


def test_shut_down_paused_and_suspended_guests(harness: Harness) -> None:
    """Shut down: the spec only, seen at the next boot. Paused: hot-plugged (seen once it
    runs), but no detach. Suspended: neither. A hot-plugged disk survives suspend/resume."""
    driver = harness.driver
    spec = harness.spec(name="vm-cold")
    vdc, vdd = _extra_names(spec)
    v1 = _volume(harness, harness.state_dir, "c1")
    v2 = _volume(harness, harness.state_dir, "c2")
    driver.spawn(spec)
    harness.wait_line(spec.uuid, "kumo-guest: hostname vm-cold")
    driver.power_off(spec.uuid, timeout=30)

    state = driver.attach_disk(spec.uuid, _disk(v1, "cold-1"))
    assert state.power_state == PowerState.SHUTDOWN
    assert [(d.serial, d.pci_slot) for d in driver.disks(spec.uuid)] == [("cold-1", FIRST)]
    assert harness.new_driver().disks(spec.uuid) == driver.disks(spec.uuid)
    assert f"kumo-guest: disk {vdc}" not in harness.console(spec.uuid)
    driver.power_on(spec.uuid)
    text = _booted(harness, spec.uuid, 2)
    assert f"kumo-guest: disk {vdc}" in text.rsplit(BOOT, 1)[1]  # seen at boot

    assert driver.pause(spec.uuid).power_state == PowerState.PAUSED
    with pytest.raises(HypervisorError, match="paused"):
        driver.detach_disk(spec.uuid, "cold-1")
    assert driver.attach_disk(spec.uuid, _disk(v2, "cold-2")).power_state == PowerState.PAUSED
    driver.unpause(spec.uuid)
    harness.wait_line(spec.uuid, f"kumo-guest: disk {vdd}", timeout=HOTPLUG_DEADLINE)

    # Suspend and resume with a hot-plugged disk: the resumed QEMU has it in its slot.
    driver.suspend(spec.uuid)
    with pytest.raises(HypervisorError, match="suspended"):
        driver.attach_disk(spec.uuid, _disk(v1, "cold-3"))
    with pytest.raises(HypervisorError, match="suspended"):
        driver.detach_disk(spec.uuid, "cold-2")
    last = max(_alive(harness.console(spec.uuid)))
    assert driver.resume(spec.uuid).power_state == PowerState.RUNNING
    harness.wait_console(spec.uuid, lambda t: max(_alive(t)) > last, "the guest going on")
    assert [d.serial for d in driver.disks(spec.uuid)] == ["cold-1", "cold-2"]

    # Shut down again: detaching is the spec only; the next boot has just the one left.
    driver.power_off(spec.uuid, timeout=30)
    assert driver.detach_disk(spec.uuid, "cold-1").power_state == PowerState.SHUTDOWN
    assert [d.serial for d in driver.disks(spec.uuid)] == ["cold-2"]
    driver.power_on(spec.uuid)
    text = _booted(harness, spec.uuid, 3)
    last_boot = text.rsplit(BOOT, 1)[1]
    assert f"kumo-guest: disk {vdc}" in last_boot and f"kumo-guest: disk {vdd}" not in last_boot
    with pytest.raises(HypervisorError):
        driver.attach_disk(spec.uuid, DiskSpec(str(v1)))  # no serial: no identity
    driver.destroy(spec.uuid)


@pytest.fixture
def other(harness: Harness) -> Iterator[Harness]:
    """A second host of the same kind, with state of its own."""
    h = Harness(harness.kind, Path(tempfile.mkdtemp(prefix="kd-", dir="/tmp")), harness.guest)
    try:
        yield h
    finally:
        h.cleanup()


def _until_done(h: Harness, uuid: str) -> MigrationProgress:
    deadline = time.monotonic() + MIGRATION_DEADLINE
    while time.monotonic() < deadline:
        progress = h.driver.migration_progress(uuid)
        if progress.status not in ("active", "none"):
            return progress
        time.sleep(0.05)
    raise AssertionError(f"the migration did not end in {MIGRATION_DEADLINE}s")


def _finish(h: Harness, uuid: str) -> GuestState:
    """finish_incoming as the agent calls it: again while the state is still arriving (the
    source may say completed a moment before the destination has loaded it all)."""
    deadline = time.monotonic() + MIGRATION_DEADLINE
    while True:
        try:
            return h.driver.finish_incoming(uuid, run=True)
        except HypervisorError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize("block", [True, False], ids=["block", "shared-disk"])
def test_live_migration_keeps_a_hot_plugged_disk(
    harness: Harness, other: Harness, block: bool
) -> None:
    """The destination, started from a spec carrying the source's disks() (the hot-plugged
    disk in its PCI slot), takes the guest over; the guest still has the disk (it can be
    unplugged there) and, for a block migration, its data was copied."""
    qemu = harness.kind == "qemu"
    shared = Path(tempfile.mkdtemp(prefix="ks-", dir="/tmp"))
    try:
        spec = _with_own_root(harness, harness.spec(name="vm-move"), shared)
        vdc, _ = _extra_names(spec)
        source, dest = harness.driver, other.driver
        source.spawn(spec)
        harness.wait_line(spec.uuid, "kumo-guest: alive 1")
        volume = _volume(harness, shared, "mv", marker=True)
        source.attach_disk(spec.uuid, _disk(volume, "moving-volume"))
        harness.wait_line(spec.uuid, f"kumo-guest: disk {vdc}", timeout=HOTPLUG_DEADLINE)

        # A destination prepared without the disk is refused before anything moves.
        bare = dataclasses.replace(spec, root_disk=None) if block else spec
        endpoint = dest.prepare_incoming(bare, block)
        with pytest.raises(HypervisorError, match="PCI slot"):
            source.migrate_to(spec.uuid, endpoint, block)
        dest.destroy(spec.uuid)
        assert source.get_state(spec.uuid).power_state == PowerState.RUNNING

        disks = tuple(source.disks(spec.uuid))
        dest_spec = dataclasses.replace(spec, extra_disks=disks)
        if block and qemu:  # the destination's own, empty copies, filled by the migration
            assert harness.guest is not None
            root = create_overlay(
                Path(harness.guest.root_disk), other.state_dir / f"{spec.uuid}.qcow2"
            )
            copy = _volume(other, other.state_dir, "mv")
            dest_spec = dataclasses.replace(
                dest_spec,
                root_disk=str(root),
                extra_disks=tuple(dataclasses.replace(d, path=str(copy)) for d in disks),
            )
        endpoint = dest.prepare_incoming(dest_spec, block)
        source.migrate_to(spec.uuid, endpoint, block)
        progress = _until_done(harness, spec.uuid)
        assert progress.status == "completed", progress
        with pytest.raises(HypervisorError, match="migrated"):  # it has left
            source.detach_disk(spec.uuid, "moving-volume")
        last = max(_alive(harness.console(spec.uuid)))
        assert _finish(other, spec.uuid).power_state == PowerState.RUNNING
        other.wait_console(
            spec.uuid,
            lambda t: bool(_alive(t)) and max(_alive(t)) > last,
            f"the alive counter past {last} on the destination",
        )
        source.destroy(spec.uuid)
        assert [(d.serial, d.pci_slot) for d in dest.disks(spec.uuid)] == [("moving-volume", FIRST)]
        # The guest on the destination has the disk where the spec says: it unplugs it.
        dest.detach_disk(spec.uuid, "moving-volume")
        other.wait_line(spec.uuid, f"kumo-guest: disk-gone {vdc}", timeout=HOTPLUG_DEADLINE)
        assert dest.disks(spec.uuid) == []
        if qemu:
            target = Path(dest_spec.extra_disks[0].path)
            assert not _locked(target)
            assert _read(target, 0, len(MARKER)) == MARKER  # copied (block) or shared
        dest.destroy(spec.uuid)
    finally:
        with contextlib.suppress(OSError):
            import shutil

            shutil.rmtree(shared)
