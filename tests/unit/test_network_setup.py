"""What the agent's network setup gives the driver for the all-in-one cloud."""

from __future__ import annotations

from pathlib import Path

from kumo.agent.network import complete_spec, floating_ips_applied
from kumo.agent.network_setup import PUBLIC_PHYSNET, make_network
from kumo.config import load_config


def test_the_fake_datapath_carries_kumo_ups_public_network(tmp_path: Path) -> None:
    """With the fake network driver, kumo up's `public` (a flat network on physnet public)
    is carried like the linux driver's provider, so routers' gateways and floating IPs come
    up: it was left out as unmappable and every floating IP stayed DOWN (openstacksdk's and
    Ansible's floating IP waits timed out)."""
    config = load_config(
        environ={"KUMO_STATE_DIR": str(tmp_path), "KUMO_AGENT_NETWORK_DRIVER": "fake"}
    )
    driver, local = make_network(config)
    assert driver is not None
    assert PUBLIC_PHYSNET in local.physical_networks
    public = {"id": "pub", "type": "flat", "physical_network": PUBLIC_PHYSNET, "mtu": 1500}
    router = {
        "id": "r1",
        "gateway": {"network_id": "pub", "port_id": "gw", "ip": "172.24.4.10", "prefixlen": 24},
        "interfaces": [],
        "floating_ips": [],
    }
    _, faults = complete_spec({"networks": [public], "routers": [router]}, local)
    assert "pub" not in faults
    router["floating_ips"] = [{"id": "f1", "fixed_ip": "10.0.0.5"}]
    router["interfaces"] = [
        {"network_id": "n1", "port_id": "if", "ip": "10.0.0.1", "prefixlen": 24}
    ]
    assert floating_ips_applied([router], faults) == {"f1": "ACTIVE"}
