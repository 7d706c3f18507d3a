"""The catalog (services, endpoints, regions), credentials, policies, trusts, project tags."""

from __future__ import annotations

import hashlib
import json

from apihelpers import assert_error

V3 = "/identity/v3"


def _catalog_urls(cloud, token: str) -> dict[str, list[str]]:
    resp = cloud.client.get(f"{V3}/auth/catalog", headers=cloud.h(token))
    assert resp.status_code == 200, resp.text
    return {
        entry["type"]: [e["url"] for e in entry["endpoints"]] for entry in resp.json()["catalog"]
    }


# Services, endpoints, regions --------------------------------------------------------------


def test_service_crud(cloud):
    c, h = cloud.client, cloud.admin
    svc = cloud.create(
        "services", "service", {"type": "orchestration", "name": "heat", "description": "d"}
    )
    assert svc["enabled"] is True and svc["name"] == "heat"
    assert svc["links"]["self"].endswith(f"/services/{svc['id']}")
    got = c.get(f"{V3}/services/{svc['id']}", headers=h).json()["service"]
    assert got == svc
    listed = c.get(f"{V3}/services?type=orchestration", headers=h).json()["services"]
    assert [s["id"] for s in listed] == [svc["id"]]
    assert c.get(f"{V3}/services?name=heat", headers=h).json()["services"][0]["id"] == svc["id"]
    # kumo's own services are there too.
    types = {s["type"] for s in c.get(f"{V3}/services", headers=h).json()["services"]}
    assert {"identity", "compute", "orchestration"} <= types

    resp = c.patch(
        f"{V3}/services/{svc['id']}", json={"service": {"enabled": False, "x": 1}}, headers=h
    )
    assert resp.status_code == 200
    assert resp.json()["service"]["enabled"] is False
    assert resp.json()["service"]["x"] == 1

    assert_error(c.post(f"{V3}/services", json={"service": {"name": "no-type"}}, headers=h), 400)
    assert c.delete(f"{V3}/services/{svc['id']}", headers=h).status_code == 204
    assert_error(c.get(f"{V3}/services/{svc['id']}", headers=h), 404)
    assert_error(c.delete(f"{V3}/services/{svc['id']}", headers=h), 404)


def test_endpoint_crud_and_region_autocreate(cloud):
    c, h = cloud.client, cloud.admin
    svc = cloud.create("services", "service", {"type": "dns", "name": "designate"})
    assert_error(c.get(f"{V3}/regions/Mars", headers=h), 404)
    ep = cloud.create(
        "endpoints",
        "endpoint",
        {
            "service_id": svc["id"],
            "interface": "public",
            "url": "http://dns.test:9001",
            "region_id": "Mars",
        },
    )
    assert ep["region_id"] == "Mars" and ep["region"] == "Mars"
    assert ep["enabled"] is True
    region = c.get(f"{V3}/regions/Mars", headers=h)
    assert region.status_code == 200
    assert region.json()["region"]["id"] == "Mars"

    # The legacy "region" key works too.
    ep2 = cloud.create(
        "endpoints",
        "endpoint",
        {
            "service_id": svc["id"],
            "interface": "internal",
            "url": "http://dns.internal:9001",
            "region": "Venus",
        },
    )
    assert ep2["region_id"] == "Venus"
    assert c.get(f"{V3}/regions/Venus", headers=h).status_code == 200

    by_service = c.get(f"{V3}/endpoints?service_id={svc['id']}", headers=h).json()["endpoints"]
    assert {e["id"] for e in by_service} == {ep["id"], ep2["id"]}
    internal = c.get(f"{V3}/endpoints?service_id={svc['id']}&interface=internal", headers=h).json()[
        "endpoints"
    ]
    assert [e["id"] for e in internal] == [ep2["id"]]
    assert c.get(f"{V3}/endpoints/{ep['id']}", headers=h).json()["endpoint"] == ep

    resp = c.patch(
        f"{V3}/endpoints/{ep['id']}", json={"endpoint": {"url": "http://dns2.test"}}, headers=h
    )
    assert resp.status_code == 200 and resp.json()["endpoint"]["url"] == "http://dns2.test"

    bad = {"service_id": svc["id"], "interface": "private", "url": "http://x.test"}
    assert_error(c.post(f"{V3}/endpoints", json={"endpoint": bad}, headers=h), 400)
    bad = {"service_id": svc["id"], "interface": "public", "url": "not-a-url"}
    assert_error(c.post(f"{V3}/endpoints", json={"endpoint": bad}, headers=h), 400)
    bad = {"service_id": "nope", "interface": "public", "url": "http://x.test"}
    assert_error(c.post(f"{V3}/endpoints", json={"endpoint": bad}, headers=h), 404)
    resp = c.patch(
        f"{V3}/endpoints/{ep['id']}", json={"endpoint": {"interface": "bogus"}}, headers=h
    )
    assert_error(resp, 400)

    assert c.delete(f"{V3}/endpoints/{ep2['id']}", headers=h).status_code == 204
    assert_error(c.get(f"{V3}/endpoints/{ep2['id']}", headers=h), 404)


