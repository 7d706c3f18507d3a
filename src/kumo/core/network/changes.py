"""Wake the agents' network long-polls when a committed transaction changed networking rows.

Why here and not in each handler: ports, bindings, addresses and rules change from many
places (the Neutron API, server create/delete, migrations, interface attach, the DHCP
ports that follow bindings), and a missed call would only show as a slow datapath. A
session hook sees every write, ORM objects and bulk statements alike, and notifies once
per commit. Only an accelerator (DESIGN.md 3.2): agents still resync periodically, and a
write made by another API process wakes nobody here.
"""

from __future__ import annotations

from itertools import chain
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from kumo.core import wakeup

# What kumo.core.network.host_state reads to build a host's datapath. Not `hosts`: its
# heartbeat changes every second and only a host's underlay address matters, which the
# periodic resync picks up.
WATCHED_TABLES = frozenset(
    {
        "networks",
        "subnets",
        "ports",
        "ip_allocations",
        "security_group_rules",
        "port_security_groups",
        "routers",
        "floating_ips",
    }
)
_FLAG = "kumo.network_changed"


def _table_of(obj: Any) -> str | None:
    table = getattr(obj, "__table__", None)
    return getattr(table, "name", None)


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    if session.info.get(_FLAG):
        return
    for obj in chain(session.new, session.dirty, session.deleted):
        if _table_of(obj) in WATCHED_TABLES:
            session.info[_FLAG] = True
            return


def _bulk_statement(state: ORMExecuteState) -> None:
    """``session.execute(update(m.Port)...)`` and friends never pass through a flush."""
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) in WATCHED_TABLES:
        state.session.info[_FLAG] = True


def _after_commit(session: Session) -> None:
    if session.info.pop(_FLAG, False):
        wakeup.notify(wakeup.NETWORK)


def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)


_HOOKS = (
    ("after_flush", _after_flush),
    ("do_orm_execute", _bulk_statement),
    ("after_commit", _after_commit),
    ("after_rollback", _after_rollback),
)


def watch() -> None:
    """Install the hooks (once per process; the API calls it when it starts serving)."""
    for name, hook in _HOOKS:
        if not event.contains(Session, name, hook):
            event.listen(Session, name, hook)
