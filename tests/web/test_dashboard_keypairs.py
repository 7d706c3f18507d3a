"""The key pairs page, in process: Nova generates a key pair and its private key is handed
over once (never on a later page, never cached); import, delete, CSRF, Nova's words."""

from __future__ import annotations

import base64
import re
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from visitor import Visitor, form_csrf

PAGE = "/project/key-pairs"
KEYPAIRS = "/compute/v2.1/os-keypairs"
_DOWNLOAD = re.compile(r'href="data:application/x-pem-file;base64,([^"]+)" download="([^"]+)"')


def _public_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    raw = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return raw.decode() + " web@test"


def _nova_keys(cloud: Any, visitor: Visitor) -> dict[str, dict[str, Any]]:
    listed = cloud.client.get(KEYPAIRS, headers=cloud.h(visitor.session_token)).json()
    return {k["keypair"]["name"]: k["keypair"] for k in listed["keypairs"]}


def test_a_created_key_is_offered_once_and_never_again(admin_visitor: Visitor, cloud: Any) -> None:
    csrf = form_csrf(admin_visitor.http.get(PAGE).text)
    made = admin_visitor.http.post(PAGE, data={"name": "web-key", "csrf_token": csrf})
    assert made.status_code == 200, made.text
    assert made.headers["cache-control"] == "no-store"
    found = _DOWNLOAD.search(made.text)
    assert found, made.text
    private = base64.b64decode(found.group(1)).decode()
    assert found.group(2) == "web-key.pem"
    assert private.startswith("-----BEGIN") and "PRIVATE KEY" in private
    # The private key is the one of Nova's public key: derive it and compare.
    loaded = serialization.load_pem_private_key(private.encode(), password=None)
    derived = loaded.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    nova = _nova_keys(cloud, admin_visitor)["web-key"]
    assert nova["public_key"].startswith(derived.decode())
    # Listed with its fingerprint; the key's body is in no later page.
    page = admin_visitor.http.get(PAGE)
    assert nova["fingerprint"] in page.text
    assert found.group(1) not in page.text and "PRIVATE KEY" not in page.text
    assert "data:application/x-pem-file" not in page.text
    # Creating it again is Nova's 409, in Nova's words, in place; no key offered.
    again = admin_visitor.http.post(PAGE, data={"name": "web-key", "csrf_token": csrf})
    assert again.status_code == 409
    assert "Key pair &#39;web-key&#39; already exists." in again.text
    assert "data:application/x-pem-file" not in again.text


def test_import_and_delete(admin_visitor: Visitor, cloud: Any) -> None:
    csrf = form_csrf(admin_visitor.http.get(PAGE).text)
    public = _public_key()
    resp = admin_visitor.http.post(
        PAGE + "/import", data={"name": "laptop", "public_key": public, "csrf_token": csrf}
    )
    assert (resp.status_code, resp.headers["location"]) == (303, PAGE)
    nova = _nova_keys(cloud, admin_visitor)["laptop"]
    assert nova["public_key"] == public
    page = admin_visitor.http.get(PAGE).text
    assert '<tr id="keypair-laptop">' in page and nova["fingerprint"] in page
    assert 'aria-label="Confirm: delete key pair laptop"' in page
    resp = admin_visitor.http.post(PAGE + "/laptop/delete", data={"csrf_token": csrf})
    assert (resp.status_code, resp.headers["location"]) == (303, PAGE)
    assert "laptop" not in _nova_keys(cloud, admin_visitor)
    # Deleting it again: Nova's 404 words, in place.
    resp = admin_visitor.http.post(PAGE + "/laptop/delete", data={"csrf_token": csrf})
    assert resp.status_code == 404
    assert re.search(r'<p class="alert" role="alert">[^<]*laptop[^<]*</p>', resp.text), resp.text


def test_a_bad_public_key_is_novas_400_in_place_with_the_form_kept(
    admin_visitor: Visitor, cloud: Any
) -> None:
    csrf = form_csrf(admin_visitor.http.get(PAGE).text)
    resp = admin_visitor.http.post(
        PAGE + "/import", data={"name": "bad", "public_key": "not a key", "csrf_token": csrf}
    )
    assert resp.status_code == 400
    assert "Keypair data is invalid" in resp.text
    assert 'id="import-name" name="name" required maxlength="255" value="bad"' in resp.text
    assert ">not a key</textarea>" in resp.text
    assert "bad" not in _nova_keys(cloud, admin_visitor)


def test_key_pair_changes_need_the_csrf_token(admin_visitor: Visitor, cloud: Any) -> None:
    for path, data in (
        (PAGE, {"name": "sneaky"}),
        (PAGE + "/import", {"name": "sneaky", "public_key": _public_key()}),
    ):
        resp = admin_visitor.http.post(path, data=data)
        assert resp.status_code == 403 and "carries no CSRF token" in resp.text
    assert "sneaky" not in _nova_keys(cloud, admin_visitor)
    cloud.client.post(
        KEYPAIRS,
        json={"keypair": {"name": "kept", "public_key": _public_key()}},
        headers=cloud.h(admin_visitor.session_token),
    )
    resp = admin_visitor.http.post(PAGE + "/kept/delete", data={"csrf_token": "0" * 64})
    assert resp.status_code == 403
    assert "kept" in _nova_keys(cloud, admin_visitor)
