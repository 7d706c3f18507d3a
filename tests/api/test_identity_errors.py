"""Bad input and forbidden access: Keystone error bodies, right status codes, never a 500."""

from __future__ import annotations

import pytest

from apihelpers import ADMIN_PASSWORD, assert_error, auth_body

V3 = "/identity/v3"


# Authentication failures ---------------------------------------------------------------


def test_wrong_password_401(cloud):
    err = assert_error(cloud.issue(auth_body("admin", "wrong")), 401)
    assert err["title"] == "Unauthorized"


def test_unknown_user_401(cloud):
    assert_error(cloud.issue(auth_body("ghost", "x")), 401)
    assert_error(cloud.issue(auth_body({"id": "ghost-id"}, "x")), 401)
    # Unknown domain of a named user is also a 401, not a 404 (no probing).
    assert_error(cloud.issue(auth_body({"name": "admin", "domain": {"id": "nope"}}, "x")), 401)


def test_unknown_scope_401(cloud):
    assert_error(cloud.issue(auth_body("admin", ADMIN_PASSWORD, {"project": {"id": "nope"}})), 401)
    assert_error(cloud.issue(auth_body("admin", ADMIN_PASSWORD, {"domain": {"id": "nope"}})), 401)


def test_unsupported_method_401(cloud):
    body = {"auth": {"identity": {"methods": ["totp"], "totp": {}}}}
    assert_error(cloud.issue(body), 401)


def test_missing_token_401(cloud):
    for method, path in (
        ("get", "/projects"),
        ("get", "/users"),
        ("get", "/auth/tokens"),
        ("get", "/auth/catalog"),
        ("post", "/projects"),
        ("delete", "/auth/tokens"),
    ):
        resp = cloud.client.request(method.upper(), V3 + path)
        assert_error(resp, 401)
        assert resp.headers["WWW-Authenticate"].startswith("Keystone uri=")


def test_garbage_token_401(cloud):
    assert_error(cloud.client.get(f"{V3}/projects", headers=cloud.h("garbage")), 401)
    assert_error(cloud.client.get(f"{V3}/projects", headers=cloud.h("")), 401)


def test_revoked_token_401(cloud):
    token = cloud.token("admin", ADMIN_PASSWORD, project_id=cloud.boot.admin_project_id)
    resp = cloud.client.delete(
        f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": token}
    )
    assert resp.status_code == 204
    assert_error(cloud.client.get(f"{V3}/projects", headers=cloud.h(token)), 401)


# Malformed requests --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"auth": {}},
        {"auth": "x"},
        {"auth": {"identity": {}}},
        {"auth": {"identity": {"methods": "password"}}},
        {"auth": {"identity": {"methods": []}}},
        {"auth": {"identity": {"methods": ["password"]}}},
        {"auth": {"identity": {"methods": ["password"], "password": {}}}},
        {"auth": {"identity": {"methods": ["password"], "password": {"user": "admin"}}}},
        {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name": "admin"}}}}},
        {"auth": {"identity": {"methods": ["token"], "token": {}}}},
        {
            "auth": {
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": {"secret": "x"},
                }
            }
        },
        [1, 2],
        "auth",
    ],
)
def test_malformed_auth_400(cloud, body):
    resp = cloud.issue(body)
    assert_error(resp, 400)


def test_password_auth_edge_cases_never_500(cloud):
    user = {"name": "admin", "domain": {"id": "default"}}
    for password in (None, 12, ["x"], {"a": 1}):
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {"user": {**user, "password": password}},
                }
            }
        }
        resp = cloud.issue(body)
        assert resp.status_code in (400, 401), (password, resp.status_code, resp.text)
    for scope in ("x", 5, {"project": "x"}, {"project": {}}, {"other": {}}, {"domain": 3}):
        resp = cloud.issue(auth_body("admin", ADMIN_PASSWORD, scope))
        assert resp.status_code in (400, 401), (scope, resp.status_code, resp.text)
        assert_error(resp, resp.status_code)


def test_malformed_json_400(cloud):
    for path in ("/auth/tokens", "/projects", "/users", "/domains", "/roles", "/groups"):
        resp = cloud.client.post(
            V3 + path,
            content=b'{"project": {"name": ',
            headers={**cloud.admin, "Content-Type": "application/json"},
        )
        assert_error(resp, 400)
    resp = cloud.client.patch(
        f"{V3}/projects/{cloud.boot.demo_project_id}",
        content=b"not json",
        headers={**cloud.admin, "Content-Type": "application/json"},
    )
    assert_error(resp, 400)


