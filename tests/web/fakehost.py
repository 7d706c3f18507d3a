"""A fake-hypervisor host for the dashboard's in-process tests: the compute API tests' own
(tests/api/test_servers.py: scheduler + agent loop with the fake driver), so servers really
reach ACTIVE and actions really run, without a second copy of that machinery."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))
from test_servers import SERVERS, Compute

__all__ = ["SERVERS", "Compute", "active_server"]


def active_server(compute: Compute, headers: dict[str, str], name: str = "vm") -> str:
    """A server created through Nova and run by the fake host until ACTIVE; its id."""
    resp = compute.create(headers, name=name)
    assert resp.status_code == 202, resp.text
    server_id = str(resp.json()["server"]["id"])
    compute.converge()
    assert compute.show(server_id, headers)["status"] == "ACTIVE"
    return server_id
