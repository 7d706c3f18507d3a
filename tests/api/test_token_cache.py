"""The validated-token cache (kumo.core.identity.cache), trusted only at the identity revision
it was filled at (kumo.db.revision): every identity change must reach a warm cache at once,
on this API copy and on any other one sharing the database."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import pytest

from kumo.core.identity import auth
from kumo.core.identity.cache import TokenCache
from kumo.core.identity.tokens import TokenPayload, new_audit_id
from kumo.db import revision
from kumo.db.types import utcnow

from apihelpers import assert_error, make_client

V3 = "/identity/v3"


@pytest.fixture
def validations(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each token was validated for real (a cache miss), by token string."""
    calls: Counter[str] = Counter()
    real = auth._validate

    def counting(session, codec, token):
        calls[token] += 1
        return real(session, codec, token)

    monkeypatch.setattr(auth, "_validate", counting)
    return calls


def _check(client, admin_token: str, subject: str):
    return client.get(
        f"{V3}/auth/tokens", headers={"X-Auth-Token": admin_token, "X-Subject-Token": subject}
    )


def _own(client, token: str):
    """The token used as the caller's own credential on an endpoint any user may call."""
    return client.get(f"{V3}/auth/projects", headers={"X-Auth-Token": token})


def _warm(cloud, client, token: str, validations: Counter[str]) -> None:
    """Validate ``token`` twice through ``client``: the second time must be a cache hit."""
    admin = cloud.admin_token
    assert _check(client, admin, token).status_code == 200
    before = validations[token]
    assert _check(client, admin, token).status_code == 200
    assert _own(client, token).status_code == 200
    assert validations[token] == before, "a warm cache should not validate the token again"


def test_cache_answers_repeated_validations(cloud, validations):
    _, token = cloud.member("cached", cloud.boot.demo_project_id)
    assert _check(cloud.client, cloud.admin_token, token).status_code == 200
    first = validations[token]
    assert first >= 1
    for _ in range(3):
        assert _check(cloud.client, cloud.admin_token, token).status_code == 200
    assert validations[token] == first
    # An unrelated identity write changes the revision: the next validation is a miss.
    cloud.project("unrelated")
    assert _check(cloud.client, cloud.admin_token, token).status_code == 200
    assert validations[token] == first + 1


def test_disabling_the_user_reaches_a_warm_cache(cloud, validations):
    c = cloud.client
    user, token = cloud.member("soon-disabled", cloud.boot.demo_project_id)
    _warm(cloud, c, token, validations)

    resp = c.patch(
        f"{V3}/users/{user['id']}", json={"user": {"enabled": False}}, headers=cloud.admin
    )
    assert resp.status_code == 200, resp.text
    assert_error(_own(c, token), 401)
    assert_error(_check(c, cloud.admin_token, token), 404)
    head = c.head(f"{V3}/auth/tokens", headers={**cloud.admin, "X-Subject-Token": token})
    assert head.status_code == 404


def test_revoking_the_role_reaches_a_warm_cache(cloud, validations):
    c = cloud.client
    project = cloud.boot.demo_project_id
    user, token = cloud.member("soon-roleless", project)
    _warm(cloud, c, token, validations)

    path = f"{V3}/projects/{project}/users/{user['id']}/roles/{cloud.role_ids['member']}"
    assert c.delete(path, headers=cloud.admin).status_code == 204
    assert_error(_own(c, token), 401)
    assert_error(_check(c, cloud.admin_token, token), 404)


def test_changing_implied_roles_reaches_a_warm_cache(cloud, validations):
    c, h = cloud.client, cloud.admin
    _, token = cloud.member("implied", cloud.boot.demo_project_id)
    _warm(cloud, c, token, validations)
    ids = cloud.role_ids
    rule = f"{V3}/roles/{ids['member']}/implies/{ids['reader']}"
    assert c.delete(rule, headers=h).status_code == 204
    roles = {r["name"] for r in _check(c, cloud.admin_token, token).json()["token"]["roles"]}
    assert roles == {"member"}
    assert c.put(rule, headers=h).status_code == 201
    roles = {r["name"] for r in _check(c, cloud.admin_token, token).json()["token"]["roles"]}
    assert roles == {"member", "reader"}


def test_disabling_the_project_reaches_a_warm_cache(cloud, validations):
    c = cloud.client
    project = cloud.project("soon-disabled-project")
    _, token = cloud.member("in-project", project["id"])
    _warm(cloud, c, token, validations)
    resp = c.patch(
        f"{V3}/projects/{project['id']}", json={"project": {"enabled": False}}, headers=cloud.admin
    )
    assert resp.status_code == 200
    assert_error(_own(c, token), 401)
    assert_error(_check(c, cloud.admin_token, token), 404)


