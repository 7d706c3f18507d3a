"""System scope (grants, tokens, assignments) and implied roles (inference rules)."""

from __future__ import annotations

from apihelpers import ADMIN_PASSWORD, assert_error, auth_body

V3 = "/identity/v3"
SYSTEM_ALL = {"system": {"all": True}}


def _role(cloud, name: str, domain_id: str | None = None) -> dict:
    body = {"name": name}
    if domain_id:
        body["domain_id"] = domain_id
    return cloud.create("roles", "role", body)


def _token_roles(cloud, token: str) -> set[str]:
    resp = cloud.client.get(f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": token})
    assert resp.status_code == 200, resp.text
    return {r["name"] for r in resp.json()["token"]["roles"]}


# System scope ---------------------------------------------------------------------------


def test_system_grant_and_system_scoped_token(cloud):
    c, h = cloud.client, cloud.admin
    user = cloud.user("operator", "pw-op")
    reader = cloud.role_ids["reader"]
    path = f"{V3}/system/users/{user['id']}/roles/{reader}"

    # Without a system grant the user cannot scope to the system.
    resp = cloud.issue(auth_body({"id": user["id"]}, "pw-op", SYSTEM_ALL))
    assert_error(resp, 401)
    assert_error(c.get(path, headers=h), 404)
    assert c.head(path, headers=h).status_code == 404

    assert c.put(path, headers=h).status_code == 204
    assert c.get(path, headers=h).status_code == 204
    assert c.head(path, headers=h).status_code == 204
    listed = c.get(f"{V3}/system/users/{user['id']}/roles", headers=h).json()["roles"]
    assert [r["id"] for r in listed] == [reader]

    resp = cloud.issue(auth_body({"id": user["id"]}, "pw-op", SYSTEM_ALL))
    assert resp.status_code == 201, resp.text
    token = resp.json()["token"]
    assert token["system"] == {"all": True}
    assert "project" not in token and "domain" not in token
    assert {r["name"] for r in token["roles"]} == {"reader"}
    assert "catalog" in token

    # Validation renders the same scope.
    subject = resp.headers["X-Subject-Token"]
    body = c.get(f"{V3}/auth/tokens", headers={**h, "X-Subject-Token": subject}).json()["token"]
    assert body["system"] == {"all": True}
    assert {r["name"] for r in body["roles"]} == {"reader"}

    # The grant shows in /v3/role_assignments under the system scope.
    ras = c.get(f"{V3}/role_assignments?scope.system=all", headers=h).json()["role_assignments"]
    mine = [a for a in ras if a.get("user", {}).get("id") == user["id"]]
    assert len(mine) == 1, ras
    assert mine[0]["scope"] == {"system": {"all": True}}
    assert mine[0]["role"]["id"] == reader
    assert mine[0]["links"]["assignment"].endswith(f"/system/users/{user['id']}/roles/{reader}")
    # Project grants are not part of the system listing.
    assert all(a["scope"] == {"system": {"all": True}} for a in ras)

    assert c.delete(path, headers=h).status_code == 204
    assert_error(c.get(path, headers=h), 404)
    assert_error(c.delete(path, headers=h), 404)
    assert_error(cloud.issue(auth_body({"id": user["id"]}, "pw-op", SYSTEM_ALL)), 401)
    # The token issued while the grant existed no longer validates.
    assert_error(c.get(f"{V3}/auth/tokens", headers={**h, "X-Subject-Token": subject}), 404)


def test_system_scope_must_be_all(cloud):
    resp = cloud.issue(auth_body("admin", ADMIN_PASSWORD, {"system": {"all": False}}))
    assert_error(resp, 400)


def test_system_grant_needs_admin(cloud):
    user, token = cloud.member("plain", cloud.boot.demo_project_id)
    path = f"{V3}/system/users/{user['id']}/roles/{cloud.role_ids['reader']}"
    assert_error(cloud.client.put(path, headers=cloud.h(token)), 403)


# Implied roles ---------------------------------------------------------------------------


def test_default_inference_rules(cloud):
    c, h = cloud.client, cloud.admin
    ids = cloud.role_ids
    assert _token_roles(cloud, cloud.admin_token) == {"admin", "member", "reader"}
    rules = c.get(f"{V3}/role_inferences", headers=h).json()["role_inferences"]
    pairs = {(r["prior_role"]["name"], i["name"]) for r in rules for i in r["implies"]}
    assert pairs == {("admin", "member"), ("member", "reader")}
    assert c.head(f"{V3}/roles/{ids['admin']}/implies/{ids['member']}", headers=h).status_code == (
        204
    )


def test_inference_rule_crud(cloud):
    c, h = cloud.client, cloud.admin
    prior = _role(cloud, "auditor")
    implied = _role(cloud, "observer")
    other = _role(cloud, "watcher")
    path = f"{V3}/roles/{prior['id']}/implies/{implied['id']}"

    assert_error(c.get(path, headers=h), 404)
    assert c.head(path, headers=h).status_code == 404

    resp = c.put(path, headers=h)
    assert resp.status_code == 201, resp.text
    rule = resp.json()["role_inference"]
    assert rule["prior_role"]["id"] == prior["id"]
    assert rule["prior_role"]["name"] == "auditor"
    assert rule["prior_role"]["links"]["self"].endswith(f"/roles/{prior['id']}")
    assert rule["implies"]["id"] == implied["id"]
    assert rule["implies"]["name"] == "observer"
    assert rule["implies"]["links"]["self"].endswith(f"/roles/{implied['id']}")
    # Creating it again is idempotent.
    assert c.put(path, headers=h).status_code == 201

    resp = c.get(path, headers=h)
    assert resp.status_code == 200
    assert resp.json()["role_inference"] == rule
    resp = c.head(path, headers=h)
    assert resp.status_code == 204 and resp.content == b""

    assert c.put(f"{V3}/roles/{prior['id']}/implies/{other['id']}", headers=h).status_code == 201
    listed = c.get(f"{V3}/roles/{prior['id']}/implies", headers=h).json()
    assert listed["role_inference"]["prior_role"]["id"] == prior["id"]
    assert [r["name"] for r in listed["role_inference"]["implies"]] == ["observer", "watcher"]
    assert listed["links"]["self"].endswith(f"/roles/{prior['id']}/implies")

    everything = c.get(f"{V3}/role_inferences", headers=h).json()["role_inferences"]
    ours = [r for r in everything if r["prior_role"]["id"] == prior["id"]]
    assert len(ours) == 1
    assert {i["id"] for i in ours[0]["implies"]} == {implied["id"], other["id"]}

    assert c.delete(path, headers=h).status_code == 204
    assert_error(c.get(path, headers=h), 404)
    assert_error(c.delete(path, headers=h), 404)
    listed = c.get(f"{V3}/roles/{prior['id']}/implies", headers=h).json()
    assert [r["name"] for r in listed["role_inference"]["implies"]] == ["watcher"]

    # Unknown roles are 404.
    assert_error(c.put(f"{V3}/roles/{prior['id']}/implies/nope", headers=h), 404)
    assert_error(c.put(f"{V3}/roles/nope/implies/{prior['id']}", headers=h), 404)


def test_inference_rules_need_admin(cloud):
    prior = _role(cloud, "auditor")
    implied = _role(cloud, "observer")
    _, token = cloud.member("m", cloud.boot.demo_project_id)
    path = f"{V3}/roles/{prior['id']}/implies/{implied['id']}"
    assert_error(cloud.client.put(path, headers=cloud.h(token)), 403)
    # Readers may look at the rules.
    listed = cloud.client.get(f"{V3}/role_inferences", headers=cloud.h(token))
    assert listed.status_code == 200


def test_implied_role_reaches_project_token_until_rule_is_deleted(cloud):
    c, h = cloud.client, cloud.admin
    prior = _role(cloud, "auditor")
    implied = _role(cloud, "observer")
    cloud.role_ids.update({"auditor": prior["id"]})
    project = cloud.project("audited")
    user = cloud.user("aud", "pw-aud", project_id=project["id"], role="auditor")
    path = f"{V3}/roles/{prior['id']}/implies/{implied['id']}"
    assert c.put(path, headers=h).status_code == 201

    token = cloud.token({"id": user["id"]}, "pw-aud", project_id=project["id"])
    assert _token_roles(cloud, token) == {"auditor", "observer"}
    issued = cloud.issue(
        auth_body({"id": user["id"]}, "pw-aud", {"project": {"id": project["id"]}})
    )
    assert {r["name"] for r in issued.json()["token"]["roles"]} == {"auditor", "observer"}

    assert c.delete(path, headers=h).status_code == 204
    fresh = cloud.token({"id": user["id"]}, "pw-aud", project_id=project["id"])
    assert _token_roles(cloud, fresh) == {"auditor"}


def test_implied_roles_are_transitive(cloud):
    c, h = cloud.client, cloud.admin
    a, b, d = _role(cloud, "ra"), _role(cloud, "rb"), _role(cloud, "rd")
    assert c.put(f"{V3}/roles/{a['id']}/implies/{b['id']}", headers=h).status_code == 201
    assert c.put(f"{V3}/roles/{b['id']}/implies/{d['id']}", headers=h).status_code == 201
    cloud.role_ids["ra"] = a["id"]
    project = cloud.project("chain")
    user = cloud.user("chained", "pw-ch", project_id=project["id"], role="ra")
    token = cloud.token({"id": user["id"]}, "pw-ch", project_id=project["id"])
    assert _token_roles(cloud, token) == {"ra", "rb", "rd"}


def test_admin_cannot_be_implied(cloud):
    prior = _role(cloud, "wannabe")
    resp = cloud.client.put(
        f"{V3}/roles/{prior['id']}/implies/{cloud.role_ids['admin']}", headers=cloud.admin
    )
    assert_error(resp, 403)


def test_inference_cycle_is_400(cloud):
    c, h = cloud.client, cloud.admin
    a, b, d = _role(cloud, "ca"), _role(cloud, "cb"), _role(cloud, "cd")
    assert c.put(f"{V3}/roles/{a['id']}/implies/{b['id']}", headers=h).status_code == 201
    assert c.put(f"{V3}/roles/{b['id']}/implies/{d['id']}", headers=h).status_code == 201
    assert_error(c.put(f"{V3}/roles/{d['id']}/implies/{a['id']}", headers=h), 400)
    assert_error(c.put(f"{V3}/roles/{b['id']}/implies/{a['id']}", headers=h), 400)
    assert_error(c.put(f"{V3}/roles/{a['id']}/implies/{a['id']}", headers=h), 400)
    # The default chain too: reader may not imply admin's descendant member back.
    ids = cloud.role_ids
    assert_error(c.put(f"{V3}/roles/{ids['reader']}/implies/{ids['member']}", headers=h), 400)
    # Nothing was stored by the refused requests.
    assert_error(c.get(f"{V3}/roles/{d['id']}/implies/{a['id']}", headers=h), 404)


def test_domain_specific_roles_in_rules(cloud):
    c, h = cloud.client, cloud.admin
    domain = cloud.domain("acme")
    global_role = _role(cloud, "global-viewer")
    d1 = _role(cloud, "acme-lead", domain_id=domain["id"])
    d2 = _role(cloud, "acme-dev", domain_id=domain["id"])
    assert d1["domain_id"] == domain["id"]

    # A global role may not imply a domain-specific one.
    assert_error(c.put(f"{V3}/roles/{global_role['id']}/implies/{d1['id']}", headers=h), 403)
    # Domain-specific to domain-specific, and domain-specific to global, are fine.
    assert c.put(f"{V3}/roles/{d1['id']}/implies/{d2['id']}", headers=h).status_code == 201
    assert c.put(f"{V3}/roles/{d2['id']}/implies/{global_role['id']}", headers=h).status_code == (
        201
    )

    project = cloud.project("acme-proj", domain_id=domain["id"])
    user = cloud.user("acme-user", "pw-acme", domain_id=domain["id"])
    path = f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{d1['id']}"
    assert c.put(path, headers=h).status_code == 204
    token = cloud.token({"id": user["id"]}, "pw-acme", project_id=project["id"])
    # Only the global role reached through the chain is carried by the token.
    assert _token_roles(cloud, token) == {"global-viewer"}

    # A domain-specific role that implies nothing global gives no access at all.
    lonely = _role(cloud, "acme-lonely", domain_id=domain["id"])
    other = cloud.project("acme-other", domain_id=domain["id"])
    assert (
        c.put(
            f"{V3}/projects/{other['id']}/users/{user['id']}/roles/{lonely['id']}", headers=h
        ).status_code
        == 204
    )
    resp = cloud.issue(auth_body({"id": user["id"]}, "pw-acme", {"project": {"id": other["id"]}}))
    assert_error(resp, 401)


def test_effective_assignments_include_implied_roles(cloud):
    c, h = cloud.client, cloud.admin
    ids = cloud.role_ids
    project = cloud.project("eff")
    user = cloud.user("eff-user", "pw-eff", project_id=project["id"], role="member")

    direct = c.get(f"{V3}/role_assignments?user.id={user['id']}", headers=h).json()
    assert [a["role"]["id"] for a in direct["role_assignments"]] == [ids["member"]]
    assert "prior_role" not in direct["role_assignments"][0]["links"]

    resp = c.get(f"{V3}/role_assignments?user.id={user['id']}&effective", headers=h)
    assert resp.status_code == 200, resp.text
    rows = resp.json()["role_assignments"]
    by_role = {a["role"]["id"]: a for a in rows}
    assert set(by_role) == {ids["member"], ids["reader"]}
    assert "prior_role" not in by_role[ids["member"]]["links"]
    implied = by_role[ids["reader"]]
    assert implied["links"]["prior_role"].endswith(f"/roles/{ids['member']}")
    assert implied["scope"] == {"project": {"id": project["id"]}}
    assert implied["user"] == {"id": user["id"]}
    # The assignment link points at the grant that produced it.
    assert implied["links"]["assignment"].endswith(
        f"/projects/{project['id']}/users/{user['id']}/roles/{ids['member']}"
    ) or implied["links"]["assignment"].endswith(
        f"/projects/{project['id']}/users/{user['id']}/roles/{ids['reader']}"
    )


def test_effective_assignments_hide_domain_specific_roles(cloud):
    c, h = cloud.client, cloud.admin
    domain = cloud.domain("dom")
    d1 = _role(cloud, "dom-role", domain_id=domain["id"])
    g = _role(cloud, "dom-global")
    assert c.put(f"{V3}/roles/{d1['id']}/implies/{g['id']}", headers=h).status_code == 201
    project = cloud.project("dp", domain_id=domain["id"])
    user = cloud.user("du", "pw-du", domain_id=domain["id"])
    c.put(f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{d1['id']}", headers=h)
    rows = c.get(f"{V3}/role_assignments?user.id={user['id']}&effective", headers=h).json()[
        "role_assignments"
    ]
    assert [a["role"]["id"] for a in rows] == [g["id"]]
    assert rows[0]["links"]["prior_role"].endswith(f"/roles/{d1['id']}")
