"""A small compute/identity client over httpx for end-to-end tests against a live `kumo up`,
plus helpers shared by the crash-recovery and capacity tests (qemu PIDs, `kumo db check`).

Self-contained apart from kumoproc.py; nothing here uses tests/conftest.py.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from kumoproc import KUMO, clean_env, command_lines, in_ci, kill_group, kumo, wait_for

SERVERS = "/compute/v2.1/servers"
# A server is settled when it no longer waits for anything: ACTIVE, or ERROR with a fault.
SETTLED = frozenset({"ACTIVE", "ERROR"})
# The fake driver keeps its guests in the memory of its process: a guest spawned before
# kumo up stopped or died is gone when it comes back, and the agent reports the server
# SHUTOFF (as Nova's power-state sync does for a guest that vanished), not restarting it.
SETTLED_AFTER_FAKE_RESTART = SETTLED | {"SHUTOFF"}


class Api:
    """Project-scoped password token for a user of a running cloud; re-authenticates when
    the cloud restarts (tokens survive a restart, but a new Api is cheap anyway)."""

    def __init__(self, url: str, password: str, user: str = "admin", project: str = "admin"):
        self.url = url
        self.user, self.password, self.project = user, password, project
        self.client = httpx.Client(base_url=url, timeout=60)
        self.token = self.issue_token()
        self.client.headers["X-Auth-Token"] = self.token

    def issue_token(self) -> str:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.user,
                            "domain": {"id": "default"},
                            "password": self.password,
                        }
                    },
                },
                "scope": {"project": {"name": self.project, "domain": {"id": "default"}}},
            }
        }
        resp = httpx.post(f"{self.url}/identity/v3/auth/tokens", json=body, timeout=60)
        assert resp.status_code == 201, resp.text
        return str(resp.headers["X-Subject-Token"])

    def project_id(self) -> str:
        resp = self.client.get("/identity/v3/auth/tokens", headers={"X-Subject-Token": self.token})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["token"]["project"]["id"])

    def close(self) -> None:
        self.client.close()

    # -- compute -----------------------------------------------------------------------
    def image_id(self, name: str = "kumo-tiny") -> str:
        resp = self.client.get("/image/v2/images", params={"name": name})
        assert resp.status_code == 200, resp.text
        images = resp.json()["images"]
        assert images, f"no image {name} registered"
        return str(images[0]["id"])

    def create_server(self, name: str, image_id: str, flavor: str = "1") -> httpx.Response:
        body = {"server": {"name": name, "imageRef": image_id, "flavorRef": flavor}}
        return self.client.post(SERVERS, json=body)

    def server(self, server_id: str) -> dict[str, Any]:
        resp = self.client.get(f"{SERVERS}/{server_id}")
        assert resp.status_code == 200, resp.text
        server: dict[str, Any] = resp.json()["server"]
        return server

    def servers(self) -> list[dict[str, Any]]:
        resp = self.client.get(f"{SERVERS}/detail")
        assert resp.status_code == 200, resp.text
        servers: list[dict[str, Any]] = resp.json()["servers"]
        return servers

    def delete_server(self, server_id: str) -> None:
        resp = self.client.delete(f"{SERVERS}/{server_id}")
        assert resp.status_code in (204, 404), resp.text

    def wait_gone(self, server_id: str, timeout: float = 60) -> None:
        wait_for(
            lambda: self.client.get(f"{SERVERS}/{server_id}").status_code == 404,
            timeout,
            f"server {server_id} gone",
        )

    def wait_settled(
        self, ids: list[str], timeout: float, settled_in: frozenset[str] = SETTLED
    ) -> dict[str, dict[str, Any]]:
        """Every server in a ``settled_in`` status (ACTIVE or ERROR unless told), with no
        task under way; returns them by id."""

        def probe() -> dict[str, dict[str, Any]] | None:
            shown = {s["id"]: s for s in self.servers() if s["id"] in ids}
            missing = set(ids) - set(shown)
            assert not missing, f"servers vanished: {missing}"
            settled = all(
                s["status"] in settled_in and s.get("OS-EXT-STS:task_state") is None
                for s in shown.values()
            )
            return shown if settled else None

        try:
            wanted = " or ".join(sorted(settled_in))
            return wait_for(probe, timeout, f"every server {wanted}", interval=0.5)
        except AssertionError:
            states = {
                s["id"]: (s["status"], s.get("OS-EXT-STS:task_state")) for s in self.servers()
            }
            raise AssertionError(f"not settled after {timeout}s: {states}") from None

    def hypervisors(self) -> list[dict[str, Any]]:
        resp = self.client.get("/compute/v2.1/os-hypervisors/detail")
        assert resp.status_code == 200, resp.text
        hypervisors: list[dict[str, Any]] = resp.json()["hypervisors"]
        return hypervisors

    def set_quota(self, project_id: str, **limits: int) -> None:
        resp = self.client.put(
            f"/compute/v2.1/os-quota-sets/{project_id}", json={"quota_set": limits}
        )
        assert resp.status_code == 200, resp.text


def assert_settled_with_faults(
    servers: dict[str, dict[str, Any]], settled_in: frozenset[str] = SETTLED
) -> None:
    for server in servers.values():
        assert server["status"] in settled_in, server
        if server["status"] == "ERROR":
            fault = server.get("fault") or {}
            assert fault.get("message"), f"ERROR without a fault: {server}"


def db_check(state_dir: Path) -> None:
    """`kumo db check` on the state directory: no problem of any kind (exit 0)."""
    result = kumo("--state-dir", str(state_dir), "db", "check")
    assert result.returncode == 0, f"kumo db check found problems:\n{result.stdout}{result.stderr}"


# -- processes ---------------------------------------------------------------------------
def start_agent(
    state_dir: Path,
    api_url: str,
    credential_file: Path,
    name: str,
    log_path: Path,
    **env: str,
) -> subprocess.Popen[bytes]:
    """`kumo serve agent` in its own process group and state directory."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                KUMO, "--state-dir", str(state_dir), "serve", "agent", "--name", name,
                "--api-url", api_url, "--credential-file", str(credential_file),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_env(**env),
            start_new_session=True,
        )  # fmt: skip