@pytest.mark.parametrize(
    ("collection", "key"),
    [
        ("projects", "project"),
        ("users", "user"),
        ("domains", "domain"),
        ("roles", "role"),
        ("groups", "group"),
    ],
)
def test_missing_required_fields_400(cloud, collection, key):
    c, h = cloud.client, cloud.admin
    assert_error(c.post(f"{V3}/{collection}", headers=h), 400)
    assert_error(c.post(f"{V3}/{collection}", json={}, headers=h), 400)
    assert_error(c.post(f"{V3}/{collection}", json={key: {}}, headers=h), 400)
    assert_error(c.post(f"{V3}/{collection}", json={key: {"name": ""}}, headers=h), 400)
    assert_error(c.post(f"{V3}/{collection}", json={key: "x"}, headers=h), 400)
    assert_error(c.post(f"{V3}/{collection}", json=[key], headers=h), 400)


@pytest.mark.parametrize(
    ("collection", "key", "body"),
    [
        ("projects", "project", {"name": 5}),
        ("projects", "project", {"name": "p", "enabled": "yes"}),
        ("projects", "project", {"name": "p", "tags": "a"}),
        ("projects", "project", {"name": "p", "tags": [1]}),
        ("projects", "project", {"name": "p", "description": 3}),
        ("projects", "project", {"name": "x" * 65}),
        ("users", "user", {"name": ["u"]}),
        ("users", "user", {"name": "u", "enabled": 1}),
        ("users", "user", {"name": "u", "password": 123}),
        ("users", "user", {"name": "u", "options": []}),
        ("users", "user", {"name": "u", "email": 5}),
        ("domains", "domain", {"name": {"a": 1}}),
        ("domains", "domain", {"name": "d", "enabled": "false"}),
        ("roles", "role", {"name": None}),
        ("roles", "role", {"name": "r", "description": []}),
        ("groups", "group", {"name": 1.5}),
    ],
)
def test_wrong_types_400(cloud, collection, key, body):
    resp = cloud.client.post(f"{V3}/{collection}", json={key: body}, headers=cloud.admin)
    assert_error(resp, 400)


def test_wrong_types_on_update_400(cloud):
    c, h = cloud.client, cloud.admin
    project = cloud.boot.demo_project_id
    for body in ({"name": 1}, {"enabled": "no"}, {"tags": "x"}, {"description": 7}):
        assert_error(c.patch(f"{V3}/projects/{project}", json={"project": body}, headers=h), 400)
    user = cloud.boot.admin_user_id
    for body in ({"name": 1}, {"enabled": "no"}, {"password": 5}, {"email": []}):
        assert_error(c.patch(f"{V3}/users/{user}", json={"user": body}, headers=h), 400)
    assert_error(c.patch(f"{V3}/users/{user}", json={"user": "x"}, headers=h), 400)
    assert_error(
        c.post(f"{V3}/users/{user}/password", json={"user": {"password": "x"}}, headers=h), 400
    )
    assert_error(
        c.post(
            f"{V3}/users/{user}/password",
            json={"user": {"original_password": ADMIN_PASSWORD, "password": 5}},
            headers=h,
        ),
        400,
    )


def test_app_cred_bad_input_400(cloud):
    user, token = cloud.member("acbad", cloud.boot.demo_project_id)
    base = f"{V3}/users/{user['id']}/application_credentials"
    for body in (
        {},
        {"name": 5},
        {"name": "x", "roles": "member"},
        {"name": "x", "roles": [5]},
        {"name": "x", "expires_at": "tomorrow"},
        {"name": "x", "expires_at": 5},
        {"name": "x", "access_rules": "all"},
    ):
        resp = cloud.client.post(
            base, json={"application_credential": body}, headers=cloud.h(token)
        )
        assert_error(resp, 400)
    # From an unscoped token there is no project to bind to.
    unscoped = cloud.token({"id": user["id"]}, "secret-pw", unscoped=True)
    resp = cloud.client.post(
        base, json={"application_credential": {"name": "u"}}, headers=cloud.h(unscoped)
    )
    assert_error(resp, 400)


# Unknown ids ---------------------------------------------------------------------------


@pytest.mark.parametrize("collection", ["projects", "users", "roles", "domains", "groups"])
def test_unknown_ids_404(cloud, collection):
    c, h = cloud.client, cloud.admin
    key = collection[:-1]
    assert_error(c.get(f"{V3}/{collection}/does-not-exist", headers=h), 404)
    resp = c.patch(f"{V3}/{collection}/does-not-exist", json={key: {"name": "n"}}, headers=h)
    assert_error(resp, 404)
    assert_error(c.delete(f"{V3}/{collection}/does-not-exist", headers=h), 404)


