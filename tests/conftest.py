"""Shared fixtures: the same in-process tests run on SQLite, PostgreSQL and MariaDB.

Each backend gets one fresh database per test session (random name, migrated once, dropped
at the end); tables are wiped between tests. PostgreSQL and MariaDB are expected on
127.0.0.1 (trust / passwordless root). When one is not reachable its tests are skipped,
except under CI=true, where that is a failure.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from kumo.config import Config, load_config
from kumo.core import passwords
from kumo.core.bootstrap import BootstrapResult, bootstrap
from kumo.core.identity.roles import list_roles
from kumo.db import migrate
from kumo.db.engine import Database, normalize_url
from kumo.db.models import Base

from apihelpers import ADMIN_PASSWORD, PUBLIC_URL, auth_body, make_client
from kumoproc import in_ci

BACKENDS = ("sqlite", "postgresql", "mariadb")
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
MARIADB_SERVER = "mysql://root@127.0.0.1:3306"


# Tests that use the machine itself (qemu guests, network namespaces, `kumo up` processes,
# ports) run one after another on one xdist worker: they share the kernel's namespaces and
# the CPU that boots guests. The in-process API tests spread over the other workers.
# (A scheduler, not xdist_group marks: pytest 9 ignores the node-id suffix those rely on.)
# The dashboard's browser tests (tests/web/test_browser_*.py) drive a live `kumo up` and a
# Chromium: machine tests too, while the rest of tests/web is in process.
MACHINE_DIRS = ("e2e", "cli", "drivers")
MACHINE_FILES = ("tests/web/test_browser_",)
MACHINE_GROUP = "machine"


def _machine_test(nodeid: str) -> bool:
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    in_dir = len(parts) > 2 and parts[0] == "tests" and parts[1] in MACHINE_DIRS
    return in_dir or path.startswith(MACHINE_FILES)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``--dist loadgroup``: the machine tests are one work unit (the largest, so
    xdist hands it out first), every other test a unit of its own."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class MachineTestsTogether(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return MACHINE_GROUP if _machine_test(nodeid) else nodeid

    return MachineTestsTogether(config, log)


def _unavailable(backend: str, exc: Exception) -> None:
    reason = f"{backend} is not reachable for tests ({type(exc).__name__}: {exc})"
    if in_ci():
        pytest.fail(f"{reason}; CI=true requires every database backend")
    pytest.skip(reason)


def _server_engine(backend: str) -> Engine:
    if backend == "postgresql":
        url = normalize_url(PG_SERVER + "/postgres")
    else:
        url = normalize_url(MARIADB_SERVER + "/")
    return create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


class DatabaseFactory:
    """Creates fresh, empty databases on one backend and drops them all at the end."""

    def __init__(self, backend: str, tmp: Path) -> None:
        self.backend = backend
        self.tmp = tmp
        self._created: list[tuple[str, Database]] = []
        self._server: Engine | None = None
        if backend != "sqlite":
            self._server = _server_engine(backend)
            try:
                with self._server.connect() as conn:
                    conn.execute(text("SELECT 1"))
            except Exception as exc:
                self._server.dispose()
                _unavailable(backend, exc)

    def create(self) -> Database:
        name = f"kumo_test_{uuid.uuid4().hex[:12]}"
        if self.backend == "sqlite":
            url = f"sqlite:///{self.tmp / (name + '.db')}"
        else:
            assert self._server is not None
            with self._server.connect() as conn:
                if self.backend == "postgresql":
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                else:
                    conn.execute(text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4"))
            server = PG_SERVER if self.backend == "postgresql" else MARIADB_SERVER
            url = f"{server}/{name}"
        db = Database(url)
        self._created.append((name, db))
        return db

    def close(self) -> None:
        for name, db in self._created:
            db.dispose()
            if self._server is None:
                continue
            with self._server.connect() as conn:
                if self.backend == "postgresql":
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                else:
                    conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
        if self._server is not None:
            self._server.dispose()


_factories: dict[str, DatabaseFactory] = {}


@pytest.fixture(scope="session")
def _factory_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    registry: dict[str, Any] = {"tmp": tmp_path_factory.mktemp("db")}
    yield registry
    for factory in _factories.values():
        factory.close()
    _factories.clear()


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def db_factory(backend: str, _factory_registry: dict[str, Any]) -> DatabaseFactory:
    """Fresh databases on the current backend (for tests that need their own schema)."""
    if backend not in _factories:
        _factories[backend] = DatabaseFactory(backend, _factory_registry["tmp"])
    return _factories[backend]


@pytest.fixture(scope="session")
def _migrated(db_factory: DatabaseFactory) -> Database:
    db = db_factory.create()
    migrate.upgrade(db)
    return db


@pytest.fixture(scope="session")
def cheap_hashing() -> Iterator[None]:
    """Argon2 with minimal cost: the tests check logic, not the hash's strength."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        yield


def wipe(db: Database) -> None:
    with db.engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def database(_migrated: Database, cheap_hashing: None) -> Iterator[Database]:
    """The session's migrated database for this backend, empty at the start of the test."""
    wipe(_migrated)
    yield _migrated