def test_deleting_a_service_removes_its_endpoints(cloud):
    c, h = cloud.client, cloud.admin
    svc = cloud.create("services", "service", {"type": "queue", "name": "zaqar"})
    eps = [
        cloud.create(
            "endpoints",
            "endpoint",
            {"service_id": svc["id"], "interface": i, "url": f"http://q.test/{i}"},
        )
        for i in ("public", "internal", "admin")
    ]
    assert c.delete(f"{V3}/services/{svc['id']}", headers=h).status_code == 204
    for ep in eps:
        assert_error(c.get(f"{V3}/endpoints/{ep['id']}", headers=h), 404)
    assert c.get(f"{V3}/endpoints?service_id={svc['id']}", headers=h).json()["endpoints"] == []


def test_region_crud(cloud):
    c, h = cloud.client, cloud.admin
    resp = c.put(f"{V3}/regions/North", json={"region": {"description": "n"}}, headers=h)
    assert resp.status_code == 201, resp.text
    assert resp.json()["region"] == {
        "id": "North",
        "description": "n",
        "parent_region_id": None,
        "links": {"self": resp.json()["region"]["links"]["self"]},
    }
    assert resp.json()["region"]["links"]["self"].endswith("/regions/North")
    assert_error(c.put(f"{V3}/regions/North", json={"region": {}}, headers=h), 409)

    child = cloud.create("regions", "region", {"id": "North-1", "parent_region_id": "North"})
    assert child["parent_region_id"] == "North"
    generated = cloud.create("regions", "region", {"description": "auto id"})
    assert generated["id"]
    assert_error(
        c.post(f"{V3}/regions", json={"region": {"id": "North-1"}}, headers=h), 409
    )  # duplicate via POST too
    assert_error(
        c.post(f"{V3}/regions", json={"region": {"parent_region_id": "Nowhere"}}, headers=h), 404
    )

    children = c.get(f"{V3}/regions?parent_region_id=North", headers=h).json()["regions"]
    assert [r["id"] for r in children] == ["North-1"]
    ids = {r["id"] for r in c.get(f"{V3}/regions", headers=h).json()["regions"]}
    assert {"RegionOne", "North", "North-1", generated["id"]} <= ids

    resp = c.patch(f"{V3}/regions/North-1", json={"region": {"description": "x"}}, headers=h)
    assert resp.status_code == 200 and resp.json()["region"]["description"] == "x"
    resp = c.patch(f"{V3}/regions/North", json={"region": {"parent_region_id": "North"}}, headers=h)
    assert_error(resp, 400)

    # A parent with children cannot go first.
    assert_error(c.delete(f"{V3}/regions/North", headers=h), 409)
    assert c.delete(f"{V3}/regions/North-1", headers=h).status_code == 204
    assert c.delete(f"{V3}/regions/North", headers=h).status_code == 204
    assert_error(c.get(f"{V3}/regions/North", headers=h), 404)


