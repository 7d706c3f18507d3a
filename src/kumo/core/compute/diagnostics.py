"""os-server-diagnostics (microversion 2.1 shape: a free-form dict, as Nova's libvirt
driver fills it). kumo's agents do not report per-guest counters, so the answer holds what
the control plane knows for certain: the guest's memory in libvirt's unit (KiB)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from kumo.core.compute import servers
from kumo.core.errors import Conflict
from kumo.core.policy import Context, enforce


def diagnostics(session: Session, ctx: Context, server_id: str) -> dict[str, Any]:
    """Admin only; a server that is not running on a host is 409, as Nova answers."""
    enforce(ctx, "compute:server_diagnostics")
    instance = servers.get(session, ctx, server_id)
    if instance.host_id is None or instance.vm_state != "active":
        raise Conflict(
            f"Cannot 'get_diagnostics' instance {server_id} while it is in "
            f"vm_state {instance.vm_state}"
        )
    memory_kib = int(instance.flavor.get("ram") or 0) * 1024
    return {"memory": memory_kib, "memory-actual": memory_kib}
