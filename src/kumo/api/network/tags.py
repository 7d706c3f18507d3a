"""/network/v2.0/{collection}/{id}/tags[/{tag}]: Neutron's standard-attr-tag for every
taggable networking resource, over one table of resource kinds that others extend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Depends, Response
from sqlalchemy.orm import Session

from kumo.api.auth import Caller, caller
from kumo.api.body import json_body
from kumo.api.network.common import V2
from kumo.api.state import AppState, app_state
from kumo.core.errors import BadRequest, Forbidden, NotFound
from kumo.core.network import (
    floating_ips,
    networks,
    ports,
    routers,
    security_groups,
    standard,
    subnetpools,
    subnets,
    tags,
)
from kumo.core.network.scope import owns
from kumo.core.policy import Context

router = APIRouter(prefix=V2)

MAX_TAGS = 50

# Finds a resource the caller may see, or raises its NotFound.
Lookup = Callable[[Session, Context, str], Any]


@dataclass(frozen=True)
class Taggable:
    resource_type: str  # network_tags.resource_type: Neutron's collection name
    lookup: Lookup


def _own_only(model: Any, kind: str, label: str) -> Lookup:
    """A lookup for resources only their project (and admins) see."""

    def lookup(session: Session, ctx: Context, resource_id: str) -> Any:
        row = session.get(model, resource_id)
        if row is None or not (ctx.is_admin or row.project_id == ctx.project_id):
            raise NotFound(f"{label} {resource_id} could not be found.", kind=kind)
        return row

    return lookup


# URL collection -> how to find one of its resources.
TAGGABLE: dict[str, Taggable] = {
    "networks": Taggable(networks.RESOURCE, networks.get_network),
    "subnets": Taggable(subnets.RESOURCE, subnets.get_subnet),
    "ports": Taggable(ports.RESOURCE, ports.get_port),
    "subnetpools": Taggable(subnetpools.RESOURCE, subnetpools.get_subnetpool),
    "routers": Taggable(routers.TAG_TYPE, routers.get_router),
    "floatingips": Taggable(floating_ips.TAG_TYPE, floating_ips.get_floating_ip),
    "security-groups": Taggable(security_groups.TAG_TYPE, security_groups.get_group),
}


def _find(collection: str) -> Taggable:
    found = TAGGABLE.get(collection)
    if found is None:
        raise NotFound(f"The resource could not be found: {collection} cannot be tagged.")
    return found


def _writable(session: Session, ctx: Context, collection: str, resource_id: str) -> Any:
    row = _find(collection).lookup(session, ctx, resource_id)
    if not owns(ctx, row.project_id):
        raise Forbidden(f"(rule:update_{collection}_tags) is disallowed by policy")
    return row


def _current(session: Session, collection: str, resource_id: str) -> list[str]:
    return tags.tags_of(session, _find(collection).resource_type, [resource_id])[resource_id]


@router.get("/{collection}/{resource_id}/tags")
def list_tags(
    collection: str,
    resource_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    with state.db.session() as session:
        _find(collection).lookup(session, who.ctx, resource_id)
        return {"tags": _current(session, collection, resource_id)}


@router.get("/{collection}/{resource_id}/tags/{tag}")
def check_tag(
    collection: str,
    resource_id: str,
    tag: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    with state.db.session() as session:
        _find(collection).lookup(session, who.ctx, resource_id)
        if tag not in _current(session, collection, resource_id):
            raise _tag_not_found(tag, resource_id)
    return Response(status_code=204)


def _tag_not_found(tag: str, resource_id: str) -> NotFound:
    return NotFound(f"Tag {tag} could not be found for resource {resource_id}.", kind="TagNotFound")


@router.put("/{collection}/{resource_id}/tags")
def replace_tags(
    collection: str,
    resource_id: str,
    body: Any = Depends(json_body),
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
        raise BadRequest('Invalid input for tags: the body must be {"tags": [...]}.')
    if len(set(body["tags"])) > MAX_TAGS:
        raise BadRequest(f"Invalid input for tags: at most {MAX_TAGS} tags.")
    with state.db.session() as session:
        row = _writable(session, who.ctx, collection, resource_id)
        result = tags.replace_tags(
            session, _find(collection).resource_type, resource_id, body["tags"]
        )
        standard.touch(row)
    return {"tags": result}


@router.put("/{collection}/{resource_id}/tags/{tag}")
def add_tag(
    collection: str,
    resource_id: str,
    tag: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    tags.check_tag(tag)
    with state.db.session() as session:
        row = _writable(session, who.ctx, collection, resource_id)
        current = _current(session, collection, resource_id)
        if tag not in current:
            if len(current) >= MAX_TAGS:
                raise BadRequest(f"Invalid input for tags: at most {MAX_TAGS} tags.")
            tags.replace_tags(
                session, _find(collection).resource_type, resource_id, [*current, tag]
            )
            standard.touch(row)
    return Response(status_code=201)


@router.delete("/{collection}/{resource_id}/tags")
def delete_tags(
    collection: str,
    resource_id: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    with state.db.session() as session:
        row = _writable(session, who.ctx, collection, resource_id)
        tags.drop_tags(session, _find(collection).resource_type, resource_id)
        standard.touch(row)
    return Response(status_code=204)


@router.delete("/{collection}/{resource_id}/tags/{tag}")
def delete_tag(
    collection: str,
    resource_id: str,
    tag: str,
    who: Caller = Depends(caller),
    state: AppState = Depends(app_state),
) -> Response:
    with state.db.session() as session:
        row = _writable(session, who.ctx, collection, resource_id)
        current = _current(session, collection, resource_id)
        if tag not in current:
            raise _tag_not_found(tag, resource_id)
        tags.replace_tags(
            session, _find(collection).resource_type, resource_id, [t for t in current if t != tag]
        )
        standard.touch(row)
    return Response(status_code=204)
