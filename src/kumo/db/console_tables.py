"""Remote consoles: where each guest's consoles listen (as its agent reported them) and the
tokens that open them.

A token row keeps only the SHA-256 of the token (the token itself is handed to the caller
once, in the console URL): a leaked database cannot be replayed against the console proxy.
A token is bound to the server, the console type and the endpoint (host, address, port) it
was issued for; the proxy consumes it with one conditional UPDATE, so it opens one
connection at most, and refuses it once the server moved, was deleted, or its console
moved to another port.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from kumo.db.base import ID, Base
from kumo.db.types import UTCDateTime, utcnow


class ConsoleEndpoint(Base):
    """A running guest's console listeners on its host: the address both listen on, the
    VNC port and the serial console's TCP port (None: the guest has no such console, as
    guests started before consoles existed), and its display device (``vga``, ``none``;
    None: reported by an agent older than displays, whose guests have none): what a live
    migration's destination must start the guest with."""

    __tablename__ = "console_endpoints"
    instance_id: Mapped[str] = mapped_column(ID, primary_key=True)
    host_id: Mapped[str] = mapped_column(ID)
    address: Mapped[str] = mapped_column(String(255))
    vnc_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    serial_port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    display: Mapped[str | None] = mapped_column(String(16), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsoleAuthToken(Base):
    """One console token (Nova's console_auth_tokens): single-use, short-lived."""

    __tablename__ = "console_auth_tokens"
    __table_args__ = (
        Index("ix_console_auth_tokens_instance_id", "instance_id"),
        Index("ix_console_auth_tokens_expires_at", "expires_at"),
    )
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance_id: Mapped[str] = mapped_column(ID)
    # Nova's console type: "novnc" or "serial".
    console_type: Mapped[str] = mapped_column(String(32))
    host_id: Mapped[str] = mapped_column(ID)
    address: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # When a proxy connection consumed it; None while unused.
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
