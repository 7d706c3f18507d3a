"""`kumo usage report`: what each project used (and cost) in a period, from the ledger.

It reads the database directly, as the other operator commands do, through the same core
function as /kumo/v1/usage, so the two can never disagree.
"""

from __future__ import annotations

import csv
import json
import sys
from typing import Any

import typer

usage_app = typer.Typer(no_args_is_help=True, help="Usage and showback from the usage ledger.")

# Names for the human table (the JSON and CSV keep the dimension keys).
HEADINGS = {
    "running_server_hours": "running servers (h)",
    "running_vcpu_hours": "running vCPU-h",
    "running_ram_gib_hours": "running RAM GiB-h",
    "running_disk_gib_hours": "running disk GiB-h",
    "stopped_server_hours": "stopped servers (h)",
    "stopped_vcpu_hours": "stopped vCPU-h",
    "stopped_ram_gib_hours": "stopped RAM GiB-h",
    "stopped_disk_gib_hours": "stopped disk GiB-h",
    "shelved_server_hours": "shelved servers (h)",
    "volume_gib_hours": "volume GiB-h",
    "snapshot_gib_hours": "snapshot GiB-h",
    "image_gib_hours": "image GiB-h",
    "floating_ip_hours": "floating IP-h",
}


def _table(body: dict[str, Any], names: dict[str, str], prices: dict[str, float] | None) -> None:
    """One line per project and dimension used (long, so it fits any terminal), with the
    price and cost of each line when prices are set: showback as OpenNebula prints it.

    Cells are Text, not str: rich parses a str for markup and highlights it, which took
    a third of the drawing of a 50-project table (bench/README.md, "usage_report.py"),
    and read a project named "[red]x" as markup."""
    from rich.table import Table
    from rich.text import Text

    from kumo.cli.output import console
    from kumo.core.usage_report import PRICED

    price_of = {dim: (prices or {}).get(key) for key, dims in PRICED.items() for dim in dims}
    table = Table(title=f"usage from {body['start']} to {body['end']}")
    for column in ("project", "dimension", "hours"):
        table.add_column(column, justify="right" if column == "hours" else "left")
    if prices is not None:
        table.add_column("price", justify="right")
        table.add_column("cost", justify="right")
    for row in [*body["projects"], {"project_id": "total", **body["total"]}]:
        pid = row["project_id"]
        label = f"{names[pid]} ({pid})" if pid in names else pid
        used = [d for d in HEADINGS if row[d]]
        for index, dim in enumerate(used):
            cells = [label if index == 0 else "", HEADINGS[dim], f"{row[dim]:.2f}"]
            if prices is not None:
                price = price_of.get(dim)
                cells += ["", ""] if price is None else [f"{price:g}", f"{row[dim] * price:.2f}"]
            table.add_row(*map(Text, cells))
        if not used:
            cells = [label, "nothing", "0.00", *(["", ""] if prices is not None else [])]
            table.add_row(*map(Text, cells))
        if prices is not None:
            cells = ["", "cost", "", "", f"{row['cost']:.2f}"]
            table.add_row(*map(Text, cells), end_section=True)
        else:
            table.rows[-1].end_section = True
    console.print(table)


def _csv(body: dict[str, Any]) -> None:
    from kumo.core.usage_report import DIMENSIONS

    priced = "cost" in body["total"]
    columns = ["project_id", *DIMENSIONS, *(["cost"] if priced else [])]
    out = csv.writer(sys.stdout)
    out.writerow(["start", "end", *columns])
    for row in [*body["projects"], {"project_id": "total", **body["total"]}]:
        out.writerow([body["start"], body["end"], *(row[c] for c in columns)])


@usage_app.command("report")
def report_command(
    ctx: typer.Context,
    start: str = typer.Option(..., "--start", help="period start, e.g. 2026-11-01 (UTC)"),
    end: str = typer.Option(..., "--end", help="period end (exclusive), e.g. 2026-12-01"),
    project: str | None = typer.Option(None, "--project", help="one project (id)"),
    fmt: str = typer.Option("table", "--format", "-f", help="table, json or csv"),
) -> None:
    """Hours of vCPU, RAM, disk (by server state), volumes, snapshots, images and floating
    IPs per project, and the cost when [usage.prices] sets prices."""
    from kumo.cli.main import fail, open_runtime
    from kumo.core import usage_report
    from kumo.core.errors import KumoError

    if fmt not in ("table", "json", "csv"):
        fail(f"unknown format {fmt!r}: table, json or csv")
    runtime = open_runtime(ctx)
    try:
        begin, stop = usage_report.parse_period(start, end)
    except KumoError as exc:
        fail(str(exc))
    with runtime.db.session() as session:
        found = usage_report.report(
            session, begin, stop, project, runtime.config.usage.prices.as_prices()
        )
        body = usage_report.as_dict(found)
        names = (
            usage_report.project_names(session, (p.project_id for p in found.projects))
            if fmt == "table"
            else {}
        )
    if fmt == "json":
        print(json.dumps(body, indent=2))
    elif fmt == "csv":
        _csv(body)
    else:
        _table(body, names, runtime.config.usage.prices.as_prices())
