"""Server tags (Nova's compute microversion 2.26): one row per tag on a server.

A table, not the JSON list on the instance row, so the list filters (``tags``,
``tags-any``, ``not-tags``, ``not-tags-any``) are SQL subqueries and a filtered listing
stays a keyset page. Tags stay with a soft-deleted server, as its metadata does, and go
with the row when it is purged (the foreign key cascades).

The tag column compares bytes on MariaDB too (its default collation folds case and
accents): ``A`` and ``a`` are two tags on every backend, as on PostgreSQL and SQLite.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db.base import ID, Base

MAX_TAG_LENGTH = 60  # Nova's parameter_types.tag

# Byte-wise comparison on MariaDB/MySQL; the plain VARCHAR elsewhere.
TAG = String(MAX_TAG_LENGTH).with_variant(
    mysql.VARCHAR(MAX_TAG_LENGTH, charset="utf8mb4", collation="utf8mb4_bin"), "mysql", "mariadb"
)


class InstanceTag(Base):
    """One tag on a server."""

    __tablename__ = "instance_tags"
    __table_args__ = (Index("ix_instance_tags_tag", "tag"),)
    instance_id: Mapped[str] = mapped_column(
        ID, ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(TAG, primary_key=True)
