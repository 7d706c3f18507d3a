"""Remote consoles in Nova's shapes (os-remote-consoles, the legacy console actions,
os-console-auth-tokens) and the websocket proxy's token rules, with the fake driver (which
gives guests no console) and, where a console must exist, a real TCP listener on loopback
standing in for a guest's serial console, reported as a host agent reports it."""

from __future__ import annotations

import datetime as dt
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect
from test_servers import SERVERS, Compute

from kumo.api.console_proxy import SESSION_COOKIE
from kumo.core.compute import consoles
from kumo.core.compute.consoles import token_hash
from kumo.core.policy import SERVICE
from kumo.db import models as m
from kumo.db.console_tables import ConsoleAuthToken

CONSOLES = "/compute/v2.1/os-console-auth-tokens"
NOVNC = {"remote_console": {"protocol": "vnc", "type": "novnc"}}
SERIAL = {"remote_console": {"protocol": "serial", "type": "serial"}}
REFUSED = (WebSocketDisconnect, WebSocketDenialResponse)


@pytest.fixture
def compute(cloud: Any, tmp_path: Path) -> Compute:
    return Compute(cloud, tmp_path)


def _at(headers: dict[str, str], version: str = "2.6") -> dict[str, str]:
    return {**headers, "X-OpenStack-Nova-API-Version": version}


def _active(compute: Compute, headers: dict[str, str]) -> str:
    server_id: str = compute.create(headers).json()["server"]["id"]
    compute.converge()
    assert compute.show(server_id, headers)["status"] == "ACTIVE"
    return server_id


def _console(compute: Compute, server_id: str, headers: dict[str, str], body: Any) -> Any:
    return compute.client.post(
        f"{SERVERS}/{server_id}/remote-consoles", json=body, headers=_at(headers)
    )


class _Echo(socketserver.BaseRequestHandler):
    """A console that greets, then echoes what it gets in upper case."""

    def handle(self) -> None:
        self.request.sendall(b"login: ")
        while data := self.request.recv(4096):
            self.request.sendall(data.upper())


@pytest.fixture
def echo() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _report_consoles(compute: Compute, server_id: str, serial_port: int | None) -> None:
    """What the server's agent says after a look at a guest with a serial console."""
    with compute.db.session() as session:
        generation = session.get(m.Instance, server_id).generation
    body = {
        "power_state": "running",
        "generation": generation,
        "consoles": {"address": "127.0.0.1", "vnc_port": None, "serial_port": serial_port},
    }
    resp = compute.agent_client.post(
        f"/agent/v1/hosts/{compute.host_id}/instances/{server_id}/observation", json=body
    )
    assert resp.status_code == 204, resp.text


