"""No kernel needed: the spec's JSON round trip, names, rendered rule sets, the fake driver
and the registry."""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from pathlib import Path

import pytest

from kumo.drivers.network import dhcp_leases, names, registry
from kumo.drivers.network.base import NetworkError
from kumo.drivers.network.dhcp import DhcpServer
from kumo.drivers.network.firewall import render, render_rule
from kumo.drivers.network.routers import render_nat
from kumo.drivers.network.spec import (
    AddressPair,
    DhcpSpec,
    FixedIp,
    FloatingIp,
    HostNetworkSpec,
    HostRoute,
    NetworkSpec,
    PortSpec,
    RouterGateway,
    RouterInterface,
    RouterSpec,
    SecurityRule,
    StaticLease,
    SubnetSpec,
    Underlay,
)

NET, VLAN_NET, EXT = (str(uuid.UUID(int=i)) for i in (1, 2, 3))
PORT, VLAN_PORT = (str(uuid.UUID(int=i)) for i in (11, 12))


def sample() -> HostNetworkSpec:
    return HostNetworkSpec(
        host_namespace="kumo-host",
        underlay=Underlay("eth1", "192.0.2.10", 1500),
        physical_networks={"physnet1": "eth2"},
        networks=(
            NetworkSpec(NET, "vxlan", 5001, mtu=1450, peers=("192.0.2.11",)),
            NetworkSpec(VLAN_NET, "vlan", 100, "physnet1"),
            NetworkSpec(EXT, "flat", physical_network="physnet1"),
        ),
        ports=(
            PortSpec(
                PORT,
                NET,
                "fa:16:3e:00:00:01",
                (FixedIp("10.0.0.5", 24),),
                allowed_address_pairs=(AddressPair("10.0.0.0/28"),),
                rules=(
                    SecurityRule("ingress", protocol=6, port_range_min=22, port_range_max=22),
                    SecurityRule(
                        "ingress", protocol=1, icmp_type=8, remote_ip_prefix="10.1.0.0/16"
                    ),
                    SecurityRule("egress", ethertype="IPv6"),
                ),
            ),
            PortSpec(VLAN_PORT, VLAN_NET, "fa:16:3e:00:00:02"),
        ),
        dhcp=(
            DhcpSpec(
                NET,
                "fa:16:3e:00:00:03",
                (
                    SubnetSpec(
                        "10.0.0.0/24",
                        "10.0.0.1",
                        ("10.0.0.53",),
                        (HostRoute("10.9.0.0/16", "10.0.0.9"),),
                        "10.0.0.2",
                    ),
                ),
                (StaticLease("FA:16:3E:00:00:01", "10.0.0.5", "vm1"),),
                metadata=True,
            ),
        ),
        routers=(
            RouterSpec(
                str(uuid.UUID(int=21)),
                (RouterInterface(NET, "10.0.0.1", 24, "fa:16:3e:00:00:04"),),
                RouterGateway(EXT, "203.0.113.10", 24, "203.0.113.1"),
                (FloatingIp("203.0.113.20", "10.0.0.5"),),
            ),
        ),
    )


def test_spec_json_round_trip() -> None:
    spec = sample()
    assert HostNetworkSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.validate() == []


def test_validate_says_what_is_wrong() -> None:
    bad = HostNetworkSpec(None, networks=(NetworkSpec(NET, "vxlan"), NetworkSpec(EXT, "flat")))
    problems = " ".join(bad.validate())
    assert "needs a segmentation id" in problems and "underlay" in problems
    assert "no interface mapping" in problems


def test_names_are_short_deterministic_and_distinct() -> None:
    made = [
        names.bridge(NET),
        names.tap(PORT),
        names.vxlan(NET),
        *names.dhcp_legs(NET),
        *names.router_legs(PORT, NET),
        *names.gateway_legs(PORT),
    ]
    assert all(len(n) <= names.IFNAMSIZ for n in made)
    assert len(set(made)) == len(made)
    assert names.bridge(NET) == names.bridge(NET.upper())
    assert names.router_legs(PORT, NET) != names.router_legs(PORT, EXT)


def test_rendered_rules() -> None:
    spec = sample()
    text = render(spec.ports, {p.id: names.tap(p.id) for p in spec.ports})
    assert text == render(spec.ports, {p.id: names.tap(p.id) for p in spec.ports})
    assert "ct state established,related accept" in text
    assert "ip saddr != { 10.0.0.0/28, 10.0.0.5 } drop" in text
    assert "meta nfproto ipv4 meta l4proto 6 th dport 22 return" in text
    rule = SecurityRule("ingress", protocol=1, icmp_type=8, remote_ip_prefix="10.1.0.0/16")
    assert render_rule(rule) == (
        "meta nfproto ipv4 ip saddr 10.1.0.0/16 meta l4proto 1 icmp type 8 return"
    )
    nat = render_nat(spec.routers[0])
    assert "ip daddr 203.0.113.20 dnat to 10.0.0.5" in nat
    assert "ip saddr { 10.0.0.0/24 } snat to 203.0.113.10" in nat


