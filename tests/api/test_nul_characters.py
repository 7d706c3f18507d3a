"""A NUL character anywhere in a request (a name, a metadata key, a filter, an id in the
path) is a 400 in the service's own error shape on every database backend, and nothing is
written: PostgreSQL cannot store a NUL, and answered such requests with a 500."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect
from test_servers import SERVERS, Compute

NUL = "a\u0000b"
NETWORKS = "/network/v2.0/networks"
PROJECTS = "/identity/v3/projects"
IMAGES = "/image/v2/images"


def _message(resp: Any) -> str:
    """The error's message from any service's shape, after checking the status."""
    assert resp.status_code == 400, resp.text
    body = resp.json()
    if "message" in body:  # Glance
        return str(body["message"])
    (fault,) = body.values()
    return str(fault["message"])


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def test_bodies_with_a_nul_are_refused_in_each_services_shape(compute: Compute) -> None:
    cloud, c = compute.cloud, compute.cloud.client
    admin = cloud.admin
    project = cloud.boot.admin_project_id
    refused = {
        "server": compute.create(admin, name=NUL),
        "network": c.post(NETWORKS, json={"network": {"name": NUL}}, headers=admin),
        "project": c.post(PROJECTS, json={"project": {"name": NUL}}, headers=admin),
        "image": c.post(IMAGES, json={"name": "ok", "tags": [NUL]}, headers=admin),
        "flavor": c.post(
            "/compute/v2.1/flavors",
            json={"flavor": {"name": NUL, "ram": 64, "vcpus": 1, "disk": 1}},
            headers=admin,
        ),
        "volume": c.post(
            f"/volume/v3/{project}/volumes",
            json={"volume": {"size": 1, "metadata": {NUL: "key with a NUL"}}},
            headers=admin,
        ),
    }
    for what, resp in refused.items():
        assert "NUL character" in _message(resp), what
    assert refused["volume"].json()["badRequest"]["code"] == 400  # Cinder: Nova's shape
    assert refused["network"].json()["NeutronError"]["type"] == "HTTPBadRequest"
    assert refused["project"].json()["error"]["title"] == "Bad Request"
    # Nothing half-written.
    assert c.get(SERVERS, headers=admin).json()["servers"] == []
    names = {n["name"] for n in c.get(NETWORKS, headers=admin).json()["networks"]}
    assert not any("\x00" in n for n in names)
    assert c.get(IMAGES + "?name=ok", headers=admin).json()["images"] == []


def test_a_token_request_with_a_nul_is_refused(cloud: Any) -> None:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": NUL, "domain": {"id": "default"}, "password": "x"}},
            }
        }
    }
    assert "NUL character" in _message(cloud.issue(body))


@pytest.mark.parametrize(
    "url",
    [
        SERVERS + "?name=a%00b",
        SERVERS + "/a%00b",
        NETWORKS + "?name=a%00b",
        IMAGES + "?name=a%00b",
        PROJECTS + "/a%00b",
    ],
)
def test_urls_with_a_nul_are_refused(cloud: Any, url: str) -> None:
    resp = cloud.client.get(url, headers=cloud.admin)
    assert "(%00)" in _message(resp)
    assert resp.headers["X-OpenStack-Request-ID"].startswith("req-")


def test_a_nul_escaped_as_text_is_not_a_nul(compute: Compute) -> None:
    """A backslash followed by ``u0000`` is six ordinary characters."""
    resp = compute.create(compute.cloud.admin, name="\\u0000")
    assert resp.status_code == 202, resp.text


def test_a_console_websocket_with_a_nul_in_its_token_is_refused(cloud: Any) -> None:
    """The handshake is refused before the console proxy looks the token up."""
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        cloud.client.websocket_connect("/console/websocket/serial?token=a%00b"),
    ):
        pass
    assert refused.value.code == 1008
    assert "NUL character" in refused.value.reason  # the guard's words, not the proxy's
