"""Links in one namespace: bridges, taps, VXLAN devices, veth legs, addresses, FDB.

Each `ensure_*` compares with what the kernel reports (`ip -j -d link show`, read once per
apply into a `LinkTable`) and changes only what differs, returning what it did in words.
A device that is right is never touched: re-creating a tap or bridge would cut guests off.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from kumo.drivers.network import netns
from kumo.drivers.network.netns import ip, ip_json, run


def _kind(link: dict[str, Any]) -> str:
    return str(link.get("linkinfo", {}).get("info_kind", ""))


@dataclass
class LinkTable:
    """A snapshot of one namespace's links, kept current by the ensure_* calls."""

    namespace: str | None
    links: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def read(cls, namespace: str | None) -> LinkTable:
        table = cls(namespace)
        table.refresh()
        return table

    def refresh(self) -> None:
        self.links = {
            link["ifname"]: link for link in ip_json(self.namespace, "-d", "link", "show")
        }

    def get(self, name: str) -> dict[str, Any] | None:
        return self.links.get(name)

    # -- generic ---------------------------------------------------------------------------

    def _settle(self, name: str, mtu: int | None, master: str | None, mac: str = "") -> list[str]:
        """MTU, MAC, bridge membership and up state of an existing device."""
        link = self.links[name]
        done: list[str] = []
        args: list[str] = []
        if mtu and link.get("mtu") != mtu:
            args += ["mtu", str(mtu)]
        if mac and link.get("address", "").lower() != mac.lower():
            args += ["address", mac]
        if master is not None and link.get("master") != master:
            args += ["master", master]
        if "UP" not in link.get("flags", []):
            args += ["up"]
        if args:
            ip(self.namespace, "link", "set", "dev", name, *args)
            done.append(f"set {name} {' '.join(args)}")
            self.links[name] = ip_json(self.namespace, "-d", "link", "show", "dev", name)[0]
        return done

    def delete(self, name: str) -> list[str]:
        if name not in self.links:
            return []
        try:
            ip(self.namespace, "link", "delete", "dev", name)
        except netns.NetworkError:
            # The peer end of a veth whose namespace was just deleted goes a moment later,
            # by itself: gone is what was wanted. Anything still there is a real failure.
            self.refresh()
            if name in self.links:
                raise
            return []
        self.refresh()  # a veth takes its peer along
        return [f"deleted {name}"]

    # -- devices ---------------------------------------------------------------------------

    def ensure_bridge(self, name: str, mtu: int) -> list[str]:
        done: list[str] = []
        link = self.get(name)
        if link is not None and _kind(link) != "bridge":
            done += self.delete(name)
            link = None
        if link is None:
            # No STP: ports forward at once; no IPv6 link-local on the bridge itself.
            ip(
                self.namespace,
                "link",
                "add",
                name,
                "mtu",
                str(mtu),
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
            )
            ip(self.namespace, "link", "set", "dev", name, "addrgenmode", "none")
            done.append(f"created bridge {name}")
            self.refresh()
        return done + self._settle(name, mtu, None)

    def ensure_vxlan(
        self, name: str, vni: int, local_ip: str, device: str, mtu: int, bridge: str
    ) -> list[str]:
        done: list[str] = []
        link = self.get(name)
        if link is not None:
            data = link.get("linkinfo", {}).get("info_data", {})
            if (
                _kind(link) != "vxlan"
                or data.get("id") != vni
                or data.get("local") != local_ip
                or data.get("port") != 4789
                or data.get("learning", False)
            ):
                done += self.delete(name)
                link = None
        if link is None:
            ip(
                self.namespace,
                "link",
                "add",
                name,
                "mtu",
                str(mtu),
                "type",
                "vxlan",
                "id",
                str(vni),
                "local",
                local_ip,
                "dstport",
                "4789",
                "nolearning",
                "dev",
                device,
            )
            ip(self.namespace, "link", "set", "dev", name, "addrgenmode", "none")
            done.append(f"created vxlan {name} vni {vni}")
            self.refresh()
        return done + self._settle(name, mtu, bridge)

    def ensure_vlan(self, name: str, vid: int, device: str, mtu: int, bridge: str) -> list[str]:
        done: list[str] = []
        link = self.get(name)
        if link is not None:
            data = link.get("linkinfo", {}).get("info_data", {})
            if _kind(link) != "vlan" or data.get("id") != vid:
                done += self.delete(name)
                link = None
        if link is None:
            ip(
                self.namespace,
                "link",
                "add",
                "link",
                device,
                "name",
                name,
                "mtu",
                str(mtu),
                "type",
                "vlan",
                "id",
                str(vid),
            )
            done.append(f"created vlan {name} id {vid}")
            self.refresh()
        return done + self._settle(name, mtu, bridge)

    def ensure_fdb_peers(self, vxlan: str, peers: tuple[str, ...]) -> list[str]:
        """Head-end replication: one all-zeros FDB entry per peer, no multicast."""
        ns = ["-n", self.namespace] if self.namespace else []
        out = run(["bridge", *ns, "-j", "fdb", "show", "dev", vxlan])
        have = {
            e.get("dst")
            for e in (json.loads(out) if out.strip() else [])
            if e.get("mac") == "00:00:00:00:00:00" and e.get("dst")
        }
        done: list[str] = []
        for peer in sorted(set(peers) - have):
            run(["bridge", *ns, "fdb", "append", "00:00:00:00:00:00", "dev", vxlan, "dst", peer])
            done.append(f"fdb {vxlan} += {peer}")
        for peer in sorted(have - set(peers)):
            run(["bridge", *ns, "fdb", "del", "00:00:00:00:00:00", "dev", vxlan, "dst", peer])
            done.append(f"fdb {vxlan} -= {peer}")
        return done

    def ensure_tap(self, name: str, mtu: int, bridge: str) -> list[str]:
        """A persistent tap (QEMU attaches by fd later); an existing device of that name,
        whatever its kind (a veth standing in for a guest), is adopted as it is."""
        done: list[str] = []
        if self.get(name) is None:
            ip(self.namespace, "tuntap", "add", "dev", name, "mode", "tap", "vnet_hdr")
            done.append(f"created tap {name}")
            self.refresh()
        return done + self._settle(name, mtu, bridge)

    def ensure_enslaved(self, name: str, bridge: str, mtu: int | None = None) -> list[str]:
        if self.get(name) is None:
            where = self.namespace or "the root namespace"
            raise netns.NetworkError(
                f"interface {name} does not exist in {where}: fix the physical network "
                "mapping in the agent's configuration"
            )
        return self._settle(name, mtu, bridge)

    def ensure_veth_leg(
        self, host_side: str, peer: str, peer_ns: str, peer_mac: str, mtu: int, bridge: str
    ) -> list[str]:
        """A veth from a bridge in this namespace into `peer_ns` (DHCP or router)."""
        done: list[str] = []
        inside = LinkTable.read(peer_ns)
        if self.get(host_side) is not None and inside.get(peer) is None:
            done += self.delete(host_side)  # half a leg: its peer's namespace was lost
        if self.get(host_side) is None:
            if inside.get(peer) is not None:
                inside.delete(peer)
            ip(
                self.namespace,
                "link",
                "add",
                host_side,
                "mtu",
                str(mtu),
                "type",
                "veth",
                "peer",
                "name",
                peer,
                "mtu",
                str(mtu),
                "netns",
                peer_ns,
            )
            ip(self.namespace, "link", "set", "dev", host_side, "addrgenmode", "none")
            done.append(f"created veth {host_side} -> {peer_ns}/{peer}")
            self.refresh()
            inside.refresh()
        done += self._settle(host_side, mtu, bridge)
        done += inside._settle(peer, mtu, None, peer_mac)
        return done


