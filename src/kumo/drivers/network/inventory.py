"""The resources a spec implies, by kind and Linux name, with a fingerprint of what each
should look like. The fake driver diffs these; the Linux driver uses the same names to
know what to keep when it garbage-collects."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from kumo.drivers.network import names
from kumo.drivers.network.spec import HostNetworkSpec


def _fp(*parts: Any) -> str:
    return json.dumps(
        [asdict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts],
        sort_keys=True,
        default=str,
    )


def resources(spec: HostNetworkSpec, supported: set[str]) -> dict[str, str]:
    """ "kind name" -> fingerprint for every resource of `spec` whose network type is in
    `supported` (the rest become faults, not resources)."""
    out: dict[str, str] = {}
    usable = {n.id for n in spec.networks if n.type in supported}
    for net in spec.networks:
        if net.id in usable:
            out[f"bridge {names.bridge(net.id)}"] = _fp(net)
    for port in spec.ports:
        if port.network_id in usable:
            out[f"port {port.tap or names.tap(port.id)}"] = _fp(port)
    for dhcp in spec.dhcp:
        if dhcp.network_id in usable:
            out[f"dhcp {names.dhcp_namespace(dhcp.network_id)}"] = _fp(dhcp)
    for router in spec.routers:
        out[f"router {names.router_namespace(router.id)}"] = _fp(router)
    return out
