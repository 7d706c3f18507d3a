"""The one live `kumo up` the dashboard's browser tests share (tests/web/test_browser_*.py),
and the one real QEMU guest they share on it.

Booting a cloud and a TCG guest is most of what a browser test costs, so the session
makes one of each, on the first browser test that asks. The machine tests run on one
xdist worker (tests/conftest.py's scheduler), so every browser module lands on the same
session and these fixtures are made once per run.

Sharing has rules, which every browser test follows:
- a test makes its own resources with names no other test uses, and asserts only on
  those (never "the list is empty": another test's leftovers may be there);
- the shared guest (``shared-vm``, demo project, kumo-tiny on QEMU, printing
  "kumo-guest: alive N" on its serial console) is only read or given things that are
  taken back before the test ends (a volume attached then detached, a floating IP
  associated then released); nobody stops, labels or deletes it;
- a test that needs a server of its own state (a launch, stop and delete) makes one.

Everything the cloud started is stopped at the end: the cloud by its PID, every QEMU
under its state directory by PID, and its datapath torn down.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from computeapi import Api, require_qemu
from kumoproc import (
    KUMO,
    Cloud,
    clean_env,
    cloud_namespaces,
    command_lines,
    run,
    start_cloud,
    wait_for,
)

MEMBER, MEMBER_PASSWORD = "mia", "mia-web-pw"  # a member (not admin) of the demo project
GUEST_NAME = "shared-vm"
BOOT = 240.0  # seconds for a TCG guest on a busy 2-vCPU machine to print on its console


@dataclass(frozen=True)
class SharedGuest:
    """The shared guest: a running kumo-tiny in the demo project of ``cloud``."""

    cloud: Cloud
    id: str
    name: str = GUEST_NAME


def kill_guests(state: Path) -> None:
    """SIGKILL every QEMU whose files lie under this state directory (guests outlive a
    stopped `kumo up`, as they outlive an agent restart), found by its command line."""
    instances = str(state / "agent" / "instances").encode()
    for pid, argv in command_lines():
        if any(arg.startswith(instances) for arg in argv):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _member(cloud: Cloud) -> None:
    """MEMBER, with the role "member" (not admin) on the demo project."""
    api = Api(cloud.url, cloud.admin_password)
    try:
        ident = api.client
        demo = ident.get("/identity/v3/projects", params={"name": "demo"}).json()["projects"][0]
        role = ident.get("/identity/v3/roles", params={"name": "member"}).json()["roles"][0]
        user = {"name": MEMBER, "password": MEMBER_PASSWORD, "default_project_id": demo["id"]}
        made = ident.post("/identity/v3/users", json={"user": user})
        assert made.status_code == 201, made.text
        user_id = made.json()["user"]["id"]
        grant = f"/identity/v3/projects/{demo['id']}/users/{user_id}/roles/{role['id']}"
        granted = ident.put(grant)
        assert granted.status_code == 204, granted.text
    finally:
        api.close()


@pytest.fixture(scope="session")
def live_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """A `kumo up` with its local agent on QEMU (as `make up` runs it) and MEMBER."""
    require_qemu()
    state = tmp_path_factory.mktemp("webcloud") / "state"
    env = clean_env()
    cloud = start_cloud(state, env=env)
    try:
        _member(cloud)
        yield cloud
    finally:
        cloud.stop()
        kill_guests(state)
        torn = run([KUMO, "--state-dir", str(state), "network", "teardown"], env)
        assert torn.returncode == 0, torn.stderr
        assert cloud_namespaces(state) == set(), "the cloud's namespaces outlived the tests"


@pytest.fixture(scope="session")
def shared_guest(live_cloud: Cloud) -> SharedGuest:
    """The shared guest, running and printing on its serial console (see the module's
    rules). It is killed with the cloud (live_cloud's teardown)."""
    api = Api(live_cloud.url, live_cloud.admin_password, project="demo")
    try:
        created = api.create_server(GUEST_NAME, api.image_id())
        assert created.status_code == 202, created.text
        server_id = str(created.json()["server"]["id"])
    finally:
        api.close()
    log = live_cloud.state_dir / "agent" / "instances" / server_id / "console.log"
    wait_for(
        lambda: log.exists() and "kumo-guest: alive" in log.read_text(errors="replace"),
        BOOT,
        f"{GUEST_NAME}'s first 'alive' on its serial console",
        interval=1.0,
        why=lambda: live_cloud.output()[-2000:],
    )
    return SharedGuest(live_cloud, server_id)
