"""A router namespace between two tenant networks, with a gateway on a flat external
network (a veth from the provider namespace), SNAT out and a floating IP in."""

from __future__ import annotations

import dataclasses
import uuid

from netlab import Lab, sh

from kumo.drivers.network import names, netns
from kumo.drivers.network.spec import (
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
)

OPEN = (SecurityRule("ingress", protocol=1), SecurityRule("egress"))


def test_router_snat_and_floating_ip(lab: Lab) -> None:
    host = lab.ns("host")
    prov = lab.provider(host, "203.0.113.1/24")
    driver = lab.driver()
    ext, n1, n2, router = (str(uuid.uuid4()) for _ in range(4))
    p1, p2 = str(uuid.uuid4()), str(uuid.uuid4())
    g1 = lab.guest(host, names.tap(p1), "fa:16:3e:00:02:01")
    g2 = lab.guest(host, names.tap(p2), "fa:16:3e:00:02:02")
    for g, addr, gw in ((g1, "10.1.0.5/24", "10.1.0.1"), (g2, "10.2.0.5/24", "10.2.0.1")):
        sh(g, "ip", "addr", "add", addr, "dev", "eth0")
        sh(g, "ip", "route", "add", "default", "via", gw)
    spec = HostNetworkSpec(
        host_namespace=host,
        physical_networks={"external": "phys-ext"},
        networks=(
            NetworkSpec(ext, "flat", physical_network="external"),
            NetworkSpec(n1, "local"),
            NetworkSpec(n2, "local"),
        ),
        ports=(
            PortSpec(p1, n1, "fa:16:3e:00:02:01", (FixedIp("10.1.0.5", 24),), rules=OPEN),
            PortSpec(p2, n2, "fa:16:3e:00:02:02", (FixedIp("10.2.0.5", 24),), rules=OPEN),
        ),
        routers=(
            RouterSpec(
                id=router,
                interfaces=(
                    RouterInterface(n1, "10.1.0.1", 24, "fa:16:3e:00:02:11"),
                    RouterInterface(n2, "10.2.0.1", 24, "fa:16:3e:00:02:12"),
                ),
                gateway=RouterGateway(
                    ext, "203.0.113.10", 24, "203.0.113.1", mac="fa:16:3e:00:02:13"
                ),
                floating_ips=(FloatingIp("203.0.113.20", "10.2.0.5"),),
            ),
        ),
    )
    report = driver.apply(spec)
    assert not report.faults, report.faults

    assert lab.pings(g1, "10.2.0.5"), "routed between the two tenant networks"
    # The provider has no route to 10.1.0.0/24: only SNAT to the gateway IP brings replies.
    assert lab.pings(g1, "203.0.113.1"), "SNAT to the outside"
    assert lab.pings(prov, "203.0.113.20"), "the floating IP answers from outside"
    assert lab.pings(g2, "203.0.113.1")
    assert driver.apply(spec).changes == []

    # Without the floating IP (and with a static route instead) the router stops
    # answering for it; nothing else is rebuilt.
    router_spec = dataclasses.replace(
        spec.routers[0], floating_ips=(), routes=(HostRoute("10.9.0.0/24", "10.2.0.5"),)
    )
    report = driver.apply(dataclasses.replace(spec, routers=(router_spec,)))
    assert not [c for c in report.changes if c.startswith("created")], report.changes
    assert not lab.pings(prov, "203.0.113.20", within=1)
    assert lab.pings(g1, "203.0.113.1"), "SNAT still works"
    routes = netns.ip(names.router_namespace(router, driver.scope), "route", "show")
    assert "10.9.0.0/24 via 10.2.0.5" in routes

    # The address comes back (as a released floating IP does, for another project): the
    # outside still maps it to a MAC that no longer holds it, and the router's gratuitous
    # ARP corrects that at once instead of when the entry expires.
    sh(prov, "ip", "neigh", "replace", "203.0.113.20", "lladdr", "02:00:00:00:00:99",
       "dev", "eth0", "nud", "stale")  # fmt: skip
    report = driver.apply(spec)
    assert any("gratuitous ARP for 203.0.113.20" in c for c in report.changes), report.changes
    neighbours = netns.ip(prov, "neigh", "show", "203.0.113.20")
    assert "fa:16:3e:00:02:13" in neighbours, neighbours
    assert lab.pings(prov, "203.0.113.20", within=2)
    driver.apply(dataclasses.replace(spec, routers=(router_spec,)))

    # Removing the router removes its namespace and its legs from the host namespace.
    bare = HostNetworkSpec(host, spec.underlay, spec.networks, spec.physical_networks, spec.ports)
    driver.apply(bare)
    assert not netns.exists(names.router_namespace(router, driver.scope))
    legs = {names.router_legs(router, n1)[0], names.gateway_legs(router)[0]}
    assert not legs & {link["ifname"] for link in netns.ip_json(host, "link", "show")}
    assert not lab.pings(g1, "10.2.0.5", within=1)
