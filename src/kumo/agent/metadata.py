"""The metadata service guests reach at 169.254.169.254, one small HTTP server per network
with DHCP on this host, listening inside that network's DHCP namespace.

A request is answered for the server whose address it comes from (the agent API resolves
network + source address to the server, bound to this host only), with the same
documents as its config drive: OpenStack's ``/openstack/<version>/...`` and the EC2-style
``/<version>/meta-data/...`` and ``user-data``. Nothing is cached: a change of keys or
metadata shows at once.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from kumo.agent.spec import config_drive_data
from kumo.drivers.configdrive import metadata_files

log = logging.getLogger(__name__)

OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
                      "2016-10-06", "2017-02-22", "2018-08-27", "latest")  # fmt: skip
EC2_VERSIONS = ("1.0", "2007-01-19", "2009-04-04", "latest")


def documents(item: dict[str, Any]) -> dict[str, bytes]:
    """Path (without the leading slash) -> body, for everything a guest may ask for."""
    data = config_drive_data(item)
    files = metadata_files(data)
    docs: dict[str, bytes] = {}
    latest = {k.split("/", 2)[2]: v for k, v in files.items() if k.startswith("openstack/latest/")}
    for version in OPENSTACK_VERSIONS:
        for name, body in latest.items():
            docs[f"openstack/{version}/{name}"] = body
        docs[f"openstack/{version}"] = "\n".join(sorted(latest)).encode()
    docs["openstack"] = "\n".join(OPENSTACK_VERSIONS).encode()
    ec2_json = next((v for k, v in files.items() if k.endswith("meta-data.json")), b"{}")
    ec2: dict[str, Any] = json.loads(ec2_json)
    for version in EC2_VERSIONS:
        prefix = f"{version}/meta-data"
        keys = []
        for key, value in sorted(ec2.items()):
            if isinstance(value, dict):
                if key == "public-keys":
                    entries = [f"{i}={name}" for i, name in enumerate(value)]
                    docs[f"{prefix}/public-keys"] = "\n".join(entries).encode()
                    for i, name in enumerate(value):
                        docs[f"{prefix}/public-keys/{i}"] = b"openssh-key"
                        docs[f"{prefix}/public-keys/{i}/openssh-key"] = str(value[name]).encode()
                    keys.append("public-keys/")
                continue
            docs[f"{prefix}/{key}"] = str(value).encode()
            keys.append(key)
        docs[prefix] = "\n".join(keys).encode()
        if data.user_data is not None:
            docs[f"{version}/user-data"] = data.user_data
        docs[version] = b"meta-data\n" + (b"user-data" if data.user_data is not None else b"")
    docs[""] = "\n".join(EC2_VERSIONS).encode()
    return docs


class _Handler(BaseHTTPRequestHandler):
    server: _MetadataHTTPServer

    def do_GET(self) -> None:
        try:
            item = self.server.lookup(self.client_address[0])
        except LookupError:
            self._answer(404, b"Not Found\n")
            return
        except Exception as exc:  # the agent API unreachable: the guest may retry
            log.warning("metadata: %s", exc)
            self._answer(503, b"Service Unavailable\n")
            return
        path = self.path.split("?", 1)[0].strip("/")
        body = documents(item).get(path)
        if body is None:
            self._answer(404, b"Not Found\n")
        else:
            kind = "application/json" if path.endswith(".json") else "text/plain"
            self._answer(200, body, kind)

    def _answer(self, status: int, body: bytes, kind: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metadata: " + format, *args)


class _MetadataHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, sock: socket.socket, lookup: Any) -> None:
        super().__init__(sock.getsockname()[:2], _Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock
        self.lookup = lookup


class MetadataService:
    """One server per network with metadata on this host; kept in step with the spec."""

    def __init__(self, client: httpx.Client, api: str, host_id: str) -> None:
        self.client = client
        self.api = api
        self.host_id = host_id
        self._servers: dict[str, tuple[_MetadataHTTPServer, threading.Thread]] = {}

    def _lookup(self, network_id: str, ip: str) -> dict[str, Any]:
        response = self.client.get(
            f"{self.api}/hosts/{self.host_id}/metadata",
            params={"network_id": network_id, "ip": ip},
        )
        if response.status_code == 404:
            raise LookupError(ip)
        response.raise_for_status()
        item: dict[str, Any] = response.json()["item"]
        return item

    def ensure(self, network_ids: set[str], open_socket: Any) -> None:
        """Serve exactly these networks; ``open_socket(network_id)`` gives a listening
        socket inside the network's DHCP namespace."""
        for network_id in sorted(set(self._servers) - network_ids):
            server, thread = self._servers.pop(network_id)
            server.shutdown()
            server.server_close()
            thread.join(5)
        for network_id in sorted(network_ids - set(self._servers)):
            try:
                sock = open_socket(network_id)
            except Exception as exc:
                log.warning("metadata for network %s not served: %s", network_id, exc)
                continue
            server = _MetadataHTTPServer(sock, lambda ip, n=network_id: self._lookup(n, ip))
            thread = threading.Thread(
                target=server.serve_forever, name=f"metadata-{network_id[:8]}", daemon=True
            )
            thread.start()
            self._servers[network_id] = (server, thread)

    def close(self) -> None:
        self.ensure(set(), lambda _n: None)
