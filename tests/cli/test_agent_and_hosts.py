"""A separate `kumo serve agent` process registers, heartbeats, and goes down when killed."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from kumoproc import KUMO, clean_env, kill_group, kumo, start_cloud, stop_process, wait_for

HOST = "test-agent-host"
# A killed agent is seen down after 3 s of silence. No guest boots here: the fake driver,
# by name ("auto" on a host without QEMU makes `kumo serve agent` refuse to start).
ENV = clean_env(KUMO_HOSTS_HEARTBEAT_TIMEOUT="3", KUMO_COMPUTE_HYPERVISOR="fake")


def host_rows(state_dir: Path) -> list[dict[str, Any]]:
    result = kumo("--state-dir", str(state_dir), "host", "list", "--format", "json", env=ENV)
    assert result.returncode == 0, result.stderr
    rows = result.json()
    assert isinstance(rows, list)
    return rows


def host_row(state_dir: Path) -> dict[str, Any] | None:
    return next((row for row in host_rows(state_dir) if row["name"] == HOST), None)


def test_agent_up_down_and_disable(state_dir: Path) -> None:
    cloud = start_cloud(state_dir, "--no-agent", env=ENV)
    agent: subprocess.Popen[bytes] | None = None
    agent_log = state_dir.parent / "agent.log"
    try:
        assert host_rows(state_dir) == []  # --no-agent: only our agent will register
        with agent_log.open("wb") as log:
            agent = subprocess.Popen(
                [
                    KUMO, "--state-dir", str(state_dir), "serve", "agent",
                    "--name", HOST, "--api-url", cloud.url,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=ENV,
                start_new_session=True,
            )  # fmt: skip

        def is_up() -> dict[str, Any] | None:
            row = host_row(state_dir)
            return row if row and row["state"] == "up" else None

        row = wait_for(is_up, 60, f"{HOST} up ({agent_log})")
        assert row["status"] == "enabled"
        assert row["version"]
        assert row["vcpus"] and row["vcpus"] >= 1
        assert row["memory_mb"] and row["memory_mb"] > 0

        os.kill(agent.pid, signal.SIGKILL)
        agent.wait(10)

        def is_down() -> dict[str, Any] | None:
            row = host_row(state_dir)
            return row if row and row["state"] == "down" else None

        # heartbeat timeout is 3 s (ENV)
        wait_for(is_down, 30, f"{HOST} down after kill -9")

        disabled = kumo(
            "--state-dir", str(state_dir), "host", "disable", HOST, "--reason", "x", env=ENV
        )
        assert disabled.returncode == 0, disabled.stderr
        assert f"host {HOST} disabled" in disabled.stdout
        row = host_row(state_dir)
        assert row is not None
        assert row["status"] == "disabled"
        assert row["disabled_reason"] == "x"

        enabled = kumo("--state-dir", str(state_dir), "host", "enable", HOST, env=ENV)
        assert enabled.returncode == 0, enabled.stderr
        row = host_row(state_dir)
        assert row is not None
        assert row["status"] == "enabled"
        assert row["disabled_reason"] is None

        missing = kumo("--state-dir", str(state_dir), "host", "disable", "no-such-host", env=ENV)
        assert missing.returncode != 0
    finally:
        if agent is not None:
            kill_group(agent)
        code = stop_process(cloud.process)
    assert code == 0, cloud.output()