def test_unknown_nested_ids_404(cloud):
    c, h = cloud.client, cloud.admin
    assert_error(c.get(f"{V3}/groups/nope/users", headers=h), 404)
    assert_error(c.get(f"{V3}/users/nope/groups", headers=h), 404)
    assert_error(c.get(f"{V3}/users/nope/projects", headers=h), 404)
    assert_error(c.put(f"{V3}/groups/nope/users/{cloud.boot.admin_user_id}", headers=h), 404)
    assert_error(c.get(f"{V3}/users/nope/application_credentials", headers=h), 404)
    assert_error(
        c.get(f"{V3}/users/{cloud.boot.admin_user_id}/application_credentials/nope", headers=h),
        404,
    )
    assert_error(
        c.post(f"{V3}/users", json={"user": {"name": "x", "domain_id": "no"}}, headers=h), 404
    )
    assert_error(
        c.post(f"{V3}/projects", json={"project": {"name": "x", "domain_id": "no"}}, headers=h),
        404,
    )
    assert_error(
        c.post(f"{V3}/projects", json={"project": {"name": "x", "parent_id": "no"}}, headers=h),
        404,
    )
    assert_error(c.get(f"{V3}/no-such-thing", headers=h), 404)


# Duplicates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("collection", "key", "body"),
    [
        ("projects", "project", {"name": "dup"}),
        ("users", "user", {"name": "dup"}),
        ("roles", "role", {"name": "dup"}),
        ("groups", "group", {"name": "dup"}),
        ("domains", "domain", {"name": "dup"}),
    ],
)
def test_duplicate_names_409(cloud, collection, key, body):
    c, h = cloud.client, cloud.admin
    first = c.post(f"{V3}/{collection}", json={key: body}, headers=h)
    assert first.status_code == 201, first.text
    err = assert_error(c.post(f"{V3}/{collection}", json={key: body}, headers=h), 409)
    assert "dup" in err["message"]
    # The failed insert left the cloud usable (transaction rolled back cleanly).
    listed = c.get(f"{V3}/{collection}?name=dup", headers=h).json()[collection]
    assert len(listed) == 1


def test_duplicate_by_rename_409(cloud):
    c, h = cloud.client, cloud.admin
    cloud.project("one")
    two = cloud.project("two")
    resp = c.patch(f"{V3}/projects/{two['id']}", json={"project": {"name": "one"}}, headers=h)
    assert_error(resp, 409)
    assert c.get(f"{V3}/projects/{two['id']}", headers=h).json()["project"]["name"] == "two"


def test_same_project_name_in_other_domain_is_fine(cloud):
    domain = cloud.domain("d2")
    cloud.project("shared")
    cloud.project("shared", domain_id=domain["id"])


# Authorization -------------------------------------------------------------------------


def test_member_cannot_administer(cloud):
    user, token = cloud.member("plain", cloud.boot.demo_project_id)
    c, h = cloud.client, cloud.h(token)
    assert_error(c.post(f"{V3}/users", json={"user": {"name": "x"}}, headers=h), 403)
    assert_error(c.get(f"{V3}/projects", headers=h), 403)
    assert_error(c.get(f"{V3}/users", headers=h), 403)
    assert_error(c.get(f"{V3}/domains", headers=h), 403)
    assert_error(c.post(f"{V3}/projects", json={"project": {"name": "x"}}, headers=h), 403)
    assert_error(c.post(f"{V3}/roles", json={"role": {"name": "x"}}, headers=h), 403)
    assert_error(c.post(f"{V3}/domains", json={"domain": {"name": "x"}}, headers=h), 403)
    assert_error(c.get(f"{V3}/role_assignments", headers=h), 403)
    assert_error(
        c.patch(f"{V3}/users/{user['id']}", json={"user": {"enabled": True}}, headers=h), 403
    )
    grant = (
        f"{V3}/projects/{cloud.boot.demo_project_id}/users/{user['id']}/roles/"
        f"{cloud.role_ids['admin']}"
    )
    assert_error(c.put(grant, headers=h), 403)
    assert_error(c.delete(f"{V3}/projects/{cloud.boot.demo_project_id}", headers=h), 403)
    # Still allowed: own project, own user, roles.
    assert c.get(f"{V3}/projects/{cloud.boot.demo_project_id}", headers=h).status_code == 200
    assert c.get(f"{V3}/users/{user['id']}", headers=h).status_code == 200
    assert c.get(f"{V3}/roles", headers=h).status_code == 200


