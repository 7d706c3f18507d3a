"""The Linux datapath: bridges, taps, VXLAN, dnsmasq namespaces, router namespaces and
nftables, all inside the host namespace the spec names (or the root namespace).

Ownership is explicit: the driver records every namespace it creates in
`state_dir/owned.json` *before* creating it, and only ever deletes namespaces listed there
and kumo-prefixed devices inside the host namespace. Two drivers (two test runs, two
agents in two host namespaces) therefore never remove each other's resources.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

from kumo.drivers.network import capabilities as caps_mod
from kumo.drivers.network import dhcp as dhcp_mod
from kumo.drivers.network import firewall, names, netns
from kumo.drivers.network.base import NetworkDriver, Report, router_fault
from kumo.drivers.network.capabilities import Capabilities
from kumo.drivers.network.links import LinkTable
from kumo.drivers.network.netns import NetworkError
from kumo.drivers.network.routers import Router
from kumo.drivers.network.spec import HostNetworkSpec, NetworkSpec

VXLAN_OVERHEAD = 50


def _listed(spec: HostNetworkSpec, scope: str) -> tuple[set[str], set[str]]:
    """(devices in the host namespace, namespaces) that `spec` lists."""
    keep: set[str] = set()
    for net in spec.networks:
        keep |= {names.bridge(net.id), names.vxlan(net.id), names.vlan(net.id)}
    keep |= {p.tap or names.tap(p.id) for p in spec.ports}
    keep |= {names.dhcp_legs(d.network_id)[0] for d in spec.dhcp}
    namespaces = {names.dhcp_namespace(d.network_id, scope) for d in spec.dhcp}
    for r in spec.routers:
        namespaces.add(names.router_namespace(r.id, scope))
        keep |= {names.router_legs(r.id, i.network_id)[0] for i in r.interfaces}
        if r.gateway:
            keep.add(names.gateway_legs(r.id)[0])
    return keep, namespaces


class LinuxNetworkDriver(NetworkDriver):
    name = "linux"

    def __init__(self, state_dir: Path, capabilities: Capabilities | None = None) -> None:
        super().__init__(state_dir)
        self._caps = capabilities
        self.scope = names.scope_for(state_dir)

    # -- bookkeeping -----------------------------------------------------------------------

    @property
    def _owned_file(self) -> Path:
        return self.state_dir / "owned.json"

    def owned_namespaces(self) -> set[str]:
        try:
            return set(json.loads(self._owned_file.read_text()))
        except FileNotFoundError:
            return set()

    def _own(self, namespace: str, owned: bool = True) -> None:
        current = self.owned_namespaces()
        new = current | {namespace} if owned else current - {namespace}
        if new != current:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            tmp = self._owned_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(sorted(new)))
            tmp.replace(self._owned_file)

    def _ensure_ns(self, namespace: str) -> None:
        if not netns.exists(namespace):
            self._own(namespace)  # write-ahead: a crash right after never leaks it
            netns.ensure(namespace)

    def capabilities(self) -> Capabilities:
        if self._caps is None:
            self._caps = caps_mod.detect()
        return self._caps

    def adopt(self) -> HostNetworkSpec | None:
        try:
            return HostNetworkSpec.from_dict(json.loads((self.state_dir / "spec.json").read_text()))
        except FileNotFoundError:
            return None

    # -- apply -----------------------------------------------------------------------------

    def apply(self, spec: HostNetworkSpec) -> Report:
        problems = spec.validate()
        if problems:
            raise NetworkError("invalid host network spec: " + "; ".join(problems))
        report = Report()
        caps = self.capabilities()
        host = spec.host_namespace
        if host is not None and not netns.exists(host):
            self._ensure_ns(host)
            report.changes.append(f"created host namespace {host}")
        links = LinkTable.read(host)
        # What the spec lists is kept even when it faults this time: a transient error
        # must never delete a running guest's tap or a working DHCP namespace.
        keep, wanted_ns = _listed(spec, self.scope)
        bound: set[str] = set()

        def attempt(key: str, fn: Callable[[], list[str]]) -> bool:
            try:
                report.changes += fn()
                return True
            except (NetworkError, OSError) as exc:
                report.faults[key] = str(exc)
                return False

        for net in spec.networks:
            if not caps.supports(net.type):
                report.faults[net.id] = (
                    caps.reason(net.type) or f"network type {net.type} is not supported here"
                )
                continue
            if attempt(net.id, lambda net=net: self._network(spec, net, links)):  # type: ignore[misc]
                bound.add(net.id)
        for port in spec.ports:
            if port.network_id not in bound:
                reason = report.faults.get(port.network_id, "network not set up")
                report.faults[port.id] = f"binding failed: network {port.network_id}: {reason}"
                continue
            tap = port.tap or names.tap(port.id)
            mtu = spec.network(port.network_id).mtu
            attempt(
                port.id,
                lambda t=tap, m=mtu, p=port: links.ensure_tap(  # type: ignore[misc]
                    t, m, names.bridge(p.network_id)
                ),
            )
        # Every listed port whose device exists is filtered, bound this time or not: a
        # transient fault must not leave a guest unfiltered (fail closed).
        taps = {p.id: p.tap or names.tap(p.id) for p in spec.ports}
        ports = tuple(p for p in spec.ports if links.get(taps[p.id]) is not None)
        bridges = {n.id: names.bridge(n.id) for n in spec.networks if links.get(names.bridge(n.id))}
        rules = firewall.render(ports, taps, bridges)
        attempt(
            "security-groups",
            lambda: firewall.apply(host, rules, self.state_dir / "firewall.nft"),
        )

        for d in spec.dhcp:
            if d.network_id not in bound:
                continue
            server = dhcp_mod.DhcpServer(
                self.state_dir / "dhcp" / d.network_id, d, spec.network(d.network_id), self.scope
            )
            self._ensure_ns(server.namespace)
            attempt(f"dhcp {d.network_id}", lambda s=server: s.ensure(links))  # type: ignore[misc]
        for r in spec.routers:
            fault = router_fault(r, bound)
            if fault:
                report.faults[r.id] = fault
                continue
            router = Router(self.state_dir / "routers" / r.id, r, spec, self.scope)
            self._ensure_ns(router.namespace)
            attempt(r.id, lambda rt=router: rt.ensure(links))  # type: ignore[misc]

        report.changes += self._collect(host, links, keep, wanted_ns)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_dir / "spec.json.tmp"
        tmp.write_text(json.dumps(spec.to_dict(), indent=1, sort_keys=True))
        tmp.replace(self.state_dir / "spec.json")
        return report

    def _network(self, spec: HostNetworkSpec, net: NetworkSpec, links: LinkTable) -> list[str]:
        bridge = names.bridge(net.id)
        done = links.ensure_bridge(bridge, net.mtu)
        if net.type == "flat":
            done += links.ensure_enslaved(spec.physical_networks[str(net.physical_network)], bridge)
        elif net.type == "vlan":
            parent = spec.physical_networks[str(net.physical_network)]
            done += links.ensure_vlan(
                names.vlan(net.id), int(net.segmentation_id or 0), parent, net.mtu, bridge
            )
        elif net.type == "vxlan":
            underlay = spec.underlay
            assert underlay is not None  # validate() checked
            if net.mtu > underlay.mtu - VXLAN_OVERHEAD:
                raise NetworkError(
                    f"network MTU {net.mtu} does not fit the underlay MTU {underlay.mtu} minus "
                    f"{VXLAN_OVERHEAD} bytes of VXLAN: lower the network MTU to "
                    f"{underlay.mtu - VXLAN_OVERHEAD} or raise the underlay's"
                )
            vx = names.vxlan(net.id)
            done += links.ensure_vxlan(
                vx,
                int(net.segmentation_id or 0),
                underlay.local_ip,
                underlay.interface,
                net.mtu,
                bridge,
            )
            done += links.ensure_fdb_peers(vx, net.peers)
        return done

    def metadata_socket(self, network_id: str, port: int = 80) -> socket.socket:
        """A listening socket on 169.254.169.254:`port` inside the network's DHCP
        namespace, for the agent's metadata server (the network's DHCP spec must have
        `metadata=True` and have been applied)."""
        namespace = names.dhcp_namespace(network_id, self.scope)
        if not netns.exists(namespace):
            raise NetworkError(
                f"network {network_id} has no DHCP namespace on this host: apply a spec "
                "with DHCP (metadata=True) for it first"
            )
        return netns.listen_in_namespace(namespace, dhcp_mod.METADATA_IP, port)

    # -- removal ---------------------------------------------------------------------------

    def _collect(
        self, host: str | None, links: LinkTable, keep: set[str], wanted_ns: set[str]
    ) -> list[str]:
        """Remove kumo's namespaces and devices that the spec no longer lists."""
        done: list[str] = []
        for ns in sorted(self.owned_namespaces()):
            if ns == host or ns in wanted_ns:
                continue
            if names.namespace_owner(ns, self.scope) is None:
                continue
            done += self._remove_namespace(ns)
        links.refresh()
        for name in sorted(links.links):
            if names.is_kumo_device(name) and name not in keep:
                done += links.delete(name)
        return done

    def _remove_namespace(self, ns: str) -> list[str]:
        owner = names.namespace_owner(ns, self.scope)
        assert owner is not None, ns
        kind, uuid = owner
        if kind == "dhcp":
            directory = self.state_dir / "dhcp" / uuid
            dhcp_mod.stop_in(directory)
        else:
            directory = self.state_dir / "routers" / uuid
        netns.delete(ns)
        shutil.rmtree(directory, ignore_errors=True)
        self._own(ns, owned=False)
        return [f"removed namespace {ns}"]

    def teardown(self) -> Report:
        report = Report()
        spec = self.adopt()
        host = spec.host_namespace if spec else None
        if spec is not None and (host is None or netns.exists(host)):
            empty = HostNetworkSpec(host_namespace=host)
            report.changes += self.apply(empty).changes
            with contextlib.suppress(NetworkError):
                report.changes += firewall.remove(host, self.state_dir / "firewall.nft")
        for ns in sorted(self.owned_namespaces()):
            if names.namespace_owner(ns, self.scope) is not None:
                report.changes += self._remove_namespace(ns)
            else:
                netns.delete(ns)
                self._own(ns, owned=False)
                report.changes.append(f"removed namespace {ns}")
        (self.state_dir / "spec.json").unlink(missing_ok=True)
        return report
