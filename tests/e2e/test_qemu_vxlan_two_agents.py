"""VXLAN across two hosts (issue 4, "Done when" 3): `kumo up` and a second `kumo serve
agent`, each with its own host namespace and an address on a test underlay (a veth between
the two namespaces, made here). A tenant network spans both; a guest on each host gets its
address by DHCP and pings the other. Nothing of it touches the root namespace."""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_qemu_networking import PING, _active, _console
from test_qemu_server import BOOT, Guests, _require_qemu, ok, openstack

from computeapi import start_agent
from kumoproc import KUMO, Cloud, clean_env, command_lines, run, start_cloud, stop_process, wait_for

pytestmark = pytest.mark.clients

UNDERLAY = {"a": "192.168.240.1", "b": "192.168.240.2"}


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@contextlib.contextmanager
def _underlay() -> Iterator[dict[str, str]]:
    """Two host namespaces joined by a veth: the hosts' underlay network."""
    tag = uuid.uuid4().hex[:6]
    names = {"a": f"kte-{tag}-a", "b": f"kte-{tag}-b"}
    made: list[str] = []
    try:
        for name in names.values():
            _ip("netns", "add", name)
            made.append(name)
            _ip("-n", name, "link", "set", "lo", "up")
        _ip("-n", names["a"], "link", "add", "ul0", "type", "veth",
            "peer", "name", "ul0", "netns", names["b"])  # fmt: skip
        for host, name in names.items():
            _ip("-n", name, "addr", "add", f"{UNDERLAY[host]}/24", "dev", "ul0")
            _ip("-n", name, "link", "set", "ul0", "up")
        yield names
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


def _agent_env(namespace: str, host: str) -> dict[str, str]:
    return {
        "KUMO_AGENT_NETWORK_DRIVER": "linux",
        "KUMO_AGENT_HOST_NAMESPACE": namespace,
        "KUMO_AGENT_UNDERLAY_INTERFACE": "ul0",
        "KUMO_AGENT_UNDERLAY_IP": UNDERLAY[host],
    }


def _hypervisors(cloud: Cloud) -> list[str]:
    rows = ok(openstack(cloud, "hypervisor", "list", "-f", "json")).json()
    return sorted(r["Hypervisor Hostname"] for r in rows if r.get("State", "up") == "up")


def test_a_vxlan_network_spans_two_agents(tmp_path: Path) -> None:
    _require_qemu()
    if os.geteuid() != 0:
        pytest.skip("the linux datapath needs root (network namespaces)")
    state, state_b = tmp_path / "state", tmp_path / "state-b"
    with _underlay() as namespaces:
        env_a = clean_env(**_agent_env(namespaces["a"], "a"))
        env_b = {
            **_agent_env(namespaces["b"], "b"),
            "KUMO_AGENT_PROVIDER_GATEWAY": "",  # the outside world hangs off host a only
            "KUMO_COMPUTE_HYPERVISOR": "qemu",
        }
        cloud = start_cloud(state, env=env_a)
        guests, guests_b = Guests(state), Guests(state_b)
        agent_b: subprocess.Popen[bytes] | None = None
        try:
            (host_a,) = wait_for(lambda: _hypervisors(cloud), 60, "kumo up's own host")
            agent_b = start_agent(
                state_b, cloud.url, state / "host-credential", "host-b",
                tmp_path / "agent-b.log", **env_b,
            )  # fmt: skip
            wait_for(lambda: "host-b" in _hypervisors(cloud), 120, "host-b registered and up")

            ok(openstack(cloud, "network", "create", "--provider-network-type", "vxlan", "vx"))
            ok(openstack(cloud, "subnet", "create", "--network", "vx",
                         "--subnet-range", "10.90.0.0/24", "vx-sub"))  # fmt: skip
            addresses = {"vm-a": "10.90.0.11", "vm-b": "10.90.0.12"}
            hosts = {"vm-a": host_a, "vm-b": "host-b"}
            peers = {"vm-a": addresses["vm-b"], "vm-b": addresses["vm-a"]}
            for name, ip in addresses.items():
                fixed = f"subnet=vx-sub,ip-address={ip}"
                ok(openstack(cloud, "port", "create", "--network", "vx",
                             "--fixed-ip", fixed, f"p-{name}"))  # fmt: skip
                script = tmp_path / f"{name}.sh"
                script.write_text(PING.format(peer=peers[name]))
                ok(openstack(cloud, "server", "create", "--image", "kumo-tiny",
                             "--flavor", "m1.tiny", "--port", f"p-{name}",
                             "--availability-zone", f"nova:{hosts[name]}",
                             "--user-data", str(script), name))  # fmt: skip
            for name in addresses:
                server = _active(cloud, name)
                assert server["OS-EXT-SRV-ATTR:host"] == hosts[name], server
                (guests if name == "vm-a" else guests_b).pid(server["id"])
            for name in addresses:
                text = wait_for(
                    lambda n=name: (t := _console(cloud, n)) and "kumo-guest: ping " in t and t,
                    BOOT,
                    f"{name} to ping its peer on the other host",
                    interval=2.0,
                )
                assert f"kumo-guest: ip eth0 {addresses[name]}" in text, text
                assert f"kumo-guest: ping {peers[name]} ok" in text, text
        finally:
            if agent_b is not None:
                stop_process(agent_b)
            cloud.stop()
            guests.cleanup()
            guests_b.cleanup()
            for directory, env in ((state, env_a), (state_b, clean_env(**env_b))):
                torn = run([KUMO, "--state-dir", str(directory), "network", "teardown"], env)
                assert torn.returncode == 0, torn.stderr
    # Outside the finally: a failure above keeps its own message.
    leftovers = [
        b" ".join(argv).decode(errors="replace")
        for _, argv in command_lines()
        if str(tmp_path).encode() in b" ".join(argv) and b"pytest" not in b" ".join(argv)
    ]
    assert not leftovers, f"a dnsmasq or qemu outlived the teardown: {leftovers}"
