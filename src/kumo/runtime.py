"""Opening a cloud's pieces from its configuration: state directory, database, files."""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

# The database layer is imported where it is used: the `kumo` command that runs an agent
# imports this module too, and an agent process never touches the database (DESIGN.md
# section 7), and what it loads costs it: psycopg, imported through this module for a
# moment, doubled the agents' CPU per deleted server in bench/servers.py (the cause was
# not pinned down; not loading it was the fix).
# The configuration's pydantic models and yaml too: every `kumo` command imports this
# module, and `kumo --help` needs neither (tests/cli/test_cli_imports.py).
if TYPE_CHECKING:
    from kumo.config import Config
    from kumo.db.engine import Database
    from kumo.db.wakeup_relay import WakeupRelay


class NotReady(Exception):
    """The cloud cannot start as configured; the message says what to run."""


@dataclass
class Runtime:
    config: Config
    db: Database

    @classmethod
    def open(cls, config: Config) -> Runtime:
        from kumo.core import notifications
        from kumo.db.engine import Database

        prepare_state_dir(config.state_dir)
        # Notifications on: this process's sessions write the outbox (none when off).
        info = notifications.session_info(config.notifications)
        return cls(config, Database(config.database_url, session_info=info))

    def require_current_schema(self) -> None:
        from kumo.db import migrate

        st = migrate.status(self.db)
        if st.current is None:
            raise NotReady(
                "The database has no kumo schema yet: run `kumo db upgrade` "
                "(or `kumo up` for an all-in-one cloud)."
            )
        if st.pending and set(st.pending) - set(st.pending_contract):
            raise NotReady(
                f"The database schema is at {st.current}, this kumo needs {st.head}: "
                "run `kumo db upgrade` first (it takes a backup)."
            )

    def upgrade_schema(self, log: logging.Logger) -> Path | None:
        """Expand the schema to this release, backing up first when there is data to keep."""
        from kumo.db import migrate
        from kumo.db.backup import backup

        st = migrate.status(self.db)
        pending_expand = [r for r in st.pending if r not in st.pending_contract]
        if not pending_expand:
            return None
        path = None
        if st.current is not None:
            path = backup(self.db, self.config.backup_dir, f"before-{st.head}")
            log.info("database backed up to %s", path)
        migrate.upgrade(self.db, include_contract=False)
        return path


@contextlib.contextmanager
def wakeups_across_processes(db: Database) -> Iterator[WakeupRelay | None]:
    """While serving: this process's wake-ups reach the cloud's other API copies and
    controller, and theirs reach it (kumo.db.wakeup_relay): by LISTEN/NOTIFY on
    PostgreSQL, through a polled table on MariaDB. A SQLite cloud is one process."""
    # Here, not at the top: the agent imports this module and must not load kumo.core
    # (whose import installs the database flush hook, and with it SQLAlchemy).
    from kumo.core import wakeup

    relay: WakeupRelay
    if db.backend == "postgresql":
        from kumo.db.notify_relay import NotifyRelay

        relay = NotifyRelay(db.url, wakeup.notify_local)
    elif db.backend in ("mysql", "mariadb"):
        from kumo.db.table_relay import TableRelay

        relay = TableRelay(db.engine, wakeup.notify_local)
    else:
        yield None
        return
    relay.start()
    undo = wakeup.relay_to(relay.publish)
    try:
        yield relay
    finally:
        undo()
        relay.stop()


def prepare_state_dir(state_dir: Path) -> None:
    for sub in ("", "logs", "backups", "agent"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)


def write_secret(path: Path, value: str) -> None:
    """Write a file only its owner can read (passwords, credentials)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")


def read_or_create_secret(path: Path, preset: str = "") -> str:
    if preset:
        if not path.exists():
            write_secret(path, preset)
        return preset
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(18)
    write_secret(path, value)
    return value


def write_clouds_yaml(config: Config, admin_password: str) -> Path:
    def cloud(project: str) -> dict[str, object]:
        return {
            "auth": {
                "auth_url": config.public_url + "/identity",
                "username": config.identity.admin_user,
                "password": admin_password,
                "project_name": project,
                "user_domain_id": "default",
                "project_domain_id": "default",
            },
            "region_name": config.identity.region,
            "interface": "public",
            "identity_api_version": 3,
        }

    path = config.state_dir / "clouds.yaml"
    doc = {
        "clouds": {
            "kumo": cloud(config.identity.admin_project),
            "kumo-demo": cloud(config.identity.demo_project),
        }
    }
    import yaml

    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        yaml.safe_dump(doc, handle, sort_keys=False)
    return path
