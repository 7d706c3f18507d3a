"""Version discovery, tokens (issue, validate, revoke, expiry), app credentials, catalog."""

from __future__ import annotations

import datetime as dt

from kumo.core.identity.tokens import TokenPayload, new_audit_id
from kumo.db.types import utcnow

from apihelpers import ADMIN_PASSWORD, PUBLIC_URL, assert_error, auth_body

V3 = "/identity/v3"


def _parse(ts: str) -> dt.datetime:
    assert ts.endswith("Z"), ts
    return dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")


# Version discovery ---------------------------------------------------------------------


def test_version_discovery(client):
    resp = client.get("/identity")
    assert resp.status_code == 300
    values = resp.json()["versions"]["values"]
    assert [v["id"] for v in values] == ["v3.14"]
    assert values[0]["status"] == "stable"
    assert values[0]["links"][0]["href"] == f"{PUBLIC_URL}/identity/v3/"

    resp = client.get("/identity/v3")
    assert resp.status_code == 200
    version = resp.json()["version"]
    assert version["id"] == "v3.14"
    assert version["media-types"][0]["type"] == "application/vnd.openstack.identity-v3+json"


# Issuing tokens ------------------------------------------------------------------------


def test_project_scoped_token_by_name_and_domain(cloud):
    resp = cloud.issue(
        auth_body("admin", ADMIN_PASSWORD, {"project": {"id": cloud.boot.admin_project_id}})
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["X-Subject-Token"]
    token = resp.json()["token"]
    assert token["methods"] == ["password"]
    assert token["user"]["id"] == cloud.boot.admin_user_id
    assert token["user"]["name"] == "admin"
    assert token["user"]["domain"] == {"id": "default", "name": "Default"}
    assert token["project"]["id"] == cloud.boot.admin_project_id
    assert token["project"]["name"] == "admin"
    assert token["project"]["domain"]["id"] == "default"
    assert {r["name"] for r in token["roles"]} == {"admin", "member", "reader"}
    assert len(token["audit_ids"]) == 1
    assert "catalog" in token


def test_token_by_user_id_and_project_name(cloud):
    body = auth_body(
        {"id": cloud.boot.admin_user_id},
        ADMIN_PASSWORD,
        {"project": {"name": "demo", "domain": {"name": "Default"}}},
    )
    resp = cloud.issue(body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["token"]["project"]["id"] == cloud.boot.demo_project_id


def test_user_by_name_and_domain_name(cloud):
    body = auth_body({"name": "admin", "domain": {"name": "Default"}}, ADMIN_PASSWORD, "unscoped")
    resp = cloud.issue(body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["token"]["user"]["id"] == cloud.boot.admin_user_id


def test_domain_scoped_token(cloud):
    resp = cloud.issue(auth_body("admin", ADMIN_PASSWORD, {"domain": {"id": "default"}}))
    assert resp.status_code == 201, resp.text
    token = resp.json()["token"]
    assert token["domain"] == {"id": "default", "name": "Default"}
    assert "project" not in token
    assert "admin" in {r["name"] for r in token["roles"]}


def test_unscoped_token(cloud):
    resp = cloud.issue(auth_body("admin", ADMIN_PASSWORD, "unscoped"))
    assert resp.status_code == 201, resp.text
    token = resp.json()["token"]
    assert "project" not in token and "domain" not in token
    assert "roles" not in token and "catalog" not in token


def test_no_scope_uses_default_project(cloud):
    resp = cloud.issue(auth_body("admin", ADMIN_PASSWORD))
    assert resp.status_code == 201, resp.text
    assert resp.json()["token"]["project"]["id"] == cloud.boot.admin_project_id


def test_no_scope_without_default_project_is_unscoped(cloud):
    cloud.user("loner", "pw-loner")
    resp = cloud.issue(auth_body("loner", "pw-loner"))
    assert resp.status_code == 201, resp.text
    assert "project" not in resp.json()["token"]


def test_scope_without_role_is_401(cloud):
    project = cloud.project("elsewhere")
    user = cloud.user("nobody", "pw-nobody")
    resp = cloud.issue(
        auth_body({"id": user["id"]}, "pw-nobody", {"project": {"id": project["id"]}})
    )
    assert_error(resp, 401)


def test_token_method_rescopes(cloud):
    unscoped = cloud.token("admin", ADMIN_PASSWORD, unscoped=True)
    body = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": unscoped}},
            "scope": {"project": {"id": cloud.boot.demo_project_id}},
        }
    }
    resp = cloud.issue(body)
    assert resp.status_code == 201, resp.text
    token = resp.json()["token"]
    assert "token" in token["methods"]
    assert token["project"]["id"] == cloud.boot.demo_project_id
    # The rescoped token shares the parent's audit chain and never outlives it.
    parent = cloud.client.get(
        f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": unscoped}
    ).json()["token"]
    assert token["audit_ids"][1] == parent["audit_ids"][0]
    assert token["expires_at"] == parent["expires_at"]


def test_rescoped_token_is_revoked_with_its_parent(cloud):
    parent = cloud.token("admin", ADMIN_PASSWORD, unscoped=True)
    body = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": parent}},
            "scope": {"project": {"id": cloud.boot.demo_project_id}},
        }
    }
    child = cloud.issue(body).headers["X-Subject-Token"]
    resp = cloud.client.delete(
        f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": parent}
    )
    assert resp.status_code == 204
    resp = cloud.client.get(f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": child})
    assert_error(resp, 404)


def test_token_expiration_from_config(cloud, make_cloud_client):
    client = make_cloud_client(token_expiration=60)
    before = utcnow()
    resp = client.post(
        f"{V3}/auth/tokens",
        json=auth_body("admin", ADMIN_PASSWORD, {"project": {"id": cloud.boot.admin_project_id}}),
    )
    after = utcnow()
    assert resp.status_code == 201, resp.text
    token = resp.json()["token"]
    expires = _parse(token["expires_at"])
    issued = _parse(token["issued_at"])
    assert before - dt.timedelta(seconds=1) <= issued <= after + dt.timedelta(seconds=1)
    assert expires - issued == dt.timedelta(seconds=60)


def test_default_expiration_is_one_hour(cloud):
    resp = cloud.issue(auth_body("admin", ADMIN_PASSWORD, "unscoped"))
    token = resp.json()["token"]
    assert _parse(token["expires_at"]) - _parse(token["issued_at"]) == dt.timedelta(hours=1)


# Validation and revocation -------------------------------------------------------------


def test_validate_get_and_head(cloud):
    user, token = cloud.member("val", cloud.boot.demo_project_id)
    headers = {**cloud.admin, "X-Subject-Token": token}
    resp = cloud.client.get(f"{V3}/auth/tokens", headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Subject-Token"] == token
    body = resp.json()["token"]
    assert body["user"]["id"] == user["id"]
    assert body["project"]["id"] == cloud.boot.demo_project_id
    assert {r["name"] for r in body["roles"]} == {"member", "reader"}
    assert "catalog" in body
    resp = cloud.client.get(f"{V3}/auth/tokens?nocatalog", headers=headers)
    assert "catalog" not in resp.json()["token"]

    resp = cloud.client.head(f"{V3}/auth/tokens", headers=headers)
    assert resp.status_code == 200
    assert resp.content == b""

    # A user may validate their own token with itself.
    resp = cloud.client.get(
        f"{V3}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}
    )
    assert resp.status_code == 200


def test_validate_garbage_subject_is_404(cloud):
    resp = cloud.client.get(
        f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": "nonsense"}
    )
    assert_error(resp, 404)
    resp = cloud.client.head(
        f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": "nonsense"}
    )
    assert resp.status_code == 404
    resp = cloud.client.get(f"{V3}/auth/tokens", headers=cloud.admin)
    assert_error(resp, 404)


def test_revoke_then_404_and_401(cloud):
    _, token = cloud.member("rev", cloud.boot.demo_project_id)
    resp = cloud.client.delete(
        f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": token}
    )
    assert resp.status_code == 204
    resp = cloud.client.get(f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": token})
    assert_error(resp, 404)
    resp = cloud.client.head(f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": token})
    assert resp.status_code == 404
    resp = cloud.client.get(f"{V3}/projects/{cloud.boot.demo_project_id}", headers=cloud.h(token))
    assert_error(resp, 401)
    # Revoking it again is a 404, and the admin token is unaffected.
    resp = cloud.client.delete(
        f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": token}
    )
    assert_error(resp, 404)
    assert cloud.client.get(f"{V3}/projects", headers=cloud.admin).status_code == 200


def test_user_revokes_own_token(cloud):
    _, token = cloud.member("selfrev", cloud.boot.demo_project_id)
    resp = cloud.client.delete(
        f"{V3}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token}
    )
    assert resp.status_code == 204
    resp = cloud.client.get(f"{V3}/users/x", headers=cloud.h(token))
    assert_error(resp, 401)


def test_member_cannot_revoke_someone_elses_token(cloud):
    _, token = cloud.member("m1", cloud.boot.demo_project_id)
    _, other = cloud.member("m2", cloud.boot.demo_project_id)
    resp = cloud.client.delete(
        f"{V3}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": other}
    )
    assert resp.status_code in (403, 404)
    resp = cloud.client.get(f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": other})
    assert resp.status_code == 200


def _forged(cloud, **changes):
    payload = {
        "user_id": cloud.boot.admin_user_id,
        "methods": ["password"],
        "issued_at": utcnow() - dt.timedelta(hours=2),
        "expires_at": utcnow() - dt.timedelta(hours=1),
        "audit_ids": [new_audit_id()],
        "project_id": cloud.boot.admin_project_id,
    }
    payload.update(changes)
    return cloud.client.app.state.kumo.codec.encode(TokenPayload(**payload))


def test_expired_token(cloud):
    expired = _forged(cloud)
    resp = cloud.client.get(f"{V3}/projects", headers=cloud.h(expired))
    err = assert_error(resp, 401)
    assert "WWW-Authenticate" in resp.headers
    assert err["title"] == "Unauthorized"
    resp = cloud.client.get(
        f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": expired}
    )
    assert_error(resp, 404)
    # The same payload with a future expiry is accepted: the codec itself is right.
    valid = _forged(cloud, issued_at=utcnow(), expires_at=utcnow() + dt.timedelta(minutes=5))
    assert cloud.client.get(f"{V3}/projects", headers=cloud.h(valid)).status_code == 200


def test_expired_token_cannot_be_rescoped(cloud):
    body = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": _forged(cloud)}},
            "scope": {"project": {"id": cloud.boot.demo_project_id}},
        }
    }
    assert_error(cloud.issue(body), 401)


def test_password_change_revokes_tokens(cloud):
    user, token = cloud.member("pwchange", cloud.boot.demo_project_id, password="old-pw")
    resp = cloud.client.post(
        f"{V3}/users/{user['id']}/password",
        json={"user": {"original_password": "old-pw", "password": "new-pw"}},
        headers=cloud.h(token),
    )
    assert resp.status_code == 204, resp.text
    assert_error(cloud.client.get(f"{V3}/users/{user['id']}", headers=cloud.h(token)), 401)
    assert_error(cloud.issue(auth_body("pwchange", "old-pw")), 401)
    new = cloud.token("pwchange", "new-pw", project_id=cloud.boot.demo_project_id)
    assert cloud.client.get(f"{V3}/users/{user['id']}", headers=cloud.h(new)).status_code == 200


def test_password_change_wrong_original(cloud):
    user, token = cloud.member("pwwrong", cloud.boot.demo_project_id, password="old-pw")
    resp = cloud.client.post(
        f"{V3}/users/{user['id']}/password",
        json={"user": {"original_password": "not-it", "password": "new-pw"}},
        headers=cloud.h(token),
    )
    assert_error(resp, 401)
    cloud.token("pwwrong", "old-pw")


def test_disabled_user_tokens_are_401(cloud):
    user, token = cloud.member("disable-me", cloud.boot.demo_project_id)
    assert cloud.client.get(f"{V3}/users/{user['id']}", headers=cloud.h(token)).status_code == 200
    resp = cloud.client.patch(
        f"{V3}/users/{user['id']}", json={"user": {"enabled": False}}, headers=cloud.admin
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["enabled"] is False
    assert_error(cloud.client.get(f"{V3}/users/{user['id']}", headers=cloud.h(token)), 401)
    assert_error(cloud.issue(auth_body("disable-me", "secret-pw")), 401)
    # Re-enabling lets the user in again, but the old token stays dead.
    cloud.client.patch(
        f"{V3}/users/{user['id']}", json={"user": {"enabled": True}}, headers=cloud.admin
    )
    assert_error(cloud.client.get(f"{V3}/users/{user['id']}", headers=cloud.h(token)), 401)
    cloud.token("disable-me", "secret-pw", project_id=cloud.boot.demo_project_id)


def test_revoked_grant_invalidates_scoped_token(cloud):
    user, token = cloud.member("ungrant", cloud.boot.demo_project_id)
    resp = cloud.client.delete(
        f"{V3}/projects/{cloud.boot.demo_project_id}/users/{user['id']}/roles/"
        f"{cloud.role_ids['member']}",
        headers=cloud.admin,
    )
    assert resp.status_code == 204
    assert_error(cloud.client.get(f"{V3}/users/{user['id']}", headers=cloud.h(token)), 401)


# Application credentials ---------------------------------------------------------------


def _app_cred_auth(cred_id: str, secret: str) -> dict:
    return {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": cred_id, "secret": secret},
            }
        }
    }


def test_application_credential_lifecycle(cloud):
    user, token = cloud.member("appcred", cloud.boot.demo_project_id)
    base = f"{V3}/users/{user['id']}/application_credentials"
    resp = cloud.client.post(
        base,
        json={"application_credential": {"name": "ci", "description": "for CI"}},
        headers=cloud.h(token),
    )
    assert resp.status_code == 201, resp.text
    cred = resp.json()["application_credential"]
    secret = cred["secret"]
    assert secret and cred["name"] == "ci"
    assert cred["project_id"] == cloud.boot.demo_project_id
    assert cred["user_id"] == user["id"]
    assert {r["name"] for r in cred["roles"]} == {"member", "reader"}
    assert cred["unrestricted"] is False

    # The secret is shown once: never in list or get.
    listed = cloud.client.get(base, headers=cloud.h(token)).json()["application_credentials"]
    assert [c["id"] for c in listed] == [cred["id"]]
    assert "secret" not in listed[0]
    got = cloud.client.get(f"{base}/{cred['id']}", headers=cloud.h(token))
    assert got.status_code == 200 and "secret" not in got.json()["application_credential"]

    # Authenticate with it, by id and by name + user.
    resp = cloud.issue(_app_cred_auth(cred["id"], secret))
    assert resp.status_code == 201, resp.text
    body = resp.json()["token"]
    assert body["methods"] == ["application_credential"]
    assert body["project"]["id"] == cloud.boot.demo_project_id
    assert body["application_credential"]["id"] == cred["id"]
    assert body["application_credential"]["restricted"] is True
    app_token = resp.headers["X-Subject-Token"]
    by_name = {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {
                    "name": "ci",
                    "user": {"id": user["id"]},
                    "secret": secret,
                },
            }
        }
    }
    assert cloud.issue(by_name).status_code == 201

    # Wrong secret.
    assert_error(cloud.issue(_app_cred_auth(cred["id"], secret + "x")), 401)
    # A restricted credential cannot create more credentials.
    resp = cloud.client.post(
        base, json={"application_credential": {"name": "more"}}, headers=cloud.h(app_token)
    )
    assert_error(resp, 403)

    resp = cloud.client.delete(f"{base}/{cred['id']}", headers=cloud.h(token))
    assert resp.status_code == 204
    assert_error(cloud.issue(_app_cred_auth(cred["id"], secret)), 401)
    assert_error(cloud.client.get(f"{V3}/users/{user['id']}", headers=cloud.h(app_token)), 401)
    assert cloud.client.get(base, headers=cloud.h(token)).json()["application_credentials"] == []
    assert_error(cloud.client.get(f"{base}/{cred['id']}", headers=cloud.h(token)), 404)


