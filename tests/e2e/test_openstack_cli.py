"""The real `openstack` CLI against a real `kumo up`, through the clouds.yaml it writes."""

from __future__ import annotations

import http.client
import select
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from kumoproc import OPENSTACK, Cloud, Result, run

pytestmark = pytest.mark.clients


def openstack(
    cloud: Cloud, *args: str, os_cloud: str = "kumo", config: Path | None = None
) -> Result:
    env = cloud.env()
    if config is not None:
        env["OS_CLIENT_CONFIG_FILE"] = str(config)
    return run([OPENSTACK, "--os-cloud", os_cloud, *args], env)


def ok_json(result: Result) -> Any:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.json()


def with_clouds(cloud: Cloud, path: Path, extra: dict[str, dict[str, Any]]) -> Path:
    """A clouds.yaml holding kumo's own entries plus ``extra``."""
    doc = yaml.safe_load(cloud.clouds_yaml.read_text())
    doc["clouds"].update(extra)
    path.write_text(yaml.safe_dump(doc))
    return path


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_token_issue(cloud: Cloud) -> None:
    token = ok_json(openstack(cloud, "token", "issue", "-f", "json"))
    assert token["id"]
    assert token["project_id"]
    assert token["user_id"]
    assert token["expires"]


def test_idle_connection_outlives_the_cli_poll_interval(cloud: Cloud) -> None:
    """`openstack ... --wait` polls every 5 s on one kept-alive connection; a server that
    closed idle connections after 5 s reset its next request (seen in CI)."""
    address = urlsplit(cloud.identity_url)
    conn = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    try:
        # Keystone's version document: a body to read (`/` is the dashboard's redirect).
        conn.request("GET", address.path)
        assert conn.getresponse().read()
        assert conn.sock is not None
        # A closed connection turns readable (EOF). Bounded wait for that absence, a little
        # longer than the CLI's poll interval.
        readable, _, _ = select.select([conn.sock], [], [], 6.5)
        assert not readable, "the server closed an idle connection within the CLI's poll interval"
        conn.request("GET", address.path)
        assert conn.getresponse().status == 300
    finally:
        conn.close()


def test_catalog_list(cloud: Cloud) -> None:
    catalog = ok_json(openstack(cloud, "catalog", "list", "-f", "json"))
    identity = [entry for entry in catalog if entry["Type"] == "identity"]
    assert identity, catalog
    assert cloud.identity_url in str(identity[0]["Endpoints"])


def test_project_lifecycle(cloud: Cloud) -> None:
    name = unique("e2e-project")
    created = ok_json(
        openstack(cloud, "project", "create", "--description", "made by e2e", name, "-f", "json")
    )
    assert created["name"] == name
    assert created["description"] == "made by e2e"

    listed = ok_json(openstack(cloud, "project", "list", "-f", "json"))
    assert {"ID": created["id"], "Name": name} in listed
    assert {"admin", "demo"} <= {p["Name"] for p in listed}

    shown = ok_json(openstack(cloud, "project", "show", name, "-f", "json"))
    assert shown["id"] == created["id"]
    assert shown["enabled"] is True

    deleted = openstack(cloud, "project", "delete", created["id"])
    assert deleted.returncode == 0, deleted.stderr
    gone = openstack(cloud, "project", "show", created["id"], "-f", "json")
    assert gone.returncode != 0
    assert "no project" in gone.stderr.lower() or "404" in gone.stderr, gone.stderr


