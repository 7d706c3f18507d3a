"""Human tables or JSON, the same data either way."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def emit(rows: list[dict[str, Any]], columns: list[str], fmt: str, title: str = "") -> None:
    if fmt == "json":
        print(json.dumps(rows, indent=2, default=str))
        return
    table = Table(title=title or None)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if row.get(c) is None else str(row.get(c)) for c in columns])
    console.print(table)
