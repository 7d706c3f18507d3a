"""What every Neutron resource shares: request bodies (single and bulk), attribute checks,
the standard attributes of a view, and Neutron's list semantics (filters, ``fields``,
sorting, limit/marker pagination with links, tag filters).

Listing works on rendered views: the SQL layer scopes rows to what the caller may see, and
this module applies Neutron's query language to the views, so every resource answers the
same query parameters the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from kumo.core.errors import BadRequest, NotFound, PreconditionFailed

V2 = "/network/v2.0"

# Query parameters that steer listing rather than filter it.
CONTROL_PARAMS = frozenset(
    {"fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse"}
    | {"tags", "tags-any", "not-tags", "not-tags-any"}
)

# A resource-specific filter: given the view and the requested values, keep it or not.
SpecialFilter = Callable[[dict[str, Any], list[str]], bool]


def neutron_time(value: dt.datetime | None) -> str | None:
    """Neutron's timestamps: seconds, Z."""
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def standard_attrs(row: Any, tags: Iterable[str] = ()) -> dict[str, Any]:
    """The attributes every Neutron resource carries (project, description, revision, times,
    tags); ``row`` is any networking model."""
    return {
        "project_id": row.project_id,
        "tenant_id": row.project_id,
        "description": row.description,
        "revision_number": row.revision_number,
        "created_at": neutron_time(row.created_at),
        "updated_at": neutron_time(row.updated_at),
        "tags": sorted(tags),
    }


def resource_items(body: Any, singular: str, plural: str) -> tuple[list[dict[str, Any]], bool]:
    """The objects of a create request and whether it was a bulk one
    (``{"network": {...}}`` or ``{"networks": [{...}, ...]}``)."""
    if isinstance(body, dict) and plural in body and singular not in body:
        items = body[plural]
        if not isinstance(items, list) or not items:
            raise BadRequest(f"Bulk operation requires a non-empty list of {plural}.")
        if not all(isinstance(item, dict) for item in items):
            raise BadRequest(f"Each item of {plural} must be an object.")
        return items, True
    return [resource_body(body, singular)], False


def resource_body(body: Any, singular: str) -> dict[str, Any]:
    """``body[singular]`` as an object, or Neutron's 400."""
    if not isinstance(body, dict) or singular not in body:
        raise BadRequest(f"Resource body required: {singular}.")
    value = body[singular]
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid format for {singular}: it must be an object.")
    return value


