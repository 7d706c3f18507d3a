"""What this kernel's datapath can do, found by trying it in a throwaway namespace.

Never assumed: a host whose kernel lacks 802.1Q (as the lab's does) reports why, and a
VLAN port on it gets a binding fault with that reason instead of a half-built network.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from typing import Any

from kumo.drivers.network import netns
from kumo.drivers.network.netns import NetworkError


@dataclass(frozen=True)
class Capabilities:
    """`features` name -> usable; `reasons` name -> the exact error for each missing one."""

    features: dict[str, bool] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def network_types(self) -> list[str]:
        types = ["local"]
        if self.features.get("bridge"):
            types.append("flat")
        if self.features.get("vlan"):
            types.append("vlan")
        if self.features.get("vxlan"):
            types.append("vxlan")
        return sorted(types)

    def supports(self, network_type: str) -> bool:
        return network_type in self.network_types

    def reason(self, network_type_or_feature: str) -> str:
        return self.reasons.get(network_type_or_feature, "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "network_types": self.network_types,
            "stateful_security_groups": self.features.get("stateful_security_groups", False),
            "features": dict(self.features),
            "reasons": dict(self.reasons),
        }


def _try(
    results: dict[str, bool],
    reasons: dict[str, str],
    name: str,
    argv: list[str],
    stdin: str | None = None,
) -> bool:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=30)
    ok = proc.returncode == 0
    results[name] = ok
    if not ok:
        command = " ".join(a for a in argv if not a.startswith("kumo-probe-"))
        command = command.replace("ip -n ", "ip ").replace("ip netns exec ", "")
        reasons[name] = f"{command}: {(proc.stderr or proc.stdout).strip()}"
    return ok


_STATEFUL_INET = """table inet kumo_probe {
  chain forward { type filter hook forward priority 0; policy accept;
    ct state established,related accept
  }
}
"""
_BRIDGE_CT = """table bridge kumo_probe {
  chain forward { type filter hook forward priority 0; policy accept;
    ct state established,related accept
  }
}
"""


def detect() -> Capabilities:
    """Probe bridge, veth, tap, vxlan, vlan, nftables, br_netfilter and bridge conntrack
    in a namespace of our own (about 0.1 s), then remove it."""
    features: dict[str, bool] = {}
    reasons: dict[str, str] = {}
    for tool in ("ip", "bridge", "nft", "dnsmasq"):
        features[f"tool_{tool}"] = shutil.which(tool) is not None
        if not features[f"tool_{tool}"]:
            reasons[f"tool_{tool}"] = f"{tool} is not installed (see Makefile system-deps)"
    if not features["tool_ip"]:
        return Capabilities(features, reasons)
    ns = f"kumo-probe-{uuid.uuid4().hex[:8]}"
    try:
        netns.ensure(ns)
        base = ["ip", "-n", ns, "link", "add"]
        _try(features, reasons, "bridge", [*base, "kp-br", "type", "bridge"])
        _try(features, reasons, "veth", [*base, "kp-v0", "type", "veth", "peer", "name", "kp-v1"])
        _try(features, reasons, "tap", ["ip", "-n", ns, "tuntap", "add", "kp-tap", "mode", "tap"])
        _try(
            features,
            reasons,
            "vxlan",
            [*base, "kp-vx", "type", "vxlan", "id", "42", "dstport", "4789", "nolearning"],
        )
        if features["veth"]:
            _try(
                features,
                reasons,
                "vlan",
                [*base, "link", "kp-v0", "name", "kp-vl", "type", "vlan", "id", "42"],
            )
        else:
            features["vlan"], reasons["vlan"] = False, "no veth to put a VLAN device on"
        if features["bridge"]:
            _try(
                features,
                reasons,
                "bridge_vlan_filtering",
                ["ip", "-n", ns, "link", "set", "kp-br", "type", "bridge", "vlan_filtering", "1"],
            )
        if features["tool_nft"]:
            nft = ["ip", "netns", "exec", ns, "nft", "-f", "-"]
            _try(features, reasons, "nft_inet_conntrack", nft, _STATEFUL_INET)
            _try(features, reasons, "nft_bridge_conntrack", nft, _BRIDGE_CT)
        path = "net.bridge.bridge-nf-call-iptables"
        try:
            netns.sysctl(ns, path, "1")
            features["br_netfilter"] = True
        except OSError as exc:
            features["br_netfilter"] = False
            reasons["br_netfilter"] = f"sysctl {path}=1: {exc}"
    except NetworkError as exc:
        reasons["namespace"] = str(exc)
    finally:
        with contextlib.suppress(NetworkError):
            netns.delete(ns)
    stateful = bool(features.get("nft_bridge_conntrack")) or bool(
        features.get("nft_inet_conntrack") and features.get("br_netfilter")
    )
    features["stateful_security_groups"] = stateful
    if not stateful:
        reasons["stateful_security_groups"] = "; ".join(
            reasons[k] for k in ("nft_inet_conntrack", "br_netfilter") if k in reasons
        )
    if "vlan" in reasons:
        reasons["vlan"] = (
            "this kernel cannot create 802.1Q VLAN devices (" + reasons["vlan"] + "); "
            "use flat or vxlan networks on this host, or a kernel with CONFIG_VLAN_8021Q"
        )
    return Capabilities(features, reasons)
