"""CRUD for domains, projects, users, groups, roles; grants and /v3/role_assignments."""

from __future__ import annotations

from apihelpers import assert_error, auth_body

V3 = "/identity/v3"


def test_domain_crud(cloud):
    c, h = cloud.client, cloud.admin
    domain = cloud.create("domains", "domain", {"name": "acme", "description": "ACME"})
    assert domain["name"] == "acme" and domain["enabled"] is True
    assert domain["links"]["self"].endswith(f"/identity/v3/domains/{domain['id']}")
    got = c.get(f"{V3}/domains/{domain['id']}", headers=h).json()["domain"]
    assert got["description"] == "ACME"
    names = {d["name"] for d in c.get(f"{V3}/domains", headers=h).json()["domains"]}
    assert names == {"Default", "acme"}
    assert [d["id"] for d in c.get(f"{V3}/domains?name=acme", headers=h).json()["domains"]] == [
        domain["id"]
    ]
    resp = c.patch(f"{V3}/domains/{domain['id']}", json={"domain": {"description": "x"}}, headers=h)
    assert resp.status_code == 200 and resp.json()["domain"]["description"] == "x"
    # An enabled domain cannot be deleted.
    assert_error(c.delete(f"{V3}/domains/{domain['id']}", headers=h), 403)
    c.patch(f"{V3}/domains/{domain['id']}", json={"domain": {"enabled": False}}, headers=h)
    assert (
        c.get(f"{V3}/domains?enabled=false", headers=h).json()["domains"][0]["id"] == domain["id"]
    )
    assert c.delete(f"{V3}/domains/{domain['id']}", headers=h).status_code == 204
    assert_error(c.get(f"{V3}/domains/{domain['id']}", headers=h), 404)


def test_default_domain_is_protected(cloud):
    c, h = cloud.client, cloud.admin
    resp = c.patch(f"{V3}/domains/default", json={"domain": {"enabled": False}}, headers=h)
    assert_error(resp, 403)
    assert c.get(f"{V3}/domains/default", headers=h).json()["domain"]["enabled"] is True


def test_delete_domain_deletes_its_content(cloud):
    c, h = cloud.client, cloud.admin
    domain = cloud.domain("gone")
    project = cloud.project("p", domain_id=domain["id"])
    user = cloud.user("u", domain_id=domain["id"])
    cloud.grant(user["id"], "member", project_id=project["id"])
    c.patch(f"{V3}/domains/{domain['id']}", json={"domain": {"enabled": False}}, headers=h)
    assert c.delete(f"{V3}/domains/{domain['id']}", headers=h).status_code == 204
    assert_error(c.get(f"{V3}/projects/{project['id']}", headers=h), 404)
    assert_error(c.get(f"{V3}/users/{user['id']}", headers=h), 404)
    ras = c.get(f"{V3}/role_assignments?user.id={user['id']}", headers=h).json()
    assert ras["role_assignments"] == []


