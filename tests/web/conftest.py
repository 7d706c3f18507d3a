"""Fixtures of the dashboard's in-process tests: a browser-like client (its own cookie
jar, redirects not followed) over the bootstrapped API of tests/conftest.py.

The dashboard never touches the database (it is a client of the APIs), so its tests run on
SQLite only: the three backends are the API tests' concern.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from kumo.db import models as m

from apihelpers import ADMIN_PASSWORD
from browser import chromium, new_tab  # noqa: F401  (the browser tests' fixtures)
from livecloud import live_cloud, shared_guest  # noqa: F401
from visitor import Visitor


@pytest.fixture(scope="session")
def backend() -> str:
    return "sqlite"


@pytest.fixture
def visitor(cloud: Any) -> Iterator[Visitor]:
    b = Visitor(cloud.client)
    with b.http:
        yield b


@pytest.fixture
def admin_visitor(visitor: Visitor) -> Visitor:
    resp = visitor.sign_in("admin", ADMIN_PASSWORD)
    assert resp.status_code == 303, resp.text
    return visitor


@pytest.fixture
def image_id(cloud: Any) -> str:
    """An active public image to boot servers from (the servers stay in BUILD: no host)."""
    found = str(uuid.uuid4())
    with cloud.db.session() as session:
        session.add(
            m.Image(
                id=found,
                name="web-test-image",
                owner=None,
                status="active",
                visibility="public",
                disk_format="qcow2",
                container_format="bare",
                size=1,
                properties={},
                locations=[],
            )
        )
    return found
