"""openstacksdk against a real `kumo up`, configured only by the clouds.yaml it writes."""

from __future__ import annotations

import os
import uuid
from typing import Any

import openstack
import pytest

from kumoproc import Cloud, wait_for

pytestmark = pytest.mark.clients


@pytest.fixture
def sdk_env(cloud: Cloud, monkeypatch: pytest.MonkeyPatch) -> Cloud:
    for name in [k for k in os.environ if k.startswith("OS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(cloud.clouds_yaml))
    return cloud


def test_admin_lists_projects_and_manages_users(sdk_env: Cloud) -> None:
    conn = openstack.connect(cloud="kumo")
    try:
        projects = {p.name: p for p in conn.identity.projects()}
        assert {"admin", "demo"} <= set(projects)
        assert conn.current_project_id == projects["admin"].id

        name = f"sdk-user-{uuid.uuid4().hex[:8]}"
        user = conn.identity.create_user(
            name=name, password=uuid.uuid4().hex, default_project_id=projects["demo"].id
        )
        assert user.id
        fetched = conn.identity.get_user(user.id)
        assert fetched.name == name
        assert fetched.default_project_id == projects["demo"].id
        assert name in {u.name for u in conn.identity.users()}

        conn.identity.delete_user(user)
        assert conn.identity.find_user(name, ignore_missing=True) is None
    finally:
        conn.close()


def test_demo_cloud_token_is_scoped_to_demo(sdk_env: Cloud) -> None:
    conn = openstack.connect(cloud="kumo-demo")
    try:
        token = conn.auth_token
        assert token
        demo = conn.identity.find_project("demo", ignore_missing=False)
        assert conn.current_project_id == demo.id
        info = conn.identity.get(
            "/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}
        ).json()["token"]
        assert info["project"]["id"] == demo.id
        assert info["project"]["name"] == "demo"
        assert "admin" in {r["name"] for r in info["roles"]}
    finally:
        conn.close()


def test_block_storage_services(sdk_env: Cloud) -> None:
    conn = openstack.connect(cloud="kumo")
    try:
        expected = ["cinder-scheduler", "cinder-volume", "cinder-volume"]

        def registered() -> list[Any] | None:
            # the agent registers its volume backends a moment after the API first answers
            found = list(conn.block_storage.services())
            return found if sorted(s.binary for s in found) == expected else None

        services = wait_for(registered, 60, "the agent's two volume backends as cinder-volume")
        volume = next(s for s in services if s.binary == "cinder-volume")
        assert "@" in volume.host and (volume.status, volume.state) == ("enabled", "up")
    finally:
        conn.close()
