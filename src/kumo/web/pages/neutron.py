"""What the network pages share: Neutron v2.0 calls as the openstack CLI makes them, the
page frame, and reading their forms.

Every network page is a thin view of Neutron: a list or show call to draw, one create,
update or delete call per form. A refused call is shown on the page the form came from, in
Neutron's own words (its ``NeutronError`` message), with Neutron's status; a form that worked
redirects (303) so reloading the page does not post it again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

from kumo.web.apiclient import ApiClient, segment
from kumo.web.layout import frame
from kumo.web.session import current

NETWORK = "/network/v2.0"


def _key(collection: str) -> str:
    """The body key of a collection's path: ``security-groups`` is ``security_groups``."""
    return collection.replace("-", "_")


async def listed(api: ApiClient, collection: str, **params: str) -> list[dict[str, Any]]:
    """``GET /v2.0/<collection>`` with Neutron's filters (e.g. ``network_id``)."""
    body = await api.get(f"{NETWORK}/{collection}", params=params or None)
    found: list[dict[str, Any]] = body[_key(collection)]
    return found


async def owned(
    api: ApiClient, collection: str, project_id: str | None, **params: str
) -> list[dict[str, Any]]:
    """The project's own resources of a collection (``--project`` in the CLI): Neutron
    lists every project's to an admin, and a project's page shows its project."""
    return await listed(
        api, collection, **params, **({"project_id": project_id} if project_id else {})
    )


async def project_networks(
    api: ApiClient, project_id: str | None, **params: str
) -> list[dict[str, Any]]:
    """The networks a project can use, as Horizon's project view shows them: its own plus
    the shared and the external ones (three Neutron calls, together, without duplicates)."""
    found = await asyncio.gather(
        owned(api, "networks", project_id, **params),
        listed(api, "networks", shared="true", **params),
        listed(api, "networks", **{"router:external": "true"}, **params),
    )
    unique = {str(n["id"]): n for group in found for n in group}
    return list(unique.values())


async def external_networks(api: ApiClient) -> list[dict[str, Any]]:
    """The networks a router's gateway or a floating IP can be on: Neutron's external ones."""
    found = await listed(api, "networks", **{"router:external": "true"})
    return sorted(found, key=lambda n: str(n.get("name") or n["id"]))


async def project_id_of(api: ApiClient) -> str | None:
    """The project of the session's token (Keystone's validation)."""
    return (await current(api)).project_id


async def shown(api: ApiClient, collection: str, item_id: str) -> dict[str, Any]:
    """One resource, by its collection (``networks``) and id; Neutron's 404 is raised."""
    body = await api.get(item_path(collection, item_id))
    found: dict[str, Any] = body[_key(collection)[:-1]]
    return found


async def created(api: ApiClient, collection: str, attrs: dict[str, Any]) -> dict[str, Any]:
    singular = _key(collection)[:-1]
    response = await api.call("POST", f"{NETWORK}/{collection}", json={singular: attrs})
    found: dict[str, Any] = response.json()[singular]
    return found


async def updated(
    api: ApiClient, collection: str, item_id: str, attrs: dict[str, Any]
) -> dict[str, Any]:
    singular = _key(collection)[:-1]
    response = await api.call("PUT", item_path(collection, item_id), json={singular: attrs})
    found: dict[str, Any] = response.json()[singular]
    return found


async def deleted(api: ApiClient, collection: str, item_id: str) -> None:
    await api.call("DELETE", item_path(collection, item_id))


async def framed(request: Request, api: ApiClient, title: str) -> dict[str, Any]:
    """The frame of a page (session, projects, navigation) and its title."""
    session, projects = await asyncio.gather(current(api), api.my_projects())
    return {**frame(request, session, projects), "title": title}


def text(form: dict[str, str], name: str) -> str:
    return form.get(name, "").strip()


def number(value: str) -> int | str:
    """A whole number as one, anything else as typed: Neutron says what is wrong with it."""
    return int(value) if value.isdigit() else value


def words(value: str) -> list[str]:
    """A list typed as words separated by commas or spaces (DNS servers, labels)."""
    return [w for w in value.replace(",", " ").split() if w]


def item_path(collection: str, item_id: str, action: str = "") -> str:
    """The API path of one resource (or its ``action``): the page's id is one quoted path
    segment, so a crafted id cannot reach another API path."""
    return f"{NETWORK}/{collection}/{segment(item_id)}" + (f"/{action}" if action else "")


def names_by_id(items: list[dict[str, Any]]) -> dict[str, str]:
    return {str(i["id"]): str(i.get("name") or i["id"]) for i in items}
