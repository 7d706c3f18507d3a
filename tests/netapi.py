"""Helpers for the network API tests: create resources, check NeutronError bodies."""

from __future__ import annotations

from typing import Any

V2 = "/network/v2.0"


def tenant(cloud: Any, name: str) -> tuple[str, dict[str, str]]:
    """A new project with a member: (project id, the member's headers)."""
    project = cloud.project(name)
    _, token = cloud.member(f"{name}-user", project["id"])
    return project["id"], cloud.h(token)


def error(resp: Any, status: int, kind: str | None = None) -> dict[str, Any]:
    """The response has ``status`` and a NeutronError body (of ``kind`` if given)."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    body = resp.json()["NeutronError"]
    assert body["message"], body
    if kind is not None:
        assert body["type"] == kind, body
    return dict(body)


def create(cloud: Any, headers: dict[str, str], singular: str, **attrs: Any) -> dict[str, Any]:
    resp = cloud.client.post(f"{V2}/{singular}s", json={singular: attrs}, headers=headers)
    assert resp.status_code == 201, resp.text
    return dict(resp.json()[singular])


def network(cloud: Any, headers: dict[str, str], **attrs: Any) -> dict[str, Any]:
    return create(cloud, headers, "network", **{"name": "net", **attrs})


def subnet(
    cloud: Any, headers: dict[str, str], network_id: str, cidr: str = "10.0.0.0/24", **attrs: Any
) -> dict[str, Any]:
    version = 6 if ":" in cidr else 4
    return create(
        cloud,
        headers,
        "subnet",
        **{"network_id": network_id, "cidr": cidr, "ip_version": version, **attrs},
    )


def port(cloud: Any, headers: dict[str, str], network_id: str, **attrs: Any) -> dict[str, Any]:
    return create(cloud, headers, "port", network_id=network_id, **attrs)
