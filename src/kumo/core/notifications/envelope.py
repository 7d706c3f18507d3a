"""The wire format of a notification, as oslo.messaging's messaging v2 driver sends it.

The AMQP body is the JSON object ``{"oslo.version": "2.0", "oslo.message": "<JSON text>"}``
and the inner message has the notifier's keys (``message_id``, ``publisher_id``,
``event_type``, ``priority``, ``payload``, ``timestamp`` as ``str(utcnow())``) plus what
the AMQP driver adds (``_unique_id`` and the request context as ``_context_*`` keys). An
oslo.messaging NotificationListener (or Ceilometer) decodes exactly this. The routing key
is ``<topic>.<priority in lower case>`` on the service's topic exchange.

``message_id`` is chosen here, once per outbox row: a row sent again after a lost
confirm carries the same id, so a consumer can tell the copy.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass
from typing import Any

from kumo.db.types import utcnow

VERSION = "2.0"  # oslo.messaging's _RPC_ENVELOPE_VERSION


@dataclass(frozen=True)
class Origin:
    """Who caused the notification (the request's context, as oslo packs it)."""

    request_id: str | None = None
    user_id: str | None = None
    project_id: str | None = None


def row(
    *,
    exchange: str,
    topic: str,
    priority: str,
    event_type: str,
    publisher_id: str,
    payload: dict[str, Any],
    resource_id: str,
    origin: Origin,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The outbox row of one notification, as the column values of
    kumo.db.outbox_tables.OutboxMessage (written by kumo.core.notifications.write)."""
    now = now or utcnow()
    unique = uuid.uuid4()
    message_id = str(unique)
    inner: dict[str, Any] = {
        "message_id": message_id,
        "publisher_id": publisher_id,
        "event_type": event_type,
        "priority": priority.upper(),
        "payload": payload,
        "timestamp": str(now),
        "_unique_id": unique.hex,
        "_context_request_id": origin.request_id,
        "_context_global_request_id": None,
        "_context_user_id": origin.user_id,
        "_context_project_id": origin.project_id,
        "_context_user": origin.user_id,
        "_context_tenant": origin.project_id,
        "_context_is_admin": False,
        "_context_read_only": False,
        "_context_show_deleted": False,
    }
    envelope = {"oslo.version": VERSION, "oslo.message": json.dumps(inner)}
    return {
        "message_id": message_id,
        "exchange": exchange,
        "routing_key": f"{topic}.{priority.lower()}",
        "event_type": event_type,
        "resource_id": resource_id,
        "envelope": json.dumps(envelope),
        "created_at": now,
    }
