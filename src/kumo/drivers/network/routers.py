"""Routers: one namespace each, a veth leg per interface into that network's bridge, a
gateway leg into the external network's bridge, forwarding on, and an nftables `ip` NAT
table (SNAT for the router's subnets, 1:1 DNAT+SNAT for floating IPs) replaced atomically.

Floating IPs sit as /32 addresses on the gateway leg so the router answers ARP for them
on the external network, and each address the leg gains is announced by gratuitous ARP:
addresses are reused (a floating IP released by one project is the next one's), and the
external network's routers would otherwise keep sending to the MAC of the router that held
it before until their ARP entries expire.
"""

from __future__ import annotations

import contextlib
import ipaddress
from pathlib import Path

from kumo.drivers.network import names, netns
from kumo.drivers.network.links import LinkTable, addresses, ensure_addresses, ensure_routes
from kumo.drivers.network.spec import HostNetworkSpec, RouterSpec

NAT_TABLE = "kumo_nat"


def render_nat(router: RouterSpec) -> str:
    gw = router.gateway
    out = [
        f"table ip {NAT_TABLE}",
        f"delete table ip {NAT_TABLE}",
        f"table ip {NAT_TABLE} {{",
        "  chain prerouting {",
        "    type nat hook prerouting priority dstnat; policy accept;",
    ]
    fips = sorted(router.floating_ips, key=lambda f: f.floating_ip)
    out += [f"    ip daddr {f.floating_ip} dnat to {f.fixed_ip}" for f in fips]
    out += ["  }", "  chain output {", "    type nat hook output priority -100; policy accept;"]
    out += [f"    ip daddr {f.floating_ip} dnat to {f.fixed_ip}" for f in fips]
    out += [
        "  }",
        "  chain postrouting {",
        "    type nat hook postrouting priority srcnat; policy accept;",
    ]
    if gw is not None:
        _, qg = names.gateway_legs(router.id)
        out += [f'    oifname "{qg}" ip saddr {f.fixed_ip} snat to {f.floating_ip}' for f in fips]
        if gw.snat:
            subnets = sorted(
                {
                    str(ipaddress.ip_interface(f"{i.ip}/{i.prefixlen}").network)
                    for i in router.interfaces
                }
            )
            if subnets:
                out.append(
                    f'    oifname "{qg}" ip saddr {{ {", ".join(subnets)} }} snat to {gw.ip}'
                )
    out += ["  }", "}"]
    return "\n".join(out) + "\n"


def announce(namespace: str, device: str, addresses: list[str]) -> list[str]:
    """Gratuitous ARP for each address (after the NAT rules are in place, so traffic that
    follows the announcement finds them). Best effort: a failure only delays reachability
    until the neighbours' entries expire, so it is reported, not raised."""
    done = []
    for address in addresses:
        argv = ["busybox", "arping", "-U", "-c", "1", "-w", "1", "-I", device, address]
        try:
            netns.run(argv, namespace=namespace)
            done.append(f"{device}: gratuitous ARP for {address}")
        except netns.NetworkError as exc:
            done.append(f"{device}: gratuitous ARP for {address} failed: {exc}")
    return done


class Router:
    def __init__(
        self, directory: Path, spec: RouterSpec, host: HostNetworkSpec, scope: str
    ) -> None:
        self.directory = directory
        self.spec = spec
        self.host = host
        self.namespace = names.router_namespace(spec.id, scope)

    def ensure(self, links: LinkTable) -> list[str]:
        done: list[str] = []
        if netns.ensure(self.namespace):
            done.append(f"created namespace {self.namespace}")
        netns.sysctl(self.namespace, "net.ipv4.ip_forward", "1")
        wanted_legs: set[str] = set()
        for itf in self.spec.interfaces:
            host_side, inside = names.router_legs(self.spec.id, itf.network_id)
            mtu = self.host.network(itf.network_id).mtu
            done += links.ensure_veth_leg(
                host_side, inside, self.namespace, itf.mac, mtu, names.bridge(itf.network_id)
            )
            done += ensure_addresses(self.namespace, inside, {f"{itf.ip}/{itf.prefixlen}"})
            wanted_legs.add(inside)
        routes: dict[str, str] = {r.destination: r.nexthop for r in self.spec.routes}
        gw = self.spec.gateway
        gained: list[str] = []
        if gw is not None:
            host_side, inside = names.gateway_legs(self.spec.id)
            mtu = self.host.network(gw.network_id).mtu
            done += links.ensure_veth_leg(
                host_side, inside, self.namespace, gw.mac, mtu, names.bridge(gw.network_id)
            )
            addrs = {f"{gw.ip}/{gw.prefixlen}"} | {
                f"{f.floating_ip}/32" for f in self.spec.floating_ips
            }
            before = addresses(self.namespace, inside)
            done += ensure_addresses(self.namespace, inside, addrs)
            gained = sorted(a.split("/")[0] for a in addrs - before)
            wanted_legs.add(inside)
            if gw.gateway_ip:
                routes["0.0.0.0/0"] = gw.gateway_ip
        # Legs of interfaces that were removed from the router.
        inside_links = LinkTable.read(self.namespace)
        for name in list(inside_links.links):
            if name.startswith(("qr-", "qg-")) and name not in wanted_legs:
                done += inside_links.delete(name)
        links.refresh()
        done += ensure_routes(self.namespace, routes)
        done += self._nat()
        if gained:
            _, inside = names.gateway_legs(self.spec.id)
            done += announce(self.namespace, inside, gained)
        return done

    def _nat(self) -> list[str]:
        text = render_nat(self.spec)
        state = self.directory / "nat.nft"
        with contextlib.suppress(FileNotFoundError):
            out = netns.run(["nft", "list", "tables"], namespace=self.namespace)
            if state.read_text() == text and f"table ip {NAT_TABLE}" in out:
                return []
        netns.run(["nft", "-f", "-"], namespace=self.namespace, input=text)
        self.directory.mkdir(parents=True, exist_ok=True)
        state.write_text(text)
        return [f"router {self.spec.id} NAT replaced"]
