"""`kumo`: run the cloud and operate it. Every command accepts --state-dir and --config.

Every command imports what it uses inside its function; this module imports only typer,
the standard library and the CLI's small helpers, so that `kumo --help` or `kumo host list`
does not pay for the API, the controller, the configuration's pydantic models or rich
tables it does not use (bench/README.md, "CLI start"; tests/cli/test_cli_imports.py).
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

import kumo
from kumo.cli import owner
from kumo.cli.options import SERVICES, GlobalOptionsGroup, configure_logging, record
from kumo.cli.output import emit, print_error
from kumo.cli.usage import usage_app
from kumo.runtime import NotReady, Runtime, prepare_state_dir, wakeups_across_processes

if TYPE_CHECKING:
    from kumo.config import Config

app = typer.Typer(
    cls=GlobalOptionsGroup,
    no_args_is_help=True,
    add_completion=False,
    help="kumo: an IaaS private cloud with OpenStack APIs.",
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema, backups and checks.")
host_app = typer.Typer(no_args_is_help=True, help="Hypervisor hosts.")
upgrade_app = typer.Typer(no_args_is_help=True, help="Rolling upgrades.")
serve_app = typer.Typer(no_args_is_help=True, help="Run one kumo service (multi-process).")
app.add_typer(db_app, name="db")
app.add_typer(host_app, name="host")
app.add_typer(serve_app, name="serve")
app.add_typer(upgrade_app, name="upgrade")
network_app = typer.Typer(no_args_is_help=True, help="This host's network datapath.")
app.add_typer(network_app, name="network")
app.add_typer(usage_app, name="usage")

FORMAT = typer.Option("table", "--format", "-f", help="table or json")


def _version(value: bool) -> None:
    if value:
        from kumo.protocol import AGENT_API_VERSIONS  # dataclasses only: --version stays fast

        print(f"kumo {kumo.__version__} (agent API {', '.join(AGENT_API_VERSIONS)})")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    state_dir: Path | None = typer.Option(
        None,
        "--state-dir",
        envvar="KUMO_STATE_DIR",
        help="state directory (database, logs, images)",
    ),
    config: Path | None = typer.Option(
        None, "--config", envvar="KUMO_CONFIG", help="kumo.toml configuration file"
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="log debug messages"),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Options of every command: also accepted after the subcommand (kumo.cli.options)."""
    ctx.obj = {"config_file": None, "overrides": {}}
    configure_logging(verbose, service=ctx.invoked_subcommand in SERVICES)
    record(ctx.obj, "state_dir", state_dir)
    record(ctx.obj, "config", config)


def load(ctx: typer.Context, extra: dict[str, Any] | None = None) -> Config:
    from kumo.config import ConfigError, load_config

    overrides = dict(ctx.obj["overrides"])
    for key, value in (extra or {}).items():
        if isinstance(value, dict):
            overrides.setdefault(key, {}).update(value)
        else:
            overrides[key] = value
    try:
        return load_config(ctx.obj["config_file"], overrides)
    except ConfigError as exc:
        fail(str(exc))
        raise  # unreachable


def fail(message: str, code: int = 2) -> None:
    print_error(message)
    raise typer.Exit(code)


def open_runtime(ctx: typer.Context, extra: dict[str, Any] | None = None) -> Runtime:
    return Runtime.open(load(ctx, extra))


def claim(stack: contextlib.ExitStack[Any], config: Config, command: str, *which: Path) -> None:
    """Own the state directory's locks (kumo.cli.owner) until ``stack`` closes: one cloud
    and one agent per state directory, and `kumo down` finds who to stop."""
    prepare_state_dir(config.state_dir)
    try:
        for lock in which:
            stack.enter_context(owner.hold(config.state_dir, lock, command))
    except owner.Busy as exc:
        fail(f"{exc}; stop it first (`kumo down` stops it)")


# --- up and serve -----------------------------------------------------------------------


@app.command()
def up(
    ctx: typer.Context,
    listen: str | None = typer.Option(
        None, "--listen", help="HOST:PORT (default 127.0.0.1:5000 or the next free port)"
    ),
    no_agent: bool = typer.Option(False, "--no-agent", help="do not run a local agent"),
) -> None:
    """Run an all-in-one cloud: API, controller and a local agent in one process."""
    from kumo.cli.up import run_up

    config = load(ctx)
    with contextlib.ExitStack() as stack:
        claim(stack, config, "kumo up", owner.UP, *([] if no_agent else [owner.AGENT]))
        run_up(config, listen, agent=not no_agent)