def test_token_catalog_shows_enabled_endpoints_only(cloud):
    c, h = cloud.client, cloud.admin
    svc = cloud.create("services", "service", {"type": "key-manager", "name": "barbican"})
    ep = cloud.create(
        "endpoints",
        "endpoint",
        {"service_id": svc["id"], "interface": "public", "url": "http://kms.test:9311"},
    )
    token = cloud.admin_token
    assert _catalog_urls(cloud, token)["key-manager"] == ["http://kms.test:9311"]
    issued = cloud.client.get(f"{V3}/auth/tokens", headers={**h, "X-Subject-Token": token})
    catalog = {s["type"]: s for s in issued.json()["token"]["catalog"]}
    assert catalog["key-manager"]["endpoints"][0]["id"] == ep["id"]
    assert catalog["key-manager"]["name"] == "barbican"

    # A disabled endpoint leaves the catalog; a disabled service takes the whole entry away.
    c.patch(f"{V3}/endpoints/{ep['id']}", json={"endpoint": {"enabled": False}}, headers=h)
    assert _catalog_urls(cloud, token)["key-manager"] == []
    c.patch(f"{V3}/endpoints/{ep['id']}", json={"endpoint": {"enabled": True}}, headers=h)
    assert _catalog_urls(cloud, token)["key-manager"] == ["http://kms.test:9311"]
    c.patch(f"{V3}/services/{svc['id']}", json={"service": {"enabled": False}}, headers=h)
    assert "key-manager" not in _catalog_urls(cloud, token)

    # A disabled endpoint created as such never appears.
    svc2 = cloud.create("services", "service", {"type": "alarming", "name": "aodh"})
    cloud.create(
        "endpoints",
        "endpoint",
        {
            "service_id": svc2["id"],
            "interface": "public",
            "url": "http://aodh.test",
            "enabled": False,
        },
    )
    assert _catalog_urls(cloud, token)["alarming"] == []


def test_project_id_is_filled_in_catalog_urls(cloud):
    svc = cloud.create("services", "service", {"type": "share", "name": "manila"})
    cloud.create(
        "endpoints",
        "endpoint",
        {"service_id": svc["id"], "interface": "public", "url": "http://s.test/v2/$(project_id)s"},
    )
    urls = _catalog_urls(cloud, cloud.admin_token)["share"]
    assert urls == [f"http://s.test/v2/{cloud.boot.admin_project_id}"]


def test_member_cannot_change_the_catalog(cloud):
    c = cloud.client
    _, token = cloud.member("m", cloud.boot.demo_project_id)
    mh = cloud.h(token)
    body = {"service": {"type": "evil", "name": "evil"}}
    assert_error(c.post(f"{V3}/services", json=body, headers=mh), 403)
    assert_error(c.put(f"{V3}/regions/Evil", json={"region": {}}, headers=mh), 403)
    identity = c.get(f"{V3}/services?type=identity", headers=mh).json()["services"][0]
    assert_error(c.delete(f"{V3}/services/{identity['id']}", headers=mh), 403)
    ep = {"service_id": identity["id"], "interface": "public", "url": "http://evil.test"}
    assert_error(c.post(f"{V3}/endpoints", json={"endpoint": ep}, headers=mh), 403)
    # Reading is allowed.
    assert c.get(f"{V3}/endpoints", headers=mh).status_code == 200
    assert c.get(f"{V3}/regions", headers=mh).status_code == 200


# Credentials and policies ----------------------------------------------------------------


