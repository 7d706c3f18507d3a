"""Key pairs through the compute API: generate (private key once), import, per-user
isolation, Nova's errors and the key_pairs quota, on every database backend."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from kumo.db import models as m

KEYPAIRS = "/compute/v2.1/os-keypairs"
PUBLIC = (
    ed25519.Ed25519PrivateKey.generate()
    .public_key()
    .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    .decode()
    + " kumo@test"
)


def _v(version: str) -> dict[str, str]:
    return {"X-OpenStack-Nova-API-Version": version}


def test_generate_import_show_list_delete(cloud: Any) -> None:
    h = {**cloud.admin, **_v("2.10")}
    made = cloud.client.post(KEYPAIRS, json={"keypair": {"name": "gen"}}, headers=h)
    assert made.status_code == 201, made.text
    pair = made.json()["keypair"]
    assert pair["private_key"].startswith("-----BEGIN")
    assert pair["public_key"].startswith("ssh-rsa ")
    shown = cloud.client.get(f"{KEYPAIRS}/gen", headers=h).json()["keypair"]
    assert "private_key" not in shown  # returned once, never again
    assert shown["fingerprint"] == pair["fingerprint"]
    imported = cloud.client.post(
        KEYPAIRS, json={"keypair": {"name": "imp", "public_key": PUBLIC}}, headers=h
    )
    assert imported.status_code == 201, imported.text
    assert "private_key" not in imported.json()["keypair"]
    names = {k["keypair"]["name"] for k in cloud.client.get(KEYPAIRS, headers=h).json()["keypairs"]}
    assert names == {"gen", "imp"}
    assert cloud.client.delete(f"{KEYPAIRS}/gen", headers=h).status_code == 204
    assert cloud.client.get(f"{KEYPAIRS}/gen", headers=h).status_code == 404
    # Before 2.2: 200 on create and 202 on delete, as Nova answers.
    old = cloud.client.post(KEYPAIRS, json={"keypair": {"name": "old"}}, headers=cloud.admin)
    assert old.status_code == 200, old.text
    assert cloud.client.delete(f"{KEYPAIRS}/old", headers=cloud.admin).status_code == 202


def test_bad_input_and_duplicates(cloud: Any) -> None:
    h = cloud.admin
    first = cloud.client.post(
        KEYPAIRS, json={"keypair": {"name": "dup", "public_key": PUBLIC}}, headers=h
    )
    assert first.status_code == 200, first.text
    again = cloud.client.post(
        KEYPAIRS, json={"keypair": {"name": "dup", "public_key": PUBLIC}}, headers=h
    )
    assert again.status_code == 409
    assert again.json()["conflictingRequest"]["message"] == "Key pair 'dup' already exists."
    for body in (
        {"keypair": {"name": ""}},
        {"keypair": {"name": "x" * 256}},
        {"keypair": {"name": "bad/name"}},
        {"keypair": {"name": "k", "public_key": ""}},
        {"keypair": {"name": "k", "public_key": 5}},
        {"keypair": {"name": "k", "public_key": "ssh-rsa JUNK nova@ubuntu"}},
        {"keypair": {"name": "k", "public_key": "ssh-rsa " + "A" * 2048 + " x@y"}},
        {"keypair": None},
        {},
    ):
        resp = cloud.client.post(KEYPAIRS, json=body, headers=h)
        assert resp.status_code == 400, (body, resp.text)
        assert resp.json()["badRequest"]["code"] == 400


def test_users_see_only_their_own_key_pairs(cloud: Any) -> None:
    a, b = cloud.project("kp-a"), cloud.project("kp-b")
    _, token_a = cloud.member("kp-ua", a["id"])
    _, token_b = cloud.member("kp-ub", b["id"])
    made = cloud.client.post(
        KEYPAIRS, json={"keypair": {"name": "mine", "public_key": PUBLIC}}, headers=cloud.h(token_a)
    )
    assert made.status_code == 200, made.text
    other = cloud.h(token_b)
    assert cloud.client.get(f"{KEYPAIRS}/mine", headers=other).status_code == 404
    assert cloud.client.delete(f"{KEYPAIRS}/mine", headers=other).status_code == 404
    assert cloud.client.get(KEYPAIRS, headers=other).json()["keypairs"] == []
    # The same name is free for another user.
    theirs = cloud.client.post(
        KEYPAIRS, json={"keypair": {"name": "mine", "public_key": PUBLIC}}, headers=other
    )
    assert theirs.status_code == 200, theirs.text
    assert cloud.client.get(f"{KEYPAIRS}/mine", headers=cloud.h(token_a)).status_code == 200


def test_key_pair_quota_is_per_user(cloud: Any) -> None:
    project = cloud.project("kp-q")
    _, token_1 = cloud.member("kp-q1", project["id"])
    _, token_2 = cloud.member("kp-q2", project["id"])
    with cloud.db.session() as session:
        session.add(m.QuotaLimit(project_id=project["id"], resource="key_pairs", hard_limit=2))
    for name in ("k1", "k2"):
        resp = cloud.client.post(
            KEYPAIRS,
            json={"keypair": {"name": name, "public_key": PUBLIC}},
            headers=cloud.h(token_1),
        )
        assert resp.status_code == 200, resp.text
    over = cloud.client.post(
        KEYPAIRS, json={"keypair": {"name": "k3", "public_key": PUBLIC}}, headers=cloud.h(token_1)
    )
    assert over.status_code == 403
    assert over.json()["forbidden"]["message"] == "Quota exceeded, too many key pairs."
    assert cloud.client.get(f"{KEYPAIRS}/k3", headers=cloud.h(token_1)).status_code == 404
    # Another user of the same project has a quota of their own.
    resp = cloud.client.post(
        KEYPAIRS, json={"keypair": {"name": "k1", "public_key": PUBLIC}}, headers=cloud.h(token_2)
    )
    assert resp.status_code == 200, resp.text


def test_x509_key_pairs_are_generated_and_imported(cloud: Any) -> None:
    h = {**cloud.admin, **_v("2.2")}
    made = cloud.client.post(KEYPAIRS, json={"keypair": {"name": "x", "type": "x509"}}, headers=h)
    assert made.status_code == 201, made.text
    pair = made.json()["keypair"]
    assert pair["type"] == "x509"
    assert pair["public_key"].startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" in pair["private_key"]
    assert len(pair["fingerprint"].split(":")) == 20  # SHA-1, as Nova shows it
    again = cloud.client.post(
        KEYPAIRS,
        json={"keypair": {"name": "x2", "type": "x509", "public_key": pair["public_key"]}},
        headers=h,
    )
    assert again.status_code == 201, again.text
    assert again.json()["keypair"]["fingerprint"] == pair["fingerprint"]
    junk = cloud.client.post(
        KEYPAIRS,
        json={"keypair": {"name": "x3", "type": "x509", "public_key": "not a certificate"}},
        headers=h,
    )
    assert junk.status_code == 400


def test_public_key_is_returned_as_uploaded(cloud: Any) -> None:
    """Nova stores an imported key as given: clients such as Ansible's keypair module
    compare the key they read from a file (with its trailing newline) with what GET
    returns, so a key that comes back changed reads as a different key on the next run."""
    h = {**cloud.admin, **_v("2.2")}
    uploaded = PUBLIC + "\n"
    made = cloud.client.post(
        KEYPAIRS, json={"keypair": {"name": "nl", "public_key": uploaded}}, headers=h
    )
    assert made.status_code == 201, made.text
    assert made.json()["keypair"]["public_key"] == uploaded
    shown = cloud.client.get(f"{KEYPAIRS}/nl", headers=h).json()["keypair"]
    assert shown["public_key"] == uploaded
    listed = cloud.client.get(KEYPAIRS, headers=h).json()["keypairs"]
    assert [k["keypair"]["public_key"] for k in listed] == [uploaded]
    # The newline is not part of the key: the fingerprint is the bare key's.
    bare = cloud.client.post(
        KEYPAIRS, json={"keypair": {"name": "bare", "public_key": PUBLIC}}, headers=h
    )
    assert bare.json()["keypair"]["public_key"] == PUBLIC
    assert bare.json()["keypair"]["fingerprint"] == shown["fingerprint"]
    # Generated keys look as Nova makes them: one line, no newline, the Nova comment.
    made = cloud.client.post(KEYPAIRS, json={"keypair": {"name": "gen"}}, headers=h).json()
    public = made["keypair"]["public_key"]
    assert public.startswith("ssh-rsa ") and public.endswith(" Generated-by-Nova")
    assert "\n" not in public
    assert made["keypair"]["private_key"].endswith("-----END RSA PRIVATE KEY-----\n")
    assert cloud.client.get(f"{KEYPAIRS}/gen", headers=h).json()["keypair"]["public_key"] == public
    # A generated x509 certificate keeps its PEM form, final newline included.
    made = cloud.client.post(KEYPAIRS, json={"keypair": {"name": "x", "type": "x509"}}, headers=h)
    cert = made.json()["keypair"]["public_key"]
    assert cert.endswith("-----END CERTIFICATE-----\n")
    assert cloud.client.get(f"{KEYPAIRS}/x", headers=h).json()["keypair"]["public_key"] == cert
