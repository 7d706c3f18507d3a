"""compat/api_bridge.py: the root namespace's loopback port answers inside the cloud's
provider namespace too (Tempest's validation pass runs there), in both directions, and
nothing is left listening once the bridge stops."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from netlab import require_root

from kumo.agent.network_setup import provider_namespace
from kumo.config import Config
from kumo.drivers.network import netns

BRIDGE = Path(__file__).resolve().parents[3] / "compat" / "api_bridge.py"

CLIENT = """
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(b"ping " * 20000 + b"end")
    s.shutdown(socket.SHUT_WR)
    got = b""
    while chunk := s.recv(65536):
        got += chunk
sys.stdout.write(got.decode()[-13:] + f" {len(got)}")
"""


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A root-namespace loopback server that answers each connection with what it read,
    upper-cased, once the client has finished sending."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                conn.sendall(data.upper())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        server.close()


def test_bridge_forwards_both_ways_inside_the_provider_namespace(
    tmp_path: Path, echo_port: int
) -> None:
    require_root()
    namespace = provider_namespace(Config(state_dir=tmp_path))
    netns.ensure(namespace)
    bridge = subprocess.Popen(
        [sys.executable, str(BRIDGE), str(tmp_path), str(echo_port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert bridge.stdout is not None
        assert bridge.stdout.readline().strip() == f"ready {namespace}"
        answer = subprocess.run(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", CLIENT, str(echo_port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert answer.returncode == 0, answer.stderr
        assert answer.stdout == "PING PING END 100003"  # the whole of it came back
        bridge.terminate()
        assert bridge.wait(timeout=10) == 0
        refused = subprocess.run(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", CLIENT, str(echo_port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert refused.returncode != 0 and "ConnectionRefusedError" in refused.stderr
    finally:
        if bridge.poll() is None:
            bridge.kill()
            bridge.wait()
        netns.delete(namespace)
