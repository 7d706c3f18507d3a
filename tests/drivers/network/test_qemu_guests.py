"""Two real tiny guests (QEMU, TCG) on the datapath: their taps live in the host namespace
and are opened there by fd (QEMU stays in the root namespace), they get their addresses
from the network's dnsmasq and ping each other (a user-data script run in the guest)."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from hvharness import Harness
from netlab import Lab
from test_l2_dhcp import spec_one_network

from kumo.drivers.configdrive import ConfigDriveData, build_config_drive
from kumo.drivers.hypervisor import GuestSpec, NicSpec
from kumo.drivers.network import names
from kumo.guest import TinyGuest

PING_SCRIPT = """#!/bin/sh
peer={peer}
n=0
until ip addr show eth0 | grep -q 'inet '; do
    n=$((n + 1)); [ $n -gt 600 ] && break; sleep 0.2
done
n=0
until ping -c 1 -W 1 $peer >/dev/null 2>&1; do
    n=$((n + 1)); [ $n -gt 60 ] && {{ echo "kumo-guest: ping $peer failed"; exit 1; }}
done
echo "kumo-guest: ping $peer ok"
"""


def test_two_qemu_guests_dhcp_and_ping(lab: Lab, tiny_guest: TinyGuest) -> None:
    host = lab.ns("host")
    driver = lab.driver()
    net = str(uuid.uuid4())
    ports = [
        (str(uuid.uuid4()), "fa:16:3e:00:05:11", "10.20.0.11"),
        (str(uuid.uuid4()), "fa:16:3e:00:05:12", "10.20.0.12"),
    ]
    spec = spec_one_network(host, net, ports, metadata=False)
    report = driver.apply(spec)
    assert not report.faults, report.faults
    # Short path: a QMP socket path must fit in 108 bytes.
    harness = Harness("qemu", Path(tempfile.mkdtemp(prefix="kn-", dir="/tmp")), tiny_guest)
    try:
        uuids = []
        for (port_id, mac, _ip), (_, _, peer) in zip(ports, reversed(ports), strict=True):
            guest_uuid = str(uuid.uuid4())
            drive = build_config_drive(
                harness.state_dir / "config-drives" / f"{guest_uuid}.iso",
                ConfigDriveData(
                    uuid=guest_uuid,
                    name=f"vm-{mac[-2:]}",
                    public_keys={},
                    user_data=PING_SCRIPT.format(peer=peer).encode(),
                ),
            )
            harness.driver.spawn(
                GuestSpec(
                    uuid=guest_uuid,
                    name=f"vm-{mac[-2:]}",
                    vcpus=1,
                    memory_mb=128,
                    kernel=str(tiny_guest.kernel),
                    ramdisk=str(tiny_guest.initramfs),
                    cmdline=tiny_guest.cmdline,
                    config_drive=str(drive),
                    nics=(NicSpec(mac=mac, tap=names.tap(port_id), netns=host),),
                )
            )
            uuids.append(guest_uuid)
            argv = (harness.state_dir / "instances" / guest_uuid / "qemu.argv").read_text()
            assert "fd=" in argv and "vhost" not in argv
        for guest_uuid, (_, _, ip), (_, _, peer) in zip(uuids, ports, reversed(ports), strict=True):
            harness.wait_line(guest_uuid, f"kumo-guest: ip eth0 {ip}")
            harness.wait_console(
                guest_uuid,
                lambda text, p=peer: f"ping {p} ok" in text or f"ping {p} failed" in text,
                f"the ping to {peer}",
            )
            assert f"kumo-guest: ping {peer} ok" in harness.console(guest_uuid)
    finally:
        harness.cleanup()
