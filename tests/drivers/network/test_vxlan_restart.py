"""VXLAN between two host namespaces joined by a veth underlay; adoption after an agent
restart; removal of everything; VLAN networks on kernels without 802.1Q."""

from __future__ import annotations

import os
import signal
import uuid

import pytest
from netlab import Lab
from test_l2_dhcp import ALLOW_ALL, spec_one_network

from kumo.drivers.network import capabilities, names, netns
from kumo.drivers.network.dhcp import DhcpServer
from kumo.drivers.network.spec import (
    DhcpSpec,
    FixedIp,
    HostNetworkSpec,
    NetworkSpec,
    PortSpec,
    StaticLease,
    SubnetSpec,
    Underlay,
)

from kumoproc import wait_for


def _ns_inode(name: str) -> int:
    return os.stat(f"/run/netns/{name}").st_ino


def test_vxlan_between_two_hosts(lab: Lab) -> None:
    host_a, host_b = lab.ns("ha"), lab.ns("hb")
    netns.ip(host_a, "link", "add", "ul0", "type", "veth", "peer", "name", "ul0", "netns", host_b)
    for h, addr in ((host_a, "10.99.0.1/24"), (host_b, "10.99.0.2/24")):
        netns.ip(h, "addr", "add", addr, "dev", "ul0")
        netns.ip(h, "link", "set", "ul0", "up")
    net = str(uuid.uuid4())
    pa, pb = str(uuid.uuid4()), str(uuid.uuid4())
    mac_a, mac_b = "fa:16:3e:00:03:01", "fa:16:3e:00:03:02"
    ga = lab.guest(host_a, names.tap(pa), mac_a)
    gb = lab.guest(host_b, names.tap(pb), mac_b)
    ports = (
        PortSpec(pa, net, mac_a, (FixedIp("10.40.0.11", 24),), rules=ALLOW_ALL),
        PortSpec(pb, net, mac_b, (FixedIp("10.40.0.12", 24),), rules=ALLOW_ALL),
    )

    def host_spec(host: str, local: str, peer: str, port: PortSpec, dhcp: bool) -> HostNetworkSpec:
        return HostNetworkSpec(
            host_namespace=host,
            underlay=Underlay("ul0", local),
            networks=(NetworkSpec(net, "vxlan", segmentation_id=1001, mtu=1450, peers=(peer,)),),
            ports=(port,),
            # DHCP runs on host A only, as one DHCP agent would; B's guest gets it over VXLAN.
            dhcp=(
                DhcpSpec(
                    net,
                    "fa:16:3e:00:03:03",
                    (SubnetSpec("10.40.0.0/24", dhcp_ip="10.40.0.2"),),
                    tuple(StaticLease(p.mac, p.fixed_ips[0].ip) for p in ports),
                ),
            )
            if dhcp
            else (),
        )

    a = lab.driver("a").apply(host_spec(host_a, "10.99.0.1", "10.99.0.2", ports[0], True))
    b = lab.driver("b").apply(host_spec(host_b, "10.99.0.2", "10.99.0.1", ports[1], False))
    assert not a.faults and not b.faults, (a.faults, b.faults)
    lease = lab.dhcp(gb)
    assert (lease.ip, lease.mtu) == ("10.40.0.12", "1450"), "DHCP across the overlay"
    assert lab.dhcp(ga).ip == "10.40.0.11"
    assert lab.pings(ga, "10.40.0.12") and lab.pings(gb, "10.40.0.11")
    # A full-size (1450) packet crosses without fragmentation trouble.
    assert lab.pings_from(ga, "10.40.0.11", "10.40.0.12", size=1422)

    too_big = NetworkSpec(net, "vxlan", segmentation_id=1001, mtu=1500, peers=("10.99.0.1",))
    spec_b = host_spec(host_b, "10.99.0.2", "10.99.0.1", ports[1], False)
    report = lab.drivers[1].apply(
        HostNetworkSpec(host_b, spec_b.underlay, (too_big,), ports=spec_b.ports)
    )
    assert "lower the network MTU to 1450" in report.faults[net]


