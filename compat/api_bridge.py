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


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction until EOF, then close the other side's writer."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def serve(namespace: str, port: int) -> None:
    sock = listen_in_namespace(namespace, "127.0.0.1", port)

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pump(reader, up_writer), _pump(up_reader, writer))

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
