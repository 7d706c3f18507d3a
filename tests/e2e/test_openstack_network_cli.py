"""The real `openstack` CLI drives networks, subnets, ports and quotas on a real `kumo up`,
including the errors a user meets (overlapping pools, a network still in use)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from kumoproc import OPENSTACK, Cloud, Result, run

pytestmark = pytest.mark.clients


def openstack(cloud: Cloud, command: str) -> Result:
    """Run ``openstack <command>`` (arguments separated by spaces)."""
    return run([OPENSTACK, "--os-cloud", "kumo", *command.split()], cloud.env())


def ok_json(result: Result) -> Any:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.json()


def test_network_subnet_port_lifecycle(cloud: Cloud) -> None:
    name = f"e2e-net-{uuid.uuid4().hex[:8]}"
    net = ok_json(openstack(cloud, f"network create {name} -f json"))
    assert net["status"] == "ACTIVE" and net["mtu"] in (1450, 1500)
    overlapping = openstack(
        cloud,
        f"subnet create bad --network {name} --subnet-range 10.50.0.0/24 "
        "--allocation-pool start=10.50.0.10,end=10.50.0.20 "
        "--allocation-pool start=10.50.0.15,end=10.50.0.30",
    )
    assert overlapping.returncode != 0 and "overlapping" in overlapping.stderr.lower()
    bad_cidr = openstack(cloud, f"subnet create bad --network {name} --subnet-range 10.50.0.0/33")
    assert bad_cidr.returncode != 0 and "10.50.0.0/33" in bad_cidr.stderr, bad_cidr.stderr
    outside = openstack(
        cloud,
        f"subnet create bad --network {name} --subnet-range 10.50.0.0/24 --gateway 10.99.0.1",
    )
    assert outside.returncode != 0 and "not within the subnet" in outside.stderr, outside.stderr
    sub = ok_json(
        openstack(
            cloud,
            f"subnet create {name}-v4 --network {name} --subnet-range 10.50.0.0/24 "
            "--dns-nameserver 192.0.2.53 -f json",
        )
    )
    assert sub["gateway_ip"] == "10.50.0.1"
    port = ok_json(
        openstack(
            cloud,
            f"port create {name}-p --network {name} "
            f"--fixed-ip subnet={sub['id']},ip-address=10.50.0.77 -f json",
        )
    )
    assert "10.50.0.77" in str(port["fixed_ips"])
    listed = ok_json(openstack(cloud, "port list --fixed-ip ip-address=10.50.0.77 -f json"))
    assert [p["ID"] for p in listed] == [port["id"]]
    in_use = openstack(cloud, f"network delete {name}")
    assert in_use.returncode != 0 and "in use" in in_use.stderr.lower(), in_use.stderr
    assert openstack(cloud, f"port delete {port['id']}").returncode == 0
    assert openstack(cloud, f"network delete {name}").returncode == 0
    assert openstack(cloud, f"subnet show {sub['id']}").returncode != 0


def test_quota_show_and_set(cloud: Cloud) -> None:
    assert ok_json(openstack(cloud, "quota show --network demo -f json"))
    assert openstack(cloud, "quota set --ports 42 demo").returncode == 0
    after = ok_json(openstack(cloud, "quota show --network demo -f json"))
    assert "42" in str(after)
