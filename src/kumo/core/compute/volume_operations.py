"""Attaching and detaching a server's volumes as lifecycle operations
(kumo.core.operations): recorded as the server's ``attach_volume`` / ``detach_volume``
instance actions, the server's agent woken to hot-plug; an action with nothing left for
an agent (no host, or the attachment is already gone) is finished at once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from kumo.core.compute import servers
from kumo.core.errors import Conflict
from kumo.core.operations import Env, Operation, Result
from kumo.core.policy import Context
from kumo.core.volume import attachments
from kumo.db import models as m


@dataclass(frozen=True)
class VolumeRequest:
    server_id: str
    volume_id: str
    shelved_too: bool  # a shelved server's volumes change too (the API's 2.20 and later)


@dataclass(frozen=True)
class Attach(VolumeRequest):
    device: Any = None


def _server(session: Session, ctx: Context, req: VolumeRequest, action: str) -> m.Instance:
    """The server, whose lock and state the runner checked; before 2.20 a shelved one's
    volumes do not change."""
    instance = servers.get(session, ctx, req.server_id)
    if instance.vm_state in ("shelved", "shelved_offloaded") and not req.shelved_too:
        raise Conflict(
            f"Cannot '{action}' instance {instance.id} while it is in vm_state {instance.vm_state}"
        )
    return instance


def _attach(session: Session, ctx: Context, req: Attach, env: Env) -> Result[m.VolumeAttachment]:
    instance = _server(session, ctx, req, "attach_volume")
    row = attachments.attach(session, ctx, instance, req.volume_id, req.device)
    return Result(row, instance, finished=instance.host_id is None)


def _detach(
    session: Session, ctx: Context, req: VolumeRequest, env: Env
) -> Result[m.VolumeAttachment]:
    instance = _server(session, ctx, req, "detach_volume")
    row = attachments.detach(session, instance, req.volume_id)
    return Result(row, instance, finished=row.deleted)


ATTACH_VOLUME = Operation(
    "attach_volume", Attach, _attach, transition="attach_volume", checks_lock=True
)
DETACH_VOLUME = Operation(
    "detach_volume", VolumeRequest, _detach, transition="detach_volume", checks_lock=True
)
