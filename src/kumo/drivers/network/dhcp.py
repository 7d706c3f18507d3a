"""DHCP (and metadata plumbing) for one network: a namespace, a veth leg into the network's
bridge, and a DHCP-only dnsmasq with static leases.

dnsmasq is started once and then kept: a changed lease set or changed options rewrite the
hosts/opts files and SIGHUP it (which re-reads both); only a change of the subnets it
serves restarts it. A restarted agent adopts the running dnsmasq through its pidfile,
checked against /proc/PID/cmdline so a recycled PID is never mistaken for ours.

A SIGHUP does not forget leases already granted, so each pass also releases those its
lease file lists and no static host wants any more (kumo.drivers.network.dhcp_leases):
an address freed by a deleted port can then be given to the next one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import time
from pathlib import Path

from kumo.drivers.network import dhcp_leases, names, netns
from kumo.drivers.network.links import LinkTable, ensure_addresses
from kumo.drivers.network.netns import NetworkError
from kumo.drivers.network.spec import DhcpSpec, NetworkSpec

METADATA_IP = "169.254.169.254"
START_DEADLINE = 10.0


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class DhcpServer:
    """The dnsmasq of one network, its files under `directory`."""

    def __init__(self, directory: Path, spec: DhcpSpec, network: NetworkSpec, scope: str) -> None:
        self.directory = directory
        self.spec = spec
        self.network = network
        self.namespace = names.dhcp_namespace(spec.network_id, scope)
        self.host_leg, self.leg = names.dhcp_legs(spec.network_id)

    @property
    def conf(self) -> Path:
        return self.directory / "dnsmasq.conf"

    @property
    def pidfile(self) -> Path:
        return self.directory / "dnsmasq.pid"

    @property
    def leases(self) -> Path:
        """dnsmasq's lease file: what it has handed out, read to find stale leases."""
        return self.directory / "leases"

    # -- rendering -------------------------------------------------------------------------

    def _v4_subnets(self) -> list[tuple[str, ipaddress.IPv4Network]]:
        out = []
        for i, subnet in enumerate(self.spec.subnets):
            net = ipaddress.ip_network(subnet.cidr)
            if isinstance(net, ipaddress.IPv4Network):
                out.append((f"s{i}", net))
        return out

    def render_conf(self) -> str:
        lines = [
            "# kumo: DHCP only for network " + self.spec.network_id,
            "port=0",
            "bind-interfaces",
            f"interface={self.leg}",
            "except-interface=lo",
            "no-hosts",
            "no-resolv",
            "user=root",
            "group=root",
            f"dhcp-leasefile={self.leases}",
            "dhcp-authoritative",
            f"pid-file={self.pidfile}",
            f"dhcp-hostsfile={self.directory / 'hosts'}",
            f"dhcp-optsfile={self.directory / 'opts'}",
        ]
        # Forced: many small DHCP clients (busybox udhcpc) do not ask for option 26.
        lines.append(f"dhcp-option-force=option:mtu,{self.spec.mtu or self.network.mtu}")
        for tag, net in self._v4_subnets():
            lines.append(
                f"dhcp-range=set:{tag},{net.network_address},static,{net.netmask},"
                f"{self.spec.lease_seconds}s"
            )
        return "\n".join(lines) + "\n"

    def render_hosts(self) -> str:
        lines = []
        for lease in sorted(self.spec.leases, key=lambda x: (x.mac, x.ip)):
            host = lease.hostname or "host-" + lease.ip.replace(".", "-").replace(":", "-")
            lines.append(f"{lease.mac.lower()},{lease.ip},{host}")
        return "\n".join(lines) + "\n"

    def render_opts(self) -> str:
        lines = []
        for i, subnet in enumerate(self.spec.subnets):
            if ipaddress.ip_network(subnet.cidr).version != 4:
                continue  # DHCPv6 is not served yet
            tag = f"s{i}"
            lines.append(
                f"tag:{tag},option:router" + (f",{subnet.gateway}" if subnet.gateway else "")
            )
            if subnet.dns_servers:
                lines.append(f"tag:{tag},option:dns-server," + ",".join(subnet.dns_servers))
            routes = [(r.destination, r.nexthop) for r in subnet.host_routes]
            if self.spec.metadata and subnet.dhcp_ip:
                routes.append((f"{METADATA_IP}/32", subnet.dhcp_ip))
            if routes:
                if subnet.gateway:  # option 121 makes clients ignore option 3: repeat it
                    routes.append(("0.0.0.0/0", subnet.gateway))
                flat = ",".join(f"{d},{n}" for d, n in routes)
                lines.append(f"tag:{tag},option:classless-static-route,{flat}")
        return "\n".join(lines) + "\n"

    # -- state -----------------------------------------------------------------------------

    def running_pid(self) -> int | None:
        """The PID of *our* dnsmasq: pidfile, alive, and its cmdline names our config."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if str(self.conf).encode() in cmdline and _pid_alive(pid) else None

    def _write(self, name: str, text: str) -> bool:
        path = self.directory / name
        with contextlib.suppress(FileNotFoundError):
            if path.read_text() == text:
                return False
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        return True

    def ensure(self, links: LinkTable) -> list[str]:
        """Namespace, leg, addresses, files and the process, changing only what differs."""
        done: list[str] = []
        if netns.ensure(self.namespace):
            done.append(f"created namespace {self.namespace}")
        done += links.ensure_veth_leg(
            self.host_leg,
            self.leg,
            self.namespace,
            self.spec.mac,
            self.network.mtu,
            names.bridge(self.spec.network_id),
        )
        wanted = set()
        for subnet in self.spec.subnets:
            if subnet.dhcp_ip:
                prefix = ipaddress.ip_network(subnet.cidr).prefixlen
                wanted.add(f"{subnet.dhcp_ip}/{prefix}")
        if self.spec.metadata:
            wanted.add(f"{METADATA_IP}/32")
        done += ensure_addresses(self.namespace, self.leg, wanted)
        self.directory.mkdir(parents=True, exist_ok=True)
        conf_changed = self._write("dnsmasq.conf", self.render_conf())
        data_changed = self._write("hosts", self.render_hosts())
        data_changed = self._write("opts", self.render_opts()) or data_changed
        pid = self.running_pid()
        if pid is not None and conf_changed:
            self.stop()
            done.append(f"restarting dnsmasq for {self.spec.network_id} (subnets changed)")
            pid = None
        if pid is None:
            pid = self._start()
            done.append(f"started dnsmasq {pid} for {self.spec.network_id}")
        elif data_changed:
            os.kill(pid, signal.SIGHUP)
            done.append(f"reloaded dnsmasq {pid} for {self.spec.network_id}")
        # A release is sent from the server's own address on the lease's subnet.
        served = [
            net
            for s in self.spec.subnets
            if s.dhcp_ip and isinstance(net := ipaddress.ip_network(s.cidr), ipaddress.IPv4Network)
        ]
        old = dhcp_leases.stale(dhcp_leases.read(self.leases), self.spec.leases, served)
        done += dhcp_leases.release(self.namespace, self.leg, self.leases, old)
        return done

    def _start(self) -> int:
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        netns.run(["dnsmasq", f"--conf-file={self.conf}"], namespace=self.namespace)
        deadline = time.monotonic() + START_DEADLINE
        while (pid := self.running_pid()) is None:
            if time.monotonic() > deadline:
                raise NetworkError(
                    f"dnsmasq for network {self.spec.network_id} did not write {self.pidfile}; "
                    "check the system log for dnsmasq errors"
                )
            time.sleep(0.01)
        return pid

    def stop(self) -> None:
        pid = self.running_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()


def stop_in(directory: Path) -> None:
    """Stop the dnsmasq whose files are in `directory` (removal, spec no longer known)."""
    conf = directory / "dnsmasq.conf"
    try:
        pid = int((directory / "dnsmasq.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return
    if str(conf).encode() in cmdline:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5.0
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
