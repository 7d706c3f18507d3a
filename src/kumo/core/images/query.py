"""The image list query: filters, sort and pagination parameters as Glance reads them.

Sorting happens in Python over the filtered rows so that NULLs (an image without data has
no size) order the same way on SQLite, PostgreSQL and MariaDB.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kumo.core.errors import BadRequest
from kumo.core.images import fields
from kumo.db import models as m

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
SORT_KEYS = (
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
    "visibility",
    "owner",
    "min_disk",
    "min_ram",
    "virtual_size",
)
# Columns filtered by equality (``name=in:a,b`` and ``id=in:a,b`` take a list).
EQUAL_FILTERS = ("name", "id", "status", "owner", "disk_format", "container_format", "size")
NOT_PROPERTY = frozenset(
    {
        "limit",
        "marker",
        "sort",
        "sort_key",
        "sort_dir",
        "visibility",
        "member_status",
        "tag",
        "size_min",
        "size_max",
        "os_hidden",
        "protected",
        "created_at",
        "updated_at",
        *EQUAL_FILTERS,
    }
)


class _Desc:
    """Wraps a sort value so that ascending order on it is descending order on the value."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return bool(other.value < self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)


def _sortable(value: Any) -> tuple[int, Any]:
    # NULL sorts before every value; the tuple keeps types from being compared to None.
    if value is None:
        return (0, "")
    if isinstance(value, dt.datetime):
        return (1, value.isoformat())
    return (1, value)


@dataclass
class ListQuery:
    limit: int = DEFAULT_LIMIT
    marker: str | None = None
    sort: list[tuple[str, str]] = field(default_factory=lambda: [("created_at", "desc")])
    visibility: str | None = None
    member_status: str = "accepted"
    os_hidden: bool | None = False
    equal: dict[str, list[Any]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    size_min: int | None = None
    size_max: int | None = None
    properties: dict[str, str] = field(default_factory=dict)

    def sort_key_of(self, image: m.Image) -> tuple[Any, ...]:
        keys: list[Any] = []
        for key, direction in [*self.sort, ("id", self.sort[-1][1])]:
            value = _sortable(getattr(image, key))
            keys.append(_Desc(value) if direction == "desc" else value)
        return tuple(keys)


def _int(name: str, value: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"{name} param must be an integer") from None
    if number < minimum:
        raise BadRequest(f"{name} param must be positive")
    return number


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise BadRequest(f"Invalid value for {name}: {value}")


def _sort(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
    sort = [v for k, v in items if k == "sort"]
    keys = [v for k, v in items if k == "sort_key"]
    dirs = [v for k, v in items if k == "sort_dir"]
    if sort and (keys or dirs):
        raise BadRequest("The sort and sort_key/sort_dir parameters cannot be combined.")
    pairs: list[tuple[str, str]] = []
    if sort:
        for part in ",".join(sort).split(","):
            key, _, direction = part.strip().partition(":")
            pairs.append((key, direction or "asc"))
    elif keys:
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise BadRequest("Number of sort dirs does not match the number of sort keys")
        for i, key in enumerate(keys):
            pairs.append((key, dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc")))
    elif dirs:
        pairs = [("created_at", dirs[0])]
    else:
        return [("created_at", "desc")]
    for key, direction in pairs:
        if key not in SORT_KEYS:
            raise BadRequest(
                f"Invalid sort key: {key}. It should be one of the following: "
                f"{', '.join(SORT_KEYS)}."
            )
        if direction not in ("asc", "desc"):
            raise BadRequest(f"Invalid sort direction: {direction}")
    return pairs


def _values(key: str, value: str) -> list[Any]:
    raw = value[3:].split(",") if value.startswith("in:") else [value]
    if key == "size":
        return [_int("size", v) for v in raw]
    if key == "id":
        # A malformed id cannot match anything; it must not reach a UUID-typed comparison.
        return [v.strip() for v in raw]
    return [v.strip() if key != "name" else v for v in raw]


def parse(items: Iterable[tuple[str, str]]) -> ListQuery:
    """A ListQuery from query-string pairs (repeated keys kept), or 400 naming the problem."""
    pairs = list(items)
    q = ListQuery(sort=_sort(pairs))
    for key, value in pairs:
        if key == "limit":
            q.limit = min(_int("limit", value), MAX_LIMIT)
        elif key == "marker":
            q.marker = value
        elif key == "visibility":
            if value not in (*fields.VISIBILITIES, "all"):
                raise BadRequest(f"Invalid visibility value: {value}")
            q.visibility = value
        elif key == "member_status":
            if value not in (*fields.MEMBER_STATUSES, "all"):
                raise BadRequest(f"Invalid status value: {value}")
            q.member_status = value
        elif key == "os_hidden":
            q.os_hidden = _bool("os_hidden", value)
        elif key == "tag":
            q.tags.append(value)
        elif key == "size_min":
            q.size_min = _int("size_min", value)
        elif key == "size_max":
            q.size_max = _int("size_max", value)
        elif key in EQUAL_FILTERS:
            if key == "status" and value not in fields.STATUSES:
                raise BadRequest(f"Invalid status value: {value}")
            q.equal[key] = _values(key, value)
        elif key not in NOT_PROPERTY:
            q.properties[key] = value
    if q.size_min is not None and q.size_max is not None and q.size_min > q.size_max:
        raise BadRequest("size_min cannot be greater than size_max")
    return q