@app.command("down")
def down_command(
    ctx: typer.Context,
    purge: bool = typer.Option(
        False, "--purge", help="then delete the state directory (database, images, volumes)"
    ),
    yes: bool = typer.Option(False, "--yes", help="do not ask before --purge deletes"),
    timeout: float = typer.Option(
        30.0, "--timeout", help="seconds each guest gets to power off before it is killed"
    ),
) -> None:
    """Stop this state directory's cloud on this machine: a running `kumo up` or agent,
    its guests (ACPI power-off, killed at the deadline), dnsmasq, routers, namespaces,
    bridges and nftables. Servers come back SHUTOFF with the next `kumo up`."""
    from kumo.cli.down import DownError, down

    config = load(ctx)
    state_dir = config.state_dir
    if (
        purge
        and not yes
        and state_dir.is_dir()
        and not typer.confirm(f"Stop the cloud and delete {state_dir} with all its data?")
    ):
        raise typer.Exit(1)
    try:
        report = down(config, purge, timeout)
    except DownError as exc:
        fail(str(exc), 1)
    for line in report.lines():
        typer.echo(line)
    if not report.lines():
        typer.echo(f"nothing of {state_dir} was running")
    if purge and report.purged and not config.database_url.startswith("sqlite"):
        typer.echo(f"the database {config.database_url} is outside {state_dir}: not dropped")
    if report.failed:
        raise typer.Exit(1)


@serve_app.command("api")
def serve_api(ctx: typer.Context, listen: str | None = typer.Option(None, "--listen")) -> None:
    """Serve every public API, the agent API and /metrics."""
    from kumo.cli.up import serve_http

    runtime = open_runtime(ctx, {"api": {"listen": listen}} if listen else None)
    try:
        runtime.require_current_schema()
    except NotReady as exc:
        fail(str(exc))
    serve_http(runtime, runtime.config.api.listen)


@serve_app.command("controller")
def serve_controller(ctx: typer.Context) -> None:
    """Run the control loops (one active at a time; others wait for the lease)."""
    from kumo.controller.service import Controller

    runtime = open_runtime(ctx)
    try:
        runtime.require_current_schema()
    except NotReady as exc:
        fail(str(exc))
    with wakeups_across_processes(runtime.db):
        _run_until_interrupted(Controller(runtime.db, runtime.config).run)


@serve_app.command("agent")
def serve_agent(
    ctx: typer.Context,
    api_url: str | None = typer.Option(None, "--api-url"),
    name: str | None = typer.Option(None, "--name", help="host name to report"),
    credential_file: Path | None = typer.Option(None, "--credential-file"),
) -> None:
    """Run the host agent: register this host and heartbeat."""
    from kumo.agent.drivers import NoHypervisor, make_driver
    from kumo.agent.setup import build_agent

    config = load(ctx)
    with contextlib.ExitStack() as stack:
        claim(stack, config, "kumo serve agent", owner.AGENT)
        credential = config.agent.credential
        if not credential:
            path = credential_file or config.state_dir / "host-credential"
            if not path.exists():
                fail(
                    f"no host credential: set [agent] credential, or copy the controller's "
                    f"STATE_DIR/host-credential to {path}"
                )
            credential = path.read_text().strip()
        try:
            driver = make_driver(config)
        except NoHypervisor as exc:
            fail(str(exc))
        agent = build_agent(
            config,
            api_url or config.agent.api_url or _recorded_api_url(config) or config.public_url,
            credential,
            name or config.agent.host_name,
            driver,
        )
        _run_until_interrupted(agent.run)


def _recorded_api_url(config: Config) -> str:
    """The URL `kumo up` last served at, kept in the state directory: its port may have
    moved past the configured one."""
    path = config.state_dir / "api-url"
    return path.read_text().strip() if path.exists() else ""


def _run_until_interrupted(loop: Any) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=loop, args=(stop,), daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        thread.join(15)


# --- db ---------------------------------------------------------------------------------


@network_app.command("teardown")
def network_teardown(ctx: typer.Context) -> None:
    """Remove this state directory's datapath: guests lose their networks. For taking a
    host out of service and for test clouds; an agent restart never needs it."""
    from kumo.agent.network_setup import teardown

    config = load(ctx)
    for line in teardown(config):
        typer.echo(line)


