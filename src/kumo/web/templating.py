"""Jinja2 templates of the dashboard (kumo/web/templates), autoescaped, rendered to HTML."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

import kumo
from kumo.web import formatting, server_states

TEMPLATES = Path(__file__).parent / "templates"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,  # a misspelt name fails the test, not the page silently
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["age"] = formatting.age
_env.filters["addresses"] = formatting.addresses
_env.globals["version"] = kumo.__version__
_env.globals["server_actions"] = server_states.offered

# Every template may test these; pages that have them pass their own.
DEFAULTS: dict[str, Any] = {
    "session": None,
    "csrf_token": "",
    "projects": [],
    "nav": [],
    "admin_nav": [],
    "title": "kumo",
}


def render_text(name: str, **context: Any) -> str:
    return _env.get_template(name).render({**DEFAULTS, **context})


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The template as a response (security headers come from kumo.web.routing)."""
    return HTMLResponse(
        render_text(name, request=request, **context), status_code=status, headers=headers
    )
