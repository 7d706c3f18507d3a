"""`kumo up` stops cleanly on Ctrl-C and comes back with everything it had."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import yaml

from kumoproc import Cloud, start_cloud


def admin_token(cloud: Cloud, password: str) -> httpx.Response:
    return httpx.post(
        cloud.identity_url + "/v3/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {"name": "admin", "domain": {"id": "default"}, "password": password}
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
            }
        },
        timeout=30,
    )


def test_stop_and_restart_keeps_state(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = start_cloud(state)
    try:
        password = first.admin_password
        auth = admin_token(first, password)
        assert auth.status_code == 201, auth.text
        token = auth.headers["X-Subject-Token"]
        name = f"kept-{uuid.uuid4().hex[:8]}"
        created = httpx.post(
            first.identity_url + "/v3/projects",
            json={"project": {"name": name, "domain_id": "default"}},
            headers={"X-Auth-Token": token},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        project_id = created.json()["project"]["id"]

        started = time.monotonic()
        code = first.stop(timeout=15)
        elapsed = time.monotonic() - started
    finally:
        first.stop()
    assert code == 0, f"kumo up exited with {code} on SIGINT:\n{first.output()}"
    assert elapsed < 10, f"kumo up took {elapsed:.1f}s to stop"
    assert "kumo stopped" in first.output()
    assert "Traceback" not in first.output(), first.output()

    second = start_cloud(state)  # a new free port: clouds.yaml must follow it
    try:
        assert second.url != first.url
        assert second.admin_password == password
        auth = admin_token(second, password)
        assert auth.status_code == 201, auth.text
        token = auth.headers["X-Subject-Token"]
        shown = httpx.get(
            f"{second.identity_url}/v3/projects/{project_id}",
            headers={"X-Auth-Token": token},
            timeout=30,
        )
        assert shown.status_code == 200, shown.text
        assert shown.json()["project"]["name"] == name

        clouds = yaml.safe_load(second.clouds_yaml.read_text())["clouds"]
        assert clouds["kumo"]["auth"]["auth_url"] == second.identity_url
        assert clouds["kumo"]["auth"]["password"] == password
        assert "(as first created)" in second.output()
        assert second.stop(timeout=15) == 0, second.output()
    finally:
        second.stop()