@network_app.command("show")
def network_show(ctx: typer.Context, fmt: str = FORMAT) -> None:
    """Which of this host's namespaces are this state directory's: its provider namespace
    (the all-in-one cloud's outside world, where floating IPs answer) and the rest."""
    from kumo.agent.network_setup import describe

    info = describe(load(ctx))
    if fmt == "json":
        print(json.dumps(info, indent=2))
        return
    rows = [
        {"field": key, "value": ", ".join(value) if isinstance(value, list) else value}
        for key, value in info.items()
    ]
    emit(rows, ["field", "value"], fmt)


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    no_backup: bool = typer.Option(False, "--no-backup", help="skip the backup (not recommended)"),
) -> None:
    """Apply expand migrations (safe while old services run); backs up first."""
    from kumo.db import migrate
    from kumo.db.backup import BackupError, backup

    runtime = open_runtime(ctx)
    st = migrate.status(runtime.db)
    expand = [r for r in st.pending if r not in st.pending_contract]
    if not expand:
        print(
            f"database is at {st.current}: nothing to upgrade"
            + (
                f" ({len(st.pending_contract)} contract migrations wait for `kumo db contract`)"
                if st.pending_contract
                else ""
            )
        )
        return
    if st.current is not None and not no_backup:
        try:
            path = backup(runtime.db, runtime.config.backup_dir, f"before-{expand[-1]}")
        except BackupError as exc:
            fail(f"{exc}; nothing was changed.")
        print(f"backup written to {path}")
    migrate.upgrade(runtime.db, include_contract=False)
    print(
        f"database upgraded from {st.current or 'empty'} to {expand[-1]} ({len(expand)} migrations)"
    )


@db_app.command("contract")
def db_contract(ctx: typer.Context) -> None:
    """Apply contract migrations: only once no service of the previous release runs."""
    from kumo.db import migrate
    from kumo.db.backup import backup

    runtime = open_runtime(ctx)
    st = migrate.status(runtime.db)
    if not st.pending_contract:
        print("no contract migrations pending")
        return
    path = backup(runtime.db, runtime.config.backup_dir, "before-contract")
    print(f"backup written to {path}")
    migrate.upgrade(runtime.db)
    print(f"database contracted to {st.head}")


@db_app.command("version")
def db_version(ctx: typer.Context, fmt: str = FORMAT) -> None:
    """Show the schema revision and what is pending."""
    from kumo.db import migrate

    st = migrate.status(open_runtime(ctx).db)
    emit(
        [{"current": st.current, "head": st.head, "pending": ",".join(st.pending) or "-"}],
        ["current", "head", "pending"],
        fmt,
    )


@db_app.command("check")
def db_check(
    ctx: typer.Context, repair: bool = typer.Option(False, "--repair"), fmt: str = FORMAT
) -> None:
    """Check database invariants; exit code 1 when a problem is found."""
    from kumo.core.checks import repair_by_operations, run_checks

    runtime = open_runtime(ctx)
    try:
        runtime.require_current_schema()
    except NotReady as exc:
        fail(str(exc))
    with runtime.db.session() as session:
        problems = run_checks(session, repair=repair)
    if repair:
        repair_by_operations(runtime.db)
    rows = [
        {
            "check": p.check,
            "problem": p.detail,
            "repair": ("repaired" if repair else "kumo db check --repair")
            if p.repairable
            else "needs an operator",
        }
        for p in problems
    ]
    if fmt == "json":
        emit(rows, [], fmt)
    elif not problems:
        print("database is consistent: no problems found")
    else:
        emit(
            rows,
            ["check", "problem", "repair"],
            fmt,
            title=f"{len(problems)} problem{'s' if len(problems) != 1 else ''}",
        )
    unrepaired = [p for p in problems if not (repair and p.repairable)]
    if unrepaired:
        raise typer.Exit(1)


@db_app.command("backup")
def db_backup(
    ctx: typer.Context, output_dir: Path | None = typer.Option(None, "--output-dir")
) -> None:
    """Write a consistent backup of the database and print its path."""
    from kumo.db.backup import BackupError, backup

    runtime = open_runtime(ctx)
    try:
        path = backup(runtime.db, output_dir or runtime.config.backup_dir)
    except BackupError as exc:
        fail(str(exc))
    print(path)


@db_app.command("restore")
def db_restore(
    ctx: typer.Context, source: Path, yes: bool = typer.Option(False, "--yes", help="do not ask")
) -> None:
    """Replace the database with a backup (stop kumo services first)."""
    from kumo.db.backup import BackupError, restore

    runtime = open_runtime(ctx)
    if not yes and not typer.confirm(
        f"Replace the database at {runtime.config.database_url} with {source}?"
    ):
        raise typer.Exit(1)
    try:
        restore(runtime.db, source)
    except BackupError as exc:
        fail(str(exc))
    print(f"restored {source}")


@upgrade_app.command("check")
def upgrade_check(ctx: typer.Context, fmt: str = FORMAT) -> None:
    """Go or no-go for an upgrade: schema, backup space, agent version skew (exit 1: no-go)."""
    from kumo.core import upgrade_check as check

    runtime = open_runtime(ctx)
    findings = check.run(
        runtime.db, runtime.config.backup_dir, runtime.config.hosts.heartbeat_timeout
    )
    rows = [
        {"check": f.check, "result": "ok" if f.ok else "NO-GO", "detail": f.detail}
        for f in findings
    ]
    emit(rows, ["check", "result", "detail"], fmt)
    if not all(f.ok for f in findings):
        raise typer.Exit(1)