def test_application_credential_with_chosen_roles_and_secret(cloud):
    user, token = cloud.member("appcred2", cloud.boot.demo_project_id)
    base = f"{V3}/users/{user['id']}/application_credentials"
    resp = cloud.client.post(
        base,
        json={
            "application_credential": {
                "name": "ro",
                "secret": "my-own-secret",
                "roles": [{"name": "reader"}],
            }
        },
        headers=cloud.h(token),
    )
    assert resp.status_code == 201, resp.text
    cred = resp.json()["application_credential"]
    assert cred["secret"] == "my-own-secret"
    assert [r["name"] for r in cred["roles"]] == ["reader"]
    resp = cloud.issue(_app_cred_auth(cred["id"], "my-own-secret"))
    assert resp.status_code == 201, resp.text
    assert [r["name"] for r in resp.json()["token"]["roles"]] == ["reader"]
    # Roles the user does not hold cannot be delegated.
    resp = cloud.client.post(
        base,
        json={"application_credential": {"name": "adm", "roles": [{"name": "admin"}]}},
        headers=cloud.h(token),
    )
    assert_error(resp, 403)
    # Duplicate name for the same user.
    resp = cloud.client.post(
        base, json={"application_credential": {"name": "ro"}}, headers=cloud.h(token)
    )
    assert_error(resp, 409)


