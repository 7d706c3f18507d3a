"""The leases a network's dnsmasq has handed out, and releasing those no port holds any more.

dnsmasq keeps every lease it granted for its whole lifetime (a day by default) and will not
offer a configured address to a new MAC while another MAC's lease holds it ("not using
configured address ... because it is leased to ..."). So when a port goes and its address
is given to a new port, the old lease must be dropped, as Neutron's DHCP agent does with
`dhcp_release` (Debian's dnsmasq-utils): a DHCPRELEASE sent from inside the network's DHCP
namespace to that dnsmasq alone.

What to release is derived, not remembered: dnsmasq writes its leases to a file in the
network's state directory, and whatever lease there the desired static hosts do not list is
stale. A restarted agent (or one that adopted a running dnsmasq) therefore still releases
the leases of ports deleted while it was down.
"""

from __future__ import annotations

import ipaddress
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from kumo.drivers.network import netns
from kumo.drivers.network.netns import NetworkError
from kumo.drivers.network.spec import StaticLease

RELEASE_TOOL = "dhcp_release"
RELEASE_DEADLINE = 5.0


@dataclass(frozen=True)
class Lease:
    """One line of dnsmasq's lease file: `expiry mac ip hostname client-id` (expiry in
    seconds since the epoch, 0 for never)."""

    mac: str
    ip: str
    client_id: str = "*"
    expires: int = 0


def read(path: Path) -> list[Lease]:
    """The IPv4 leases in dnsmasq's lease file (none when it does not exist yet)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    leases = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0] == "duid":  # the DHCPv6 server's own line
            continue
        try:
            if ipaddress.ip_address(fields[2]).version != 4:
                continue
        except ValueError:
            continue
        client_id = fields[4] if len(fields) > 4 else "*"
        expires = int(fields[0]) if fields[0].isdigit() else 0
        leases.append(Lease(fields[1].lower(), fields[2], client_id, expires))
    return leases


def stale(
    handed_out: Iterable[Lease],
    wanted: Iterable[StaticLease],
    served: Iterable[ipaddress.IPv4Network],
) -> list[Lease]:
    """The leases no desired static host matches (same MAC and address), on the subnets
    this dnsmasq serves (only there does it have an address to be released from). An
    expired lease is left alone: dnsmasq drops it at the next packet it handles."""
    keep = {(w.mac.lower(), w.ip) for w in wanted}
    nets = list(served)
    now = time.time()
    return [
        lease
        for lease in handed_out
        if (lease.mac, lease.ip) not in keep
        and not 0 < lease.expires <= now
        and any(ipaddress.ip_address(lease.ip) in net for net in nets)
    ]


def release(namespace: str, interface: str, lease_file: Path, leases: list[Lease]) -> list[str]:
    """Ask the dnsmasq listening on `interface` in `namespace` to drop `leases`, and wait
    until its lease file no longer lists them (what it observed, not what was sent)."""
    if not leases:
        return []
    tool = shutil.which(RELEASE_TOOL)
    if tool is None:
        raise NetworkError(
            f"{RELEASE_TOOL} not found: install Debian's dnsmasq-utils (make system-deps). "
            "Without it the leases of deleted ports are kept and their addresses cannot be "
            f"given to new ports: {', '.join(f'{x.ip} ({x.mac})' for x in leases)}"
        )
    for lease in leases:
        argv = [tool, interface, lease.ip, lease.mac]
        if lease.client_id != "*":
            argv.append(lease.client_id)
        netns.run(argv, namespace=namespace)
    pending = {(x.mac, x.ip) for x in leases}
    deadline = time.monotonic() + RELEASE_DEADLINE
    while held := sorted(pending & {(x.mac, x.ip) for x in read(lease_file)}):
        if time.monotonic() > deadline:
            left = ", ".join(f"{ip} ({mac})" for mac, ip in held)
            raise NetworkError(
                f"dnsmasq in {namespace} still holds released leases after "
                f"{RELEASE_DEADLINE:.0f} s: {left}; check the system log for dnsmasq errors"
            )
        time.sleep(0.02)
    return [f"released DHCP lease {x.ip} of {x.mac} in {namespace}" for x in leases]
