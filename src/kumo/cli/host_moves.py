"""`kumo host drain` and `kumo host evacuate`: move every server off a host, showing it.

The moves are kumo.core.compute.host_moves's; this module only drives them and shows them
the same way for both commands: a progress bar on stderr (the servers that ended out of
all, and one line per move in flight with how much of its memory and disk is copied),
a line per server as it ends (so a log or a terminal that is not interactive still sees
the progress), then the summary on stdout (a table, or JSON with ``--format json``): per
server the method, the destination, the result and why. The exit code is 1 when any
server did not move.

The command is a process of its own: the operations it runs wake the agents of the
cloud's serving processes through the database (kumo.runtime.wakeups_across_processes),
and it polls the migrations the agents drive.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from kumo.cli.output import emit, print_error
from kumo.runtime import Runtime, wakeups_across_processes

if TYPE_CHECKING:
    from kumo.core.compute.host_moves import HostMoves, Move
    from kumo.core.policy import Context

RELAY_READY = 10.0  # seconds the command waits for its wake-up relay to see the cloud
POLL = 0.5  # seconds between two looks at the moves in flight
COLUMNS = ["server", "name", "method", "destination", "result", "detail"]


def operator() -> Context:
    """Who the CLI acts as: the cloud's operator, on the database directly."""
    from kumo.core.policy import Context

    return Context(
        user_id="kumo-cli", user_domain_id="default", roles=frozenset({"admin"}), system=True
    )


def drain(
    runtime: Runtime,
    host_ref: str,
    parallel: int,
    cold: bool,
    reason: str | None,
    timeout: float,
    fmt: str,
) -> int:
    """Disable the host, move its servers off, report; the exit code."""
    from kumo.core import operations
    from kumo.core.compute.host_moves import HostMoves, begin_drain
    from kumo.core.errors import KumoError

    if parallel < 1:
        print_error("--parallel must be at least 1")
        return 2
    ctx, config = operator(), runtime.config
    env = operations.Env(config.scheduler, config.hosts.heartbeat_timeout)
    try:
        host = begin_drain(runtime.db, ctx, host_ref, reason, config.hosts.heartbeat_timeout)
        batch = HostMoves(runtime.db, ctx, env, host, parallel=parallel, cold=cold)
    except KumoError as exc:
        print_error(exc.message)
        return 2
    with wakeups_across_processes(runtime.db) as relay:
        if relay is not None:  # a relay sends only once it has seen the serving processes
            relay.wait_listening(RELAY_READY)
        follow(batch, f"draining {batch.host_name}", timeout)
    return report(batch, f"drain {batch.host_name} (disabled)", fmt)


def evacuate(
    runtime: Runtime, host_ref: str, target: str | None, wait: bool, timeout: float, fmt: str
) -> int:
    """One evacuate request per server of a down host, followed until rebuilt (``wait``)."""
    from kumo.core import operations
    from kumo.core.compute import moves
    from kumo.core.compute.host_moves import ACCEPTED, HostMoves, host_to_evacuate
    from kumo.core.errors import KumoError

    ctx, config = operator(), runtime.config
    env = operations.Env(config.scheduler, config.hosts.heartbeat_timeout)
    request = moves.EvacuateRequest(target, None, False)
    try:
        host = host_to_evacuate(runtime.db, ctx, host_ref)
        batch = HostMoves(runtime.db, ctx, env, host, evacuation=request)
    except KumoError as exc:
        print_error(exc.message)
        return 2
    with wakeups_across_processes(runtime.db) as relay:
        if relay is not None:
            relay.wait_listening(RELAY_READY)
        if wait:
            follow(batch, f"evacuating {batch.host_name}", timeout)
        else:
            batch.step()  # every request made at once; the rebuilds go on without us
            for move in batch.in_flight:
                move.result = ACCEPTED
    return report(batch, f"evacuate {batch.host_name}", fmt)


def follow(batch: HostMoves, title: str, timeout: float) -> None:
    """Step the moves until every one ended or ``timeout`` passed (or ^C), with the
    progress bar and a line per server as it ends, on stderr."""
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    from kumo.cli.output import err_console

    deadline = time.monotonic() + timeout
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[count]}"),  # servers done of all, or a move's percentage
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as progress:
        shown = _Shown(progress, batch, title)
        try:
            while True:
                shown.ended(batch.step())
                if not batch.finished and time.monotonic() > deadline:
                    shown.ended(batch.give_up(f"not done after {timeout:.0f} s"))
                shown.refresh()
                if batch.finished:
                    return
                time.sleep(POLL)
        except KeyboardInterrupt:  # the summary still says what moved
            shown.ended(batch.give_up("interrupted (a move in flight goes on)"))


class _Shown:
    """The progress display of one batch: the overall bar, a row per move in flight."""

    def __init__(self, progress: Any, batch: HostMoves, title: str) -> None:
        self.progress, self.batch, self.title = progress, batch, title
        self.overall = progress.add_task(title, total=max(1, len(batch.moves)), count="")
        self.rows: dict[str, Any] = {}  # server -> its row while in flight
        self.done = 0

    def ended(self, moves: list[Move]) -> None:
        for move in moves:
            self.done += 1
            line = _line(move, self.done, len(self.batch.moves))
            self.progress.console.print(line, highlight=False)

    def refresh(self) -> None:
        progress, batch = self.progress, self.batch
        for sid in [sid for sid in self.rows if batch.moves[sid].ended]:
            progress.remove_task(self.rows.pop(sid))
        for move in batch.in_flight:
            label = f"  {move.name or move.server_id} -> {move.destination} ({move.method})"
            if move.server_id not in self.rows:
                self.rows[move.server_id] = progress.add_task(label, total=100, count="")
            percent = 0.0 if move.progress is None else move.progress * 100
            count = "" if move.progress is None else f"{percent:.0f}%"
            progress.update(
                self.rows[move.server_id], description=label, completed=percent, count=count
            )
        counts = ", ".join(f"{n} {r}" for r, n in sorted(batch.counts().items()))
        progress.update(
            self.overall,
            description=f"{self.title}: {counts}" if counts else self.title,
            total=max(1, len(batch.moves)),
            completed=self.done,
            count=f"{self.done}/{len(batch.moves)}",
        )


def _line(move: Move, done: int, total: int) -> Any:
    """One ended move, as the log line above the bar (plain text: a server's name is not
    rich markup)."""
    from rich.text import Text

    where = f" -> {move.destination}" if move.destination else ""
    how = f" ({move.method})" if move.method else ""
    why = f": {move.detail}" if move.detail else ""
    style = "red" if move.failed else "green"
    text = Text(f"[{done}/{total}] ")
    text.append(move.result, style=style)
    text.append(f" {move.name or '-'} {move.server_id}{where}{how}{why}")
    return text


def report(batch: HostMoves, title: str, fmt: str) -> int:
    """The summary, and the exit code: 1 when a server did not move."""
    from kumo.core.compute.host_moves import summary

    moves = list(batch.moves.values())
    heading = f"{title}: {summary(moves) or 'no servers'}"
    emit([mv.row() for mv in moves], COLUMNS, fmt, title=heading)
    return 1 if any(mv.failed for mv in moves) else 0
