"""Helpers of the network pages' in-process tests: a member of the demo project signed in,
posting the dashboard's forms with the session's CSRF token, and Neutron set up by the API."""

from __future__ import annotations

import html as html_module
import re
from typing import Any

from kumo.web import csrf

from netapi import V2, network, subnet
from visitor import Visitor

MEMBER, MEMBER_PASSWORD = "mia", "mia-pw"


def member(cloud: Any, visitor: Visitor) -> dict[str, str]:
    """Sign ``visitor`` in as a member of the demo project; the member's API headers."""
    project_id = cloud.boot.demo_project_id
    cloud.user(MEMBER, MEMBER_PASSWORD, project_id=project_id)
    resp = visitor.sign_in(MEMBER, MEMBER_PASSWORD)
    assert resp.status_code == 303, resp.text
    return {"X-Auth-Token": visitor.session_token}


def post(visitor: Visitor, path: str, **fields: str) -> Any:
    """A dashboard form post with the session's CSRF token."""
    data = {"csrf_token": csrf.token_for(visitor.session_token), **fields}
    return visitor.http.post(path, data=data)


def alert(html: str) -> str:
    """The text of the page's error shown in place (role=alert)."""
    found = re.search(r'role="alert">([^<]*)<', html)
    assert found, html[:3000]
    return html_module.unescape(found.group(1))


def neutron_error(resp: Any) -> str:
    return str(resp.json()["NeutronError"]["message"])


def public_network(cloud: Any) -> dict[str, Any]:
    """An external network ``public`` with a subnet, as ``kumo up`` makes (by the admin)."""
    public = network(cloud, cloud.admin, name="public", **{"router:external": True})
    subnet(cloud, cloud.admin, public["id"], "203.0.113.0/24", name="public-subnet")
    return public


def get(cloud: Any, headers: dict[str, str], path: str) -> Any:
    return cloud.client.get(f"{V2}/{path}", headers=headers)
