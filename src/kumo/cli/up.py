"""`kumo up`: the all-in-one cloud in one process, and the HTTP server it shares with
`kumo serve api`."""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
import socket
import sys
import threading
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import FrameType

import typer
import uvicorn

from kumo.agent.drivers import FAKE_WARNING, choose, make_driver
from kumo.agent.network_setup import existing_provider
from kumo.agent.setup import build_agent
from kumo.api.app import create_app
from kumo.cli.output import console, err_console
from kumo.cli.tinyimage import NAME as TINY_IMAGE
from kumo.cli.tinyimage import ensure_tiny_image
from kumo.config import Config
from kumo.controller.service import Controller
from kumo.core import hosts, wakeup
from kumo.core.bootstrap import bootstrap
from kumo.core.network.seed import seed_networks
from kumo.db.backup import BackupError
from kumo.runtime import (
    Runtime,
    read_or_create_secret,
    wakeups_across_processes,
    write_clouds_yaml,
    write_secret,
)

log = logging.getLogger("kumo.up")
DEFAULT_LISTEN = "127.0.0.1:5000"
# Longer than any client's poll interval (nginx keeps 75 s too).
KEEP_ALIVE_SECONDS = 75


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise typer.BadParameter(f"--listen {listen!r}: expected HOST:PORT")
    return host, int(port)


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_listen(requested: str | None, configured: str) -> str:
    """An explicit --listen must be free; the default moves to the next free port."""
    if requested:
        host, port = split_listen(requested)
        if not port_free(host, port):
            raise typer.BadParameter(f"{requested} is already in use; pick another --listen")
        return requested
    host, port = split_listen(configured)
    for candidate in range(port, min(port + 100, 65536)):
        if port_free(host, candidate):
            return f"{host}:{candidate}"
    raise typer.BadParameter(f"no free port from {configured} on; pass --listen")


def openstack_on_path() -> str | None:
    """What the operator's shell needs to run the `openstack` CLI: "" when it is on PATH,
    else the PATH export for the one installed next to kumo (make's .venv/bin); None when
    there is none."""
    if shutil.which("openstack"):
        return ""
    beside = Path(sys.executable).parent
    if (beside / "openstack").exists():
        return f"export PATH={beside}:$PATH"
    return None


def _log_to_file(config: Config) -> None:
    handler = RotatingFileHandler(
        config.state_dir / "logs" / "kumo.log", maxBytes=10 << 20, backupCount=3
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    for h in root.handlers:
        if h is not handler:
            h.setLevel(logging.WARNING)


class _Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Long polls (agents waiting for work) would hold the graceful shutdown for up to
        # their whole wait: wake them. From a thread: this runs in a signal handler, which
        # must not take a lock the interrupted main thread may hold.
        threading.Thread(target=wakeup.interrupt, name="wake-long-polls", daemon=True).start()
        super().handle_exit(sig, frame)


def serve_http(runtime: Runtime, listen: str) -> None:
    host, port = split_listen(listen)
    server = _Server(
        uvicorn.Config(
            create_app(runtime.config, runtime.db),
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            # Agents long-poll for up to 20 s; a stop must not wait for those to run out.
            timeout_graceful_shutdown=3,
            # uvicorn's default closes an idle connection after 5 s, exactly the interval
            # the openstack CLI's --wait polls at: its next request then raced the close and
            # got "Connection reset by peer". Idle connections cost next to nothing here.
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
    )
    # uvicorn shuts down gracefully on SIGINT and SIGTERM, then re-raises the signal with the
    # handler that was there before it. Make that handler raise KeyboardInterrupt for both,
    # so a stop by either signal runs the caller's clean-up and exits 0, not 130 or -15.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with contextlib.suppress(KeyboardInterrupt), wakeups_across_processes(runtime.db):
            server.run()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def run_up(config: Config, listen: str | None, agent: bool = True) -> None:
    chosen = choose_listen(listen, config.api.listen)
    config = config.model_copy(update={"api": config.api.model_copy(update={"listen": chosen})})
    runtime = Runtime.open(config)
    _log_to_file(config)
    try:
        backup_path = runtime.upgrade_schema(log)
    except BackupError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    password = read_or_create_secret(
        config.state_dir / "admin-password", config.identity.admin_password
    )
    with runtime.db.session() as session:
        result = bootstrap(
            session,
            config.identity.admin_user,
            password,
            config.identity.admin_project,
            config.identity.demo_project,
            config.public_url,
            config.identity.region,
        )
        credential = hosts.ensure_host_credential(session)
    write_secret(config.state_dir / "host-credential", credential)
    tiny_image = ensure_tiny_image(runtime.db, config, result.admin_project_id)
    with runtime.db.session() as session:
        seeded = seed_networks(
            session,
            config.network,
            config.agent.provider_gateway,
            result.admin_project_id,
            result.demo_project_id,
            config.hosts.heartbeat_timeout,
        )
    clouds = write_clouds_yaml(config, password)
    (config.state_dir / "api-url").write_text(config.public_url + "\n")

    stop = threading.Event()
    hypervisor = choose(config) if agent else None
    workers = [
        threading.Thread(
            target=Controller(runtime.db, config).run, args=(stop,), name="controller", daemon=True
        )
    ]
    if agent:
        local = build_agent(
            config,
            config.public_url,
            credential,
            config.agent.host_name,
            make_driver(config, allow_fallback=True),
        )
        workers.append(threading.Thread(target=local.run, args=(stop,), name="agent", daemon=True))

    console.print(f"[bold green]kumo is up[/bold green] at {config.public_url}")
    console.print(f"  state directory  {config.state_dir}")
    if backup_path:
        console.print(f"  database backup  {backup_path} (taken before the upgrade)")
    console.print(f"  dashboard        {config.public_url}/   (sign in as the admin user below)")
    console.print(f"  identity         {config.public_url}/identity")
    console.print(
        f"  admin user       {config.identity.admin_user} / {password}"
        + ("" if result.created_admin else " (as first created)")
    )
    console.print(f"  clouds.yaml      {clouds}")
    if tiny_image:
        console.print(f"  test image       {TINY_IMAGE} ({tiny_image})")
    if seeded:
        console.print(
            f"  networks         public (external, {config.agent.provider_gateway} is the "
            "outside world), private (demo project) and router1 between them"
        )
    provider = existing_provider(config) if agent else None
    if provider:
        console.print(
            f"  provider netns   {provider} (the outside world: floating IPs answer there; "
            "`kumo network show` says it again)"
        )
    if hypervisor is not None:
        if hypervisor.fallback:
            console.print(
                f"  [bold red]hypervisor       fake[/bold red]: {hypervisor.reason}; {FAKE_WARNING}"
            )
        else:
            console.print(f"  hypervisor       {hypervisor.name}")
    console.print(f"  next, try:       export OS_CLIENT_CONFIG_FILE={clouds}", soft_wrap=True)
    path = openstack_on_path()
    if path:
        console.print(f"                   {path}   # the openstack CLI", soft_wrap=True)
    elif path is None:
        console.print("                   pip install python-openstackclient   # not found")
    console.print("                   openstack --os-cloud kumo token issue")
    console.print(
        "  stop with Ctrl-C (guests keep running); `kumo down` stops the guests too", style="dim"
    )

    for worker in workers:
        worker.start()
    try:
        serve_http(runtime, chosen)
    finally:
        stop.set()
        for worker in workers:
            worker.join(15)
        runtime.db.dispose()
        console.print("kumo stopped")
