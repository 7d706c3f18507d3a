"""The request flow every Neutron resource's list, create, show, update and delete handlers
share, so that each resource answers the same way: bulk creates, ``fields`` on show,
``If-Match`` revision checks before a change, 201 and 204 where Neutron gives them.

Each resource module keeps its own FastAPI routes (paths, parameters and status codes stay
visible there and in the OpenAPI document) and hands these functions only what differs: the
resource's names, its core callables and how its rows render as views.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from kumo.api.network.common import (
    V2,
    SpecialFilter,
    check_attributes,
    check_revision,
    create_tags,
    list_response,
    resource_items,
    show_fields,
)
from kumo.api.state import AppState
from kumo.core.network import tags
from kumo.core.policy import Context


class Identified(Protocol):
    """A row with an id (every networking model)."""

    @property
    def id(self) -> str: ...


Row = TypeVar("Row")
TaggedRow = TypeVar("TaggedRow", bound=Identified)

Views = list[dict[str, Any]]
# How a resource's core module finds, creates, changes and removes rows for a caller.
Get = Callable[[Session, Context, str], Row]
Find = Callable[[Session, Context], list[Row]]
CreateOne = Callable[[Session, Context, dict[str, Any]], Row]
CreateAll = Callable[[Session, Context, list[dict[str, Any]]], list[Row]]
Update = Callable[[Session, Context, str, dict[str, Any]], Row]
Delete = Callable[[Session, Context, str], None]
# Rows as Neutron shows them to this caller (all at once, so lookups are done once).
Render = Callable[[Session, Context, list[Row]], Views]


@dataclass(frozen=True)
class Resource(Generic[Row]):
    """What the shared handlers need to know of one Neutron resource."""

    singular: str  # the body key of one: "network"
    collection: str  # the body key of many: "networks"
    path: str  # the collection's path under /network/v2.0, for pagination links
    get: Get[Row]  # one row the caller may see, or the resource's 404
    render: Render[Row]


def for_any_caller(render: Callable[[Session, list[Row]], Views]) -> Render[Row]:
    """A renderer whose views do not depend on who asks, in the shape the handlers call."""

    def render_for(session: Session, ctx: Context, rows: list[Row]) -> Views:
        return render(session, rows)

    return render_for


def one_by_one(create_one: CreateOne[Row]) -> CreateAll[Row]:
    """A create of one item used for a whole (bulk) request: the items are made in order,
    in one transaction, so a bulk create is all or nothing."""

    def create_each(session: Session, ctx: Context, items: list[dict[str, Any]]) -> list[Row]:
        return [create_one(session, ctx, item) for item in items]

    return create_each


def tagged(resource_type: str, create_one: CreateOne[TaggedRow]) -> CreateOne[TaggedRow]:
    """Neutron's tag-creation for resources whose core create knows nothing of tags: the
    body's ``tags`` are checked and taken out before ``create_one`` and set on the new row."""

    def create_with_tags(session: Session, ctx: Context, data: dict[str, Any]) -> TaggedRow:
        wanted = create_tags(data)
        row = create_one(session, ctx, data)
        if wanted:
            tags.replace_tags(session, resource_type, row.id, wanted)
        return row

    return create_with_tags


def listing(
    request: Request,
    state: AppState,
    ctx: Context,
    resource: Resource[Row],
    find_rows: Find[Row],
    special: Mapping[str, SpecialFilter] | None = None,
) -> dict[str, Any]:
    """``GET /v2.0/<collection>``: the rows ``find_rows`` gives the caller, rendered, then
    filtered, sorted and paged by Neutron's query parameters."""
    with state.db.session() as session:
        views = resource.render(session, ctx, find_rows(session, ctx))
    self_url = state.config.public_url + V2 + resource.path
    return list_response(
        request.query_params, resource.collection, views, self_url, special=special
    )


def create(
    state: AppState,
    ctx: Context,
    body: Any,
    resource: Resource[Row],
    allowed: Iterable[str],
    create_rows: CreateAll[Row],
) -> JSONResponse:
    """``POST /v2.0/<collection>``, one item or a bulk list: every item's attributes are
    checked before anything is made, then all are made in one transaction (201)."""
    items, bulk = resource_items(body, resource.singular, resource.collection)
    for item in items:
        check_attributes(item, allowed)
    with state.db.session() as session:
        # Copies, so a resource's create may take attributes out of what it is given.
        rows = create_rows(session, ctx, [dict(item) for item in items])
        # The flush fills in the defaults the views show (creation time, revision).
        session.flush()
        views = resource.render(session, ctx, rows)
    if bulk:
        return JSONResponse({resource.collection: views}, status_code=201)
    return JSONResponse({resource.singular: views[0]}, status_code=201)


def show(
    request: Request,
    state: AppState,
    ctx: Context,
    resource: Resource[Row],
    resource_id: str,
    get: Get[Row] | None = None,
) -> dict[str, Any]:
    """``GET /v2.0/<collection>/<id>``, with only the ``fields`` asked for. ``get`` replaces
    the resource's own lookup where showing does more (security groups make the caller's
    default group first, in the same transaction)."""
    with state.db.session() as session:
        row = (get or resource.get)(session, ctx, resource_id)
        view = resource.render(session, ctx, [row])[0]
    return {resource.singular: show_fields(request.query_params, view)}


def update(
    request: Request,
    state: AppState,
    ctx: Context,
    resource: Resource[Row],
    resource_id: str,
    data: dict[str, Any],
    update_row: Update[Row],
) -> dict[str, Any]:
    """``PUT /v2.0/<collection>/<id>`` with ``data`` already checked by the resource:
    refused (412) if ``If-Match`` names a revision the row no longer has."""
    with state.db.session() as session:
        check_revision(request.headers, resource.get(session, ctx, resource_id))
        row = update_row(session, ctx, resource_id, data)
        view = resource.render(session, ctx, [row])[0]
    return {resource.singular: view}


def delete(
    request: Request,
    state: AppState,
    ctx: Context,
    resource: Resource[Row],
    resource_id: str,
    delete_row: Delete,
) -> Response:
    """``DELETE /v2.0/<collection>/<id>`` (204), refused (412) like an update if
    ``If-Match`` names a revision the row no longer has."""
    with state.db.session() as session:
        check_revision(request.headers, resource.get(session, ctx, resource_id))
        delete_row(session, ctx, resource_id)
    return Response(status_code=204)
