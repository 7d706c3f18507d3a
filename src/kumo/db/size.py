"""How big the database is, to know whether a backup fits before an upgrade."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from kumo.db.engine import Database, normalize_url


def database_bytes(db: Database) -> int:
    url = normalize_url(db.url)
    if db.backend == "sqlite":
        path = Path(str(url.database))
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    with db.engine.connect() as conn:
        if db.backend == "postgresql":
            return int(
                conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            )
        return int(
            conn.execute(
                text(
                    "SELECT COALESCE(SUM(data_length + index_length), 0)"
                    " FROM information_schema.tables WHERE table_schema = DATABASE()"
                )
            ).scalar_one()
        )
