"""An address freed by a deleted port and given to a new port (a new MAC) gets its DHCP
lease: dnsmasq keeps every lease it granted, so the driver releases those no port holds
any more (issue 13, item 1), on a running dnsmasq, after an agent restart that adopts it,
and only in that network's dnsmasq."""

from __future__ import annotations

import uuid
from dataclasses import replace

from netlab import Lab
from test_l2_dhcp import spec_one_network

from kumo.drivers.network import dhcp_leases, names
from kumo.drivers.network.linux import LinuxNetworkDriver
from kumo.drivers.network.spec import HostNetworkSpec

Port = tuple[str, str, str]  # (port id, MAC, IP)


def _port(n: int, ip: str) -> Port:
    return str(uuid.uuid4()), f"fa:16:3e:00:01:{n:02x}", ip


def _spec(host: str, nets: dict[str, list[Port]]) -> HostNetworkSpec:
    """Several networks on one host (each as test_l2_dhcp builds one: 10.20.0.0/24)."""
    parts = [spec_one_network(host, net, ports) for net, ports in nets.items()]
    return replace(
        parts[0],
        networks=tuple(n for p in parts for n in p.networks),
        ports=tuple(x for p in parts for x in p.ports),
        dhcp=tuple(d for p in parts for d in p.dhcp),
    )


def _dnsmasq_pid(driver: LinuxNetworkDriver, net: str) -> int:
    return int((driver.state_dir / "dhcp" / net / "dnsmasq.pid").read_text())


def _leases(driver: LinuxNetworkDriver, net: str) -> set[tuple[str, str]]:
    return {(x.mac, x.ip) for x in dhcp_leases.read(driver.state_dir / "dhcp" / net / "leases")}


def test_a_freed_address_leases_to_three_successive_ports(lab: Lab) -> None:
    host = lab.ns("host")
    driver = lab.driver()
    net, other_net = str(uuid.uuid4()), str(uuid.uuid4())
    stays = _port(1, "10.20.0.11")
    # The same address on another network, whose dnsmasq must keep its lease.
    neighbour = _port(2, "10.20.0.12")
    g_stays = lab.guest(host, names.tap(stays[0]), stays[1])
    g_neighbour = lab.guest(host, names.tap(neighbour[0]), neighbour[1])
    assert not driver.apply(_spec(host, {net: [stays], other_net: [neighbour]})).faults
    assert lab.dhcp(g_stays).ip == "10.20.0.11"
    assert lab.dhcp(g_neighbour).ip == "10.20.0.12"
    pid = _dnsmasq_pid(driver, net)

    previous: Port | None = None
    for n in (3, 4, 5):
        port = _port(n, "10.20.0.12")
        guest = lab.guest(host, names.tap(port[0]), port[1])
        report = driver.apply(_spec(host, {net: [stays, port], other_net: [neighbour]}))
        assert not report.faults, report.faults
        assert lab.dhcp(guest).ip == "10.20.0.12", f"guest {n - 2} on the freed address"
        if previous is not None:
            namespace = names.dhcp_namespace(net, driver.scope)
            assert f"released DHCP lease 10.20.0.12 of {previous[1]} in {namespace}" in (
                report.changes
            ), report.changes
        previous = port
    assert _leases(driver, net) == {(stays[1], "10.20.0.11"), (previous[1], "10.20.0.12")}
    assert _leases(driver, other_net) == {(neighbour[1], "10.20.0.12")}
    assert _dnsmasq_pid(driver, net) == pid, "released, not restarted"
    final = _spec(host, {net: [stays, previous], other_net: [neighbour]})
    assert driver.apply(final).changes == []


def test_leases_of_ports_deleted_while_the_agent_was_down_are_released(lab: Lab) -> None:
    host = lab.ns("host")
    driver = lab.driver()
    net = str(uuid.uuid4())
    stays, gone, new = _port(1, "10.20.0.11"), _port(2, "10.20.0.12"), _port(3, "10.20.0.12")
    g_gone = lab.guest(host, names.tap(gone[0]), gone[1])
    assert not driver.apply(_spec(host, {net: [stays, gone]})).faults
    assert lab.dhcp(g_gone).ip == "10.20.0.12"
    pid = _dnsmasq_pid(driver, net)
    # The agent stops; meanwhile `gone` is deleted and `new` takes its address. The agent
    # that starts again adopts the running dnsmasq and finds the old lease in its file.
    restarted = lab.driver_at(driver.state_dir)
    g_new = lab.guest(host, names.tap(new[0]), new[1])
    report = restarted.apply(_spec(host, {net: [stays, new]}))
    assert not report.faults, report.faults
    assert _dnsmasq_pid(restarted, net) == pid, "the running dnsmasq was adopted"
    assert lab.dhcp(g_new).ip == "10.20.0.12"