def test_dnsmasq_files(tmp_path: Path) -> None:
    spec = sample()
    server = DhcpServer(tmp_path, spec.dhcp[0], spec.networks[0], "s1")
    conf = server.render_conf()
    assert "port=0" in conf and "bind-interfaces" in conf
    assert "dhcp-range=set:s0,10.0.0.0,static,255.255.255.0,86400s" in conf
    assert "dhcp-option-force=option:mtu,1450" in conf
    assert server.render_hosts() == "fa:16:3e:00:00:01,10.0.0.5,vm1\n"
    opts = server.render_opts()
    assert (
        "tag:s0,option:classless-static-route,10.9.0.0/16,10.0.0.9,"
        "169.254.169.254/32,10.0.0.2,0.0.0.0/0,10.0.0.1"
    ) in opts


def test_stale_dhcp_leases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The leases dnsmasq wrote that no static host wants (another MAC now holds the
    address, or no port does) on a subnet it serves, unless expired already; without
    dhcp_release, a clear error."""
    later, past = int(time.time()) + 3600, int(time.time()) - 60
    leases = tmp_path / "leases"
    leases.write_text(
        f"{later} fa:16:3e:00:00:01 10.0.0.5 vm1 01:fa:16:3e:00:00:01\n"
        f"{later} FA:16:3E:00:00:09 10.0.0.6 * *\n"
        "0 fa:16:3e:00:00:07 10.0.0.7 old *\n"
        f"{later} fa:16:3e:00:00:08 10.9.0.8 elsewhere *\n"
        f"{past} fa:16:3e:00:00:06 10.0.0.9 expired *\n"
        "duid 00:01:00:01:2c:00:00:00:fa:16:3e:00:00:02\n"
    )
    handed_out = dhcp_leases.read(leases)
    assert handed_out[0] == dhcp_leases.Lease(
        "fa:16:3e:00:00:01", "10.0.0.5", "01:fa:16:3e:00:00:01", later
    )
    wanted = [
        StaticLease("fa:16:3e:00:00:01", "10.0.0.5"),
        StaticLease("fa:16:3e:00:00:0a", "10.0.0.6"),
    ]
    served = [ipaddress.IPv4Network("10.0.0.0/24")]
    assert dhcp_leases.stale(handed_out, wanted, served) == [
        dhcp_leases.Lease("fa:16:3e:00:00:09", "10.0.0.6", "*", later),
        dhcp_leases.Lease("fa:16:3e:00:00:07", "10.0.0.7"),
    ]
    assert dhcp_leases.read(tmp_path / "none") == []
    assert dhcp_leases.release("ns", "ns-x", leases, []) == []
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NetworkError, match=r"install Debian's dnsmasq-utils.*10\.0\.0\.7"):
        dhcp_leases.release(
            "ns", "ns-x", leases, [dhcp_leases.Lease("fa:16:3e:00:00:07", "10.0.0.7")]
        )


def test_fake_driver_semantics(tmp_path: Path) -> None:
    driver = registry.create("fake", tmp_path, network_types=("flat", "local", "vxlan"))
    spec = sample()
    report = driver.apply(spec)
    assert "802.1Q" in report.faults[VLAN_NET]
    assert report.faults[VLAN_PORT].startswith(f"binding failed: network {VLAN_NET}")
    assert f"created bridge {names.bridge(NET)}" in report.changes
    assert driver.apply(spec).changes == []
    restarted = registry.create("fake", tmp_path, network_types=("flat", "local", "vxlan"))
    assert restarted.adopt() == spec
    assert restarted.apply(spec).changes == []
    smaller = HostNetworkSpec(
        spec.host_namespace, spec.underlay, spec.networks, spec.physical_networks
    )
    assert restarted.apply(smaller).changes == [
        f"removed dhcp {names.dhcp_namespace(NET)}",
        f"removed port {names.tap(PORT)}",
        f"removed router {names.router_namespace(spec.routers[0].id)}",
    ]
    assert restarted.teardown().changes


def test_registry() -> None:
    assert registry.available() == ["fake", "linux"]
    with pytest.raises(NetworkError, match="unknown network driver"):
        registry.create("ovs", Path("/nonexistent"))
