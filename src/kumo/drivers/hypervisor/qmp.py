"""A small synchronous face on the `qemu.qmp` library, for a threaded agent.

Each session runs in its own short-lived event loop (`asyncio.run`), so any thread may call
it and nothing lingers between calls. QEMU serves one QMP client per socket at a time, so
callers serialize per guest (the driver holds a lock per guest).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from qemu.qmp import QMPClient

T = TypeVar("T")


class QMPUnavailable(RuntimeError):
    """No QEMU answered on the socket (not running, or busy with another client)."""


def session(socket: Path, work: Callable[[QMPClient], Awaitable[T]], timeout: float = 5.0) -> T:
    """Connect, run `work(client)`, disconnect; all within `timeout` seconds."""

    async def run() -> T:
        client = QMPClient("kumo")
        try:
            await asyncio.wait_for(client.connect(str(socket)), timeout)
        except Exception as exc:  # refused, missing, timed out, bad greeting
            raise QMPUnavailable(f"QMP at {socket}: {exc}") from exc
        try:
            return await asyncio.wait_for(work(client), timeout)
        finally:
            await client.disconnect()

    return asyncio.run(run())


def execute(
    socket: Path, command: str, arguments: dict[str, Any] | None = None, timeout: float = 5.0
) -> Any:
    """Run one QMP command and return its result."""

    async def work(client: QMPClient) -> Any:
        return await client.execute(command, arguments)

    return session(socket, work, timeout)


async def call(client: QMPClient, command: str, arguments: dict[str, Any] | None = None) -> Any:
    """`client.execute` typed as Any (the library says `object`), for use inside `session`."""
    return await client.execute(command, arguments)