def addresses(namespace: str | None, device: str) -> set[str]:
    """The IPv4/global IPv6 addresses `device` carries ("ip/prefix"); empty if it is gone."""
    info = ip_json(namespace, "addr", "show", "dev", device)
    return {
        f"{a['local']}/{a['prefixlen']}"
        for a in (info[0].get("addr_info", []) if info else [])
        if a.get("scope") != "link"
    }


def ensure_addresses(namespace: str | None, device: str, wanted: set[str]) -> list[str]:
    """Make `device` carry exactly the IPv4/global IPv6 addresses `wanted` ("ip/prefix")."""
    have = addresses(namespace, device)
    want = {str(ipaddress.ip_interface(w)) for w in wanted}
    done: list[str] = []
    for addr in sorted(want - have):
        ip(namespace, "addr", "add", addr, "dev", device)
        done.append(f"{device} += {addr}")
    for addr in sorted(have - want):
        ip(namespace, "addr", "del", addr, "dev", device)
        done.append(f"{device} -= {addr}")
    return done


def ensure_routes(namespace: str | None, wanted: dict[str, str]) -> list[str]:
    """Make the main IPv4 table's gateway routes (destination -> nexthop) exactly `wanted`;
    connected routes are the kernel's own business and are left alone."""
    have = {
        ("0.0.0.0/0" if r["dst"] == "default" else _net(r["dst"])): r["gateway"]
        for r in ip_json(namespace, "-4", "route", "show")
        if "gateway" in r
    }
    want = {_net(d): n for d, n in wanted.items()}
    done: list[str] = []
    for dst, via in sorted(want.items()):
        if have.get(dst) != via:
            ip(namespace, "route", "replace", dst, "via", via)
            done.append(f"route {dst} via {via}")
    for dst in sorted(set(have) - set(want)):
        ip(namespace, "route", "del", dst)
        done.append(f"route {dst} removed")
    return done


def _net(dst: str) -> str:
    return str(ipaddress.ip_network(dst, strict=False))
