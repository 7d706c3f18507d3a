"""The options every `kumo` command accepts: --state-dir, --config and -v.

They are declared once, on the root callback (kumo.cli.main.main_options), and work before
the subcommand (`kumo --state-dir D up`) and after it (`kumo up --state-dir D`), as the
README says: GlobalOptionsGroup copies them onto every subcommand, where they record into
the same place (`record`). Given twice, the one nearer the end of the line wins.

Logging is set here too, because -v may come after the subcommand: services (`kumo up`,
`kumo serve ...`) log INFO, operator commands only warnings (the operator reads their
output, not library chatter such as alembic's plugin set-up); -v shows everything.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from typer.core import TyperGroup

SHARED = ("state_dir", "config", "verbose")
SERVICES = ("up", "serve")
# Loud at INFO for every request, even for services.
ALWAYS_QUIET = ("httpx", "httpcore")
# Quiet unless -v: what they say at INFO is for kumo's developers.
QUIET_UNLESS_VERBOSE = ("alembic",)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(verbose: bool, service: bool) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(format=LOG_FORMAT)
    quiet = logging.INFO if service else logging.WARNING
    logging.getLogger().setLevel(logging.DEBUG if verbose else quiet)
    for name in ALWAYS_QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in QUIET_UNLESS_VERBOSE:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose else logging.WARNING)


def record(obj: dict[str, Any], name: str, value: Any) -> None:
    """Apply one global option given anywhere on the command line (None/False: not given)."""
    if value is None or value is False:
        return
    if name == "state_dir":
        obj.setdefault("overrides", {})["state_dir"] = str(Path(value).absolute())
    elif name == "config":
        obj["config_file"] = Path(value)
    elif name == "verbose":
        configure_logging(True, service=False)


def _record_local(ctx: Any, param: Any, value: Any) -> Any:
    record(ctx.ensure_object(dict), param.name, value)
    return value


def _subcommands(group: TyperGroup) -> Iterator[Any]:
    for command in group.commands.values():
        yield command
        if isinstance(command, TyperGroup):
            yield from _subcommands(command)


class GlobalOptionsGroup(TyperGroup):
    """The root group: its shared options are also accepted by every subcommand."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        shared = [p for p in self.params if p.name in SHARED]
        for command in _subcommands(self):
            for param in shared:
                local = copy.copy(param)
                # Recorded by the callback, not passed to the command's function; the
                # environment variables are read once, by the root.
                local.expose_value = False
                local.callback = _record_local
                local.envvar = None
                command.params.append(local)