def test_ec2_credential_id_is_hash_of_access_key(cloud):
    c, h = cloud.client, cloud.admin
    blob = json.dumps({"access": "AKIA-test", "secret": "s3cr3t"})
    body = {
        "user_id": cloud.boot.admin_user_id,
        "project_id": cloud.boot.admin_project_id,
        "type": "ec2",
        "blob": blob,
    }
    cred = cloud.create("credentials", "credential", body)
    assert cred["id"] == hashlib.sha256(b"AKIA-test").hexdigest()
    assert cred["blob"] == blob
    assert json.loads(cred["blob"]) == {"access": "AKIA-test", "secret": "s3cr3t"}
    assert cred["type"] == "ec2"
    assert cred["links"]["self"].endswith(f"/credentials/{cred['id']}")

    got = c.get(f"{V3}/credentials/{cred['id']}", headers=h).json()["credential"]
    assert got == cred
    # The same access key again is a conflict.
    assert_error(c.post(f"{V3}/credentials", json={"credential": body}, headers=h), 409)
    # ec2 needs a project and a JSON blob.
    no_project = {**body, "blob": json.dumps({"access": "other"})}
    del no_project["project_id"]
    assert_error(c.post(f"{V3}/credentials", json={"credential": no_project}, headers=h), 400)
    not_json = {**body, "blob": "not json"}
    assert_error(c.post(f"{V3}/credentials", json={"credential": not_json}, headers=h), 400)

    new_blob = json.dumps({"access": "AKIA-test", "secret": "rotated"})
    resp = c.patch(
        f"{V3}/credentials/{cred['id']}", json={"credential": {"blob": new_blob}}, headers=h
    )
    assert resp.status_code == 200
    assert resp.json()["credential"]["blob"] == new_blob
    assert c.delete(f"{V3}/credentials/{cred['id']}", headers=h).status_code == 204
    assert_error(c.get(f"{V3}/credentials/{cred['id']}", headers=h), 404)


def test_credentials_are_private_to_their_owner(cloud):
    c, h = cloud.client, cloud.admin
    project = cloud.boot.demo_project_id
    alice, alice_token = cloud.member("alice", project)
    bob, bob_token = cloud.member("bob", project)
    ah, bh = cloud.h(alice_token), cloud.h(bob_token)

    blob = json.dumps({"secret": "totp-seed", "extra": [1, 2]})
    resp = c.post(
        f"{V3}/credentials",
        json={"credential": {"user_id": alice["id"], "type": "totp", "blob": blob}},
        headers=ah,
    )
    assert resp.status_code == 201, resp.text
    mine = resp.json()["credential"]
    assert mine["user_id"] == alice["id"] and mine["blob"] == blob
    # An id is generated for non-ec2 credentials.
    assert mine["id"] != hashlib.sha256(b"").hexdigest()

    assert c.get(f"{V3}/credentials/{mine['id']}", headers=ah).json()["credential"] == mine
    listed = c.get(f"{V3}/credentials", headers=ah).json()["credentials"]
    assert [x["id"] for x in listed] == [mine["id"]]

    # Bob may not see, change or delete it, nor create one in Alice's name.
    assert_error(c.get(f"{V3}/credentials/{mine['id']}", headers=bh), 403)
    resp = c.patch(f"{V3}/credentials/{mine['id']}", json={"credential": {"blob": "x"}}, headers=bh)
    assert_error(resp, 403)
    assert_error(c.delete(f"{V3}/credentials/{mine['id']}", headers=bh), 403)
    assert_error(c.get(f"{V3}/credentials?user_id={alice['id']}", headers=bh), 403)
    forged = {"user_id": alice["id"], "type": "totp", "blob": "x"}
    assert_error(c.post(f"{V3}/credentials", json={"credential": forged}, headers=bh), 403)
    assert c.get(f"{V3}/credentials", headers=bh).json()["credentials"] == []
    # Nor may Alice hand her credential over to Bob (Keystone's CVE-2020-12691).
    resp = c.patch(
        f"{V3}/credentials/{mine['id']}", json={"credential": {"user_id": bob["id"]}}, headers=ah
    )
    assert_error(resp, 403)
    assert c.get(f"{V3}/credentials/{mine['id']}", headers=ah).json()["credential"] == mine
    # Keeping herself as the owner is fine.
    resp = c.patch(
        f"{V3}/credentials/{mine['id']}", json={"credential": {"user_id": alice["id"]}}, headers=ah
    )
    assert resp.status_code == 200, resp.text

    # Bob's own credential; the admin sees both.
    resp = c.post(
        f"{V3}/credentials",
        json={"credential": {"user_id": bob["id"], "type": "cert", "blob": "pem"}},
        headers=bh,
    )
    assert resp.status_code == 201
    theirs = resp.json()["credential"]
    all_ids = {x["id"] for x in c.get(f"{V3}/credentials", headers=h).json()["credentials"]}
    assert {mine["id"], theirs["id"]} <= all_ids
    only_alice = c.get(f"{V3}/credentials?user_id={alice['id']}", headers=h).json()["credentials"]
    assert [x["id"] for x in only_alice] == [mine["id"]]
    certs = c.get(f"{V3}/credentials?type=cert", headers=h).json()["credentials"]
    assert [x["id"] for x in certs] == [theirs["id"]]

    assert c.delete(f"{V3}/credentials/{mine['id']}", headers=ah).status_code == 204