# --- hosts ------------------------------------------------------------------------------


@host_app.command("list")
def host_list(ctx: typer.Context, fmt: str = FORMAT) -> None:
    """Hosts with their state (up/down from heartbeats), like `nova service-list`."""
    from kumo.core import hosts

    def timestamp(value: Any) -> str | None:
        # Keystone's format, as kumo.api.identity.views.timestamp writes it: importing
        # that module here loaded the API's identity code, argon2 and cryptography.
        return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    runtime = open_runtime(ctx)
    with runtime.db.session() as session:
        rows = [
            {
                "id": s.host.id,
                "name": s.host.name,
                "state": s.state,
                "status": "enabled" if s.host.enabled else "disabled",
                "disabled_reason": s.host.disabled_reason,
                "version": s.host.agent_version,
                "last_heartbeat": timestamp(s.host.last_heartbeat_at),
                "vcpus": s.host.inventory.get("vcpus"),
                "memory_mb": s.host.inventory.get("memory_mb"),
            }
            for s in hosts.list_hosts(session, runtime.config.hosts.heartbeat_timeout)
        ]
    emit(rows, ["id", "name", "state", "status", "version", "last_heartbeat"], fmt)


def _set_host(ctx: typer.Context, host: str, enabled: bool, reason: str | None) -> None:
    from kumo.core import hosts
    from kumo.core.errors import KumoError
    from kumo.db.lost_updates import retry_lost_updates

    runtime = open_runtime(ctx)

    def attempt() -> str:  # again when it loses to the host's heartbeat (the row's version)
        with runtime.db.session() as session:
            return hosts.set_enabled(session, host, enabled, reason).name

    try:
        name = retry_lost_updates(attempt)
    except KumoError as exc:
        fail(exc.message)
    print(f"host {name} {'enabled' if enabled else 'disabled'}")


@host_app.command("enable")
def host_enable(ctx: typer.Context, host: str) -> None:
    """Let the scheduler place new work on a host again."""
    _set_host(ctx, host, True, None)


@host_app.command("disable")
def host_disable(ctx: typer.Context, host: str, reason: str = typer.Option("", "--reason")) -> None:
    """Stop placing new work on a host (running guests stay)."""
    _set_host(ctx, host, False, reason or None)


@host_app.command("drain")
def host_drain(
    ctx: typer.Context,
    host: str,
    parallel: int = typer.Option(
        2, "--parallel", "-p", help="servers moving at the same time, at most"
    ),
    cold: bool = typer.Option(
        False,
        "--cold",
        help="cold-migrate the servers that cannot move live (SHUTOFF ones, all of them "
        "when the host's hypervisor cannot live-migrate, and any whose live migration "
        "failed): they are shut off while their disk moves, and come back in their state; "
        "the others still move live",
    ),
    reason: str = typer.Option("", "--reason", help="the disabled reason `kumo host list` shows"),
    timeout: float = typer.Option(3600.0, "--timeout", help="seconds to wait at most"),
    fmt: str = FORMAT,
) -> None:
    """Empty a host for maintenance: disable it (with a reason), then live-migrate every
    server off it, --parallel at a time, each to the host placement chooses. A server
    that cannot move is reported with the reason and the others still move. Progress on
    stderr, a summary per server at the end; exit code 1 when a server did not move.
    `kumo host enable HOST` takes it back into service."""
    from kumo.cli.host_moves import drain

    code = drain(open_runtime(ctx), host, parallel, cold, reason or None, timeout, fmt)
    raise typer.Exit(code)


@host_app.command("evacuate")
def host_evacuate(
    ctx: typer.Context,
    host: str,
    target: str | None = typer.Option(
        None, "--target", help="destination host (default: the scheduler chooses for each server)"
    ),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="wait for the rebuilds"),
    timeout: float = typer.Option(900.0, "--timeout", help="seconds to wait at most"),
    fmt: str = FORMAT,
) -> None:
    """Rebuild every server of a down (or forced-down) host on other hosts, one evacuate
    request per server as the compute API makes it; the host's agent, if it comes back,
    destroys its leftover guests. Progress as `kumo host drain` shows it; exit code 1
    when a server could not be evacuated.

    Each evacuation runs through the operations' lifecycle, as the API's: recorded as an
    instance action, and the destination's agent woken (in the cloud's other processes
    too, through the database, on PostgreSQL and MariaDB)."""
    from kumo.cli.host_moves import evacuate

    raise typer.Exit(evacuate(open_runtime(ctx), host, target, wait, timeout, fmt))


def main() -> None:
    try:
        app()
    except NotReady as exc:
        print_error(str(exc))
        sys.exit(2)
