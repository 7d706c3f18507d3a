"""`kumo.drivers.hypervisor.qmp.session` against a scripted QMP server on a Unix socket.

The server plays QEMU's part of the race seen in CI: an event written to a new client right
after its greeting, which the library takes for the answer to `qmp_capabilities`.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kumo.drivers.hypervisor import qmp

GREETING: dict[str, Any] = {
    "QMP": {"version": {"qemu": {"major": 8, "minor": 0, "micro": 0}}, "capabilities": []}
}
EVENT: dict[str, Any] = {"event": "JOB_STATUS_CHANGE", "data": {"id": "mig-vda", "status": "ready"}}


class ScriptedQemu:
    """Serves one client at a time, as QEMU does; the first `racy` clients get an event
    between the greeting and the negotiation's answer."""

    def __init__(self, path: Path, racy: int) -> None:
        self.racy = racy
        self.connections = 0
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        self._listener.listen(1)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # closed
            self.connections += 1
            with conn:
                self._converse(conn, racy=self.connections <= self.racy)

    def _converse(self, conn: socket.socket, racy: bool) -> None:
        def send(message: dict[str, object]) -> None:
            conn.sendall(json.dumps(message).encode() + b"\r\n")

        try:
            send(GREETING)
            for request in _requests(conn):
                if request["execute"] == "qmp_capabilities" and racy:
                    send(EVENT)
                answer: dict[str, object] = {"return": {}}
                if request["execute"] == "query-status":
                    answer = {"return": {"status": "running", "running": True}}
                if "id" in request:
                    answer["id"] = request["id"]
                send(answer)
        except OSError:
            return  # the client hung up first

    def close(self) -> None:
        self._listener.close()


def _requests(conn: socket.socket) -> Iterator[dict[str, Any]]:
    """The JSON objects a client sends; QMP puts no separator between them."""
    decoder = json.JSONDecoder()
    pending = ""
    while chunk := conn.recv(65536):
        pending += chunk.decode()
        while pending.strip():
            try:
                request, end = decoder.raw_decode(pending.lstrip())
            except json.JSONDecodeError:
                break  # the rest has not arrived
            pending = pending.lstrip()[end:]
            yield request


@pytest.fixture
def qmp_path(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "qmp"


def test_a_negotiation_answered_by_an_event_is_tried_again_on_a_new_connection(
    qmp_path: Path,
) -> None:
    server = ScriptedQemu(qmp_path, racy=1)
    try:
        status = qmp.execute(qmp_path, "query-status", timeout=5.0)
    finally:
        server.close()
    assert status["status"] == "running"
    assert server.connections == 2


def test_negotiation_that_never_succeeds_gives_up_at_the_deadline(qmp_path: Path) -> None:
    server = ScriptedQemu(qmp_path, racy=10**6)
    try:
        with pytest.raises(
            qmp.QMPUnavailable, match=r"Negotiation failed|no session within 0\.5 s"
        ):
            qmp.execute(qmp_path, "query-status", timeout=0.5)
    finally:
        server.close()
    assert server.connections >= 2


def test_a_missing_socket_is_unavailable_at_once(qmp_path: Path) -> None:
    with pytest.raises(qmp.QMPUnavailable):
        qmp.execute(qmp_path, "query-status", timeout=5.0)