@pytest.fixture
def db_url(database: Database) -> str:
    return database.url


@pytest.fixture
def config(tmp_path: Path, database: Database) -> Config:
    return make_config(tmp_path, database)


def make_config(tmp_path: Path, database: Database, **identity: Any) -> Config:
    overrides: dict[str, Any] = {
        "state_dir": str(tmp_path),
        "database": {"url": database.url},
        "api": {"public_url": PUBLIC_URL},
    }
    if identity:
        overrides["identity"] = identity
    return load_config(overrides=overrides, environ={})


@dataclass
class Cloud:
    """A bootstrapped kumo API in process, with helpers for tokens, users and projects."""

    client: TestClient
    db: Database
    config: Config
    boot: BootstrapResult
    role_ids: dict[str, str]
    _admin_token: str | None = field(default=None, repr=False)

    # Tokens --------------------------------------------------------------------------

    def issue(self, body: dict[str, Any]) -> Any:
        return self.client.post("/identity/v3/auth/tokens", json=body)

    def token(
        self,
        user: str | dict[str, Any],
        password: str,
        project_id: str | None = None,
        domain_id: str | None = None,
        unscoped: bool = False,
    ) -> str:
        scope: Any = None
        if project_id:
            scope = {"project": {"id": project_id}}
        elif domain_id:
            scope = {"domain": {"id": domain_id}}
        elif unscoped:
            scope = "unscoped"
        resp = self.issue(auth_body(user, password, scope))
        assert resp.status_code == 201, resp.text
        return str(resp.headers["X-Subject-Token"])

    @property
    def admin_token(self) -> str:
        if self._admin_token is None:
            self._admin_token = self.token(
                "admin", ADMIN_PASSWORD, project_id=self.boot.admin_project_id
            )
        return self._admin_token

    @property
    def admin(self) -> dict[str, str]:
        return {"X-Auth-Token": self.admin_token}

    @staticmethod
    def h(token: str) -> dict[str, str]:
        return {"X-Auth-Token": token}

    # Resources (as admin) ------------------------------------------------------------

    def create(self, collection: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
        resp = self.client.post(f"/identity/v3/{collection}", json={key: body}, headers=self.admin)
        assert resp.status_code == 201, resp.text
        result: dict[str, Any] = resp.json()[key]
        return result

    def project(self, name: str, domain_id: str = "default") -> dict[str, Any]:
        return self.create("projects", "project", {"name": name, "domain_id": domain_id})

    def domain(self, name: str) -> dict[str, Any]:
        return self.create("domains", "domain", {"name": name})

    def grant(
        self, user_id: str, role: str, project_id: str | None = None, domain_id: str | None = None
    ) -> None:
        target = f"projects/{project_id}" if project_id else f"domains/{domain_id}"
        resp = self.client.put(
            f"/identity/v3/{target}/users/{user_id}/roles/{self.role_ids[role]}",
            headers=self.admin,
        )
        assert resp.status_code == 204, resp.text

    def user(
        self,
        name: str,
        password: str = "secret-pw",
        project_id: str | None = None,
        role: str | None = "member",
        domain_id: str = "default",
        **extra: Any,
    ) -> dict[str, Any]:
        """Create a user; with ``project_id`` it gets ``role`` there (and it is its default)."""
        body: dict[str, Any] = {"name": name, "password": password, "domain_id": domain_id}
        if project_id:
            body["default_project_id"] = project_id
        body.update(extra)
        created = self.create("users", "user", body)
        if project_id and role:
            self.grant(created["id"], role, project_id=project_id)
        return created

    def member(
        self, name: str, project_id: str, role: str = "member", password: str = "secret-pw"
    ) -> tuple[dict[str, Any], str]:
        """A new user with ``role`` on the project, and a token scoped to it."""
        user = self.user(name, password, project_id=project_id, role=role)
        return user, self.token({"id": user["id"]}, password, project_id=project_id)


@pytest.fixture
def cloud(config: Config, database: Database) -> Iterator[Cloud]:
    with database.session() as session:
        boot = bootstrap(
            session, "admin", ADMIN_PASSWORD, "admin", "demo", config.public_url, "RegionOne"
        )
    with database.session() as session:
        role_ids = {r.name: r.id for r in list_roles(session)}
    with make_client(config, database) as client:
        yield Cloud(client=client, db=database, config=config, boot=boot, role_ids=role_ids)


@pytest.fixture
def client(cloud: Cloud) -> TestClient:
    return cloud.client


@pytest.fixture
def admin_headers(cloud: Cloud) -> dict[str, str]:
    return cloud.admin


@pytest.fixture
def make_cloud_client(database: Database, tmp_path: Path) -> Callable[..., TestClient]:
    """Another API over the same (bootstrapped) database with changed identity settings."""
    clients: list[TestClient] = []

    def factory(**identity: Any) -> TestClient:
        c = make_client(make_config(tmp_path, database, **identity), database)
        clients.append(c)
        return c

    return factory
