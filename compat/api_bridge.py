"""Make a root-namespace API at 127.0.0.1:PORT answer at 127.0.0.1:PORT inside a network
namespace too, by forwarding each connection. Run with kumo's venv:

    .venv/bin/python compat/api_bridge.py STATE_DIR PORT

Why: Tempest's guest validation SSHes to floating IPs, which live on the cloud's provider
network: only the provider namespace (the cloud's "outside world") reaches them, and the
root namespace must never get a route there (network safety). So compat/run runs Tempest
inside the provider namespace, where this bridge makes the cloud's URLs (catalog included)
work unchanged. Only loopback addresses are used: the listening socket is made inside the
namespace (setns in a thread, kumo's `listen_in_namespace`), the upstream connection from
the root namespace. The namespace is the provider namespace of the cloud whose state
directory is STATE_DIR. Prints "ready NAMESPACE" once listening; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from kumo.agent.network_setup import provider_namespace
from kumo.config import Config
from kumo.drivers.network.netns import listen_in_namespace

CHUNK = 1 << 16


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, half_close: bool
) -> None:
    """Copy one direction until EOF. Then either pass the EOF on (``half_close``: a client
    that has sent its whole request still waits for the answer) or close the other side
    (the server has answered and hung up: the client must see the end, or its side of the
    bridge would wait for it forever). On an error the connection is closed outright."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if half_close and writer.can_write_eof():
            writer.write_eof()
        else:
            writer.close()
    except (ConnectionError, OSError):
        writer.close()


async def serve(namespace: str, port: int) -> None:
    sock = listen_in_namespace(namespace, "127.0.0.1", port)
    # asyncio drops its reference to a connection's task when the client's side is gone;
    # one still passing the answer of a half-closed request would be garbage collected
    # mid-way ("Task was destroyed but it is pending"). Held here until it ends.
    running: set[asyncio.Task[None]] = set()

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            running.add(task)
            task.add_done_callback(running.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(
                _pump(reader, up_writer, half_close=True),
                _pump(up_reader, writer, half_close=False),
            )
        finally:
            up_writer.close()
            writer.close()

    server = await asyncio.start_server(forward, sock=sock)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"ready {namespace}", flush=True)
    async with server:
        await stop.wait()


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    namespace = provider_namespace(Config(state_dir=Path(sys.argv[1])))
    asyncio.run(serve(namespace, int(sys.argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
