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

from qemu.qmp import ConnectError, QMPClient
from qemu.qmp.qmp_client import NegotiationError

T = TypeVar("T")


class QMPUnavailable(RuntimeError):
    """No QEMU answered on the socket (not running, or busy with another client)."""


def session(socket: Path, work: Callable[[QMPClient], Awaitable[T]], timeout: float = 5.0) -> T:
    """Connect, run `work(client)`, disconnect; all within `timeout` seconds."""

    async def run() -> T:
        client = await _connect(socket, timeout)
        try:
            return await asyncio.wait_for(work(client), timeout)
        finally:
            await client.disconnect()

    return asyncio.run(run())


async def _connect(socket: Path, timeout: float) -> QMPClient:
    """A negotiated client, trying again on a fresh connection while a negotiation fails.

    Seen once in CI, polling `query-migrate` during a block migration: the answer to
    `qmp_capabilities` was not one. It can be an event QEMU writes in the instant after a new
    client's greeting (the check that mutes events until a client negotiates races the
    monitor's reset for the new connection), or the late answer to a command whose client
    timed out and left. A new connection negotiates cleanly."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        client = QMPClient("kumo")
        try:
            await asyncio.wait_for(client.connect(str(socket)), deadline - loop.time())
            return client
        except ConnectError as exc:
            if not isinstance(exc.exc, NegotiationError) or loop.time() >= deadline:
                raise QMPUnavailable(f"QMP at {socket}: {exc}") from exc
            await asyncio.sleep(0.05)  # a breath for QEMU before the next connection
        except TimeoutError as exc:
            raise QMPUnavailable(f"QMP at {socket}: no session within {timeout} s") from exc
        except Exception as exc:  # refused, missing, bad greeting
            raise QMPUnavailable(f"QMP at {socket}: {exc}") from exc


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
