"""Server metadata (/servers/{id}/metadata): free-form key/value pairs on a server.

Metadata is desired state only: no agent acts on it, so a change is a plain row update
(the ``version`` column still turns a lost update into a 409). The metadata_items quota
bounds the whole set, and a locked server refuses changes from its owner, as in Nova.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy.orm import Session

from kumo.core.compute import quotas, servers, states
from kumo.core.errors import BadRequest, Conflict, Forbidden, NotFound
from kumo.core.policy import Context
from kumo.db import models as m

# Nova's parameter_types.metadata: keys of these characters, values strings.
_KEY = re.compile(r"^[a-zA-Z0-9-_:. /]{1,255}$")
# Nova refuses metadata changes in these states (check_instance_state on the compute API).


def validate(items: Any) -> dict[str, str]:
    if not isinstance(items, dict):
        raise BadRequest("Malformed request body: metadata must be an object.")
    for key, value in items.items():
        if not isinstance(key, str) or not _KEY.match(key):
            raise BadRequest(
                f"Invalid input for field/attribute metadata. Value: {items}. "
                f"Invalid metadata key {key!r}: 1 to 255 characters of letters, digits, "
                "spaces and '-_:./' are allowed."
            )
        if not isinstance(value, str) or len(value) > 255:
            raise BadRequest(
                f"Invalid input for field/attribute {key}. Value: {value}. "
                "A string of at most 255 characters is required."
            )
    return dict(items)


def _changeable(session: Session, ctx: Context, server_id: str, verb: str) -> m.Instance:
    instance = servers.get(session, ctx, server_id)
    if instance.locked and not ctx.is_admin:
        raise Conflict(f"Instance {server_id} is locked")
    states.check(verb, instance)
    return instance


def _check_quota(session: Session, instance: m.Instance, wanted: dict[str, str]) -> None:
    limit = quotas.limits(session, instance.project_id)["metadata_items"]
    if limit != quotas.UNLIMITED and len(wanted) > limit:
        raise Forbidden(
            f"Quota exceeded for metadata_items: Requested {len(wanted)}, but the limit is {limit}"
        )


def show(session: Session, ctx: Context, server_id: str) -> dict[str, str]:
    return dict(servers.get(session, ctx, server_id).meta or {})


def show_item(session: Session, ctx: Context, server_id: str, key: str) -> str:
    meta = show(session, ctx, server_id)
    if key not in meta:
        raise NotFound("Metadata item was not found")
    return meta[key]


def update(
    session: Session, ctx: Context, server_id: str, items: Any, replace: bool
) -> dict[str, str]:
    """Merge (POST) or replace (PUT) the server's metadata; returns the whole new set."""
    new = validate(items)
    instance = _changeable(session, ctx, server_id, "update metadata")
    wanted = new if replace else {**(instance.meta or {}), **new}
    _check_quota(session, instance, wanted)
    instance.meta = wanted
    return dict(wanted)


def set_item(session: Session, ctx: Context, server_id: str, key: str, value: Any) -> str:
    """PUT /metadata/{key}; the API checked that the body names that key alone
    (kumo.api.compute.server_metadata.meta_value)."""
    validate({key: value})
    instance = _changeable(session, ctx, server_id, "update metadata")
    wanted = {**(instance.meta or {}), key: value}
    _check_quota(session, instance, wanted)
    instance.meta = wanted
    return str(value)


def delete_item(session: Session, ctx: Context, server_id: str, key: str) -> None:
    instance = _changeable(session, ctx, server_id, "delete metadata")
    meta = dict(instance.meta or {})
    if key not in meta:
        raise NotFound("Metadata item was not found")
    del meta[key]
    instance.meta = meta
