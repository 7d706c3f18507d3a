"""`kumo up` started, given work at once and stopped at once (Ctrl-C), several times over.

Each stop must be clean and quick whatever its threads are doing at that moment (the agent
registering, the scheduler placing, the agent spawning, long-polls waiting), and the cloud
that comes back last must finish every request the earlier ones accepted. Races between
those threads at start and at stop caused CI failures before (a server created before the
agent registered; a long-poll that held the shutdown): this repeats the edges on purpose.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from computeapi import SERVERS, Api, db_check
from kumoproc import clean_env, start_cloud, wait_for

CYCLES = 4
STOP_WITHIN = 10.0  # seconds from SIGINT to exit; the graceful shutdown waits for nothing long


def test_start_act_and_stop_at_once_repeatedly(tmp_path: Path) -> None:
    state = tmp_path / "state"
    env = clean_env(KUMO_COMPUTE_HYPERVISOR="fake")
    kept: list[str] = []
    deleted: list[str] = []
    for cycle in range(CYCLES):
        cloud = start_cloud(state, env=env)
        try:
            api = Api(cloud.url, cloud.admin_password)
            image = api.image_id()
            if kept:  # a server of the run before, perhaps still building: delete it now
                deleted.append(kept.pop(0))
                api.delete_server(deleted[-1])
            for index in range(2):
                resp = api.create_server(f"stress-{cycle}-{index}", image)
                assert resp.status_code == 202, resp.text
                kept.append(resp.json()["server"]["id"])
            api.close()
            started = time.monotonic()
            code = cloud.stop(timeout=STOP_WITHIN + 10)
            elapsed = time.monotonic() - started
        finally:
            cloud.stop()
        output = cloud.output()
        assert code == 0, f"cycle {cycle}: kumo up exited with {code} on SIGINT:\n{output}"
        assert elapsed < STOP_WITHIN, f"cycle {cycle}: {elapsed:.1f}s to stop:\n{output}"
        assert "Traceback" not in output, f"cycle {cycle}:\n{output}"

    restarted_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    final = start_cloud(state, env=env)
    try:
        api = Api(final.url, final.admin_password)

        # A server whose fake guest was spawned before a stop comes back SHUTOFF (see
        # SETTLED_AFTER_FAKE_RESTART) once the agent has looked; wait until it has reported
        # every kept server since the restart, then start those: all must be ACTIVE.
        def reported_since_restart() -> dict[str, dict[str, Any]] | None:
            shown = {s["id"]: s for s in api.servers() if s["id"] in kept}
            assert set(shown) == set(kept), f"servers vanished: {set(kept) - set(shown)}"
            done = all(
                s.get("OS-EXT-STS:task_state") is None
                and (
                    s["status"] == "SHUTOFF"
                    or (s["status"] == "ACTIVE" and _when(s["updated"]) >= restarted_at)
                )
                for s in shown.values()
            )
            return shown if done else None

        settled = wait_for(reported_since_restart, 90, "every kept server reported")
        for server_id, server in settled.items():
            if server["status"] == "SHUTOFF":
                resp = api.client.post(f"{SERVERS}/{server_id}/action", json={"os-start": None})
                assert resp.status_code == 202, resp.text
        settled = api.wait_settled(kept, 90)
        assert {s["status"] for s in settled.values()} == {"ACTIVE"}, settled
        for server_id in deleted:
            api.wait_gone(server_id)
        db_check(state)
        api.close()
        assert final.stop(timeout=STOP_WITHIN + 10) == 0, final.output()
    finally:
        final.stop()
    assert "Traceback" not in final.output(), final.output()


def _when(stamp: str) -> dt.datetime:
    """A server's ``updated`` (``2026-11-23T01:19:50Z``) as an aware datetime."""
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