def assert_error(resp: Any, status: int) -> dict[str, Any]:
    """A Nova-shaped error: ``{"badRequest": {"code": 400, "message": ...}}`` and kin."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    ((_kind, err),) = resp.json().items()
    assert err["code"] == status and err["message"], err
    return dict(err)


def _token(url: str) -> str:
    return url.rsplit("token=", 1)[1]


def test_body_errors_are_nova_400s(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    for body, words in [
        ({"remote_console": {"protocol": "telnet", "type": "novnc"}}, "is not one of"),
        ({"remote_console": {"protocol": "vnc", "type": "vt100"}}, "is not one of"),
        ({"remote_console": {"protocol": "vnc"}}, "'type' is a required property"),
        ({"remote_console": {**NOVNC["remote_console"], "x": 1}}, "Additional properties"),
        ({"console": {}}, "'remote_console' is a required property"),
        ({"remote_console": {"protocol": "vnc", "type": "serial"}}, "Invalid console type"),
        ({"remote_console": {"protocol": "spice", "type": "spice-html5"}}, "Unavailable"),
        # mks arrived with 2.8.
        ({"remote_console": {"protocol": "mks", "type": "webmks"}}, "is not one of"),
    ]:
        err = assert_error(_console(compute, server_id, admin, body), 400)
        assert words in err["message"], (body, err)


def test_remote_consoles_need_2_6_and_legacy_actions_end_there(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    resp = compute.client.post(
        f"{SERVERS}/{server_id}/remote-consoles", json=NOVNC, headers=_at(admin, "2.5")
    )
    assert_error(resp, 404)
    legacy = {"os-getVNCConsole": {"type": "novnc"}}
    err = assert_error(
        compute.client.post(
            f"{SERVERS}/{server_id}/action", json=legacy, headers=_at(admin, "2.6")
        ),
        400,
    )
    assert "no such action" in err["message"]
    # At 2.1 the action is there; the fake host gives its guest no console.
    err = assert_error(compute.action(server_id, admin, legacy), 400)
    assert err["message"] == "Unavailable console type novnc."
    err = assert_error(compute.action(server_id, admin, {"os-getVNCConsole": {"type": "x"}}), 400)
    assert "is not one of ['novnc', 'xvpvnc']" in err["message"]


def test_no_console_on_the_host_is_unavailable(compute: Compute) -> None:
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    err = assert_error(_console(compute, server_id, admin, NOVNC), 400)
    assert err["message"] == "Unavailable console type novnc."
    err = assert_error(_console(compute, server_id, admin, SERIAL), 400)
    assert err["message"] == "Unavailable console type serial."


def test_other_projects_server_is_404_and_readers_are_403(compute: Compute) -> None:
    cloud = compute.cloud
    server_id = _active(compute, cloud.admin)
    other = cloud.project("other")
    _user, token = cloud.member("mallory", other["id"])
    err = assert_error(_console(compute, server_id, cloud.h(token), NOVNC), 404)
    assert err["message"] == f"Instance {server_id} could not be found."
    legacy = {"os-getSerialConsole": {"type": "serial"}}
    assert_error(compute.action(server_id, cloud.h(token), legacy), 404)
    # A reader of the server's own project may see it but not open its console.
    _reader, reader_token = cloud.member("rita", cloud.boot.admin_project_id, role="reader")
    assert_error(_console(compute, server_id, cloud.h(reader_token), NOVNC), 403)


def test_stopped_or_unplaced_server_is_409(compute: Compute) -> None:
    admin = compute.cloud.admin
    waiting = compute.create(admin).json()["server"]["id"]  # not scheduled yet
    err = assert_error(_console(compute, waiting, admin, NOVNC), 409)
    assert err["message"] == f"Instance {waiting} is not ready"
    server_id = _active(compute, admin)
    assert compute.action(server_id, admin, {"os-stop": None}).status_code == 202
    compute.converge()
    assert compute.show(server_id, admin)["status"] == "SHUTOFF"
    err = assert_error(_console(compute, server_id, admin, NOVNC), 409)
    assert err["message"] == (
        f"Cannot 'get_vnc_console' instance {server_id} while it is in vm_state stopped"
    )


def test_serial_console_through_the_proxy_once_per_token(compute: Compute, echo: int) -> None:
    cloud = compute.cloud
    admin = cloud.admin
    server_id = _active(compute, admin)
    _report_consoles(compute, server_id, echo)
    resp = _console(compute, server_id, admin, SERIAL)
    assert resp.status_code == 200, resp.text
    console = resp.json()["remote_console"]
    assert (console["protocol"], console["type"]) == ("serial", "serial")
    assert console["url"].startswith("ws://kumo.test/console/websocket/serial?token=")
    token = _token(console["url"])
    # Only the token's hash is stored.
    with compute.db.session() as session:
        rows = session.query(ConsoleAuthToken).all()
        assert len(rows) == 1 and token not in (rows[0].token_hash, rows[0].instance_id)
    # Nova shows a VNC or serial token's details from 2.31 on; before, only RDP ones (401).
    # This API stops at 2.25, so the view itself is checked in core, as 2.31 will show it.
    err = assert_error(compute.client.get(f"{CONSOLES}/{token}", headers=_at(admin, "2.25")), 401)
    assert err["message"] == "The requested console type details are not accessible"
    with compute.db.session() as session:
        assert consoles.show_token(session, SERVICE, token, any_type=True) == {
            "console": {
                "instance_uuid": server_id,
                "host": "127.0.0.1",
                "port": echo,
                "internal_access_path": None,
            }
        }
    _user, member = cloud.member("mia", cloud.boot.admin_project_id)
    err = assert_error(compute.client.get(f"{CONSOLES}/{token}", headers=cloud.h(member)), 403)
    assert "compute:console_auth_tokens" in err["message"]
    # A VNC socket does not take a serial token.
    with (
        pytest.raises(REFUSED),
        compute.client.websocket_connect(f"/console/websocket/vnc?token={token}"),
    ):
        pass
    with compute.client.websocket_connect(
        f"/console/websocket/serial?token={token}", subprotocols=["binary"]
    ) as ws:
        assert ws.accepted_subprotocol == "binary"
        assert ws.receive_bytes() == b"login: "
        ws.send_bytes(b"root\n")
        assert ws.receive_bytes() == b"ROOT\n"
        ws.send_text("ls\n")  # text frames are taken too
        assert ws.receive_bytes() == b"LS\n"
    # Used: refused, and gone from the admin's view.
    with (
        pytest.raises(REFUSED),
        compute.client.websocket_connect(f"/console/websocket/serial?token={token}"),
    ):
        pass
    assert_error(compute.client.get(f"{CONSOLES}/{token}", headers=admin), 404)
    assert_error(compute.client.get(f"{CONSOLES}/nonsense", headers=admin), 404)


def test_expired_and_dead_tokens_are_refused(compute: Compute, echo: int) -> None:
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    _report_consoles(compute, server_id, echo)
    urls = [_console(compute, server_id, admin, SERIAL).json()["remote_console"]["url"]]
    urls.append(_console(compute, server_id, admin, SERIAL).json()["remote_console"]["url"])
    expired, live = (_token(u) for u in urls)
    with compute.db.session() as session:
        row = session.get(ConsoleAuthToken, token_hash(expired))
        row.expires_at = dt.datetime(2020, 1, 1)
    with (
        pytest.raises(REFUSED),
        compute.client.websocket_connect(f"/console/websocket/serial?token={expired}"),
    ):
        pass
    with pytest.raises(REFUSED), compute.client.websocket_connect("/console/websocket/serial"):
        pass
    # The guest's console moved (its QEMU restarted on another port): the token is dead.
    _report_consoles(compute, server_id, echo + 1 if echo < 65535 else echo - 1)
    with (
        pytest.raises(REFUSED),
        compute.client.websocket_connect(f"/console/websocket/serial?token={live}"),
    ):
        pass
    # A deleted server's tokens die with it.
    _report_consoles(compute, server_id, echo)
    token = _token(_console(compute, server_id, admin, SERIAL).json()["remote_console"]["url"])
    assert compute.client.delete(f"{SERVERS}/{server_id}", headers=admin).status_code == 204
    with (
        pytest.raises(REFUSED),
        compute.client.websocket_connect(f"/console/websocket/serial?token={token}"),
    ):
        pass
    compute.converge()
    with compute.db.session() as session:
        assert session.query(ConsoleAuthToken).count() == 0


def test_legacy_serial_action_answers_in_the_console_key(compute: Compute, echo: int) -> None:
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    _report_consoles(compute, server_id, echo)
    resp = compute.action(server_id, admin, {"os-getSerialConsole": {"type": "serial"}})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert list(body) == ["console"] and body["console"]["type"] == "serial"
    assert body["console"]["url"].startswith("ws://kumo.test/console/websocket/serial?token=")
    # This host's guest has no VNC server.
    err = assert_error(
        compute.action(server_id, admin, {"os-getVNCConsole": {"type": "novnc"}}), 400
    )
    assert err["message"] == "Unavailable console type novnc."


def test_racing_connections_with_one_token_get_one_console(compute: Compute, echo: int) -> None:
    """Eight proxies consuming one token at the same moment (each in its own transaction,
    as API copies would): exactly one gets the console."""
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    _report_consoles(compute, server_id, echo)
    token = _token(_console(compute, server_id, admin, SERIAL).json()["remote_console"]["url"])
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def proxy() -> None:
        start.wait(timeout=30)
        try:
            with compute.db.session() as session:
                target = consoles.consume(session, token, "serial")
            outcomes.append(f"{target.address}:{target.port}")
        except consoles.Refused:
            outcomes.append("refused")

    threads = [threading.Thread(target=proxy) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == sorted([f"127.0.0.1:{echo}"] + ["refused"] * 7), outcomes


def test_a_page_of_another_site_cannot_open_a_console(compute: Compute, echo: int) -> None:
    """Cross-site websocket hijacking: the Origin must be this cloud's; the token refused for
    that reason is not used up, so the cloud's own page can still open the console."""
    admin = compute.cloud.admin
    server_id = _active(compute, admin)
    _report_consoles(compute, server_id, echo)
    token = _token(_console(compute, server_id, admin, SERIAL).json()["remote_console"]["url"])
    path = f"/console/websocket/serial?token={token}"
    for origin in ("http://evil.example", "null", "http://kumo.test.evil.example"):
        with (
            pytest.raises(REFUSED),
            compute.client.websocket_connect(path, headers={"Origin": origin}),
        ):
            pass
    with compute.client.websocket_connect(path, headers={"Origin": "http://kumo.test"}) as ws:
        assert ws.receive_bytes() == b"login: "


