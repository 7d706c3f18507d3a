"""Schema upgrades through Alembic, driven from code (no alembic.ini to find)."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from kumo.db.engine import Database

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def _alembic_config() -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(_alembic_config())


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str
    pending: list[str]
    pending_contract: list[str]

    @property
    def up_to_date(self) -> bool:
        return not self.pending


def _phase(revision_path: str) -> str:
    spec = importlib.util.spec_from_file_location("kumo_migration", revision_path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(getattr(module, "PHASE", "expand"))


def status(db: Database) -> SchemaStatus:
    scripts = _scripts()
    with db.engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    head = scripts.get_current_head()
    assert head is not None
    pending = [
        rev for rev in scripts.iterate_revisions(head, current or "base") if rev.revision != current
    ]
    pending.reverse()
    return SchemaStatus(
        current=current,
        head=head,
        pending=[rev.revision for rev in pending],
        pending_contract=[rev.revision for rev in pending if _phase(rev.path) == "contract"],
    )


def upgrade(db: Database, target: str = "heads", include_contract: bool = True) -> None:
    """Apply migrations up to ``target``.

    With ``include_contract=False`` it stops before the first contract migration, so old
    services keep working (the expand half of an upgrade).
    """
    if not include_contract:
        st = status(db)
        target = st.current or "base"
        for rev in st.pending:
            if rev in st.pending_contract:
                break
            target = rev
        if target == (st.current or "base"):
            return
    cfg = _alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, target)
