"""Fuzzing (issue 3, "Done when" 6; issue 5, "Done when" 3): never a 500 from the compute,
image, identity and block storage APIs.

1. schemathesis over the application's own OpenAPI document (/kumo/openapi.json), in
   process (ASGI), with an admin token: every operation of those APIs with generated path,
   query and header values; the only check is "not a server error".
2. The request bodies are free-form in that document (the handlers read raw JSON as
   OpenStack's schemas allow), so a hypothesis test also POSTs random JSON documents to the
   main create endpoints: never a 5xx, and every error in that service's own shape.

One SQLite database, bootstrapped once for the module (migrations, admin, default flavors, an
image). Examples are capped so that the module runs in about a minute.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from kumo.api.app import create_app
from kumo.config import load_config
from kumo.core import passwords
from kumo.core.bootstrap import bootstrap
from kumo.db import migrate
from kumo.db import models as m
from kumo.db.engine import Database

ADMIN_PASSWORD = "fuzz-admin-pw"
FUZZED = r"^/(compute|identity|image|volume)/"
SCHEMA_EXAMPLES = 12  # per operation: ~180 operations
BODY_EXAMPLES = 150  # per create endpoint


@dataclass
class Fuzzed:
    app: FastAPI
    client: TestClient
    token: str
    # Path parameter -> an id that exists, so that reads go past the 404 (only for GET and
    # HEAD: a fuzzed DELETE of the admin user would end the run).
    known: dict[str, str]

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Auth-Token": self.token}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    state = tmp_path_factory.mktemp("fuzz")
    config = load_config(
        overrides={"state_dir": str(state), "api": {"public_url": "http://kumo.test"}},
        environ={},
    )
    db = Database(config.database_url)
    migrate.upgrade(db)
    with pytest.MonkeyPatch.context() as mp:
        # Argon2 at minimal cost: the fuzzer creates users and issues tokens by the hundred.
        mp.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        with db.session() as session:
            boot = bootstrap(
                session, "admin", ADMIN_PASSWORD, "admin", "demo", config.public_url, "RegionOne"
            )
            image_id = str(uuid.uuid4())
            session.add(
                m.Image(
                    id=image_id, name="fuzz-img", owner=None, status="active",
                    visibility="public", disk_format="qcow2", container_format="bare",
                    size=1, properties={}, locations=[],
                )
            )  # fmt: skip
        app = create_app(config, db)
        with TestClient(app, raise_server_exceptions=False) as client:
            auth = {
                "auth": {
                    "identity": {
                        "methods": ["password"],
                        "password": {
                            "user": {
                                "name": "admin",
                                "domain": {"id": "default"},
                                "password": ADMIN_PASSWORD,
                            }
                        },
                    },
                    "scope": {"project": {"id": boot.admin_project_id}},
                }
            }
            resp = client.post("/identity/v3/auth/tokens", json=auth)
            assert resp.status_code == 201, resp.text
            token = resp.headers["X-Subject-Token"]
            headers = {"X-Auth-Token": token}
            user_id = resp.json()["token"]["user"]["id"]
            server = client.post(
                "/compute/v2.1/servers",
                json={"server": {"name": "fuzz-vm", "imageRef": image_id, "flavorRef": "1"}},
                headers=headers,
            )
            assert server.status_code == 202, server.text
            volume = client.post(
                "/volume/v3/volumes", json={"volume": {"size": 1}}, headers=headers
            )
            assert volume.status_code == 202, volume.text
            known = {
                "volume_id": volume.json()["volume"]["id"],
                "server_id": server.json()["server"]["id"],
                "image_id": image_id,
                "flavor_id": "1",
                "project_id": boot.admin_project_id,
                "user_id": user_id,
                "actor_id": user_id,
                "target_id": boot.admin_project_id,
                "domain_id": "default",
            }
            yield Fuzzed(app, client, token, known)
    db.dispose()


@pytest.fixture(scope="module")
def api_schema(fuzzed: Fuzzed) -> Any:
    return schemathesis.openapi.from_asgi("/kumo/openapi.json", fuzzed.app).include(
        path_regex=FUZZED
    )


def operation_labels() -> list[tuple[str, str]]:
    """(method, path) of every fuzzed operation, read from an app that is never served (its
    database is not even opened) so that each operation is a test of its own. (schemathesis'
    own pytest plugin, ``from_fixture``, does not work with this pytest.)"""
    config = load_config(overrides={"state_dir": "/nonexistent"}, environ={})
    spec = create_app(config, Database("sqlite:////nonexistent/kumo.db")).openapi()
    return [
        (method.upper(), path)
        for path, methods in spec["paths"].items()
        if re.match(FUZZED, path)
        for method in methods
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path"), operation_labels())
def test_openapi_operation_never_fails_with_5xx(
    method: str, path: str, api_schema: Any, fuzzed: Fuzzed
) -> None:
    operation = api_schema[path][method]
    use_known = [i % 2 == 0 for i in range(SCHEMA_EXAMPLES * 10)]  # every other example

    @settings(
        max_examples=SCHEMA_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=operation.as_strategy())
    def call(case: Any) -> None:
        # The token is not what is fuzzed: without it every operation only tests the 401.
        case.headers = {**(case.headers or {}), "X-Auth-Token": fuzzed.token}
        if method in ("GET", "HEAD") and case.path_parameters and use_known.pop(0):
            for name in case.path_parameters:
                if name in fuzzed.known:
                    case.path_parameters[name] = fuzzed.known[name]
        case.call_and_validate(checks=[not_a_server_error])

    call()


# --- random JSON bodies to the create endpoints ------------------------------------------
def json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**70), max_value=2**70)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=40)
        | st.sampled_from(["", " ", "1", "none", "auto", "m1.tiny", "True", "-1", "\u0000"])
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=12), children, max_size=5)
        ),
        max_leaves=20,
    )


# Each create endpoint with the key its body is wrapped in (OpenStack style) and the fields
# that matter, so that the random documents reach the handler's validation, not only the
# "missing key" branch.
CREATES: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "/compute/v2.1/servers": (
        "server",
        ("name", "imageRef", "flavorRef", "networks", "min_count", "max_count", "metadata",
         "user_data", "key_name", "availability_zone", "config_drive", "accessIPv4",
         "description", "block_device_mapping_v2", "security_groups"),
    ),
    "/compute/v2.1/flavors": (
        "flavor",
        ("name", "id", "ram", "vcpus", "disk", "OS-FLV-EXT-DATA:ephemeral", "swap",
         "rxtx_factor", "os-flavor-access:is_public", "description"),
    ),
    "/compute/v2.1/os-keypairs": ("keypair", ("name", "public_key", "type", "user_id")),
    "/identity/v3/users": (
        "user",
        ("name", "password", "domain_id", "default_project_id", "enabled", "email", "options"),
    ),
    "/identity/v3/projects": (
        "project",
        ("name", "domain_id", "parent_id", "is_domain", "enabled", "tags", "description"),
    ),
    "/volume/v3/volumes": (
        "volume",
        ("name", "size", "description", "snapshot_id", "source_volid", "imageRef",
         "volume_type", "metadata", "multiattach", "availability_zone"),
    ),
    "/volume/v3/snapshots": ("snapshot", ("volume_id", "force", "name", "metadata")),
    "/volume/v3/types": (
        "volume_type", ("name", "description", "is_public", "extra_specs"),
    ),
    "/volume/v3/os-volume-transfer": ("transfer", ("volume_id", "name")),
    "/image/v2/images": (
        None,
        ("name", "id", "disk_format", "container_format", "visibility", "protected", "tags",
         "min_disk", "min_ram", "kernel_id", "os_hidden"),
    ),
}  # fmt: skip


def bodies(wrapper: str | None, fields: tuple[str, ...]) -> st.SearchStrategy[Any]:
    known = st.dictionaries(st.sampled_from(fields), json_values(), max_size=len(fields))
    document = known | st.dictionaries(st.text(max_size=12), json_values(), max_size=4)
    wrapped = st.builds(lambda d: {wrapper: d}, document) if wrapper else document
    return wrapped | json_values()


def assert_error_shape(path: str, status: int, body: Any) -> None:
    """The error body each OpenStack service uses (kumo.api.errors)."""
    assert isinstance(body, dict), body
    if path.startswith("/image"):
        assert body.get("code", "").startswith(f"{status} "), body
        assert isinstance(body.get("message"), str) and body["message"], body
    elif path.startswith(("/compute", "/volume")):
        assert len(body) == 1, body
        (inner,) = body.values()
        assert inner.get("code") == status, body
        assert isinstance(inner.get("message"), str) and inner["message"], body
    else:
        error = body.get("error") or {}
        assert error.get("code") == status and error.get("title"), body
        assert isinstance(error.get("message"), str) and error["message"], body


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted(CREATES))
def test_random_json_bodies_to_create_endpoints(path: str, fuzzed: Fuzzed) -> None:
    wrapper, fields = CREATES[path]
    microversions = st.sampled_from([None, "2.1", "2.37", "latest", "3.0", "bogus"])

    @settings(
        max_examples=BODY_EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(body=bodies(wrapper, fields), version=microversions, raw=st.booleans())
    def post(body: Any, version: str | None, raw: bool) -> None:
        headers = dict(fuzzed.headers)
        if version is not None and path.startswith("/compute"):
            headers["OpenStack-API-Version"] = f"compute {version}"
        headers["Content-Type"] = "application/json"
        # ``raw``: the same document cut short, i.e. not JSON at all.
        content = json.dumps(body)
        if raw:
            content = content[: max(1, len(content) // 2)]
        resp = fuzzed.client.post(path, content=content.encode(), headers=headers)
        assert resp.status_code < 500, (path, content, resp.status_code, resp.text)
        if resp.status_code >= 400:
            assert_error_shape(path, resp.status_code, resp.json())

    post()