def test_a_signed_in_user_of_another_project_cannot_use_a_consoles_token(
    compute: Compute, echo: int
) -> None:
    """A console URL obtained by the server's project and opened by a browser signed in to
    the dashboard as another project's user: refused, and the token stays unused, so its
    owner (signed in, or with no session at all, as the CLI's URL) still gets the console."""
    cloud = compute.cloud
    admin = cloud.admin
    _user, member = cloud.member("mia", cloud.boot.admin_project_id)
    server_id = _active(compute, cloud.h(member))
    _report_consoles(compute, server_id, echo)
    token = _token(
        _console(compute, server_id, cloud.h(member), SERIAL).json()["remote_console"]["url"]
    )
    path = f"/console/websocket/serial?token={token}"
    _mallory, other = cloud.member("mallory", cloud.project("other")["id"])
    session = {"Cookie": f"{SESSION_COOKIE}={other}"}
    with pytest.raises(REFUSED), compute.client.websocket_connect(path, headers=session):
        pass
    # The owner, signed in: connected (the refusal above used nothing up).
    owner = {"Cookie": f"{SESSION_COOKIE}={member}"}
    with compute.client.websocket_connect(path, headers=owner) as ws:
        assert ws.receive_bytes() == b"login: "
    # An admin's session may open any server's console; a stale cookie is no session.
    for cookie in (admin["X-Auth-Token"], "not-a-token"):
        url = _console(compute, server_id, cloud.h(member), SERIAL).json()["remote_console"]["url"]
        headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
        with compute.client.websocket_connect(
            f"/console/websocket/serial?token={_token(url)}", headers=headers
        ) as ws:
            assert ws.receive_bytes() == b"login: "
