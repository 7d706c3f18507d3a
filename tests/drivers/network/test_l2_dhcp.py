"""One network, two guest endpoints: DHCP leases with the right IP, gateway and MTU, L2
reachability, and an apply that changes nothing the second time."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import uuid

from netlab import Lab, require_root, sh

from kumo.drivers.network import capabilities, names, netns
from kumo.drivers.network.spec import (
    DhcpSpec,
    FixedIp,
    HostNetworkSpec,
    NetworkSpec,
    PortSpec,
    SecurityRule,
    StaticLease,
    SubnetSpec,
)

ALLOW_ALL = (
    SecurityRule("ingress"),
    SecurityRule("egress"),
)


def spec_one_network(
    host: str, net_id: str, ports: list[tuple[str, str, str]], metadata: bool = True
) -> HostNetworkSpec:
    return HostNetworkSpec(
        host_namespace=host,
        networks=(NetworkSpec(id=net_id, type="local", mtu=1400),),
        ports=tuple(
            PortSpec(
                id=pid, network_id=net_id, mac=mac, fixed_ips=(FixedIp(ip, 24),), rules=ALLOW_ALL
            )
            for pid, mac, ip in ports
        ),
        dhcp=(
            DhcpSpec(
                network_id=net_id,
                mac="fa:16:3e:00:00:02",
                subnets=(
                    SubnetSpec(
                        cidr="10.20.0.0/24",
                        gateway="10.20.0.1",
                        dhcp_ip="10.20.0.2",
                        dns_servers=("10.20.0.53",),
                    ),
                ),
                leases=tuple(
                    StaticLease(mac, ip, f"vm-{i}") for i, (_, mac, ip) in enumerate(ports)
                ),
                metadata=metadata,
            ),
        ),
    )


def _serve_once(sock: socket.socket) -> None:
    conn, _ = sock.accept()
    with conn:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 13\r\n\r\nkumo-metadata")


def test_capabilities_probe() -> None:
    require_root()
    caps = capabilities.detect()
    assert {"local", "flat"} <= set(caps.network_types), caps.reasons
    for missing in ("vlan", "nft_bridge_conntrack"):
        if not caps.features[missing]:
            assert caps.reasons[missing], f"{missing} is missing without a reason"
    assert json.loads(json.dumps(caps.to_dict()))["network_types"] == caps.network_types
    assert not [ns for ns in netns.namespaces() if ns.startswith("kumo-probe-")]


def test_dhcp_lease_and_l2_ping(lab: Lab) -> None:
    host = lab.ns("host")
    driver = lab.driver()
    net = str(uuid.uuid4())
    p1, p2 = str(uuid.uuid4()), str(uuid.uuid4())
    ports = [(p1, "fa:16:3e:00:00:11", "10.20.0.11"), (p2, "fa:16:3e:00:00:12", "10.20.0.12")]
    g1 = lab.guest(host, names.tap(p1), ports[0][1])
    g2 = lab.guest(host, names.tap(p2), ports[1][1])
    spec = spec_one_network(host, net, ports)

    report = driver.apply(spec)
    assert not report.faults, report.faults
    assert netns.exists(names.dhcp_namespace(net, driver.scope))

    lease = lab.dhcp(g1)
    assert (lease.ip, lease.mask, lease.router, lease.mtu) == (
        "10.20.0.11",
        "24",
        "10.20.0.1",
        "1400",
    )
    # Option 121 carries the metadata route via the DHCP port and repeats the default route.
    assert "169.254.169.254/32 10.20.0.2" in lease.routes and "0.0.0.0/0 10.20.0.1" in lease.routes
    assert lab.dhcp(g2).ip == "10.20.0.12"
    assert lab.pings(g1, "10.20.0.12") and lab.pings(g2, "10.20.0.11")
    assert lab.pings(g1, "169.254.169.254"), "the metadata address answers on the DHCP leg"

    # Metadata plumbing: a socket bound inside the DHCP namespace serves the guests.
    sock = driver.metadata_socket(net)
    server = threading.Thread(target=_serve_once, args=(sock,), daemon=True)
    server.start()
    try:
        # (busybox wget segfaults in Debian's static build: a Python client instead.)
        fetch = (
            "import urllib.request as u; print(u.urlopen(%r, timeout=5).read().decode(), end='')"
        )
        got = sh(g1, sys.executable, "-c", fetch % "http://169.254.169.254/")
        assert got.stdout == "kumo-metadata"
    finally:
        server.join(timeout=5)
        sock.close()

    # Bridged traffic reaches the inet hooks with the bridge as input device: the
    # network's conntrack zone rule has counted it.
    chain = netns.run(["nft", "list", "chain", "inet", "kumo_fw", "prerouting"], namespace=host)
    counted = re.search(r"counter packets (\d+)", chain)
    assert counted and int(counted.group(1)) > 0, chain

    again = driver.apply(spec)
    assert again.changes == [] and not again.faults