def test_policies_crud_is_admin_only(cloud):
    c, h = cloud.client, cloud.admin
    policy = cloud.create(
        "policies", "policy", {"type": "application/json", "blob": '{"a": "b"}', "note": "n"}
    )
    assert policy["blob"] == '{"a": "b"}' and policy["note"] == "n"
    assert policy["links"]["self"].endswith(f"/policies/{policy['id']}")
    assert c.get(f"{V3}/policies/{policy['id']}", headers=h).json()["policy"] == policy
    assert [p["id"] for p in c.get(f"{V3}/policies", headers=h).json()["policies"]] == [
        policy["id"]
    ]
    resp = c.patch(f"{V3}/policies/{policy['id']}", json={"policy": {"blob": "{}"}}, headers=h)
    assert resp.status_code == 200 and resp.json()["policy"]["blob"] == "{}"
    assert_error(c.post(f"{V3}/policies", json={"policy": {"type": "t"}}, headers=h), 400)

    _, token = cloud.member("pm", cloud.boot.demo_project_id)
    mh = cloud.h(token)
    assert_error(c.get(f"{V3}/policies", headers=mh), 403)
    assert_error(c.get(f"{V3}/policies/{policy['id']}", headers=mh), 403)
    body = {"policy": {"type": "t", "blob": "b"}}
    assert_error(c.post(f"{V3}/policies", json=body, headers=mh), 403)
    assert_error(c.delete(f"{V3}/policies/{policy['id']}", headers=mh), 403)

    assert c.delete(f"{V3}/policies/{policy['id']}", headers=h).status_code == 204
    assert_error(c.get(f"{V3}/policies/{policy['id']}", headers=h), 404)


# Trusts ------------------------------------------------------------------------------------


