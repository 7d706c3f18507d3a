"""Live migration of a real guest between two agents on this one machine: `kumo up` (with
its own agent) and a second `kumo serve agent` with a state directory of its own, so the
disks are not shared and move by blockdev-mirror to the destination's NBD export.

The proof is the guest's own serial console: its alive counter goes on at the destination
without a second boot; the source's QEMU is gone; the allocation moved; `kumo db check`
is clean. The request uses the 2.1 body (os-migrateLive exists from 2.1), so it runs on
whatever microversion the cloud advertises; `openstack server migrate --live-migration`
needs 2.25 and is run only once the cloud offers it. Every QEMU is killed by PID at the end.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_qemu_consoles import alive_counter, console_url, read_until, refused
from test_qemu_server import (
    Guests,
    _require_qemu,
    console,
    create_server,
    ok,
    openstack,
    show,
    wait_console,
)
from websockets.sync.client import connect

from kumo.drivers.hypervisor import qmp
from kumo.drivers.hypervisor.qemu_process import qmp_socket

from kumoproc import KUMO, Cloud, alive, clean_env, kill_group, kumo, start_cloud, wait_for

pytestmark = [pytest.mark.clients, pytest.mark.timeout(900)]
HOST_B = "kumo-host-b"
MOVE = 180.0


def _counter(text: str) -> int:
    numbers = [int(n) for n in re.findall(r"kumo-guest: alive (\d+)", text)]
    return max(numbers) if numbers else -1


@pytest.fixture
def two_hosts(tmp_path: Path) -> Iterator[tuple[Cloud, Path, Guests, Guests]]:
    _require_qemu()
    state = tmp_path / "state"
    cloud = start_cloud(state)
    state_b = tmp_path / "b"
    agent: subprocess.Popen[bytes] | None = None
    guests, guests_b = Guests(state), Guests(state_b)
    try:
        credential = (state / "host-credential").read_text().strip()
        with (tmp_path / "agent-b.log").open("wb") as log:
            agent = subprocess.Popen(
                [
                    KUMO,
                    "--state-dir",
                    str(state_b),
                    "serve",
                    "agent",
                    "--name",
                    HOST_B,
                    "--api-url",
                    cloud.url,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=clean_env(KUMO_AGENT_CREDENTIAL=credential, KUMO_COMPUTE_HYPERVISOR="qemu"),
                start_new_session=True,
            )

        def both_up() -> bool:
            rows = kumo("--state-dir", str(state), "host", "list", "--format", "json").json()
            assert isinstance(rows, list)
            return len([r for r in rows if r["state"] == "up"]) == 2

        wait_for(both_up, 90, "both hosts up")
        yield cloud, state_b, guests, guests_b
    finally:
        if agent is not None:
            kill_group(agent)
        cloud.stop()
        guests.cleanup()
        guests_b.cleanup()


def _token(cloud: Cloud) -> str:
    return ok(openstack(cloud, "token", "issue", "-f", "value", "-c", "id")).stdout.strip()


def _migrations(cloud: Cloud, token: str, server_id: str) -> list[dict[str, Any]]:
    resp = httpx.get(
        f"{cloud.url}/compute/v2.1/os-migrations",
        params={"instance_uuid": server_id},
        headers={"X-Auth-Token": token},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()["migrations"]
    return rows


def _measured(state: Path, server_id: str) -> list[tuple[int | None, int | None]]:
    """QEMU's total time and the guest's downtime (stop-and-copy plus the switch)."""
    with sqlite3.connect(next(state.glob("*.db"))) as db:
        return list(
            db.execute(
                "SELECT total_time_ms, downtime_ms FROM migrations WHERE instance_uuid = ? "
                "ORDER BY id",
                (server_id,),
            )
        )


def _move(cloud: Cloud, token: str, server_id: str, count: int) -> dict[str, Any]:
    body = {"os-migrateLive": {"host": None, "block_migration": True, "disk_over_commit": False}}
    resp = httpx.post(
        f"{cloud.url}/compute/v2.1/servers/{server_id}/action",
        json=body,
        headers={"X-Auth-Token": token},
        timeout=30,
    )
    assert resp.status_code == 202, resp.text
    assert show(cloud, server_id)["status"] in ("MIGRATING", "ACTIVE")

    def ended() -> dict[str, Any] | None:
        rows = _migrations(cloud, token, server_id)
        assert len(rows) == count
        assert rows[0]["status"] not in ("failed", "error", "cancelled"), rows[0]
        return rows[0] if rows[0]["status"] == "completed" else None

    return wait_for(ended, MOVE, "the live migration to complete", interval=0.5)


def _guest_state(console_log: Path, moved_in: float) -> str:
    """What a stalled counter needs explained: QEMU's run state and the console's tail."""
    try:
        status = qmp.execute(qmp_socket(console_log.parent), "query-status")
    except Exception as exc:  # the failure message must not hide behind a second one
        status = f"no answer from QMP: {exc}"
    tail = console_log.read_text(errors="replace")[-600:]
    return f"moved in {moved_in:.1f} s; QEMU status {status}; console tail: {tail!r}"


def _move_and_check(
    cloud: Cloud, state_b: Path, dirs: dict[str, Guests], token: str, server_id: str, count: int
) -> None:
    """One live migration, judged by the guest, the hosts' files and the database."""
    state_a = cloud.state_dir
    before = show(cloud, server_id)
    source_state = state_a if (state_a / "agent" / "instances" / server_id).exists() else state_b
    dest_state = state_b if source_state == state_a else state_a
    source_pid = dirs[str(source_state)].pid(server_id)
    source_log = source_state / "agent" / "instances" / server_id / "console.log"
    seen = _counter(source_log.read_text(errors="replace"))
    before_move = console_url(cloud, "serial", server_id)  # opens the source's console
    started = time.monotonic()
    row = _move(cloud, token, server_id, count)
    moved_in = time.monotonic() - started
    assert row["source_compute"] == before["OS-EXT-SRV-ATTR:host"]
    after = wait_for(
        lambda: (s := show(cloud, server_id))["status"] == "ACTIVE" and s,
        60,
        "ACTIVE after the move",
    )
    assert after["OS-EXT-SRV-ATTR:host"] == row["dest_compute"] != row["source_compute"]
    wait_for(lambda: not alive(source_pid), 60, "the source QEMU to exit")
    wait_for(
        lambda: not (source_state / "agent" / "instances" / server_id).exists(),
        60,
        "the source's files to go",
    )
    dest_pid = dirs[str(dest_state)].pid(server_id)
    assert alive(dest_pid)
    dest_log = dest_state / "agent" / "instances" / server_id / "console.log"
    text = wait_for(
        lambda: (t := dest_log.read_text(errors="replace")) and _counter(t) > seen + 1 and t,
        180,
        f"the alive counter past {seen + 1} there",
        why=lambda: _guest_state(dest_log, moved_in),
    )
    first = int(re.findall(r"kumo-guest: alive (\d+)", text)[0])
    assert first > seen, (seen, text[:500])  # it went on from where it was
    assert "kumo-guest: start" not in text, "the guest booted again at the destination"
    # The console the API shows comes from the destination now.
    wait_for(
        lambda: _counter(t := console(cloud, "mover")) > seen + 1 and "kumo-guest: start" not in t,
        60,
        "the console from the destination",
    )
    # The destination reports its own console: the URL asked for now opens it; the token
    # made for the source died with the move.
    assert refused(before_move) == 403
    with connect(console_url(cloud, "serial", server_id), open_timeout=30) as ws:
        read_until(ws, lambda text: alive_counter(text) > seen + 1)
    print(
        f"move {count}: {row['source_compute']} -> {row['dest_compute']} in "
        f"{moved_in:.2f}s (request to completed); qemu total/downtime ms: "
        f"{_measured(state_a, server_id)[-1]}"
    )
    check = kumo("--state-dir", str(state_a), "db", "check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_live_migration_between_two_agents(
    two_hosts: tuple[Cloud, Path, Guests, Guests], tmp_path: Path
) -> None:
    cloud, state_b, guests, guests_b = two_hosts
    state_a = cloud.state_dir
    server_id = create_server(cloud, tmp_path, "mover")["id"]
    wait_console(cloud, "mover", "kumo-guest: alive 2")
    token = _token(cloud)
    dirs = {str(state_a): guests, str(state_b): guests_b}

    for count in (1, 2):  # there, and back again
        _move_and_check(cloud, state_b, dirs, token, server_id, count)

    ok(openstack(cloud, "server", "delete", "--wait", "mover"))
    check = kumo("--state-dir", str(state_a), "db", "check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_openstack_cli_live_migration(
    two_hosts: tuple[Cloud, Path, Guests, Guests], tmp_path: Path
) -> None:
    cloud = two_hosts[0]
    versions = httpx.get(f"{cloud.url}/compute/", timeout=10).json()["versions"]
    newest = max(v["version"] for v in versions if v["version"])
    if tuple(int(x) for x in newest.split(".")) < (2, 25):
        pytest.skip(f"the cloud offers compute {newest}; the CLI's live migration needs 2.25")
    server_id = create_server(cloud, tmp_path, "cli-mover")["id"]
    host = show(cloud, server_id)["OS-EXT-SRV-ATTR:host"]
    ok(openstack(cloud, "server", "migrate", "--live-migration", "--wait", "cli-mover"))
    moved = show(cloud, server_id)
    assert moved["status"] == "ACTIVE" and moved["OS-EXT-SRV-ATTR:host"] != host
    listed = json.loads(
        ok(
            openstack(cloud, "server", "migration", "list", "--server", server_id, "-f", "json")
        ).stdout
    )
    assert listed and listed[0]["Status"] == "completed"
    ok(openstack(cloud, "server", "delete", "--wait", "cli-mover"))