def test_application_credential_expired(cloud):
    user, token = cloud.member("appcred3", cloud.boot.demo_project_id)
    base = f"{V3}/users/{user['id']}/application_credentials"
    resp = cloud.client.post(
        base,
        json={"application_credential": {"name": "old", "expires_at": "2001-01-01T00:00:00Z"}},
        headers=cloud.h(token),
    )
    assert_error(resp, 400)
    soon = (utcnow() + dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    resp = cloud.client.post(
        base,
        json={"application_credential": {"name": "soon", "expires_at": soon}},
        headers=cloud.h(token),
    )
    assert resp.status_code == 201, resp.text
    cred = resp.json()["application_credential"]
    assert cred["expires_at"].rstrip("Z") == soon.rstrip("Z")
    resp = cloud.issue(_app_cred_auth(cred["id"], cred["secret"]))
    assert resp.status_code == 201
    # A token from it never outlives the credential.
    assert _parse(resp.json()["token"]["expires_at"]) <= _parse(soon)


def test_app_cred_token_cannot_be_rescoped(cloud):
    user, token = cloud.member("appcred4", cloud.boot.demo_project_id)
    resp = cloud.client.post(
        f"{V3}/users/{user['id']}/application_credentials",
        json={"application_credential": {"name": "x"}},
        headers=cloud.h(token),
    )
    cred = resp.json()["application_credential"]
    app_token = cloud.issue(_app_cred_auth(cred["id"], cred["secret"])).headers["X-Subject-Token"]
    body = {
        "auth": {
            "identity": {"methods": ["token"], "token": {"id": app_token}},
            "scope": {"project": {"id": cloud.boot.demo_project_id}},
        }
    }
    assert_error(cloud.issue(body), 401)


# Catalog -------------------------------------------------------------------------------


def _urls(catalog, service_type, interface="public"):
    [service] = [s for s in catalog if s["type"] == service_type]
    return [e["url"] for e in service["endpoints"] if e["interface"] == interface]


def test_token_catalog(cloud):
    project = cloud.boot.demo_project_id
    resp = cloud.issue(auth_body("admin", ADMIN_PASSWORD, {"project": {"id": project}}))
    catalog = resp.json()["token"]["catalog"]
    types = {s["type"] for s in catalog}
    assert {"identity", "compute", "image", "network", "block-storage", "volumev3"} <= types
    assert _urls(catalog, "identity") == [f"{PUBLIC_URL}/identity"]
    assert _urls(catalog, "compute") == [f"{PUBLIC_URL}/compute/v2.1"]
    assert _urls(catalog, "volumev3") == [f"{PUBLIC_URL}/volume/v3/{project}"]
    assert _urls(catalog, "block-storage") == [f"{PUBLIC_URL}/volume/v3/{project}"]
    for service in catalog:
        assert {e["interface"] for e in service["endpoints"]} == {"public", "internal", "admin"}
        assert all(e["region_id"] == "RegionOne" for e in service["endpoints"])


def test_auth_catalog(cloud):
    project = cloud.boot.admin_project_id
    resp = cloud.client.get(f"{V3}/auth/catalog", headers=cloud.admin)
    assert resp.status_code == 200, resp.text
    catalog = resp.json()["catalog"]
    assert _urls(catalog, "volumev3", "internal") == [f"{PUBLIC_URL}/volume/v3/{project}"]
    assert _urls(catalog, "network") == [f"{PUBLIC_URL}/network"]
    # An unscoped token has no catalog.
    unscoped = cloud.token("admin", ADMIN_PASSWORD, unscoped=True)
    assert_error(cloud.client.get(f"{V3}/auth/catalog", headers=cloud.h(unscoped)), 403)


def test_auth_projects_and_domains(cloud):
    user, token = cloud.member("lister", cloud.boot.demo_project_id)
    resp = cloud.client.get(f"{V3}/auth/projects", headers=cloud.h(token))
    assert resp.status_code == 200
    assert [p["id"] for p in resp.json()["projects"]] == [cloud.boot.demo_project_id]
    resp = cloud.client.get(f"{V3}/auth/domains", headers=cloud.h(token))
    assert resp.json()["domains"] == []
    resp = cloud.client.get(f"{V3}/auth/domains", headers=cloud.admin)
    assert [d["id"] for d in resp.json()["domains"]] == ["default"]
    resp = cloud.client.get(f"{V3}/users/{user['id']}/projects", headers=cloud.h(token))
    assert [p["name"] for p in resp.json()["projects"]] == ["demo"]
