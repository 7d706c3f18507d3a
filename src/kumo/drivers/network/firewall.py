"""Security groups and anti-spoofing as one nftables rule set per host namespace.

This kernel family has no conntrack in `bridge` tables, so the work is split:
- `table bridge kumo_ports`: stateless, sees bridge ports. Prerouting drops what a port
  sends from a MAC/IP that is not its own (anti-spoofing); forward tags each packet with a
  mark = (index of the sending port << 16) | index of the receiving port.
- `table inet kumo_fw`: stateful, reached through br_netfilter (bridge-nf-call-iptables=1
  inside the namespace). Established/related flows pass, invalid ones drop, new ones go
  through the sender's egress and the receiver's ingress allow-lists (Neutron semantics:
  no rule in a direction = nothing allowed; port security off = no filtering at all).

Both tables are deleted and re-added in ONE `nft -f` transaction: the switch is atomic and
conntrack entries survive it, so established flows never notice a rule change.
"""

from __future__ import annotations

import hashlib
import ipaddress
from pathlib import Path

from kumo.drivers.network import netns
from kumo.drivers.network.netns import NetworkError
from kumo.drivers.network.spec import PortSpec, SecurityRule

BRIDGE_TABLE = "kumo_ports"
INET_TABLE = "kumo_fw"
MAX_PORTS = 0xFFFF
_L4_PORTS = {6, 17, 33, 132}  # tcp, udp, dccp, sctp
_ND = "nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert"


def _q(name: str) -> str:
    return f'"{name}"'