def test_trust_lifecycle(cloud):
    c, h = cloud.client, cloud.admin
    project = cloud.boot.demo_project_id
    trustor, trustor_token = cloud.member("trustor", project)
    trustee, trustee_token = cloud.member("trustee", project, role="reader")
    _, stranger_token = cloud.member("stranger", project)
    th, eh, sh = cloud.h(trustor_token), cloud.h(trustee_token), cloud.h(stranger_token)
    member_id = cloud.role_ids["member"]

    body = {
        "trust": {
            "trustor_user_id": trustor["id"],
            "trustee_user_id": trustee["id"],
            "project_id": project,
            "impersonation": False,
            "roles": [{"name": "member"}],
        }
    }
    resp = c.post(f"{V3}/OS-TRUST/trusts", json=body, headers=th)
    assert resp.status_code == 201, resp.text
    trust = resp.json()["trust"]
    assert trust["trustor_user_id"] == trustor["id"]
    assert trust["trustee_user_id"] == trustee["id"]
    assert trust["project_id"] == project
    assert trust["impersonation"] is False
    assert trust["remaining_uses"] is None and trust["expires_at"] is None
    assert trust["roles"] == [{"id": member_id, "name": "member"}]
    assert trust["links"]["self"].endswith(f"/OS-TRUST/trusts/{trust['id']}")

    # The trustor holds reader through member's implication; it can delegate it by id.
    reader = {"id": cloud.role_ids["reader"]}
    by_id = {"trust": {**body["trust"], "roles": [reader], "impersonation": True}}
    resp = c.post(f"{V3}/OS-TRUST/trusts", json=by_id, headers=th)
    assert resp.status_code == 201, resp.text
    second = resp.json()["trust"]
    assert [r["name"] for r in second["roles"]] == ["reader"]
    assert second["impersonation"] is True

    # Listing: the admin sees all, the trustee its own, a stranger none.
    admin_ids = {t["id"] for t in c.get(f"{V3}/OS-TRUST/trusts", headers=h).json()["trusts"]}
    assert admin_ids == {trust["id"], second["id"]}
    listed = c.get(f"{V3}/OS-TRUST/trusts?trustee_user_id={trustee['id']}", headers=eh).json()[
        "trusts"
    ]
    assert {t["id"] for t in listed} == {trust["id"], second["id"]}
    assert c.get(f"{V3}/OS-TRUST/trusts", headers=sh).json()["trusts"] == []
    assert_error(c.get(f"{V3}/OS-TRUST/trusts?trustor_user_id={trustor['id']}", headers=sh), 403)

    # Reading one trust and its roles.
    path = f"{V3}/OS-TRUST/trusts/{trust['id']}"
    assert c.get(path, headers=eh).json()["trust"]["id"] == trust["id"]
    assert c.get(path, headers=th).status_code == 200
    assert c.get(path, headers=h).status_code == 200
    assert_error(c.get(path, headers=sh), 404)
    roles = c.get(f"{path}/roles", headers=eh).json()["roles"]
    assert [r["id"] for r in roles] == [member_id]
    resp = c.get(f"{path}/roles/{member_id}", headers=eh)
    assert resp.status_code == 200 and resp.json()["role"]["id"] == member_id
    assert c.head(f"{path}/roles/{member_id}", headers=eh).status_code == 200
    assert_error(c.get(f"{path}/roles/{cloud.role_ids['reader']}", headers=eh), 404)
    assert_error(c.get(f"{path}/roles/{member_id}", headers=sh), 404)

    # Only the trustor (or an admin) deletes.
    assert_error(c.delete(path, headers=eh), 403)
    assert_error(c.delete(path, headers=sh), 404)
    assert c.delete(path, headers=th).status_code == 204
    assert_error(c.get(path, headers=th), 404)
    assert c.delete(f"{V3}/OS-TRUST/trusts/{second['id']}", headers=h).status_code == 204
    assert c.get(f"{V3}/OS-TRUST/trusts", headers=h).json()["trusts"] == []


def test_trust_creation_is_limited_to_the_trustor_and_its_roles(cloud):
    c = cloud.client
    project = cloud.boot.demo_project_id
    trustor, trustor_token = cloud.member("trustor", project)
    trustee, trustee_token = cloud.member("trustee", project)
    th = cloud.h(trustor_token)

    def body(**over):
        trust = {
            "trustor_user_id": trustor["id"],
            "trustee_user_id": trustee["id"],
            "project_id": project,
            "roles": [{"name": "member"}],
        }
        trust.update(over)
        return {"trust": trust}

    # A role the trustor does not hold.
    resp = c.post(f"{V3}/OS-TRUST/trusts", json=body(roles=[{"name": "admin"}]), headers=th)
    assert_error(resp, 403)
    resp = c.post(
        f"{V3}/OS-TRUST/trusts", json=body(roles=[{"id": cloud.role_ids["admin"]}]), headers=th
    )
    assert_error(resp, 403)
    # A project where the trustor holds nothing.
    other = cloud.project("other")
    resp = c.post(f"{V3}/OS-TRUST/trusts", json=body(project_id=other["id"]), headers=th)
    assert_error(resp, 403)
    # Someone else creating a trust in the trustor's name, even the admin.
    resp = c.post(f"{V3}/OS-TRUST/trusts", json=body(), headers=cloud.h(trustee_token))
    assert_error(resp, 403)
    assert_error(c.post(f"{V3}/OS-TRUST/trusts", json=body(), headers=cloud.admin), 403)
    # Bad input.
    assert_error(c.post(f"{V3}/OS-TRUST/trusts", json=body(roles=[]), headers=th), 400)
    assert_error(c.post(f"{V3}/OS-TRUST/trusts", json=body(remaining_uses=0), headers=th), 400)
    resp = c.post(f"{V3}/OS-TRUST/trusts", json=body(trustee_user_id="nobody"), headers=th)
    assert_error(resp, 404)
    assert c.get(f"{V3}/OS-TRUST/trusts", headers=cloud.admin).json()["trusts"] == []


