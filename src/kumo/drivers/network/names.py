"""Every Linux name the datapath uses, derived deterministically from UUIDs.

One module and one way, so a restarted agent finds by name exactly what it made before,
and so `apply` can tell kumo's devices (known prefixes) from anyone else's. Interface
names are at most 15 characters (IFNAMSIZ - 1).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

IFNAMSIZ = 15
BRIDGE = "kb-"
TAP = "kt-"
VXLAN = "kx-"
VLAN = "kv-"
DHCP_HOST = "kd-"
ROUTER_HOST = "kr-"
GATEWAY_HOST = "kg-"
DEVICE_PREFIXES = (BRIDGE, TAP, VXLAN, VLAN, DHCP_HOST, ROUTER_HOST, GATEWAY_HOST)
DHCP_NS = "kumo-dhcp-"
ROUTER_NS = "kumo-r-"


def _hex(uuid: str, n: int = 11) -> str:
    return uuid.replace("-", "").lower()[:n]


def _hash(*parts: str, n: int = 11) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:n]


def bridge(network_id: str) -> str:
    return BRIDGE + _hex(network_id)


def tap(port_id: str) -> str:
    return TAP + _hex(port_id)


def vxlan(network_id: str) -> str:
    return VXLAN + _hex(network_id)


def vlan(network_id: str) -> str:
    return VLAN + _hex(network_id)


def scope_for(state_dir: Path) -> str:
    """What tells one agent's namespaces from another's on the same kernel (tests, and
    hosts simulated in namespaces): devices live inside the host namespace, but namespace
    names are global. Derived from the state directory, so a restart finds them again."""
    return _hash(str(state_dir.resolve()), n=6)


def _scoped(prefix: str, scope: str, uuid: str) -> str:
    return prefix + (f"{scope}-" if scope else "") + uuid


def dhcp_namespace(network_id: str, scope: str = "") -> str:
    return _scoped(DHCP_NS, scope, network_id)


def dhcp_legs(network_id: str) -> tuple[str, str]:
    """(host side on the bridge, side inside the DHCP namespace)."""
    return DHCP_HOST + _hex(network_id), "ns-" + _hex(network_id)


def router_namespace(router_id: str, scope: str = "") -> str:
    return _scoped(ROUTER_NS, scope, router_id)


def namespace_owner(namespace: str, scope: str) -> tuple[str, str] | None:
    """("dhcp" or "router", the network's or router's id) of a namespace this scope's
    naming made; None for any other name."""
    for kind, prefix in (("dhcp", DHCP_NS), ("router", ROUTER_NS)):
        head = _scoped(prefix, scope, "")
        if namespace.startswith(head):
            return kind, namespace[len(head) :]
    return None


def router_legs(router_id: str, network_id: str) -> tuple[str, str]:
    """A router interface: host side named from both ids (a router has one leg per
    network, a network many routers), inside side from the network alone."""
    return ROUTER_HOST + _hash(router_id, network_id), "qr-" + _hex(network_id)


def gateway_legs(router_id: str) -> tuple[str, str]:
    return GATEWAY_HOST + _hex(router_id), "qg-" + _hex(router_id)


def is_kumo_device(name: str) -> bool:
    return name.startswith(DEVICE_PREFIXES)
