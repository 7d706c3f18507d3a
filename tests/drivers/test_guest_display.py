"""Guests' display device: new guests get std VGA (what the VNC console shows), guests
started before displays existed keep none for as long as they exist (adoption, power
cycles, suspend), and a live migration's destination must be started with the source's
display: the source refuses any other before QEMU would fail the migration."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import pytest
from hvharness import Harness

from kumo.agent.compute import incoming_spec
from kumo.agent.spec import display_model
from kumo.drivers.hypervisor import HypervisorError, PowerState
from kumo.drivers.hypervisor.base import (
    GuestSpec,
    carry_display,
    check_display,
    rescue_spec,
)
from kumo.drivers.hypervisor.fake import FakeDriver
from kumo.drivers.hypervisor.qemu import QemuDriver
from kumo.drivers.hypervisor.qemu_process import DISPLAY_SLOT
from kumo.protocol import ConsoleEndpoints

UUID = "3f7c2a52-7a4b-4c55-9b0e-3f1f1c1e9a01"
BASE = GuestSpec(uuid=UUID, name="vm", vcpus=1, memory_mb=128, root_disk="/root.qcow2")


def test_a_spec_persisted_before_displays_has_none() -> None:
    old = BASE.to_dict()
    del old["display"]
    assert GuestSpec.from_dict(old).display == "none"
    vga = dataclasses.replace(BASE, display="vga")
    assert GuestSpec.from_dict(json.loads(json.dumps(vga.to_dict()))) == vga


def test_image_property_chooses_the_display() -> None:
    """Nova's hw_video_model: none means none; anything else is the VGA the driver has."""
    assert display_model({}) == "vga"
    assert display_model({"hw_video_model": "none"}) == "none"
    assert display_model({"hw_video_model": "NONE"}) == "none"
    assert display_model({"hw_video_model": "virtio"}) == "vga"


def test_qemu_command_line_has_vga_first_in_its_slot(tmp_path: Path) -> None:
    driver = QemuDriver(tmp_path, accelerator="tcg")
    argv = driver._argv(dataclasses.replace(BASE, display="vga"), None)
    at = argv.index(f"VGA,id=video0,bus=pci.0,addr={DISPLAY_SLOT:#x}")
    assert argv[at - 1] == "-device"
    first_other = next(i for i, a in enumerate(argv) if a.startswith("virtio-blk-pci"))
    assert at < first_other  # devices QEMU places itself go round the display's slot
    assert argv[argv.index("-display") + 1] == "none"  # no window: VNC shows it
    assert not any(a.startswith("VGA") for a in driver._argv(BASE, None))
    with pytest.raises(HypervisorError, match="unknown display model"):
        driver._argv(dataclasses.replace(BASE, display="cirrus"), None)  # type: ignore[arg-type]


def test_an_existing_guest_keeps_its_display() -> None:
    vga = dataclasses.replace(BASE, display="vga")
    assert carry_display(vga, BASE) == BASE  # a guest from before displays: still none
    assert carry_display(vga, None) == vga  # a guest started afresh: what was chosen
    assert carry_display(BASE, vga).display == "vga"
    rescued = rescue_spec(vga, GuestSpec(uuid=UUID, name="r", vcpus=1, memory_mb=128))
    assert rescued.display == "vga"  # rescue boots other disks, not other hardware


def test_source_refuses_a_destination_with_another_display() -> None:
    vga = dataclasses.replace(BASE, display="vga")
    check_display(UUID, vga, {"display": "vga"})
    check_display(UUID, BASE, {"display": "none"})
    check_display(UUID, BASE, {})  # a destination agent from before displays: none
    with pytest.raises(HypervisorError, match="the destination's display is 'none'"):
        check_display(UUID, vga, {})
    with pytest.raises(HypervisorError, match="the source's is 'none'"):
        check_display(UUID, BASE, {"display": "vga"})


def test_fake_live_migration_needs_the_sources_display(tmp_path: Path) -> None:
    """The driver contract, on the fake: the endpoint says the destination's display and
    the source refuses another; prepared with the source's, the migration goes through."""
    source, dest = FakeDriver(tmp_path / "a"), FakeDriver(tmp_path / "b")
    source.spawn(BASE)  # a guest from before displays
    endpoint = dest.prepare_incoming(dataclasses.replace(BASE, display="vga"), block=True)
    assert endpoint["display"] == "vga"
    with pytest.raises(HypervisorError, match="display"):
        source.migrate_to(UUID, endpoint, block=True)
    dest.destroy(UUID)
    endpoint = dest.prepare_incoming(BASE, block=True)
    source.migrate_to(UUID, endpoint, block=True)
    deadline = time.monotonic() + 30
    while source.migration_progress(UUID).status != "completed":
        assert time.monotonic() < deadline, "the fake migration never completed"
    assert dest.finish_incoming(UUID, run=True).power_state == PowerState.RUNNING


def test_destination_takes_the_display_the_source_runs_the_guest_with() -> None:
    """The agent's decision for a live migration's destination: the source's display as
    the control plane relays it, whatever the image would give the guest now."""
    built = dataclasses.replace(BASE, display="vga")  # what this host's builder made
    assert incoming_spec(built, {"source_display": "none"}) == BASE  # a guest from before
    assert incoming_spec(BASE, {"source_display": "vga"}) == built
    assert incoming_spec(built, {}) == built  # a control plane that does not say
    with pytest.raises(HypervisorError, match="unknown display"):
        incoming_spec(built, {"source_display": "cirrus"})


def test_console_endpoints_carry_the_display() -> None:
    vga = ConsoleEndpoints("127.0.0.1", 5900, 4000, "vga")
    assert ConsoleEndpoints.from_dict(vga.to_dict()) == vga
    old = {"address": "127.0.0.1", "vnc_port": 5900, "serial_port": None}  # an older agent
    assert ConsoleEndpoints.from_dict(old).display is None
    for bad in ("", "v g a", 7, "x" * 17):
        with pytest.raises(ValueError, match=r"consoles\.display"):
            ConsoleEndpoints.from_dict({**old, "display": bad})


@pytest.mark.parametrize("harness", ["qemu"], indirect=True)
def test_qemu_guest_from_before_displays_stays_without_one(harness: Harness) -> None:
    """Restarted from its persisted spec after an upgrade, by a spawn that asks for VGA:
    the guest keeps the hardware it had (none); a new guest gets VGA, and QEMU has it."""
    driver = harness.driver
    assert isinstance(driver, QemuDriver)
    # No root disk: the kernel boots from its initramfs, and two guests cannot both
    # write the shared image.
    old = dataclasses.replace(harness.spec(name="old-display"), root_disk=None)
    driver.spawn(old)
    assert driver.power_off(old.uuid, timeout=0).power_state == PowerState.SHUTDOWN
    upgraded = harness.new_driver()
    state = upgraded.spawn(dataclasses.replace(old, display="vga"))
    assert state.consoles is not None and state.consoles.display == "none"  # as QEMU says
    argv = (harness.state_dir / "instances" / old.uuid / "qemu.argv").read_text()
    assert "VGA" not in argv
    devices = harness.qmp(old.uuid, "qom-list", {"path": "/machine/peripheral"})
    assert not [d for d in devices if d["type"] == "child<VGA>"], devices

    new = dataclasses.replace(harness.spec(name="new-display"), root_disk=None, display="vga")
    state = upgraded.spawn(new)
    assert state.consoles is not None and state.consoles.display == "vga"
    devices = harness.qmp(new.uuid, "qom-list", {"path": "/machine/peripheral"})
    assert ("video0", "child<VGA>") in {(d["name"], d["type"]) for d in devices}