# Project tags ------------------------------------------------------------------------------


def test_project_tags(cloud):
    c, h = cloud.client, cloud.admin
    project = cloud.project("tagged")
    base = f"{V3}/projects/{project['id']}/tags"

    assert c.get(base, headers=h).json() == {"tags": []}
    assert c.put(f"{base}/blue", headers=h).status_code == 201
    assert c.put(f"{base}/green", headers=h).status_code == 201
    assert c.put(f"{base}/blue", headers=h).status_code == 201  # idempotent
    assert c.get(base, headers=h).json() == {"tags": ["blue", "green"]}
    assert c.get(f"{V3}/projects/{project['id']}", headers=h).json()["project"]["tags"] == [
        "blue",
        "green",
    ]

    resp = c.head(f"{base}/blue", headers=h)
    assert resp.status_code == 204 and resp.content == b""
    assert c.head(f"{base}/red", headers=h).status_code == 404
    assert c.get(f"{base}/blue", headers=h).status_code == 204
    assert_error(c.get(f"{base}/red", headers=h), 404)

    resp = c.put(base, json={"tags": ["x", "y", "x"]}, headers=h)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"tags": ["x", "y"]}
    assert c.get(base, headers=h).json() == {"tags": ["x", "y"]}
    tagged = c.get(f"{V3}/projects?tags=x", headers=h).json()["projects"]
    assert [p["id"] for p in tagged] == [project["id"]]

    assert c.delete(f"{base}/x", headers=h).status_code == 204
    assert c.get(base, headers=h).json() == {"tags": ["y"]}
    assert_error(c.delete(f"{base}/x", headers=h), 404)

    assert c.delete(base, headers=h).status_code == 204
    assert c.get(base, headers=h).json() == {"tags": []}

    # Invalid tags.
    assert_error(c.put(f"{base}/a,b", headers=h), 400)
    assert_error(c.put(base, json={"tags": ["ok", "a/b"]}, headers=h), 400)
    assert_error(c.put(base, json={"tags": ["a,b"]}, headers=h), 400)
    assert_error(c.put(base, json={"tags": "notalist"}, headers=h), 400)
    assert_error(c.put(base, json={"tags": ["x" * 256]}, headers=h), 400)
    assert_error(c.put(base, json={"tags": [f"t{i}" for i in range(81)]}, headers=h), 400)
    assert c.get(base, headers=h).json() == {"tags": []}

    # Unknown project.
    assert_error(c.get(f"{V3}/projects/nope/tags", headers=h), 404)
    assert_error(c.put(f"{V3}/projects/nope/tags/t", headers=h), 404)


def test_project_tags_policy(cloud):
    c = cloud.client
    project = cloud.boot.demo_project_id
    _, token = cloud.member("tagger", project)
    mh = cloud.h(token)
    base = f"{V3}/projects/{project}/tags"
    assert c.put(f"{base}/t", headers=cloud.admin).status_code == 201
    # Members read their project's tags but do not change them.
    assert c.get(base, headers=mh).json() == {"tags": ["t"]}
    assert c.head(f"{base}/t", headers=mh).status_code == 204
    assert_error(c.put(f"{base}/u", headers=mh), 403)
    assert_error(c.delete(base, headers=mh), 403)
    assert_error(c.get(f"{V3}/projects/{cloud.boot.admin_project_id}/tags", headers=mh), 403)