def kill9(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL of this one process (not its group: children it forked live on, as after a
    crash), then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    process.wait(10)


def kill_leftovers(process: subprocess.Popen[bytes]) -> None:
    """After a test: the process and anything left in its process group (its pgid is its
    own pid, start_new_session), even when the leader itself is already gone."""
    kill_group(process)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def require_qemu() -> None:
    missing = [b for b in ("qemu-system-x86_64", "qemu-img") if not shutil.which(b)]
    if not glob.glob("/boot/vmlinuz-*"):
        missing.append("a kernel in /boot (linux-image-amd64)")
    if not Path("/usr/bin/busybox").exists():
        missing.append("/usr/bin/busybox (busybox-static)")
    if missing:
        reason = f"{', '.join(missing)} missing: no real guests here"
        if in_ci():
            pytest.fail(reason + "; CI=true requires the real hypervisor")
        pytest.skip(reason)


def qemu_pids(server_id: str) -> list[int]:
    """Every live qemu-system process whose command line names this server's UUID."""
    return sorted(
        pid
        for pid, argv in command_lines()
        if b"qemu-system" in argv[0] and server_id.encode() in argv
    )


class Guests:
    """Every server UUID a test created; at the end, every qemu still running for one of
    them is killed by PID (found by its command line, so PIDs that recycled are safe)."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def add(self, server_id: str) -> str:
        self.ids.add(server_id)
        return server_id

    def cleanup(self) -> None:
        for server_id in self.ids:
            for pid in qemu_pids(server_id):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def pidfile(instances: Path, server_id: str) -> int | None:
    try:
        return int((instances / server_id / "qemu.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def wait_file(
    path: Path, timeout: float, interval: float = 0.01, context: Callable[[], str] | None = None
) -> None:
    """Wait for ``path``; on timeout ``context`` (say, a log's tail) says why it never came."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            detail = f"\n{context()}" if context is not None else ""
            raise AssertionError(f"{path} did not appear within {timeout}s{detail}")
        time.sleep(interval)
