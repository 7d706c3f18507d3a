"""Form bodies of the dashboard's own POSTs.

The pages post plain ``application/x-www-form-urlencoded`` forms (htmx sends the same), so
the standard library parses them: no multipart parser is needed for sign-in or actions. The
parsed form is kept on the request so the CSRF check and the page read one body.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request

MAX_FORM_BYTES = 64 * 1024  # the dashboard's forms are small; refuse a large body unread


class FormTooLarge(Exception):
    """The body is larger than any dashboard form."""


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded fields of the request body (the last value of a repeated name)."""
    cached: dict[str, str] | None = getattr(request.state, "kumo_form", None)
    if cached is not None:
        return cached
    fields: dict[str, str] = {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                raise FormTooLarge
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        fields = dict(pairs)
        request.state.kumo_form_pairs = pairs
    request.state.kumo_form = fields
    return fields


async def read_form_list(request: Request, name: str) -> list[str]:
    """Every value of a repeated field (checkboxes, a multiple select), in the form's order."""
    await read_form(request)
    pairs: list[tuple[str, str]] = getattr(request.state, "kumo_form_pairs", [])
    return [value for key, value in pairs if key == name]
