"""`kumo down` on a cloud with real guests and the real datapath: it stops the running
`kumo up`, the guests' qemu, dnsmasq, and removes the cloud's namespaces, bridges and
nftables tables (listed before and after from the kernel, not from kumo's own records);
the next `kumo up` shows the servers SHUTOFF, as the README says, and they start again."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_qemu_server import Guests, _require_qemu, ok, openstack, wait_status

from kumoproc import KUMO, clean_env, kernel_leftovers, run, start_cloud

pytestmark = pytest.mark.clients

NOTHING = {"processes": [], "namespaces": [], "bridges": [], "nft tables": []}


def test_down_leaves_nothing_and_servers_come_back_shutoff(tmp_path: Path) -> None:
    _require_qemu()
    if os.geteuid() != 0:
        pytest.skip("the linux datapath needs root (network namespaces)")
    state = tmp_path / "state"
    env = clean_env(KUMO_AGENT_NETWORK_DRIVER="linux", KUMO_COMPUTE_HYPERVISOR="qemu")
    down = [KUMO, "--state-dir", str(state), "down", "--timeout", "15"]
    guests = Guests(state)
    clouds = [start_cloud(state, env=env)]
    try:
        cloud = clouds[0]
        ok(openstack(cloud, "network", "create", "net1"))
        ok(openstack(cloud, "subnet", "create", "--network", "net1",
                     "--subnet-range", "10.71.0.0/24", "sub1"))  # fmt: skip
        names = ("vm-a", "vm-b")
        for name in names:
            ok(openstack(cloud, "server", "create", "--image", "kumo-tiny",
                         "--flavor", "m1.tiny", "--network", "net1", name))  # fmt: skip
        pids = [guests.pid(wait_status(cloud, name, "ACTIVE")["id"]) for name in names]

        before = kernel_leftovers(state)
        listed = "\n".join(before["processes"])
        assert all(f"{pid} " in listed for pid in pids), before  # both guests' qemu
        assert "dnsmasq" in listed, before
        assert before["namespaces"] and before["bridges"] and before["nft tables"], before

        stopped = run(down, env, timeout=300)
        assert stopped.returncode == 0, stopped
        assert f"stopped kumo up (pid {cloud.process.pid})" in stopped.stdout
        for name in names:
            assert f"stopped guest {name} (" in stopped.stdout, stopped.stdout
        assert cloud.process.wait(10) == 0, cloud.output()
        assert kernel_leftovers(state) == NOTHING

        again = run(down, env)
        assert again.returncode == 0, again
        assert again.stdout.strip() == f"nothing of {state} was running"

        # The servers are kept, powered off: SHUTOFF after the next kumo up, and they start.
        clouds.append(start_cloud(state, env=env))
        cloud = clouds[-1]
        for name in names:
            wait_status(cloud, name, "SHUTOFF")
        ok(openstack(cloud, "server", "start", "vm-a"))
        guests.pid(wait_status(cloud, "vm-a", "ACTIVE")["id"])
    finally:
        for each in clouds:
            each.stop()
        run(down, env, timeout=300)
        guests.cleanup()
    assert kernel_leftovers(state) == NOTHING
