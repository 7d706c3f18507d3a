"""Human tables or JSON, the same data either way.

rich is imported on first use, not with this module: every `kumo` command imports it, and
rich's console and tables cost more than `kumo --help` itself (bench/README.md, "CLI
start"). ``console`` and ``err_console`` are made on first access (PEP 562), so
``from kumo.cli.output import console`` still works, at the price of importing rich then.
"""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    console: Console
    err_console: Console


@functools.cache
def _console(stderr: bool) -> Console:
    from rich.console import Console

    return Console(stderr=stderr)


def __getattr__(name: str) -> Any:
    if name == "console":
        return _console(False)
    if name == "err_console":
        return _console(True)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def print_error(message: str) -> None:
    """``error: message`` on stderr, "error:" in red on a terminal. Through click, not
    rich: no rich import for an error, and a message with brackets in it (``[agent]
    credential``) is printed as it is, not read as rich markup."""
    typer.echo(f"{typer.style('error:', fg='red')} {message}", err=True)


def emit(rows: list[dict[str, Any]], columns: list[str], fmt: str, title: str = "") -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
        return
    from rich.table import Table

    table = Table(title=title or None)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if row.get(c) is None else str(row.get(c)) for c in columns])
    _console(False).print(table)
