"""Fuzzing the network API: random JSON documents to every create and update endpoint are
never a 5xx, and every error is a NeutronError (issue 4, "Done when" 5: no 500s)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

V2 = "/network/v2.0"
EXAMPLES = 120

FIELDS = {
    "network": (
        "name", "admin_state_up", "shared", "router:external", "mtu", "port_security_enabled",
        "provider:network_type", "provider:physical_network", "provider:segmentation_id",
        "availability_zone_hints", "is_default", "tags", "project_id",
    ),
    "subnet": (
        "network_id", "ip_version", "cidr", "gateway_ip", "allocation_pools", "dns_nameservers",
        "host_routes", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id",
        "prefixlen", "use_default_subnetpool",
    ),
    "port": (
        "network_id", "mac_address", "fixed_ips", "security_groups", "port_security_enabled",
        "allowed_address_pairs", "extra_dhcp_opts", "binding:host_id", "binding:vnic_type",
        "binding:profile", "device_owner", "device_id", "admin_state_up",
    ),
    "subnetpool": (
        "name", "prefixes", "default_prefixlen", "min_prefixlen", "max_prefixlen", "shared",
        "is_default", "default_quota",
    ),
}  # fmt: skip


def values(ids: list[str]) -> st.SearchStrategy[Any]:
    """JSON values, with a bias to what the fields expect (addresses, CIDRs, the ids of
    existing resources) so the documents get past the first check."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**40), max_value=2**40)
        | st.text(max_size=20)
        | st.sampled_from(
            ["10.0.0.5", "10.0.0.0/24", "fd00::/64", "fd00::1", "10.0.0.1/24", "vxlan", "flat",
             "slaac", "fa:16:3e:00:00:01", "physnet1", "", "0.0.0.0/0", "::/0", *ids]
        )
    )  # fmt: skip
    return st.recursive(
        scalars,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "ip_address",
                        "subnet_id",
                        "start",
                        "end",
                        "destination",
                        "nexthop",
                        "mac_address",
                        "opt_name",
                        "opt_value",
                        "x",
                    ]
                ),
                inner,
                max_size=3,
            )
        ),
        max_leaves=6,
    )


@pytest.mark.slow
@pytest.mark.parametrize("resource", sorted(FIELDS))
def test_random_bodies_never_5xx(cloud: Any, resource: str) -> None:
    if cloud.db.backend != "sqlite":
        pytest.skip("fuzzing needs one backend")
    net = cloud.client.post(f"{V2}/networks", json={"network": {}}, headers=cloud.admin).json()
    sub = cloud.client.post(
        f"{V2}/subnets",
        json={
            "subnet": {"network_id": net["network"]["id"], "cidr": "10.0.0.0/16", "ip_version": 4}
        },
        headers=cloud.admin,
    ).json()["subnet"]
    ids = [net["network"]["id"], sub["id"]]
    fields = FIELDS[resource]
    document = st.dictionaries(st.sampled_from(fields), values(ids), max_size=len(fields))

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(body=document, bulk=st.booleans(), update=st.booleans())
    def send(body: dict[str, Any], bulk: bool, update: bool) -> None:
        if update:
            target = {"port": "ports", "subnet": "subnets", "network": "networks"}.get(resource)
            if target is None:
                return
            item = ids[1] if resource == "subnet" else ids[0]
            if resource == "port":
                made = cloud.client.post(
                    f"{V2}/ports", json={"port": {"network_id": ids[0]}}, headers=cloud.admin
                )
                item = made.json()["port"]["id"]
            resp = cloud.client.put(
                f"{V2}/{target}/{item}", content=json.dumps({resource: body}), headers=cloud.admin
            )
            if resource == "port":
                cloud.client.delete(f"{V2}/ports/{item}", headers=cloud.admin)
        else:
            wrapped = {resource + "s": [body, body]} if bulk else {resource: body}
            resp = cloud.client.post(
                f"{V2}/{resource}s", content=json.dumps(wrapped), headers=cloud.admin
            )
        assert resp.status_code < 500, (resource, body, resp.status_code, resp.text)
        if resp.status_code >= 400:
            error = resp.json()["NeutronError"]
            assert error["type"] and error["message"], resp.text

    send()
