"""Whose a networking resource is: the project a create request names (admins may name
another), and which rows a caller may see."""

from __future__ import annotations

from typing import Any

from kumo.core.errors import BadRequest
from kumo.core.policy import Context


def owner_project(ctx: Context, attrs: dict[str, Any]) -> str:
    """The project a new resource belongs to: the caller's, or (admins only) the
    ``project_id``/``tenant_id`` of the request, as Neutron's API layer decides."""
    given = [attrs[k] for k in ("project_id", "tenant_id") if attrs.get(k) is not None]
    for value in given:
        if not isinstance(value, str) or not value or len(value) > 255:
            raise BadRequest(f"Invalid input for project_id. Reason: '{value}' is not valid.")
    named = set(given)
    if len(named) > 1:
        raise BadRequest("'project_id' and 'tenant_id' do not match")
    project = named.pop() if named else ctx.project_id
    if project != ctx.project_id and not ctx.is_admin:
        raise BadRequest(
            "Specifying 'project_id' or 'tenant_id' other than the authenticated project "
            "in request requires admin privileges"
        )
    if not project:
        raise BadRequest("A project is required: scope the token to a project or name one.")
    return project


def owns(ctx: Context, project_id: str) -> bool:
    """The caller may change a resource of ``project_id``."""
    return ctx.is_admin or (ctx.project_id is not None and ctx.project_id == project_id)
