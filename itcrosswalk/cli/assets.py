"""``crosswalk assets``: hardware lifecycle planning from the synced asset records."""

from __future__ import annotations

from pathlib import Path

import click

from . import Context, _emit


def register(cli: click.Group) -> None:
    """Add ``crosswalk assets``."""

    @cli.group()
    def assets() -> None:
        """Hardware lifecycle planning: the refresh forecast."""

    @assets.command()
    @click.option("--years", default=5, show_default=True, type=click.IntRange(1, 15))
    @click.option(
        "--by",
        type=click.Choice(["department", "model", "site"]),
        default="department",
        show_default=True,
        help="What the cost is broken down by.",
    )
    @click.option("--source", help="Only this source's assets.")
    @click.option(
        "-o",
        "--output",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        help="Write forecast.html, forecast.xlsx and forecast.json here.",
    )
    @click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
    @click.pass_obj
    def forecast(
        obj: Context, years: int, by: str, source: str | None, directory: Path | None, fmt: str
    ) -> None:
        """Devices reaching their refresh age or warranty end per fiscal year, costed from the
        price list in [assets], beside the devices idle or missing in Intune."""
        from ..core.assets.forecast import forecast as run
        from ..core.assets.forecast import write

        store = obj.store()
        try:
            result = run(store, obj.config, years=years, by=by, source=source)
        finally:
            store.close()
        _emit(
            result.rows,
            fmt,
            [
                "fiscal_year",
                "devices",
                "cost",
                "overdue",
                "idle_in_intune",
                "missing_in_intune",
                "warranties_ending",
            ],
            title=f"refresh forecast (total {result.total_devices} devices, {result.total_cost:,.2f})",
        )
        if result.undated:
            click.echo(f"{result.undated} devices have no purchase or warranty date", err=True)
        if result.unpriced:
            click.echo(f"no price for {', '.join(result.unpriced)}: not in the cost", err=True)
        if directory is not None:
            for path in write(result, directory):
                click.echo(f"wrote {path}", err=True)
