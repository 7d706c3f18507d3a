"""Network API discovery: the versions document, the v2.0 index, Neutron's error shape."""

from __future__ import annotations

from typing import Any


def test_versions_document_is_public(cloud: Any) -> None:
    resp = cloud.client.get("/network/")
    assert resp.status_code == 200
    (version,) = resp.json()["versions"]
    assert version["id"] == "v2.0" and version["status"] == "CURRENT"
    assert version["links"][0]["href"].endswith("/network/v2.0/")


def test_v2_index_names_core_resources_and_needs_a_token(cloud: Any) -> None:
    assert cloud.client.get("/network/v2.0/").status_code == 401
    resp = cloud.client.get("/network/v2.0/", headers=cloud.admin)
    assert resp.status_code == 200
    names = {r["name"] for r in resp.json()["resources"]}
    assert {"network", "subnet", "port"} <= names


def test_errors_come_in_neutron_shape(cloud: Any) -> None:
    resp = cloud.client.get("/network/v2.0/no-such-collection", headers=cloud.admin)
    assert resp.status_code == 404
    error = resp.json()["NeutronError"]
    assert error["type"] == "HTTPNotFound" and error["message"] and error["detail"] == ""