def test_cross_project_isolation(cloud):
    c = cloud.client
    project_a = cloud.project("proj-a")
    project_b = cloud.project("proj-b")
    user_a, _token_a = cloud.member("user-a", project_a["id"])
    user_b, token_b = cloud.member("user-b", project_b["id"])
    h = cloud.h(token_b)
    assert_error(c.get(f"{V3}/projects/{project_a['id']}", headers=h), 403)
    assert c.get(f"{V3}/projects/{project_b['id']}", headers=h).status_code == 200
    resp = c.get(f"{V3}/role_assignments?scope.project.id={project_a['id']}", headers=h)
    assert_error(resp, 403)
    resp = c.get(f"{V3}/role_assignments?user.id={user_a['id']}", headers=h)
    assert_error(resp, 403)
    assert_error(c.get(f"{V3}/users/{user_a['id']}", headers=h), 403)
    assert_error(c.get(f"{V3}/users/{user_a['id']}/projects", headers=h), 403)
    assert_error(c.get(f"{V3}/users/{user_a['id']}/application_credentials", headers=h), 403)
    resp = c.post(
        f"{V3}/users/{user_a['id']}/application_credentials",
        json={"application_credential": {"name": "steal"}},
        headers=h,
    )
    assert_error(resp, 403)
    resp = c.post(
        f"{V3}/users/{user_a['id']}/password",
        json={"user": {"original_password": "secret-pw", "password": "hacked"}},
        headers=h,
    )
    assert_error(resp, 403)
    # Scoping to the other project is refused at authentication.
    resp = cloud.issue(
        auth_body({"id": user_b["id"]}, "secret-pw", {"project": {"id": project_a["id"]}})
    )
    assert_error(resp, 401)


def test_cross_user_app_cred_delete(cloud):
    user_a, token_a = cloud.member("owner", cloud.boot.demo_project_id)
    _user_b, token_b = cloud.member("thief", cloud.boot.demo_project_id)
    base = f"{V3}/users/{user_a['id']}/application_credentials"
    cred = cloud.client.post(
        base, json={"application_credential": {"name": "mine"}}, headers=cloud.h(token_a)
    ).json()["application_credential"]
    assert_error(cloud.client.delete(f"{base}/{cred['id']}", headers=cloud.h(token_b)), 403)
    assert_error(cloud.client.get(f"{base}/{cred['id']}", headers=cloud.h(token_b)), 403)
    assert cloud.client.get(f"{base}/{cred['id']}", headers=cloud.h(token_a)).status_code == 200


def test_cross_domain_isolation(cloud):
    c = cloud.client
    domain_x = cloud.domain("dom-x")
    domain_y = cloud.domain("dom-y")
    user = cloud.user("xuser", "pw-x", domain_id=domain_x["id"])
    cloud.grant(user["id"], "member", domain_id=domain_x["id"])
    token = cloud.token({"id": user["id"]}, "pw-x", domain_id=domain_x["id"])
    h = cloud.h(token)
    assert c.get(f"{V3}/domains/{domain_x['id']}", headers=h).status_code == 200
    assert_error(c.get(f"{V3}/domains/{domain_y['id']}", headers=h), 403)
    assert_error(c.get(f"{V3}/domains/default", headers=h), 403)
    assert_error(c.get(f"{V3}/domains", headers=h), 403)
    # Project-scoped member in domain X cannot read domain Y either.
    project = cloud.project("px", domain_id=domain_x["id"])
    cloud.grant(user["id"], "member", project_id=project["id"])
    ptoken = cloud.token({"id": user["id"]}, "pw-x", project_id=project["id"])
    assert c.get(f"{V3}/domains/{domain_x['id']}", headers=cloud.h(ptoken)).status_code == 200
    assert_error(c.get(f"{V3}/domains/{domain_y['id']}", headers=cloud.h(ptoken)), 403)


def test_reader_and_no_role_tokens(cloud):
    user, token = cloud.member("rdr", cloud.boot.demo_project_id, role="reader")
    c, h = cloud.client, cloud.h(token)
    assert c.get(f"{V3}/projects/{cloud.boot.demo_project_id}", headers=h).status_code == 200
    assert_error(c.post(f"{V3}/groups", json={"group": {"name": "g"}}, headers=h), 403)
    # An unscoped token carries no roles: it may read itself but not the roles list.
    unscoped = cloud.token({"id": user["id"]}, "secret-pw", unscoped=True)
    assert c.get(f"{V3}/users/{user['id']}", headers=cloud.h(unscoped)).status_code == 200
    assert_error(c.get(f"{V3}/roles", headers=cloud.h(unscoped)), 403)
    assert_error(
        c.get(f"{V3}/projects/{cloud.boot.demo_project_id}", headers=cloud.h(unscoped)), 403
    )
