"""`kumo host drain` of a host running two real QEMU guests: `kumo up` (with its agent) and
a second `kumo serve agent` on this machine, as the live-migration test sets them up (its
fixture). Both guests move live (block migration: the state directories are not shared),
two at a time, while the command shows their progress; the drained host ends disabled and
with no QEMU and no guest files; each guest goes on at the destination without booting
again; `kumo db check` is clean. Every QEMU is killed by PID at the end.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_qemu_live_migration import HOST_B, two_hosts  # noqa: F401 (the fixture)
from test_qemu_server import BOOT, Guests, ok, openstack, show, wait_console

from kumoproc import Cloud, alive, kumo, wait_for

pytestmark = [pytest.mark.clients, pytest.mark.timeout(900)]
NAMES = ("drain-1", "drain-2")


def _counter(text: str) -> int:
    numbers = [int(n) for n in re.findall(r"kumo-guest: alive (\d+)", text)]
    return max(numbers) if numbers else -1


def _hosts(state: Path) -> dict[str, dict[str, object]]:
    rows = kumo("--state-dir", str(state), "host", "list", "--format", "json").json()
    assert isinstance(rows, list)
    return {str(r["name"]): r for r in rows}


def test_drain_moves_two_real_guests_off_a_host(
    two_hosts: tuple[Cloud, Path, Guests, Guests],  # noqa: F811
) -> None:
    cloud, state_b, guests, guests_b = two_hosts
    state_a = cloud.state_dir
    (host_a,) = [name for name in _hosts(state_a) if name != HOST_B]
    # Both guests on host A: B takes nothing new while they are created.
    ok(kumo("--state-dir", str(state_a), "host", "disable", HOST_B))
    ids = []
    for name in NAMES:
        created = ok(
            openstack(
                cloud,
                "server",
                "create",
                "--image",
                "kumo-tiny",
                "--flavor",
                "m1.tiny",
                "--wait",
                name,
                "-f",
                "json",
            )
        ).json()
        assert created["status"] == "ACTIVE", created
        assert created["OS-EXT-SRV-ATTR:host"] == host_a, created
        ids.append(created["id"])
    ok(kumo("--state-dir", str(state_a), "host", "enable", HOST_B))
    for name in NAMES:
        wait_console(cloud, name, "kumo-guest: alive 2")
    source_pids = {sid: guests.pid(sid) for sid in ids}
    seen = {
        sid: _counter((state_a / "agent" / "instances" / sid / "console.log").read_text())
        for sid in ids
    }

    drained = kumo(
        "--state-dir",
        str(state_a),
        "host",
        "drain",
        host_a,
        "--parallel",
        "2",
        "--format",
        "json",
        timeout=600,
    )
    assert drained.returncode == 0, drained.stdout + drained.stderr
    rows = {r["server"]: r for r in drained.json()}  # type: ignore[union-attr]
    assert set(rows) == set(ids)
    for row in rows.values():
        assert (row["result"], row["method"], row["destination"]) == ("moved", "live", HOST_B)
    assert "[2/2] moved" in drained.err, drained.stderr  # the progress, a line per server

    # Host A: disabled with the drain's reason, no server, no QEMU, no guest files.
    listed = _hosts(state_a)[host_a]
    assert listed["status"] == "disabled"
    assert "kumo host drain" in str(listed["disabled_reason"])
    for sid in ids:
        assert show(cloud, sid)["OS-EXT-SRV-ATTR:host"] == HOST_B
        wait_for(lambda sid=sid: not alive(source_pids[sid]), 60, "the source QEMU to exit")
        wait_for(
            lambda sid=sid: not (state_a / "agent" / "instances" / sid).exists(),
            60,
            "the source's files to go",
        )
        assert alive(guests_b.pid(sid))
        # The same guest goes on at the destination: its counter, no second boot.
        dest_log = state_b / "agent" / "instances" / sid / "console.log"
        text = wait_for(
            lambda log=dest_log, sid=sid: (
                (t := log.read_text(errors="replace")) and _counter(t) > seen[sid] + 1 and t
            ),
            BOOT,
            f"the alive counter of {sid} past {seen[sid] + 1} on {HOST_B}",
        )
        assert "kumo-guest: start" not in text, "the guest booted again at the destination"
    check = kumo("--state-dir", str(state_a), "db", "check")
    assert check.returncode == 0, check.stdout + check.stderr
    # Maintenance done: host A takes servers again.
    ok(kumo("--state-dir", str(state_a), "host", "enable", host_a))
    assert _hosts(state_a)[host_a]["status"] == "enabled"
