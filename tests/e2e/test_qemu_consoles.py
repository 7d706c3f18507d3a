"""Remote consoles of a real QEMU guest: `openstack console url show` hands out the URLs,
the API's websocket proxy carries the VNC (RFB) and serial bytes, and tokens open one
connection each, for a short time, for the server's own project only."""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_qemu_server import Guests, _require_qemu, create_server, ok, openstack, wait_console
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from computeapi import Api
from kumoproc import Cloud, clean_env, start_cloud, wait_for

pytestmark = [pytest.mark.clients, pytest.mark.timeout(600)]
TTL = 8  # seconds a console token lives in this cloud
SERVERS = "/compute/v2.1/servers"


@pytest.fixture
def console_cloud(tmp_path: Path) -> Iterator[tuple[Cloud, Guests]]:
    _require_qemu()
    state = tmp_path / "state"
    cloud = start_cloud(state, env=clean_env(KUMO_CONSOLES_TOKEN_TTL=str(TTL)))
    guests = Guests(state)
    try:
        yield cloud, guests
    finally:
        cloud.stop()
        guests.cleanup()


class Stream:
    """The bytes of a websocket's binary frames as one stream (RFB messages do not follow
    frame boundaries)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.buffer = ws, b""

    def read(self, n: int, timeout: float = 30.0) -> bytes:
        deadline = time.monotonic() + timeout
        while len(self.buffer) < n:
            frame = self.ws.recv(timeout=max(0.0, deadline - time.monotonic()))
            assert isinstance(frame, bytes), f"a text frame from the proxy: {frame!r}"
            self.buffer += frame
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data


def console_url(cloud: Cloud, kind: str, name: str) -> str:
    """The URL `openstack console url show --novnc|--serial` prints for the server."""
    shown = ok(openstack(cloud, "console", "url", "show", f"--{kind}", name, "-f", "json"))
    url = str(shown.json()["url"])
    assert shown.json()["type"] == ("novnc" if kind == "novnc" else "serial"), shown.json()
    return url


def _vnc_socket(cloud: Cloud, url: str) -> str:
    """The websocket behind a noVNC page URL (the page's own script opens this one)."""
    token = url.rsplit("token=", 1)[1]
    return cloud.url.replace("http://", "ws://") + f"/console/websocket/vnc?token={token}"


def refused(url: str) -> int:
    """The HTTP status the proxy refuses a websocket handshake with."""
    with pytest.raises(InvalidStatus) as refused:
        connect(url, subprotocols=["binary"], open_timeout=30).close()  # type: ignore[list-item]
    return int(refused.value.response.status_code)


class Screen:
    """An RFB 3.8 client (security None) through the proxy that keeps a copy of the guest's
    screen: 8 bits a pixel (true colour, BGR233), raw encoding only, so the bytes are the
    pixels as the guest drew them."""

    PIXEL_FORMAT = struct.pack(">BBBBHHHBBB3x", 8, 8, 0, 1, 7, 7, 3, 0, 3, 6)

    def __init__(self, ws: ClientConnection) -> None:
        self.ws, self.rfb = ws, Stream(ws)
        assert self.rfb.read(12) == b"RFB 003.008\n"
        ws.send(b"RFB 003.008\n")
        count = self.rfb.read(1)[0]
        assert 1 in self.rfb.read(count), "the guest's VNC server offers security type None"
        ws.send(b"\x01")
        assert self.rfb.read(4) == b"\x00\x00\x00\x00"  # SecurityResult: OK
        ws.send(b"\x01")  # ClientInit: shared
        self.width, self.height = struct.unpack(">HH", self.rfb.read(4))
        self.rfb.read(16)  # the server's pixel format: ours replaces it
        (name_length,) = struct.unpack(">I", self.rfb.read(4))
        self.rfb.read(name_length)
        ws.send(b"\x00\x00\x00\x00" + self.PIXEL_FORMAT)  # SetPixelFormat
        ws.send(struct.pack(">BxHi", 2, 1, 0))  # SetEncodings: raw only
        self.pixels = bytearray(self.width * self.height)

    def update(self, incremental: bool, timeout: float = 60.0) -> int:
        """Ask for the screen (whole, or only what changes: then QEMU answers once the
        guest drew something) and apply the answer; returns how many pixels it carried."""
        self.ws.send(struct.pack(">BBHHHH", 3, int(incremental), 0, 0, self.width, self.height))
        while True:
            message_type = self.rfb.read(1, timeout)[0]
            if message_type == 0:  # FramebufferUpdate
                break
            if message_type == 2:  # Bell
                continue
            assert message_type == 3, f"an RFB message of type {message_type}"
            self.rfb.read(3)
            (length,) = struct.unpack(">I", self.rfb.read(4))
            self.rfb.read(length)  # ServerCutText
        (rectangles,) = struct.unpack(">xH", self.rfb.read(3, timeout))
        carried = 0
        for _ in range(rectangles):
            x, y, w, h, encoding = struct.unpack(">HHHHi", self.rfb.read(12, timeout))
            assert encoding == 0, f"an encoding not asked for: {encoding}"
            data = self.rfb.read(w * h, timeout)
            for row in range(h):
                at = (y + row) * self.width + x
                self.pixels[at : at + w] = data[row * w : (row + 1) * w]
            carried += w * h
        return carried


def read_until(ws: ClientConnection, done: Callable[[str], bool], timeout: float = 60) -> str:
    """The text of a serial websocket's frames, read until ``done`` says it is enough."""
    seen, deadline = "", time.monotonic() + timeout
    while not done(seen):
        assert time.monotonic() < deadline, f"not on the serial socket in time: {seen[-500:]!r}"
        frame = ws.recv(timeout=max(0.0, deadline - time.monotonic()))
        assert isinstance(frame, bytes), f"a text frame from the proxy: {frame!r}"
        seen += frame.decode(errors="replace")
    return seen


def alive_counter(text: str) -> int:
    """The last "kumo-guest: alive N" the guest printed (-1: none yet)."""
    numbers = [int(n) for n in re.findall(r"kumo-guest: alive (\d+)", text)]
    return max(numbers) if numbers else -1


def test_vnc_and_serial_consoles_of_a_qemu_guest(
    console_cloud: tuple[Cloud, Guests], tmp_path: Path
) -> None:
    cloud, guests = console_cloud
    server_id = create_server(cloud, tmp_path, "vmc")["id"]
    guests.pid(server_id)
    wait_console(cloud, "vmc", "kumo-guest: hostname vmc")

    # noVNC: the page URL the API hands out, its websocket, the RFB handshake; the screen
    # is the guest's (its display device): text on it, and it changes as the guest goes on.
    page = console_url(cloud, "novnc", "vmc")
    assert page.startswith(f"{cloud.url}/console/vnc?token="), page
    vnc = _vnc_socket(cloud, page)
    with connect(vnc, subprotocols=["binary"], open_timeout=30) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "binary"
        screen = Screen(ws)
        assert screen.update(incremental=False) == screen.width * screen.height > 0
        first = bytes(screen.pixels)
        assert len(set(first)) > 1, "a uniform screen: the guest draws nothing on it"
        deadline = time.monotonic() + 60
        while bytes(screen.pixels) == first:
            assert time.monotonic() < deadline, "the guest's screen never changed"
            screen.update(incremental=True, timeout=max(1.0, deadline - time.monotonic()))
    assert refused(vnc) == 403  # single use

    # An expired token opens nothing. The admin's look-up (404 once it is dead, 401 while
    # it lives: Nova shows VNC tokens only from 2.31) does not use it up.
    stale = _vnc_socket(cloud, console_url(cloud, "novnc", "vmc"))
    admin = Api(cloud.url, cloud.admin_password)
    try:
        lookup = f"/compute/v2.1/os-console-auth-tokens/{stale.rsplit('=', 1)[1]}"
        assert admin.client.get(lookup).status_code == 401
        wait_for(lambda: admin.client.get(lookup).status_code == 404, TTL + 30, "token expiry")
        assert refused(stale) == 403

        # Another project's user cannot get a console URL for the server: 404.
        ok(openstack(cloud, "project", "create", "other"))
        ok(openstack(cloud, "user", "create", "--project", "other", "--password", "pw", "eve"))
        ok(openstack(cloud, "role", "add", "--project", "other", "--user", "eve", "member"))
        eve = Api(cloud.url, "pw", user="eve", project="other")
        try:
            resp = eve.client.post(
                f"{SERVERS}/{server_id}/remote-consoles",
                json={"remote_console": {"protocol": "vnc", "type": "novnc"}},
                headers={"X-OpenStack-Nova-API-Version": "2.6"},
            )
            assert resp.status_code == 404, resp.text
            assert resp.json()["itemNotFound"]["message"] == (
                f"Instance {server_id} could not be found."
            )
        finally:
            eve.close()
    finally:
        admin.close()

    # Serial: Nova's ws:// URL; the guest's output arrives live while console.log keeps
    # being written.
    serial = console_url(cloud, "serial", "vmc")
    parts = urlsplit(serial)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "ws",
        urlsplit(cloud.url).netloc,
        "/console/websocket/serial",
    ), serial
    log = cloud.state_dir / "agent" / "instances" / server_id / "console.log"
    with connect(serial, open_timeout=30) as ws:
        ws.send("\r")  # a text frame, as a terminal sends a key
        live = alive_counter(read_until(ws, lambda text: alive_counter(text) >= 0))
        wait_for(
            lambda: alive_counter(log.read_text(errors="replace")) > live, 60, "console.log grows"
        )
    assert refused(serial) == 403