def check_attributes(data: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Neutron refuses attributes it does not know, naming them."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise BadRequest("Unrecognized attribute(s) '{}'".format(", ".join(unknown)))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _matches(view: dict[str, Any], key: str, wanted: list[str]) -> bool:
    value = view.get(key)
    if isinstance(value, bool):
        return any(w.strip().lower() in (_text(value), "1" if value else "0") for w in wanted)
    if isinstance(value, list):
        return any(_text(v) in wanted for v in value)
    if value is None:
        return any(w in ("", "None", "null") for w in wanted)
    return _text(value) in wanted


def _tag_set(q: QueryParams, name: str) -> set[str]:
    return {t for raw in q.getlist(name) for t in raw.split(",") if t}


def _keep_tags(view: dict[str, Any], q: QueryParams) -> bool:
    tags = set(view.get("tags") or ())
    if (want := _tag_set(q, "tags")) and not want <= tags:
        return False
    if (any_of := _tag_set(q, "tags-any")) and not (any_of & tags):
        return False
    if (not_all := _tag_set(q, "not-tags")) and not_all <= tags:
        return False
    return not ((none_of := _tag_set(q, "not-tags-any")) and (none_of & tags))


def _sort_key(value: Any) -> tuple[int, Any]:
    # None sorts first; numbers before text so mixed columns still compare.
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def _sorted(items: list[dict[str, Any]], q: QueryParams) -> list[dict[str, Any]]:
    keys = q.getlist("sort_key")
    dirs = q.getlist("sort_dir")
    if len(dirs) > len(keys):
        raise BadRequest("The number of sort_keys and sort_dirs must be same.")
    if not keys:
        return items
    known = set(items[0]) if items else set()
    for key in keys:
        if items and key not in known:
            raise BadRequest(f"{key} is an invalid attribute for sort_keys")
    for direction in dirs:
        if direction not in ("asc", "desc"):
            raise BadRequest(
                f"{direction} is an invalid value for sort_dirs, valid values are 'asc' and 'desc'"
            )
    result = items
    # Stable sorts from the last key to the first give a lexicographic order.
    for i in reversed(range(len(keys))):
        key = keys[i]
        reverse = i < len(dirs) and dirs[i] == "desc"
        result = sorted(result, key=lambda v: _sort_key(v.get(key)), reverse=reverse)
    return result


def _int_param(q: QueryParams, name: str) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadRequest(f"Invalid value '{raw}' for {name}: an integer is required.") from exc
    if value < 0:
        raise BadRequest(f"Invalid value '{raw}' for {name}: it must not be negative.")
    return value


def list_response(
    q: QueryParams,
    collection: str,
    views: list[dict[str, Any]],
    self_url: str,
    special: Mapping[str, SpecialFilter] | None = None,
    ignore: Iterable[str] = (),
) -> dict[str, Any]:
    """Neutron's answer to ``GET /v2.0/<collection>?...`` over the caller-visible views.

    Any other query parameter naming an attribute filters on it (repeated = any of);
    ``special`` handles parameters that are not plain attributes (``fixed_ips``), and
    ``ignore`` lists parameters the resource accepts without filtering on them.
    """
    special = special or {}
    skip = CONTROL_PARAMS | set(ignore)
    filters = [(k, q.getlist(k)) for k in dict.fromkeys(q.keys()) if k not in skip]
    kept = []
    for view in views:
        if not _keep_tags(view, q):
            continue
        ok = True
        for key, wanted in filters:
            if key in special:
                ok = special[key](view, wanted)
            elif key in view:
                ok = _matches(view, key, wanted)
            if not ok:
                break
        if ok:
            kept.append(view)
    ordered = _sorted(kept, q)
    limit = _int_param(q, "limit")
    marker = q.get("marker")
    reverse = q.get("page_reverse", "").lower() == "true"
    links: list[dict[str, str]] = []
    if limit is not None or marker:
        if limit is not None and not q.getlist("sort_key"):
            ordered = sorted(ordered, key=lambda v: str(v.get("id")))
        if reverse:
            ordered = list(reversed(ordered))
        start = 0
        if marker:
            ids = [v.get("id") for v in ordered]
            if marker not in ids:
                # Neutron answers 404 when the marker names nothing the caller may see.
                raise NotFound(f"Marker {marker} could not be found.")
            start = ids.index(marker) + 1
        page = ordered[start : start + limit] if limit else ordered[start:]
        if limit and len(page) == limit and page:
            links.append({"rel": "next", "href": _page_url(self_url, q, page[-1]["id"], reverse)})
        if marker and page:
            links.append(
                {"rel": "previous", "href": _page_url(self_url, q, page[0]["id"], not reverse)}
            )
        if reverse:
            page = list(reversed(page))
            links.reverse()
        ordered = page
    fields = [f for raw in q.getlist("fields") for f in raw.split(",") if f]
    if fields:
        ordered = [{k: v[k] for k in fields if k in v} for v in ordered]
    body: dict[str, Any] = {collection: ordered}
    if links:
        body[f"{collection}_links"] = links
    return body


def _page_url(self_url: str, q: QueryParams, marker: str, reverse: bool) -> str:
    params = [(k, v) for k, v in q.multi_items() if k not in ("marker", "page_reverse")]
    params.append(("marker", marker))
    if reverse:
        params.append(("page_reverse", "True"))
    return f"{self_url}?{urlencode(params)}"


def show_fields(q: QueryParams, view: dict[str, Any]) -> dict[str, Any]:
    """``GET /v2.0/<collection>/<id>?fields=...``: only the fields asked for."""
    fields = [f for raw in q.getlist("fields") for f in raw.split(",") if f]
    return {k: view[k] for k in fields if k in view} if fields else view


def check_update_attributes(
    data: Mapping[str, Any], updatable: Iterable[str], known: Iterable[str]
) -> None:
    """Neutron's update checks: unknown attributes are unrecognized, known ones that cannot
    change are read-only."""
    check_attributes(data, set(updatable) | set(known))
    fixed = sorted(set(data) - set(updatable))
    if fixed:
        raise BadRequest(f"Cannot update read-only attribute {', '.join(fixed)}")


def check_revision(request_headers: Mapping[str, str], row: Any) -> None:
    """``If-Match: revision_number=N``: refuse (412) an update of a resource that changed
    since the client read revision N."""
    raw = request_headers.get("if-match")
    if not raw:
        return
    for part in raw.split(","):
        part = part.strip()
        if not part.startswith("revision_number="):
            continue
        wanted = part.split("=", 1)[1].strip()
        if not wanted.isdigit():
            raise BadRequest(f"Invalid If-Match header: {raw}")
        if int(wanted) != row.revision_number:
            raise PreconditionFailed(
                f"Constrained to revision {wanted}, but the current revision is "
                f"{row.revision_number}: read the resource again and retry.",
                kind="RevisionNumberConstraintFailed",
            )


def create_tags(data: dict[str, Any]) -> list[str] | None:
    """``tags`` given in a create body (Neutron's tag-creation), removed from ``data``."""
    if "tags" not in data:
        return None
    raw = data.pop("tags")
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest(f"Invalid input for tags. Reason: '{raw}' is not a list.")
    return raw
