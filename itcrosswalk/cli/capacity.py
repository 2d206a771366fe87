"""``crosswalk capacity``: demand against capacity per period, across every platform that books
people, with the heatmap in HTML and XLSX."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from . import EXIT_ATTENTION, Context, _emit


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def register(cli: click.Group) -> None:
    """Add ``crosswalk capacity``."""

    @cli.command()
    @click.option(
        "--by",
        type=click.Choice(["person", "role", "department", "team", "platform"]),
        default="person",
        show_default=True,
        help="What a row of the heatmap is.",
    )
    @click.option("--from", "start", callback=_day, help="First day (default: this month's first).")
    @click.option("--to", "end", callback=_day, help="Day after the last (default: six months on).")
    @click.option(
        "--granularity",
        type=click.Choice(["week", "month"]),
        default="month",
        show_default=True,
    )
    @click.option("--source", help="Only this source's assignments (people still join on all).")
    @click.option(
        "--output",
        "-o",
        "folder",
        type=click.Path(file_okay=False, path_type=Path),
        help="Write capacity.html, capacity.xlsx and capacity.json into this folder.",
    )
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    @click.pass_obj
    def capacity(
        obj: Context,
        by: str,
        start: date | None,
        end: date | None,
        granularity: str,
        source: str | None,
        folder: Path | None,
        fmt: str,
    ) -> None:
        """Demand against capacity per period: utilization, over-allocation, and people whose
        bookings on several platforms add up past their capacity (which no platform sees).

        Capacity comes from the platforms' calendars where they keep it, else the City's
        working calendar ([metrics.calendar]) less holidays. Demand for roles nobody is named
        on is shown apart. Records that cannot be placed (an ambiguous display name, an
        assignment without dates) are listed, never dropped.
        """
        from ..core.capacity import plan
        from ..core.capacity.engine import default_window
        from ..core.capacity.report import report_data, write
        from ..core.output import jsonable

        first, after = default_window(date.today())
        start = start or first
        end = end or (after if start == first else default_window(start)[1])
        store = obj.store()
        try:
            result = plan(
                store, obj.config, start=start, end=end, by=by, granularity=granularity,
                source=source,
            )  # fmt: skip
        finally:
            store.close()
        data = report_data(result)
        if folder is not None:
            for path in write(data, folder):
                click.echo(f"wrote {path}", err=True)
        if fmt == "json":
            click.echo(json.dumps(jsonable(data), indent=2, sort_keys=True))
        else:
            _print(data, by)
        if not result.sources_with_assignments:
            # An empty plan is not "nobody is over-allocated": say so and exit 3.
            click.echo(
                "no synced source keeps assignments: there is no demand to set against capacity",
                err=True,
            )
            sys.exit(EXIT_ATTENTION)


def _print(data: dict[str, Any], by: str) -> None:
    rows = []
    for row in data["heat"]:
        line: dict[str, str] = {by: row["label"]}
        for c in row["cells"]:
            u = c["utilization"]
            line[c["period"]] = "—" if u is None else f"{100 * u:.0f}%"
        rows.append(line)
    _emit(rows, "table", [by, *data["periods"]], title=f"utilization by {by}")
    for f in data["findings"]:
        parts = " + ".join(f"{k} {v:g} h" for k, v in f["by_platform"].items())
        click.echo(
            f"booked on several platforms: {f['name'] or f['person']} in {f['period']}: "
            f"{parts} = {f['demand_hours']:g} h of {f['capacity_hours']:g} h"
            + (" (no platform alone shows it)" if f["hidden"] else "")
        )
    for person, months in data["over_allocated"].items():
        click.echo(f"over-allocated: {person} above 110% in {', '.join(months)}")
    for role, cells in data["generic"].items():
        total = sum(c["demand_hours"] for c in cells.values())
        click.echo(f"demand for role {role} with nobody named: {total:g} h")
    for p in data["problems"]:
        click.echo(f"reported: {p['message']}", err=True)