def _set(items: list[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _split(port: PortSpec) -> tuple[list[str], list[str]]:
    """The port's own IPv4 and IPv6 sources: fixed IPs and allowed address pairs."""
    v4: list[str] = []
    v6: list[str] = []
    for addr in [f.ip for f in port.fixed_ips] + [p.ip for p in port.allowed_address_pairs]:
        net = ipaddress.ip_network(addr, strict=False)
        text = str(net.network_address) if net.num_addresses == 1 else str(net)
        (v4 if net.version == 4 else v6).append(text)
    return sorted(set(v4)), sorted(set(v6))


def _antispoof(chain: str, port: PortSpec) -> list[str]:
    macs = sorted({port.mac.lower()} | {p.mac.lower() for p in port.allowed_address_pairs if p.mac})
    v4, v6 = _split(port)
    lines = [f"  chain {chain} {{", f"    ether saddr != {_set(macs)} drop"]
    lines.append(f"    ether type arp arp saddr ip != {_set(['0.0.0.0', *v4])} drop")
    lines.append("    ether type ip ip saddr 0.0.0.0 udp sport 68 udp dport 67 return")
    lines.append(
        f"    ether type ip ip saddr != {_set(v4)} drop" if v4 else "    ether type ip drop"
    )
    lines.append(f"    ether type ip6 ip6 saddr != {_set(['::', 'fe80::/64', *v6])} drop")
    lines.append("    ether type != { ip, arp, ip6 } drop")
    lines.append("  }")
    return lines


def render_rule(rule: SecurityRule) -> str:
    """One allow rule as nft match expressions followed by `return` (allowed: go on)."""
    v6 = rule.ethertype.lower() == "ipv6"
    parts = ["meta nfproto ipv6" if v6 else "meta nfproto ipv4"]
    if rule.remote_ip_prefix:
        side = "saddr" if rule.direction == "ingress" else "daddr"
        prefix = str(ipaddress.ip_network(rule.remote_ip_prefix, strict=False))
        parts.append(f"{'ip6' if v6 else 'ip'} {side} {prefix}")
    proto = rule.protocol
    if proto is not None:
        if v6 and proto == 1:
            proto = 58
        if proto in (1, 58):
            kw = "icmpv6" if proto == 58 else "icmp"
            parts.append(f"meta l4proto {proto}")
            if rule.icmp_type is not None:
                parts.append(f"{kw} type {rule.icmp_type}")
                if rule.icmp_code is not None:
                    parts.append(f"{kw} code {rule.icmp_code}")
        else:
            parts.append(f"meta l4proto {proto}")
            low, high = rule.port_range_min, rule.port_range_max
            if proto in _L4_PORTS and (low is not None or high is not None):
                low = low if low is not None else high
                high = high if high is not None else low
                parts.append(f"th dport {low}" if low == high else f"th dport {low}-{high}")
    return " ".join(parts) + " return"


def zone(network_id: str) -> int:
    """The conntrack zone of a network: stable across applies (derived from its id, not
    from its position in the spec), so adding a network never resets others' flows, and
    tenants with overlapping addresses on one host keep separate connection tables."""
    return int(hashlib.sha256(network_id.encode()).hexdigest()[:8], 16) % 0xFFFE + 1


def render(
    ports: tuple[PortSpec, ...], taps: dict[str, str], bridges: dict[str, str] | None = None
) -> str:
    """The whole rule set for the host namespace (deterministic: same spec, same text).
    `taps` maps port id -> its device name, `bridges` network id -> bridge name."""
    secured = sorted((p for p in ports if p.port_security_enabled), key=lambda p: p.id)
    if len(secured) > MAX_PORTS:
        raise NetworkError(f"more than {MAX_PORTS} secured ports on one host")
    index = {p.id: i + 1 for i, p in enumerate(secured)}
    out = [
        "# kumo security groups: generated, replaced atomically as a whole",
        f"table bridge {BRIDGE_TABLE}",
        f"delete table bridge {BRIDGE_TABLE}",
        f"table inet {INET_TABLE}",
        f"delete table inet {INET_TABLE}",
        f"table bridge {BRIDGE_TABLE} {{",
        "  chain prerouting {",
        "    type filter hook prerouting priority -200; policy accept;",
    ]
    out += [f"    iifname {_q(taps[p.id])} jump spoof_{index[p.id]}" for p in secured]
    out += [
        "  }",
        "  chain forward {",
        "    type filter hook forward priority -200; policy accept;",
    ]
    out.append("    meta mark set 0")
    for p in secured:
        out.append(f"    iifname {_q(taps[p.id])} meta mark set {index[p.id] << 16:#x}")
    for p in secured:
        out.append(f"    oifname {_q(taps[p.id])} meta mark set meta mark | {index[p.id]:#x}")
    out.append("  }")
    for p in secured:
        out += _antispoof(f"spoof_{index[p.id]}", p)
    out += ["}", f"table inet {INET_TABLE} {{"]
    # br_netfilter hands the inet hooks the bridge as input device: one zone per network.
    out += [
        "  chain prerouting {",
        "    type filter hook prerouting priority raw; policy accept;",
        *(
            f"    iifname {_q(br)} counter ct zone set {zone(net)}"
            for net, br in sorted((bridges or {}).items())
        ),
        "  }",
    ]
    out += [
        "  chain forward {",
        "    type filter hook forward priority 0; policy accept;",
        "    meta mark 0 accept",
        "    ct state established,related accept",
        "    ct state invalid drop",
    ]
    for p in secured:
        i = index[p.id]
        out.append(f"    meta mark & 0xffff0000 == {i << 16:#x} jump egress_{i}")
        out.append(f"    meta mark & 0xffff == {i:#x} jump ingress_{i}")
    out.append("  }")
    for p in secured:
        i = index[p.id]
        out += [
            f"  chain egress_{i} {{",
            f"    # port {p.id}",
            "    meta nfproto ipv4 udp sport 68 udp dport 67 return",
            "    meta nfproto ipv6 udp sport 546 udp dport 547 return",
            f"    meta nfproto ipv6 icmpv6 type {{ {_ND} }} return",
        ]
        out += ["    " + render_rule(r) for r in p.rules if r.direction == "egress"]
        out += ["    drop", "  }"]
        out += [
            f"  chain ingress_{i} {{",
            f"    # port {p.id}",
            "    meta nfproto ipv4 udp sport 67 udp dport 68 return",
            "    meta nfproto ipv6 udp sport 547 udp dport 546 return",
            f"    meta nfproto ipv6 icmpv6 type {{ {_ND} }} return",
        ]
        out += ["    " + render_rule(r) for r in p.rules if r.direction == "ingress"]
        out += ["    drop", "  }"]
    out.append("}")
    return "\n".join(out) + "\n"


def installed(namespace: str | None) -> bool:
    out = netns.run(["nft", "list", "tables"], namespace=namespace)
    return f"table bridge {BRIDGE_TABLE}" in out and f"table inet {INET_TABLE}" in out


def apply(namespace: str | None, text: str, state_file: Path) -> list[str]:
    """Install `text` atomically unless it is what we installed last and is still there."""
    netns.sysctl(namespace, "net.bridge.bridge-nf-call-iptables", "1")
    netns.sysctl(namespace, "net.bridge.bridge-nf-call-ip6tables", "1")
    try:
        if state_file.read_text() == text and installed(namespace):
            return []
    except FileNotFoundError:
        pass
    netns.run(["nft", "-f", "-"], namespace=namespace, input=text)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(text)
    return ["security group rules replaced"]


def remove(namespace: str | None, state_file: Path) -> list[str]:
    if namespace is not None and not netns.exists(namespace):
        return []
    script = "".join(
        f"table {fam} {name}\ndelete table {fam} {name}\n"
        for fam, name in (("bridge", BRIDGE_TABLE), ("inet", INET_TABLE))
    )
    netns.run(["nft", "-f", "-"], namespace=namespace, input=script)
    state_file.unlink(missing_ok=True)
    return ["security group rules removed"]