def test_project_crud(cloud):
    c, h = cloud.client, cloud.admin
    project = cloud.create(
        "projects", "project", {"name": "web", "description": "d", "tags": ["a", "b"]}
    )
    assert project["domain_id"] == "default"
    assert project["parent_id"] == "default"
    assert project["tags"] == ["a", "b"]
    assert project["is_domain"] is False
    child = cloud.create("projects", "project", {"name": "web-child", "parent_id": project["id"]})
    assert child["parent_id"] == project["id"]
    assert child["domain_id"] == "default"

    names = {p["name"] for p in c.get(f"{V3}/projects", headers=h).json()["projects"]}
    assert names == {"admin", "demo", "web", "web-child"}
    by_parent = c.get(f"{V3}/projects?parent_id={project['id']}", headers=h).json()["projects"]
    assert [p["id"] for p in by_parent] == [child["id"]]
    tagged = c.get(f"{V3}/projects?tags=a,b", headers=h).json()["projects"]
    assert [p["id"] for p in tagged] == [project["id"]]
    assert c.get(f"{V3}/projects?name=nope", headers=h).json()["projects"] == []

    resp = c.patch(
        f"{V3}/projects/{project['id']}",
        json={"project": {"name": "web2", "enabled": False, "tags": ["z"]}},
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    updated = resp.json()["project"]
    assert (updated["name"], updated["enabled"], updated["tags"]) == ("web2", False, ["z"])
    assert c.get(f"{V3}/projects/{project['id']}", headers=h).json()["project"]["name"] == "web2"
    resp = c.patch(
        f"{V3}/projects/{project['id']}", json={"project": {"domain_id": "x"}}, headers=h
    )
    assert_error(resp, 400)

    # A parent with children cannot be deleted.
    assert_error(c.delete(f"{V3}/projects/{project['id']}", headers=h), 403)
    assert c.delete(f"{V3}/projects/{child['id']}", headers=h).status_code == 204
    assert c.delete(f"{V3}/projects/{project['id']}", headers=h).status_code == 204
    assert_error(c.get(f"{V3}/projects/{project['id']}", headers=h), 404)


def test_project_acting_as_domain(cloud):
    """Keystone: POST /v3/projects with is_domain makes a domain (tempest's
    test_create_is_domain_project): a root with no domain or parent, listed by
    /v3/projects?is_domain=true and by /v3/domains, shown, updated and (once disabled)
    deleted through /v3/projects like any domain; regular listings leave it out."""
    c, h = cloud.client, cloud.admin
    body = {"name": "pad", "description": "acts", "domain_id": None, "is_domain": True}
    resp = c.post(f"{V3}/projects", json={"project": body}, headers=h)
    assert resp.status_code == 201, resp.text
    pad = resp.json()["project"]
    assert (pad["is_domain"], pad["domain_id"], pad["parent_id"]) == (True, None, None)
    assert (pad["name"], pad["description"], pad["enabled"]) == ("pad", "acts", True)
    assert pad["links"]["self"].endswith(f"/identity/v3/projects/{pad['id']}")
    domains = c.get(f"{V3}/domains", headers=h).json()["domains"]
    assert pad["id"] in [d["id"] for d in domains]
    assert c.get(f"{V3}/domains/{pad['id']}", headers=h).json()["domain"]["name"] == "pad"
    acting = c.get(f"{V3}/projects?is_domain=true", headers=h).json()["projects"]
    assert {p["id"] for p in acting} == {pad["id"], "default"}
    assert all(p["is_domain"] for p in acting)
    by_name = c.get(f"{V3}/projects?is_domain=1&name=pad", headers=h).json()["projects"]
    assert [p["id"] for p in by_name] == [pad["id"]]
    assert c.get(f"{V3}/projects?is_domain=true&domain_id=default", headers=h).json() == {
        "projects": [],
        "links": {"self": f"{cloud.config.public_url}/identity/v3/projects", "previous": None,
                  "next": None},
    }  # fmt: skip
    regular = c.get(f"{V3}/projects", headers=h).json()["projects"]
    assert pad["id"] not in [p["id"] for p in regular]
    for listing in ("?is_domain=false", ""):
        assert all(not p["is_domain"] for p in c.get(f"{V3}/projects{listing}", headers=h).json()[
            "projects"])  # fmt: skip
    assert c.get(f"{V3}/projects/{pad['id']}", headers=h).json()["project"] == pad

    # It holds projects: one names it as domain, or as parent (a top-level project's parent).
    inner = cloud.create("projects", "project", {"name": "inner", "domain_id": pad["id"]})
    assert (inner["domain_id"], inner["parent_id"]) == (pad["id"], pad["id"])
    under = cloud.create("projects", "project", {"name": "under", "parent_id": pad["id"]})
    assert (under["domain_id"], under["parent_id"], under["is_domain"]) == (
        pad["id"], pad["id"], False)  # fmt: skip
    resp = c.post(
        f"{V3}/projects",
        json={"project": {"name": "x", "parent_id": pad["id"], "domain_id": "default"}},
        headers=h,
    )
    assert "is acting as a domain" in assert_error(resp, 400)["message"]

    # What Keystone refuses.
    for bad, status, message in (
        ({"name": "pad", "is_domain": True}, 409,
         "Conflict occurred attempting to store project - it is not permitted to have two "
         "projects acting as domains with the same name: pad."),
        ({"name": "Default", "is_domain": True}, 409, None),
        ({"name": "kid", "is_domain": True, "parent_id": inner["id"]}, 400,
         "only root projects are allowed to act as domains."),
        ({"name": "kid", "is_domain": True, "domain_id": "default"}, 400,
         "only root projects are allowed to act as domains."),
        ({"name": "kid", "is_domain": "yes"}, 400, None),
    ):  # fmt: skip
        resp = c.post(f"{V3}/projects", json={"project": bad}, headers=h)
        err = assert_error(resp, status)
        assert message is None or err["message"] == message, err
    assert {d["name"] for d in c.get(f"{V3}/domains", headers=h).json()["domains"]} == {
        "Default", "pad"}  # fmt: skip

    # Updated through /v3/projects: is_domain, domain_id and parent_id stay.
    url = f"{V3}/projects/{pad['id']}"
    for change, status in (
        ({"is_domain": False}, 400), ({"domain_id": "default"}, 400), ({"parent_id": "x"}, 403),
    ):  # fmt: skip
        assert_error(c.patch(url, json={"project": change}, headers=h), status)
    resp = c.patch(url, json={"project": {"description": "d2", "is_domain": True}}, headers=h)
    assert resp.status_code == 200, resp.text
    assert resp.json()["project"]["description"] == "d2"
    assert_error(c.patch(f"{V3}/projects/default", json={"project": {"enabled": False}},
                         headers=h), 403)  # fmt: skip

    # Deleted only once disabled, with what it holds, as a domain is.
    assert_error(c.delete(url, headers=h), 403)
    resp = c.patch(url, json={"project": {"enabled": False}}, headers=h)
    assert resp.status_code == 200 and resp.json()["project"]["enabled"] is False
    assert c.delete(url, headers=h).status_code == 204
    for gone in (url, f"{V3}/domains/{pad['id']}", f"{V3}/projects/{inner['id']}"):
        assert_error(c.get(gone, headers=h), 404)


def test_disabled_project_cannot_be_scoped(cloud):
    project = cloud.project("off")
    user = cloud.user("offuser", "pw-off", project_id=project["id"])
    cloud.client.patch(
        f"{V3}/projects/{project['id']}", json={"project": {"enabled": False}}, headers=cloud.admin
    )
    resp = cloud.issue(auth_body({"id": user["id"]}, "pw-off", {"project": {"id": project["id"]}}))
    assert_error(resp, 401)


def test_user_crud(cloud):
    c, h = cloud.client, cloud.admin
    user = cloud.create(
        "users",
        "user",
        {"name": "alice", "password": "pw-alice", "email": "a@example.com", "team": "blue"},
    )
    assert user["name"] == "alice" and user["domain_id"] == "default"
    assert user["enabled"] is True
    assert user["email"] == "a@example.com"
    assert user["team"] == "blue"
    assert "password" not in user and "password_hash" not in user
    got = c.get(f"{V3}/users/{user['id']}", headers=h).json()["user"]
    assert got["email"] == "a@example.com"
    names = {u["name"] for u in c.get(f"{V3}/users", headers=h).json()["users"]}
    assert names == {"admin", "alice"}
    assert c.get(f"{V3}/users?name=alice", headers=h).json()["users"][0]["id"] == user["id"]

    resp = c.patch(
        f"{V3}/users/{user['id']}",
        json={"user": {"name": "alice2", "password": "pw-new", "description": "hi"}},
        headers=h,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["user"]["name"] == "alice2"
    assert_error(cloud.issue(auth_body("alice2", "pw-alice")), 401)
    cloud.token("alice2", "pw-new")

    assert c.delete(f"{V3}/users/{user['id']}", headers=h).status_code == 204
    assert_error(c.get(f"{V3}/users/{user['id']}", headers=h), 404)
    assert_error(cloud.issue(auth_body("alice2", "pw-new")), 401)


def test_user_in_other_domain(cloud):
    domain = cloud.domain("other")
    cloud.user("bob", "pw-bob", domain_id=domain["id"])
    cloud.user("bob", "pw-bob2")  # same name, other domain: allowed
    resp = cloud.issue(auth_body({"name": "bob", "domain": {"name": "other"}}, "pw-bob"))
    assert resp.status_code == 201, resp.text
    assert resp.json()["token"]["user"]["domain"]["id"] == domain["id"]
    resp = cloud.client.get(f"{V3}/users?domain_id={domain['id']}", headers=cloud.admin)
    assert [u["name"] for u in resp.json()["users"]] == ["bob"]


def test_groups_and_membership(cloud):
    c, h = cloud.client, cloud.admin
    group = cloud.create("groups", "group", {"name": "ops", "description": "Ops"})
    assert group["domain_id"] == "default"
    user = cloud.user("carol", "pw-carol")
    member_url = f"{V3}/groups/{group['id']}/users/{user['id']}"
    assert c.head(member_url, headers=h).status_code == 404
    assert c.put(member_url, headers=h).status_code == 204
    assert c.put(member_url, headers=h).status_code == 204  # idempotent
    assert c.head(member_url, headers=h).status_code == 204
    assert c.get(member_url, headers=h).status_code == 204
    users = c.get(f"{V3}/groups/{group['id']}/users", headers=h).json()["users"]
    assert [u["id"] for u in users] == [user["id"]]
    groups = c.get(f"{V3}/users/{user['id']}/groups", headers=h).json()["groups"]
    assert [g["id"] for g in groups] == [group["id"]]

    # A role granted to the group reaches the member.
    project = cloud.project("grp-proj")
    role = cloud.role_ids["member"]
    resp = c.put(f"{V3}/projects/{project['id']}/groups/{group['id']}/roles/{role}", headers=h)
    assert resp.status_code == 204
    token = cloud.token({"id": user["id"]}, "pw-carol", project_id=project["id"])
    assert token

    resp = c.patch(f"{V3}/groups/{group['id']}", json={"group": {"name": "ops2"}}, headers=h)
    assert resp.json()["group"]["name"] == "ops2"
    assert c.get(f"{V3}/groups?name=ops2", headers=h).json()["groups"][0]["id"] == group["id"]

    assert c.delete(member_url, headers=h).status_code == 204
    assert_error(c.delete(member_url, headers=h), 404)
    assert c.get(f"{V3}/groups/{group['id']}/users", headers=h).json()["users"] == []
    resp = cloud.issue(
        auth_body({"id": user["id"]}, "pw-carol", {"project": {"id": project["id"]}})
    )
    assert_error(resp, 401)

    assert c.delete(f"{V3}/groups/{group['id']}", headers=h).status_code == 204
    assert_error(c.get(f"{V3}/groups/{group['id']}", headers=h), 404)


def test_role_crud(cloud):
    c, h = cloud.client, cloud.admin
    names = [r["name"] for r in c.get(f"{V3}/roles", headers=h).json()["roles"]]
    assert names == ["admin", "member", "reader"]
    role = cloud.create("roles", "role", {"name": "auditor", "description": "audits"})
    assert role["domain_id"] is None and role["description"] == "audits"
    assert c.get(f"{V3}/roles/{role['id']}", headers=h).json()["role"]["name"] == "auditor"
    assert c.get(f"{V3}/roles?name=auditor", headers=h).json()["roles"][0]["id"] == role["id"]
    resp = c.patch(f"{V3}/roles/{role['id']}", json={"role": {"name": "auditor2"}}, headers=h)
    assert resp.json()["role"]["name"] == "auditor2"
    # Deleting a role removes its assignments.
    project = cloud.project("rp")
    user = cloud.user("dave")
    c.put(f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{role['id']}", headers=h)
    assert c.delete(f"{V3}/roles/{role['id']}", headers=h).status_code == 204
    assert_error(c.get(f"{V3}/roles/{role['id']}", headers=h), 404)
    ras = c.get(f"{V3}/role_assignments?user.id={user['id']}", headers=h).json()
    assert ras["role_assignments"] == []
    # Domain-specific roles share names with global ones.
    domain_role = cloud.create("roles", "role", {"name": "member", "domain_id": "default"})
    assert domain_role["domain_id"] == "default"


def test_project_grants(cloud):
    c, h = cloud.client, cloud.admin
    project = cloud.project("gp")
    user = cloud.user("erin", "pw-erin")
    role = cloud.role_ids["reader"]
    url = f"{V3}/projects/{project['id']}/users/{user['id']}/roles/{role}"
    assert c.head(url, headers=h).status_code == 404
    assert_error(c.get(url, headers=h), 404)
    assert c.put(url, headers=h).status_code == 204
    assert c.put(url, headers=h).status_code == 204
    assert c.head(url, headers=h).status_code == 204
    assert c.get(url, headers=h).status_code == 204
    listed = c.get(f"{V3}/projects/{project['id']}/users/{user['id']}/roles", headers=h)
    assert [r["name"] for r in listed.json()["roles"]] == ["reader"]
    token = cloud.token({"id": user["id"]}, "pw-erin", project_id=project["id"])
    body = c.get(f"{V3}/auth/tokens", headers={**h, "X-Subject-Token": token}).json()["token"]
    assert [r["name"] for r in body["roles"]] == ["reader"]
    assert c.delete(url, headers=h).status_code == 204
    assert c.head(url, headers=h).status_code == 404
    assert_error(c.delete(url, headers=h), 404)


def test_domain_grants(cloud):
    c, h = cloud.client, cloud.admin
    domain = cloud.domain("dg")
    user = cloud.user("frank", "pw-frank", domain_id=domain["id"])
    role = cloud.role_ids["member"]
    url = f"{V3}/domains/{domain['id']}/users/{user['id']}/roles/{role}"
    assert c.put(url, headers=h).status_code == 204
    assert c.head(url, headers=h).status_code == 204
    listed = c.get(f"{V3}/domains/{domain['id']}/users/{user['id']}/roles", headers=h)
    assert [r["id"] for r in listed.json()["roles"]] == [role]
    resp = cloud.issue(auth_body({"id": user["id"]}, "pw-frank", {"domain": {"id": domain["id"]}}))
    assert resp.status_code == 201, resp.text
    assert resp.json()["token"]["domain"]["id"] == domain["id"]
    assert c.delete(url, headers=h).status_code == 204
    assert c.head(url, headers=h).status_code == 404


def test_grant_unknown_parts_are_404(cloud):
    c, h = cloud.client, cloud.admin
    project = cloud.project("gx")
    user = cloud.user("gina")
    role = cloud.role_ids["member"]
    for url in (
        f"{V3}/projects/nope/users/{user['id']}/roles/{role}",
        f"{V3}/projects/{project['id']}/users/nope/roles/{role}",
        f"{V3}/projects/{project['id']}/users/{user['id']}/roles/nope",
        f"{V3}/domains/nope/users/{user['id']}/roles/{role}",
        f"{V3}/projects/{project['id']}/groups/nope/roles/{role}",
    ):
        assert_error(c.put(url, headers=h), 404)
    assert_error(c.put(f"{V3}/things/x/users/{user['id']}/roles/{role}", headers=h), 400)


def _assignments(cloud, query: str) -> list[dict]:
    resp = cloud.client.get(f"{V3}/role_assignments?{query}", headers=cloud.admin)
    assert resp.status_code == 200, resp.text
    return resp.json()["role_assignments"]


def test_role_assignments_filters(cloud):
    c, h = cloud.client, cloud.admin
    p1, p2 = cloud.project("ra1"), cloud.project("ra2")
    u1 = cloud.user("hank", project_id=p1["id"], role="member")
    u2 = cloud.user("ivy", project_id=p2["id"], role="reader")
    group = cloud.create("groups", "group", {"name": "ra-group"})
    c.put(f"{V3}/groups/{group['id']}/users/{u2['id']}", headers=h)
    c.put(
        f"{V3}/projects/{p1['id']}/groups/{group['id']}/roles/{cloud.role_ids['reader']}", headers=h
    )

    rows = _assignments(cloud, f"user.id={u1['id']}")
    assert len(rows) == 1
    assert rows[0]["user"]["id"] == u1["id"]
    assert rows[0]["scope"]["project"]["id"] == p1["id"]
    assert rows[0]["role"]["id"] == cloud.role_ids["member"]
    assert rows[0]["links"]["assignment"].endswith(
        f"/projects/{p1['id']}/users/{u1['id']}/roles/{cloud.role_ids['member']}"
    )

    rows = _assignments(cloud, f"scope.project.id={p1['id']}")
    actors = {(r.get("user") or r.get("group"))["id"] for r in rows}
    assert actors == {u1["id"], group["id"]}

    rows = _assignments(cloud, f"role.id={cloud.role_ids['reader']}")
    assert {(r.get("user") or r.get("group"))["id"] for r in rows} == {u2["id"], group["id"]}

    rows = _assignments(cloud, f"scope.project.id={p1['id']}&role.id={cloud.role_ids['member']}")
    assert [r["user"]["id"] for r in rows] == [u1["id"]]

    # Effective: the group grant becomes ivy's, with a membership link.
    rows = _assignments(cloud, f"effective&user.id={u2['id']}")
    scopes = {r["scope"]["project"]["id"] for r in rows}
    assert scopes == {p1["id"], p2["id"]}
    via = [r for r in rows if r["scope"]["project"]["id"] == p1["id"]]
    assert via[0]["links"]["membership"].endswith(f"/groups/{group['id']}/users/{u2['id']}")
    assert "group" not in via[0]
    rows = _assignments(cloud, f"effective&scope.project.id={p1['id']}")
    assert {r["user"]["id"] for r in rows} == {u1["id"], u2["id"]}

    # Names on request.
    rows = _assignments(cloud, f"user.id={u1['id']}&include_names")
    assert rows[0]["user"]["name"] == "hank"
    assert rows[0]["role"]["name"] == "member"
    assert rows[0]["scope"]["project"]["name"] == "ra1"
    rows = _assignments(cloud, f"user.id={u1['id']}")
    assert "name" not in rows[0]["user"]

    resp = c.get(f"{V3}/role_assignments?effective&group.id={group['id']}", headers=h)
    assert_error(resp, 400)


def test_role_assignments_inherited(cloud):
    c, h = cloud.client, cloud.admin
    domain = cloud.domain("inh")
    project = cloud.project("inh-p", domain_id=domain["id"])
    user = cloud.user("jack", "pw-jack", domain_id=domain["id"])
    role = cloud.role_ids["member"]
    url = (
        f"{V3}/OS-INHERIT/domains/{domain['id']}/users/{user['id']}/roles/{role}"
        "/inherited_to_projects"
    )
    assert c.put(url, headers=h).status_code == 204
    rows = _assignments(cloud, f"user.id={user['id']}")
    assert rows[0]["scope"]["OS-INHERIT:inherited_to"] == "projects"
    rows = _assignments(cloud, f"user.id={user['id']}&effective")
    assert {r["scope"]["project"]["id"] for r in rows} == {project["id"]}
    assert role in {r["role"]["id"] for r in rows}
    cloud.token({"id": user["id"]}, "pw-jack", project_id=project["id"])
    assert c.delete(url, headers=h).status_code == 204
    assert _assignments(cloud, f"user.id={user['id']}") == []


def test_member_sees_own_assignments(cloud):
    user, token = cloud.member("kim", cloud.boot.demo_project_id)
    resp = cloud.client.get(f"{V3}/role_assignments?user.id={user['id']}", headers=cloud.h(token))
    assert resp.status_code == 200
    assert [r["scope"]["project"]["id"] for r in resp.json()["role_assignments"]] == [
        cloud.boot.demo_project_id
    ]
    resp = cloud.client.get(
        f"{V3}/role_assignments?scope.project.id={cloud.boot.demo_project_id}",
        headers=cloud.h(token),
    )
    assert resp.status_code == 200
    assert user["id"] in {r["user"]["id"] for r in resp.json()["role_assignments"]}
