"""The contract every network driver keeps (DESIGN.md section 6), run against the fake
driver and the Linux driver alike: idempotent apply, adoption after a restart, faults for
unsupported network types (ports get a binding fault, a router with a leg on one a fault of
its own), removal, teardown."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from netlab import Lab, require_root

from kumo.drivers.network import registry
from kumo.drivers.network.base import NetworkDriver
from kumo.drivers.network.spec import (
    DhcpSpec,
    FixedIp,
    HostNetworkSpec,
    NetworkSpec,
    PortSpec,
    RouterInterface,
    RouterSpec,
    SecurityRule,
    StaticLease,
    SubnetSpec,
)


@dataclass
class Subject:
    kind: str
    host: str
    driver: NetworkDriver
    lab: Lab | None

    def restarted(self) -> NetworkDriver:
        if self.lab is not None:
            return self.lab.driver_at(self.driver.state_dir)
        return registry.create("fake", self.driver.state_dir, network_types=("flat", "local"))


@pytest.fixture(params=["fake", "linux"])
def subject(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Subject]:
    if request.param == "fake":
        state = tmp_path_factory.mktemp("fake-net")
        yield Subject(
            "fake",
            "fake-host",
            registry.create("fake", state, network_types=("flat", "local")),
            None,
        )
        return
    require_root()
    lab = Lab(tmp_path_factory.mktemp("lab"))
    try:
        yield Subject("linux", lab.ns("host"), lab.driver(), lab)
    finally:
        lab.cleanup()


def contract_spec(
    host: str, net: str, vlan_net: str, port: str, vlan_port: str, router: str
) -> HostNetworkSpec:
    return HostNetworkSpec(
        host_namespace=host,
        physical_networks={"physnet1": "lo"},
        networks=(
            NetworkSpec(net, "local", mtu=1400),
            NetworkSpec(vlan_net, "vlan", 100, "physnet1"),
        ),
        ports=(
            PortSpec(
                port,
                net,
                "fa:16:3e:00:0a:01",
                (FixedIp("10.90.0.5", 24),),
                rules=(SecurityRule("egress"),),
            ),
            PortSpec(vlan_port, vlan_net, "fa:16:3e:00:0a:02"),
        ),
        dhcp=(
            DhcpSpec(
                net,
                "fa:16:3e:00:0a:03",
                (SubnetSpec("10.90.0.0/24", "10.90.0.1", dhcp_ip="10.90.0.2"),),
                (StaticLease("fa:16:3e:00:0a:01", "10.90.0.5"),),
            ),
        ),
        # A leg on the unsupported network: the router is not built (whole), a fault.
        routers=(
            RouterSpec(
                router,
                (
                    RouterInterface(net, "10.90.0.1", 24, "fa:16:3e:00:0a:04"),
                    RouterInterface(vlan_net, "10.91.0.1", 24, "fa:16:3e:00:0a:05"),
                ),
            ),
        ),
    )


def test_contract(subject: Subject) -> None:
    driver = subject.driver
    if driver.capabilities().supports("vlan"):
        pytest.skip("this host supports VLAN: the unsupported-type fault cannot be shown")
    ids = [str(uuid.uuid4()) for _ in range(5)]
    spec = contract_spec(subject.host, *ids)
    _net, vlan_net, _port, vlan_port, router = ids

    first = driver.apply(spec)
    assert first.changed
    assert set(first.faults) == {vlan_net, vlan_port, router}, first.faults
    assert first.faults[router] == f"router needs networks not set up here: {vlan_net}"
    assert first.faults[vlan_net] == driver.capabilities().reason("vlan")
    assert first.faults[vlan_port].startswith(f"binding failed: network {vlan_net}")
    assert driver.apply(spec).changes == [], "the same spec changes nothing"

    restarted = subject.restarted()
    assert restarted.adopt() == spec
    again = restarted.apply(spec)
    assert again.changes == [], "a restarted driver adopts what is there"

    without_port = HostNetworkSpec(
        subject.host, None, spec.networks, spec.physical_networks, (spec.ports[1],), spec.dhcp
    )
    assert restarted.apply(without_port).changed, "removing a port is a change"
    assert restarted.teardown().changed
    assert restarted.adopt() is None
