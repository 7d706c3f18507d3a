"""Helpers for the in-process API tests (fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from kumo.api.app import create_app
from kumo.config import Config
from kumo.db.engine import Database

PUBLIC_URL = "http://kumo.test"
ADMIN_PASSWORD = "adminpw"

# The fields of Nova's versioned notification payloads, as its samples give them
# (doc/notification_samples/common_payloads): InstanceActionPayload 1.9 (InstancePayload.json
# plus InstanceActionPayload.json's fault), and what InstanceCreatePayload 1.13 adds. The
# outbox tests (tests/api) and the oslo.messaging consumer (tests/e2e) check against them.
ACTION_FIELDS = {
    "architecture", "availability_zone", "block_devices", "created_at", "deleted_at",
    "display_name", "display_description", "host", "host_name", "ip_addresses",
    "kernel_id", "key_name", "launched_at", "image_uuid", "metadata", "locked", "node",
    "os_type", "progress", "ramdisk_id", "reservation_id", "state", "task_state",
    "power_state", "tenant_id", "terminated_at", "auto_disk_config", "flavor", "updated_at",
    "user_id", "uuid", "request_id", "action_initiator_user", "action_initiator_project",
    "locked_reason", "shares", "fault",
}  # fmt: skip
CREATE_FIELDS = ACTION_FIELDS | {"keypairs", "tags", "trusted_image_certificates", "instance_name"}


def auth_body(
    user: str | dict[str, Any],
    password: str,
    scope: Any = None,
    domain: str = "default",
) -> dict[str, Any]:
    """A password auth request: ``user`` is a name (in ``domain``) or a full reference."""
    ref: dict[str, Any] = (
        dict(user) if isinstance(user, dict) else {"name": user, "domain": {"id": domain}}
    )
    ref["password"] = password
    body: dict[str, Any] = {
        "auth": {"identity": {"methods": ["password"], "password": {"user": ref}}}
    }
    if scope is not None:
        body["auth"]["scope"] = scope
    return body


def assert_error(resp: Any, status: int) -> dict[str, Any]:
    """The response has ``status`` and a Keystone-shaped error body."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()
    err = body["error"]
    assert err["code"] == status
    assert isinstance(err["title"], str) and err["title"]
    assert isinstance(err["message"], str) and err["message"]
    return err


def make_client(config: Config, db: Database) -> TestClient:
    return TestClient(create_app(config, db), raise_server_exceptions=False)
