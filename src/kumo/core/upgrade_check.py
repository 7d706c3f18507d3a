"""`kumo upgrade check`: is it safe to upgrade now? Each finding is go or no-go with the
command that resolves it, so the exit code alone can gate an automated rollout."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, select

from kumo.core import hosts
from kumo.db import migrate
from kumo.db import models as m
from kumo.db.engine import Database
from kumo.db.size import database_bytes
from kumo.db.types import utcnow


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str


def run(db: Database, backup_dir: Path, heartbeat_timeout: float) -> list[Finding]:
    findings: list[Finding] = []
    st = migrate.status(db)
    expand = [r for r in st.pending if r not in st.pending_contract]
    findings.append(
        Finding(
            "schema",
            True,
            f"at {st.current or 'empty'}; {len(expand)} expand migrations to apply with "
            "`kumo db upgrade`"
            if expand
            else f"at {st.current}, up to date",
        )
    )
    if st.pending_contract:
        findings.append(
            Finding(
                "contract",
                True,
                f"{len(st.pending_contract)} contract "
                "migrations wait for `kumo db contract` once every service "
                "runs this release",
            )
        )
    size = database_bytes(db) if st.current else 0
    backup_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(backup_dir).free
    needed = 2 * size + (64 << 20)
    findings.append(
        Finding(
            "backup space",
            free >= needed,
            f"{free >> 20} MiB free in {backup_dir}, backup needs about {needed >> 20} MiB"
            + ("" if free >= needed else "; free space or set [database] backup_dir"),
        )
    )
    if inspect(db.engine).has_table("instances"):
        with db.session() as session:
            # Only columns every schema with this table has: this runs before upgrading.
            busy = session.execute(
                select(m.Instance.id, m.Instance.task_deadline).where(
                    m.Instance.deleted.is_(False), m.Instance.task_state.is_not(None)
                )
            ).all()
            now = utcnow()
            stuck = [r for r in busy if r.task_deadline is not None and r.task_deadline < now]
        findings.append(
            Finding(
                "transitional states",
                not stuck,
                f"{len(busy)} servers have a task in flight"
                + (
                    f", {len(stuck)} past their deadline: run `kumo db check --repair`"
                    if stuck
                    else " (they finish or time out on their own)"
                    if busy
                    else ""
                ),
            )
        )
    if inspect(db.engine).has_table("hosts"):
        with db.session() as session:
            for status in hosts.list_hosts(session, heartbeat_timeout):
                host = status.host
                speaks = set(host.agent_api_versions or [])
                ok = bool(speaks & set(hosts.SERVED_AGENT_API_VERSIONS))
                findings.append(
                    Finding(
                        f"host {host.name}",
                        ok,
                        f"agent {host.agent_version} speaks {sorted(speaks)}"
                        + (
                            ""
                            if ok
                            else f"; this release serves {hosts.SERVED_AGENT_API_VERSIONS}:"
                            " upgrade that agent first (`kumo host sync`)"
                        ),
                    )
                )
    return findings
