"""A network lab made only of namespaces this test run creates: a "host" namespace the
driver builds its datapath in, a "provider" namespace standing for the outside world, and
guest endpoints (a veth whose far end sits in a small namespace of its own, standing in
for a VM). Everything is named with a per-run prefix and removed in `cleanup`, which
kills only the PIDs the lab started."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from kumo.drivers.network import netns
from kumo.drivers.network.dhcp import stop_in
from kumo.drivers.network.linux import LinuxNetworkDriver

from kumoproc import Pinger

UDHCPC_SCRIPT = """#!/bin/sh
# Test udhcpc hook: configure the lease and record what the server said.
case "$1" in
    deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
    bound|renew)
        ip addr add "$ip/$mask" dev "$interface"
        [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
        for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
        set -- $staticroutes
        while [ $# -ge 2 ]; do ip route replace "$1" via "$2" dev "$interface"; shift 2; done
        echo "ip=$ip mask=$mask router=$router mtu=$mtu routes=$staticroutes" >"$LEASE_FILE" ;;
esac
exit 0
"""


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, bridges and nftables")
    for tool in ("ip", "nft", "dnsmasq", "busybox"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} not installed (make system-deps)")


def sh(namespace: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["ip", "netns", "exec", namespace, *argv], capture_output=True, text=True, timeout=60
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} in {namespace}: {result.stderr or result.stdout}")
    return result


@dataclass
class Lease:
    ip: str
    mask: str
    router: str
    mtu: str
    routes: str


RUNS_DIR = Path("/tmp")
RUN_PREFIX = "kdp-p"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_driver_state(state_dir: Path) -> None:
    """Stop the dnsmasqs and delete the namespaces a driver's state directory records."""
    for directory in state_dir.glob("dhcp/*"):
        stop_in(directory)
    with contextlib.suppress(OSError, ValueError):
        for ns in json.loads((state_dir / "owned.json").read_text()):
            with contextlib.suppress(Exception):
                netns.delete(ns)


def sweep_dead_runs() -> None:
    """Remove what test runs that were killed outright (no fixture finalizer ran) left:
    names carry the run's PID, and only runs whose PID is gone are touched."""
    pattern = re.compile(rf"^{RUN_PREFIX}(\d+)-")
    for ns in netns.namespaces():
        m = pattern.match(ns)
        if m and not _alive(int(m.group(1))):
            with contextlib.suppress(Exception):
                netns.delete(ns)
    for run_dir in RUNS_DIR.glob(f"{RUN_PREFIX}*"):
        m = pattern.match(run_dir.name)
        if m and run_dir.is_dir() and not _alive(int(m.group(1))):
            for state_dir in run_dir.glob("state-*"):
                _remove_driver_state(state_dir)
            shutil.rmtree(run_dir, ignore_errors=True)


class Lab:
    def __init__(self, root: Path) -> None:
        sweep_dead_runs()
        self.run_id = f"{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.root = root
        # Driver state lives in a directory named after this run (see sweep_dead_runs).
        self.run_dir = RUNS_DIR / f"{RUN_PREFIX}{self.run_id}"
        self.run_dir.mkdir()
        self.namespaces: list[str] = []
        self.drivers: list[LinuxNetworkDriver] = []
        self.pingers: list[Pinger] = []
        self.script = root / "udhcpc.sh"
        self.script.write_text(UDHCPC_SCRIPT)
        self.script.chmod(0o755)
        self._guests = 0

    def ns(self, role: str) -> str:
        name = f"{RUN_PREFIX}{self.run_id}-{role}"
        netns.ensure(name)
        self.namespaces.append(name)
        return name

    def driver(self, name: str = "a") -> LinuxNetworkDriver:
        driver = LinuxNetworkDriver(self.run_dir / f"state-{name}")
        self.drivers.append(driver)
        return driver

    def driver_at(self, state_dir: Path) -> LinuxNetworkDriver:
        """Another driver over an existing state directory: an agent restart."""
        driver = LinuxNetworkDriver(state_dir)
        self.drivers.append(driver)
        return driver

    def provider(self, host: str, address: str, phys: str = "phys-ext") -> str:
        """The outside world: a namespace holding `address` (the external gateway), joined
        to the host namespace by a veth whose host end (`phys`) is the flat physnet."""
        prov = self.ns("prov")
        netns.ip(host, "link", "add", phys, "type", "veth", "peer", "name", "eth0", "netns", prov)
        netns.ip(host, "link", "set", phys, "up")
        netns.ip(prov, "addr", "add", address, "dev", "eth0")
        netns.ip(prov, "link", "set", "eth0", "up")
        return prov

    def guest(self, host: str, tap: str, mac: str) -> str:
        """A guest endpoint: its own namespace with `eth0` (MAC `mac`), whose peer in the
        host namespace is named like the port's tap so the driver adopts it."""
        self._guests += 1
        g = self.ns(f"g{self._guests}")
        netns.ip(host, "link", "add", tap, "type", "veth", "peer", "name", "eth0", "netns", g)
        netns.ip(g, "link", "set", "eth0", "address", mac, "up")
        return g

    def dhcp(self, guest: str, timeout: float = 15.0) -> Lease:
        lease_file = self.root / f"{guest}.lease"
        lease_file.unlink(missing_ok=True)
        result = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                guest,
                "busybox",
                "udhcpc",
                "-i",
                "eth0",
                "-q",
                "-f",
                "-n",
                "-t",
                "10",
                "-T",
                "1",
                "-O",
                "staticroutes",
                "-s",
                str(self.script),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "LEASE_FILE": str(lease_file)},
        )
        assert lease_file.exists(), f"no DHCP lease in {guest}: {result.stdout}{result.stderr}"
        fields = dict(kv.split("=", 1) for kv in lease_file.read_text().split(" ", 4))
        return Lease(
            fields["ip"], fields["mask"], fields["router"], fields["mtu"], fields["routes"].strip()
        )

    def pings(self, namespace: str, target: str, within: int = 5) -> bool:
        """True once one echo reply comes back within ``within`` seconds (a ping a second
        until then: neighbour resolution on a loaded CI host can lose the first one).
        Assertions that a path is closed pass ``within=1``: one packet, one second."""
        return self.pings_from(namespace, "", target, within=within)

    def pings_from(
        self, namespace: str, source: str, target: str, size: int = 56, within: int = 5
    ) -> bool:
        argv = ["busybox", "ping", "-c", "1", "-s", str(size)]
        argv += ["-W", "1"] if within <= 1 else ["-w", str(within)]
        if source:
            argv += ["-I", source]
        result = sh(namespace, *argv, target, check=False)
        return result.returncode == 0

    def pinger(self, namespace: str, target: str) -> Pinger:
        p = Pinger(namespace, target)
        self.pingers.append(p)
        return p

    def cleanup(self) -> None:
        for p in self.pingers:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()
        for driver in self.drivers:
            with contextlib.suppress(Exception):
                driver.teardown()
            # Whatever teardown could not remove: the driver's own namespaces and dnsmasqs.
            _remove_driver_state(driver.state_dir)
        for ns in reversed(self.namespaces):
            with contextlib.suppress(Exception):
                netns.delete(ns)
        shutil.rmtree(self.run_dir, ignore_errors=True)
