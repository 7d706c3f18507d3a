"""Stateful security groups and anti-spoofing on the real kernel (nftables + br_netfilter
in the host namespace)."""

from __future__ import annotations

import dataclasses
import socket
import uuid

import pytest
from netlab import Lab, sh

from kumo.drivers.network import names, netns
from kumo.drivers.network.spec import (
    AddressPair,
    FixedIp,
    HostNetworkSpec,
    NetworkSpec,
    PortSpec,
    SecurityRule,
)

ICMP_IN = SecurityRule("ingress", protocol=1)


def default_group(members: list[str]) -> tuple[SecurityRule, ...]:
    """Neutron's default group, remote group expanded: egress anywhere, ingress from members."""
    return (
        SecurityRule("egress"),
        SecurityRule("egress", ethertype="IPv6"),
        *(SecurityRule("ingress", remote_ip_prefix=f"{ip}/32") for ip in members),
    )


def test_default_group_icmp_rule_and_antispoofing(lab: Lab) -> None:
    host = lab.ns("host")
    driver = lab.driver()
    net = str(uuid.uuid4())
    ids = [str(uuid.uuid4()) for _ in range(3)]
    macs = [f"fa:16:3e:00:01:{i:02x}" for i in range(1, 4)]
    ips = ["10.30.0.11", "10.30.0.12", "10.30.0.13"]
    guests = []
    for pid, mac, ip in zip(ids, macs, ips, strict=True):
        g = lab.guest(host, names.tap(pid), mac)
        sh(g, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        guests.append(g)
    a, b, outsider = guests
    group = default_group(ips[:2])
    port_a = PortSpec(ids[0], net, macs[0], (FixedIp(ips[0], 24),), rules=group)
    port_b = PortSpec(ids[1], net, macs[1], (FixedIp(ips[1], 24),), rules=group)
    # The outsider has no filtering of its own: only A's and B's rules decide.
    port_c = PortSpec(ids[2], net, macs[2], (FixedIp(ips[2], 24),), port_security_enabled=False)
    spec = HostNetworkSpec(
        host_namespace=host,
        networks=(NetworkSpec(net, "local"),),
        ports=(port_a, port_b, port_c),
    )
    assert not driver.apply(spec).faults

    assert lab.pings(a, ips[1]) and lab.pings(b, ips[0]), "members of the group talk"
    assert not lab.pings(outsider, ips[0], within=1), "inbound from outside the group is dropped"
    assert lab.pings(a, ips[2]), "egress is open, and the reply comes back (stateful)"

    # A continuous ping between members must not lose a packet while rules change.
    pinger = lab.pinger(a, ips[1])
    pinger.wait_replies(3)

    with_icmp = dataclasses.replace(port_a, rules=(*group, ICMP_IN))
    spec2 = dataclasses.replace(spec, ports=(with_icmp, port_b, port_c))
    assert driver.apply(spec2).changes == ["security group rules replaced"]
    assert lab.pings(outsider, ips[0]), "an ICMP ingress rule lets the outsider ping A"

    assert driver.apply(spec).changes == ["security group rules replaced"]
    assert not lab.pings(outsider, ips[0], within=1), "removing the rule stops it again"
    assert driver.apply(spec).changes == [], "unchanged rules are not re-applied"

    pinger.wait_replies(3)
    sent, received = pinger.stop()
    assert sent >= 5 and received == sent, pinger.output[-400:]

    # Anti-spoofing: A may not send from an address or MAC that is not its own.
    sh(a, "ip", "addr", "add", "10.30.0.99/24", "dev", "eth0")
    assert not lab.pings_from(a, "10.30.0.99", ips[1], within=1), "a forged source IP is dropped"
    assert lab.pings_from(a, ips[0], ips[1])
    sh(a, "ip", "link", "set", "eth0", "address", "fa:16:3e:00:01:99")
    assert not lab.pings(a, ips[1], within=1), "a forged MAC is dropped"
    # ...unless it is an allowed address pair (which the caller's remote-group expansion
    # then also lists as a member address in B's rules, as Neutron does).
    pair = AddressPair("10.30.0.99", "fa:16:3e:00:01:99")
    group2 = default_group([*ips[:2], "10.30.0.99"])
    a2 = dataclasses.replace(port_a, allowed_address_pairs=(pair,), rules=group2)
    b2 = dataclasses.replace(port_b, rules=group2)
    driver.apply(dataclasses.replace(spec, ports=(a2, b2, port_c)))
    assert lab.pings_from(a, "10.30.0.99", ips[1]), "an allowed address pair may send"


def _udp(namespace: str, addr: str, port: int) -> socket.socket:
    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((addr, port))
        sock.settimeout(1.0)
        return sock

    return netns.in_namespace(namespace, make)


def test_overlapping_addresses_keep_separate_connection_state(lab: Lab) -> None:
    """Two networks with the same addresses: a flow allowed on one must not open the
    same 5-tuple on the other (a conntrack zone per network)."""
    host = lab.ns("host")
    driver = lab.driver()
    nets = [str(uuid.uuid4()), str(uuid.uuid4())]
    ports, socks = [], []
    for n, net in enumerate(nets):
        for ip, inbound in (
            ("10.70.0.1", ()),
            ("10.70.0.2", (SecurityRule("ingress", protocol=17),)),
        ):
            pid, mac = str(uuid.uuid4()), f"fa:16:3e:00:07:{n}{ip[-1]}"
            g = lab.guest(host, names.tap(pid), mac)
            sh(g, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
            rules = (SecurityRule("egress"), *inbound) if n == 0 else (SecurityRule("egress"),)
            ports.append(PortSpec(pid, net, mac, (FixedIp(ip, 24),), rules=rules))
            socks.append(_udp(g, ip, 5000 if ip.endswith(".1") else 6000))
    spec = HostNetworkSpec(
        host_namespace=host,
        networks=tuple(NetworkSpec(n, "local") for n in nets),
        ports=tuple(ports),
    )
    assert not driver.apply(spec).faults
    a1, b1, a2, b2 = socks
    try:
        a1.sendto(b"hello", ("10.70.0.2", 6000))
        assert b1.recvfrom(100)[0] == b"hello", "allowed by b1's UDP ingress rule"
        b1.sendto(b"reply", ("10.70.0.1", 5000))
        assert a1.recvfrom(100)[0] == b"reply", "the reply of an allowed flow (stateful)"
        # The same 5-tuple on the other network: a2 allows no ingress at all.
        b2.sendto(b"sneak", ("10.70.0.1", 5000))
        with pytest.raises(TimeoutError):
            a2.recvfrom(100)
    finally:
        for sock in socks:
            sock.close()


def test_ipv6_default_group(lab: Lab) -> None:
    """IPv6: neighbour discovery passes, members talk, an outsider is dropped, and a
    forged IPv6 source is dropped."""
    host = lab.ns("host")
    net = str(uuid.uuid4())
    ips = ["fd00:90::11", "fd00:90::12", "fd00:90::13"]
    ids = [str(uuid.uuid4()) for _ in ips]
    macs = [f"fa:16:3e:00:09:{i:02x}" for i in range(1, 4)]
    guests = []
    for pid, mac, ip in zip(ids, macs, ips, strict=True):
        g = lab.guest(host, names.tap(pid), mac)
        sh(g, "ip", "addr", "add", f"{ip}/64", "dev", "eth0", "nodad")
        guests.append(g)
    rules = (
        SecurityRule("egress", ethertype="IPv6"),
        *(
            SecurityRule("ingress", ethertype="IPv6", remote_ip_prefix=f"{ip}/128")
            for ip in ips[:2]
        ),
    )
    ports = tuple(
        PortSpec(pid, net, mac, (FixedIp(ip, 64),), port_security_enabled=n < 2, rules=rules)
        for n, (pid, mac, ip) in enumerate(zip(ids, macs, ips, strict=True))
    )
    spec = HostNetworkSpec(host_namespace=host, networks=(NetworkSpec(net, "local"),), ports=ports)
    assert not lab.driver().apply(spec).faults
    a, b, outsider = guests
    assert lab.pings(a, ips[1]) and lab.pings(b, ips[0])
    assert not lab.pings(outsider, ips[0], within=1), "not a member"
    sh(a, "ip", "addr", "add", "fd00:90::99/64", "dev", "eth0", "nodad")
    assert not lab.pings_from(a, "fd00:90::99", ips[1], within=1), "forged IPv6 source"