def test_member_user_roles_and_policy(cloud: Cloud, tmp_path: Path) -> None:
    name = unique("e2e-user")
    password = uuid.uuid4().hex
    user = ok_json(
        openstack(
            cloud,
            "user", "create", "--password", password, "--project", "demo", name, "-f", "json",
        )
    )  # fmt: skip
    assert user["name"] == name

    added = openstack(cloud, "role", "add", "--user", name, "--project", "demo", "member")
    assert added.returncode == 0, added.stderr

    assignments = ok_json(
        openstack(
            cloud,
            "role", "assignment", "list", "--user", name, "--project", "demo", "--names",
            "-f", "json",
        )
    )  # fmt: skip
    assert len(assignments) == 1, assignments
    assert assignments[0]["Role"] == "member"
    assert assignments[0]["User"].startswith(name + "@")
    assert assignments[0]["Project"].startswith("demo@")

    # The member can authenticate, but may not administer identity.
    member_auth = {
        "auth_url": cloud.identity_url,
        "username": name,
        "password": password,
        "project_name": "demo",
        "user_domain_id": "default",
        "project_domain_id": "default",
    }
    config = with_clouds(
        cloud,
        tmp_path / "clouds.yaml",
        {"member": {"auth": member_auth, "region_name": "RegionOne", "identity_api_version": 3}},
    )
    denied = openstack(
        cloud, "user", "create", "--password", "x", unique("nope"), os_cloud="member", config=config
    )
    assert denied.returncode != 0
    lowered = denied.stderr.lower()
    assert "403" in lowered or "not authorized" in lowered or "forbidden" in lowered, denied.stderr


def test_application_credential_authenticates(cloud: Cloud, tmp_path: Path) -> None:
    admin_project = ok_json(openstack(cloud, "token", "issue", "-f", "json"))["project_id"]
    cred = ok_json(
        openstack(cloud, "application", "credential", "create", unique("e2e-appcred"), "-f", "json")
    )
    assert cred["ID"]
    assert cred["Secret"]
    assert cred["Project ID"] == admin_project
    config = with_clouds(
        cloud,
        tmp_path / "clouds.yaml",
        {
            "appcred": {
                "auth_type": "v3applicationcredential",
                "auth": {
                    "auth_url": cloud.identity_url,
                    "application_credential_id": cred["ID"],
                    "application_credential_secret": cred["Secret"],
                },
                "region_name": "RegionOne",
                "identity_api_version": 3,
            }
        },
    )
    token = ok_json(
        openstack(cloud, "token", "issue", "-f", "json", os_cloud="appcred", config=config)
    )
    assert token["id"]
    assert token["project_id"] == admin_project


def test_volume_service_list(cloud: Cloud) -> None:
    """Cinder's services: the agent's volume backends (host@backend) and the controller."""
    rows = ok_json(openstack(cloud, "volume", "service", "list", "-f", "json"))
    volume = {r["Host"].rsplit("@", 1)[1]: r for r in rows if r["Binary"] == "cinder-volume"}
    assert set(volume) == {"file", "raw"}, rows
    assert all((r["Status"], r["State"], r["Zone"]) == ("enabled", "up", "nova") for r in rows)
    assert [r["Binary"] for r in rows].count("cinder-scheduler") == 1, rows
    only = ok_json(
        openstack(cloud, "volume", "service", "list", "--service", "cinder-volume", "-f", "json")
    )
    assert {r["Host"] for r in only} == {r["Host"] for r in volume.values()}


def test_hypervisor_show_has_the_hosts_uptime(cloud: Cloud) -> None:
    """Below 2.88 the client reads os-hypervisors/{id}/uptime and splits the line."""
    (listed,) = ok_json(openstack(cloud, "hypervisor", "list", "-f", "json"))
    shown = ok_json(openstack(cloud, "hypervisor", "show", str(listed["ID"]), "-f", "json"))
    assert shown["hypervisor_hostname"] == listed["Hypervisor Hostname"]
    with open("/proc/uptime") as f:
        host_up = float(f.read().split()[0])  # the agent runs on this very host
    up = shown["uptime"]
    days = int(up.split(" day")[0]) if " day" in up else 0
    assert abs(days - host_up // 86400) <= 1, up
    assert len(shown["load_average"].split(", ")) == 3, shown
    assert shown["users"].strip().isdigit() and shown["host_time"], shown
