"""Security groups, routers and floating IPs driven by the real `openstack` CLI against a
real `kumo up`, as a user would."""

from __future__ import annotations

from typing import Any

import pytest

from kumoproc import OPENSTACK, Cloud, Result, run

pytestmark = pytest.mark.clients


def openstack(cloud: Cloud, *args: str, os_cloud: str = "kumo-demo") -> Result:
    return run([OPENSTACK, "--os-cloud", os_cloud, *args], cloud.env())


def ok(result: Result) -> Any:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.json() if result.stdout.lstrip()[:1] in ("{", "[") else None


def test_security_groups_router_and_floating_ip(cloud: Cloud) -> None:
    # Each CLI call costs seconds: one pass through what a user does, errors included.
    ok(openstack(cloud, "network", "create", "--external", "ext-e2e", os_cloud="kumo"))
    ok(
        openstack(
            cloud,
            "subnet",
            "create",
            "--network",
            "ext-e2e",
            "--subnet-range",
            "203.0.113.0/24",
            "--no-dhcp",
            "ext-e2e-sub",
            os_cloud="kumo",
        )
    )
    # Security groups: a new group with a rule, and the default group found by name.
    ok(openstack(cloud, "security", "group", "create", "web"))
    rule = ok(
        openstack(
            cloud,
            "security",
            "group",
            "rule",
            "create",
            "--protocol",
            "tcp",
            "--dst-port",
            "22",
            "--remote-ip",
            "10.0.0.0/8",
            "web",
            "-f",
            "json",
        )
    )
    assert rule["port_range_min"] == 22 and rule["remote_ip_prefix"] == "10.0.0.0/8"
    ok(openstack(cloud, "security", "group", "rule", "create", "--protocol", "icmp", "default"))
    # A private network behind a router to the external one.
    ok(openstack(cloud, "network", "create", "priv-e2e"))
    ok(
        openstack(
            cloud,
            "subnet",
            "create",
            "--network",
            "priv-e2e",
            "--subnet-range",
            "10.10.0.0/24",
            "priv-e2e-sub",
        )
    )
    router = ok(
        openstack(cloud, "router", "create", "--external-gateway", "ext-e2e", "r-e2e", "-f", "json")
    )
    assert router["external_gateway_info"]["network_id"]
    ok(openstack(cloud, "router", "add", "subnet", "r-e2e", "priv-e2e-sub"))
    port = ok(
        openstack(
            cloud,
            "port",
            "create",
            "--network",
            "priv-e2e",
            "--security-group",
            "web",
            "p-e2e",
            "-f",
            "json",
        )
    )
    # A floating IP on the port, through the router.
    fip = ok(
        openstack(cloud, "floating", "ip", "create", "--port", "p-e2e", "ext-e2e", "-f", "json")
    )
    assert fip["floating_ip_address"].startswith("203.0.113.")
    assert fip["port_id"] == port["id"] and fip["router_id"] == router["id"]
    # The router's interface stays while the floating IP needs it.
    in_use = openstack(cloud, "router", "remove", "subnet", "r-e2e", "priv-e2e-sub")
    assert in_use.returncode != 0 and "floating IP" in in_use.stderr, in_use.stderr
    ok(openstack(cloud, "floating", "ip", "delete", fip["floating_ip_address"]))