def test_restart_adopts_and_removal_cleans_up(lab: Lab) -> None:
    host = lab.ns("host")
    driver = lab.driver()
    net = str(uuid.uuid4())
    p1, p2 = str(uuid.uuid4()), str(uuid.uuid4())
    ports = [(p1, "fa:16:3e:00:04:11", "10.20.0.11"), (p2, "fa:16:3e:00:04:12", "10.20.0.12")]
    g1 = lab.guest(host, names.tap(p1), ports[0][1])
    g2 = lab.guest(host, names.tap(p2), ports[1][1])
    spec = spec_one_network(host, net, ports)
    driver.apply(spec)
    lab.dhcp(g1)
    lab.dhcp(g2)
    dhcp_ns = names.dhcp_namespace(net, driver.scope)
    server = DhcpServer(
        driver.state_dir / "dhcp" / net, spec.dhcp[0], spec.networks[0], driver.scope
    )
    pid = server.running_pid()
    inodes = {ns: _ns_inode(ns) for ns in (host, dhcp_ns)}
    pinger = lab.pinger(g1, "10.20.0.12")
    pinger.wait_replies(3)

    # The agent restarts: a new driver object over the same state directory.
    restarted = lab.driver_at(driver.state_dir)
    assert restarted.adopt() == spec
    report = restarted.apply(spec)
    assert report.changes == [] and not report.faults
    assert server.running_pid() == pid, "the same dnsmasq, adopted by pidfile"
    assert {ns: _ns_inode(ns) for ns in inodes} == inodes, "the same namespaces"

    # A lease change reloads dnsmasq in place (SIGHUP), no restart.
    changed = spec_one_network(
        host, net, [*ports, (str(uuid.uuid4()), "fa:16:3e:00:04:13", "10.20.0.13")]
    )
    changed = HostNetworkSpec(host, None, changed.networks, ports=spec.ports, dhcp=changed.dhcp)
    report = restarted.apply(changed)
    assert any("reloaded dnsmasq" in c for c in report.changes), report.changes
    assert server.running_pid() == pid
    pinger.wait_replies(3)
    sent, received = pinger.stop()
    assert sent >= 3 and sent - received <= 1, pinger.output[-400:]

    # A dnsmasq that died is started again by the next apply (level-triggered).
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: server.running_pid() is None, 5, "dnsmasq to die")
    report = restarted.apply(changed)
    assert any("started dnsmasq" in c for c in report.changes), report.changes
    assert lab.dhcp(g1).ip == "10.20.0.11"

    # Everything listed goes away when the spec no longer lists it.
    restarted.apply(HostNetworkSpec(host_namespace=host))
    assert not netns.exists(dhcp_ns)
    assert server.running_pid() is None
    left = [link["ifname"] for link in netns.ip_json(host, "link", "show")]
    assert not [n for n in left if names.is_kumo_device(n)], left
    tables = netns.run(["nft", "list", "tables"], namespace=host)
    assert "kumo_fw" in tables  # empty rule set stays until teardown
    restarted.teardown()
    assert "kumo_fw" not in netns.run(["nft", "list", "tables"], namespace=host)
    assert restarted.owned_namespaces() == set()


def test_vlan_network(lab: Lab) -> None:
    caps = capabilities.detect()
    if not caps.supports("vlan"):
        pytest.skip(caps.reason("vlan"))
    host = lab.ns("host")
    netns.ip(host, "link", "add", "phys0", "type", "dummy")
    spec = HostNetworkSpec(
        host_namespace=host,
        physical_networks={"physnet1": "phys0"},
        networks=(NetworkSpec(str(uuid.uuid4()), "vlan", 100, "physnet1"),),
    )
    assert not lab.driver().apply(spec).faults


def test_a_fault_neither_deletes_nor_unfilters(lab: Lab) -> None:
    """A network that cannot be set up this time (its physnet interface is missing) gives
    faults with what to do; its port's device stays and stays filtered (fail closed)."""
    host = lab.ns("host")
    net, port_id = str(uuid.uuid4()), str(uuid.uuid4())
    tap = names.tap(port_id)
    lab.guest(host, tap, "fa:16:3e:00:08:01")
    spec = HostNetworkSpec(
        host_namespace=host,
        physical_networks={"physnet1": "nope0"},
        networks=(NetworkSpec(net, "flat", physical_network="physnet1"),),
        ports=(PortSpec(port_id, net, "fa:16:3e:00:08:01", (FixedIp("10.80.0.5", 24),)),),
    )
    report = lab.driver().apply(spec)
    assert "nope0 does not exist" in report.faults[net]
    assert "physical network mapping" in report.faults[net]
    assert report.faults[port_id].startswith(f"binding failed: network {net}")
    assert [link["ifname"] for link in netns.ip_json(host, "link", "show", "dev", tap)] == [tap]
    rules = netns.run(["nft", "list", "table", "bridge", "kumo_ports"], namespace=host)
    assert f'iifname "{tap}"' in rules
