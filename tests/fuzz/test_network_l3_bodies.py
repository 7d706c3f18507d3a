"""Fuzzing security groups, rules, routers (with their interface actions), floating IPs and
Nova's security group proxies: random JSON bodies are never a 5xx, and every error comes in
the API's own shape."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

V2 = "/network/v2.0"
NOVA = "/compute/v2.1"
EXAMPLES = 100

FIELDS = {
    "security_group": ("name", "description", "stateful", "tags", "project_id"),
    "security_group_rule": (
        "security_group_id", "direction", "ethertype", "protocol", "port_range_min",
        "port_range_max", "remote_ip_prefix", "remote_group_id", "description",
    ),
    "router": (
        "name", "admin_state_up", "external_gateway_info", "routes", "availability_zone_hints",
        "distributed", "ha", "tags",
    ),
    "floatingip": (
        "floating_network_id", "floating_ip_address", "subnet_id", "port_id",
        "fixed_ip_address", "description",
    ),
    "interface": ("subnet_id", "port_id"),
    "nova_group": ("name", "description"),
    "nova_rule": ("parent_group_id", "ip_protocol", "from_port", "to_port", "cidr", "group_id"),
}  # fmt: skip


def values(ids: list[str]) -> st.SearchStrategy[Any]:
    """JSON values biased to what the fields expect (ids of existing resources, addresses,
    protocols, ports) so documents get past the first check."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**33), max_value=2**33)
        | st.sampled_from([0, 1, 22, 255, 256, 65535, 65536, -1])
        | st.text(max_size=12)
        | st.sampled_from(
            ["10.0.0.5", "10.0.0.0/24", "203.0.113.9", "::/0", "0.0.0.0/0", "fd00::1/64",
             "tcp", "udp", "icmp", "ipv6-icmp", "any", "17", "ingress", "egress", "IPv4",
             "IPv6", "default", "", *ids]
        )
    )  # fmt: skip
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "network_id",
                        "enable_snat",
                        "external_fixed_ips",
                        "ip_address",
                        "subnet_id",
                        "destination",
                        "nexthop",
                        "x",
                    ]
                ),
                inner,
                max_size=3,
            )
        ),
        max_leaves=6,
    )


def _made(resp: Any, key: str) -> dict[str, Any]:
    assert resp.status_code == 201, resp.text
    return dict(resp.json()[key])


def _setup(cloud: Any) -> list[str]:
    """An external network, a private one behind a router, a port and a group."""
    h = cloud.admin

    def post(collection: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        return _made(cloud.client.post(f"{V2}/{collection}", json={key: body}, headers=h), key)

    public = post("networks", "network", {"router:external": True})
    public_sub = post(
        "subnets", "subnet", {"network_id": public["id"], "cidr": "203.0.113.0/24", "ip_version": 4}
    )
    private = post("networks", "network", {})
    private_sub = post(
        "subnets", "subnet", {"network_id": private["id"], "cidr": "10.0.0.0/24", "ip_version": 4}
    )
    router = post("routers", "router", {"external_gateway_info": {"network_id": public["id"]}})
    resp = cloud.client.put(
        f"{V2}/routers/{router['id']}/add_router_interface",
        json={"subnet_id": private_sub["id"]},
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    port = post("ports", "port", {"network_id": private["id"]})
    group = post("security-groups", "security_group", {"name": "fuzz"})
    return [
        public["id"],
        public_sub["id"],
        private_sub["id"],
        router["id"],
        port["id"],
        group["id"],
    ]


def _send(cloud: Any, ids: list[str], kind: str, body: dict[str, Any], update: bool) -> Any:
    h = cloud.admin
    router_id, group_id = ids[3], ids[5]
    if kind == "interface":
        action = "remove_router_interface" if update else "add_router_interface"
        return cloud.client.put(
            f"{V2}/routers/{router_id}/{action}", content=json.dumps(body), headers=h
        )
    if kind == "nova_group":
        url = f"{NOVA}/os-security-groups" + (f"/{group_id}" if update else "")
        method = cloud.client.put if update else cloud.client.post
        return method(url, content=json.dumps({"security_group": body}), headers=h)
    if kind == "nova_rule":
        return cloud.client.post(
            f"{NOVA}/os-security-group-rules",
            content=json.dumps({"security_group_rule": body}),
            headers=h,
        )
    collection = {
        "security_group": "security-groups",
        "security_group_rule": ("security-group-rules"),
        "router": "routers",
        "floatingip": "floatingips",
    }[kind]
    if update and kind in ("security_group", "router"):
        target = group_id if kind == "security_group" else router_id
        return cloud.client.put(
            f"{V2}/{collection}/{target}", content=json.dumps({kind: body}), headers=h
        )
    return cloud.client.post(f"{V2}/{collection}", content=json.dumps({kind: body}), headers=h)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(FIELDS))
def test_random_bodies_never_5xx(cloud: Any, kind: str) -> None:
    if cloud.db.backend != "sqlite":
        pytest.skip("fuzzing needs one backend")
    ids = _setup(cloud)
    fields = FIELDS[kind]
    document = st.dictionaries(st.sampled_from(fields), values(ids), max_size=len(fields))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(body=document, update=st.booleans())
    def send(body: dict[str, Any], update: bool) -> None:
        resp = _send(cloud, ids, kind, body, update)
        assert resp.status_code < 500, (kind, body, resp.status_code, resp.text)
        if resp.status_code >= 400:
            error = resp.json()
            if kind.startswith("nova"):
                (inner,) = error.values()
                assert inner["message"] and inner["code"] == resp.status_code, resp.text
            else:
                assert error["NeutronError"]["type"], resp.text
                assert error["NeutronError"]["message"], resp.text

    send()