def test_leaving_the_group_reaches_a_warm_cache(cloud, validations):
    c, h = cloud.client, cloud.admin
    project = cloud.project("group-project")
    group = cloud.create("groups", "group", {"name": "devs"})
    user = cloud.user("grouped", "pw-grouped")
    assert c.put(f"{V3}/groups/{group['id']}/users/{user['id']}", headers=h).status_code == 204
    grant = f"{V3}/projects/{project['id']}/groups/{group['id']}/roles/{cloud.role_ids['member']}"
    assert c.put(grant, headers=h).status_code == 204
    token = cloud.token({"id": user["id"]}, "pw-grouped", project_id=project["id"])
    _warm(cloud, c, token, validations)

    assert c.delete(f"{V3}/groups/{group['id']}/users/{user['id']}", headers=h).status_code == 204
    assert_error(_own(c, token), 401)
    assert_error(_check(c, cloud.admin_token, token), 404)


def test_explicit_revocation_reaches_a_warm_cache(cloud, validations):
    c = cloud.client
    _, token = cloud.member("revoked", cloud.boot.demo_project_id)
    _warm(cloud, c, token, validations)
    resp = c.delete(f"{V3}/auth/tokens", headers={"X-Auth-Token": token, "X-Subject-Token": token})
    assert resp.status_code == 204
    assert_error(_own(c, token), 401)
    assert_error(_check(c, cloud.admin_token, token), 404)


def test_second_api_copy_sees_revocation_at_once(cloud, validations):
    project = cloud.boot.demo_project_id
    user, token = cloud.member("two-copies", project)
    with make_client(cloud.config, cloud.db) as other:
        assert other.app.state.kumo.token_cache is not cloud.client.app.state.kumo.token_cache
        # Both copies hold the token in their own warm cache.
        _warm(cloud, cloud.client, token, validations)
        _warm(cloud, other, token, validations)

        path = f"{V3}/projects/{project}/users/{user['id']}/roles/{cloud.role_ids['member']}"
        assert cloud.client.delete(path, headers=cloud.admin).status_code == 204

        assert_error(_own(other, token), 401)
        assert_error(_check(other, cloud.admin_token, token), 404)
        assert_error(_own(cloud.client, token), 401)

        # And the other way round: a user disabled through the second copy.
        user2, token2 = cloud.member("two-copies-2", project)
        _warm(cloud, cloud.client, token2, validations)
        _warm(cloud, other, token2, validations)
        resp = other.patch(
            f"{V3}/users/{user2['id']}", json={"user": {"enabled": False}}, headers=cloud.admin
        )
        assert resp.status_code == 200
        assert_error(_own(cloud.client, token2), 401)
        assert_error(_check(cloud.client, cloud.admin_token, token2), 404)


def test_revision_changes_with_identity_writes_only(cloud):
    with cloud.db.session() as session:
        before = revision.current(session)
    assert before is not None  # bootstrap wrote identity rows
    # A catalog write is not an identity write.
    cloud.create("services", "service", {"type": "t", "name": "n"})
    with cloud.db.session() as session:
        assert revision.current(session) == before
    cloud.project("p")
    with cloud.db.session() as session:
        after = revision.current(session)
    assert after is not None and after != before


# TokenCache on its own -------------------------------------------------------------------


def _validated(user_id: str = "u") -> auth.ValidatedToken:
    now = utcnow()
    payload = TokenPayload(
        user_id=user_id,
        methods=["password"],
        issued_at=now,
        expires_at=now + dt.timedelta(hours=1),
        audit_ids=[new_audit_id()],
    )
    return auth.ValidatedToken(payload=payload, user=None, user_domain=None)  # type: ignore[arg-type]


def test_token_cache_is_keyed_by_revision():
    cache = TokenCache()
    value = _validated()
    cache.put("tok", "rev-1", value)
    assert cache.get("tok", "rev-1") is value
    assert cache.get("tok", "rev-2") is None
    assert cache.get("other", "rev-1") is None
    # Without a revision nothing is cached or answered.
    assert cache.get("tok", None) is None
    cache.put("tok2", None, value)
    assert cache.get("tok2", "rev-1") is None
    # A new entry at a newer revision replaces the stale one.
    newer = _validated()
    cache.put("tok", "rev-2", newer)
    assert cache.get("tok", "rev-2") is newer
    assert cache.get("tok", "rev-1") is None


def test_token_cache_is_lru_bounded():
    cache = TokenCache(max_entries=3)
    values = {name: _validated(name) for name in "abcd"}
    for name in "abc":
        cache.put(name, "r", values[name])
    assert cache.get("a", "r") is values["a"]  # a is now the most recently used
    cache.put("d", "r", values["d"])  # evicts b, the least recently used
    assert cache.get("b", "r") is None
    assert cache.get("a", "r") is values["a"]
    assert cache.get("c", "r") is values["c"]
    assert cache.get("d", "r") is values["d"]
    # Refreshing an existing key does not grow the cache.
    cache.put("a", "r", values["a"])
    assert [k for k in "abcd" if cache.get(k, "r") is not None] == ["a", "c", "d"]
