"""Persistence: SQLAlchemy models, engine/session handling, migrations, backups, checks."""
