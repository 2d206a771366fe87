"""``crosswalk dashboard``: one self-contained page per audience (CIO, PMO, service desk,
endpoints), with its JSON beside it."""

from __future__ import annotations

from pathlib import Path

import click

from . import Context

AUDIENCES = ("cio", "pmo", "service-desk", "endpoints")
"""core.reports.dashboard.AUDIENCES' keys, repeated so `crosswalk --help` stays light."""


def register(cli: click.Group) -> None:
    """Add ``crosswalk dashboard``."""

    @cli.command()
    @click.option(
        "--audience",
        "audiences",
        type=click.Choice(AUDIENCES),
        multiple=True,
        help="Whose page (repeatable; default: all four).",
    )
    @click.option(
        "--output",
        "-o",
        "folder",
        type=click.Path(file_okay=False, path_type=Path),
        required=True,
        help="The folder the pages (HTML) and their data (JSON) are written to.",
    )
    @click.pass_obj
    def dashboard(obj: Context, audiences: tuple[str, ...], folder: Path) -> None:
        """Headline KPIs with red, amber or green against the City's thresholds and their
        trend, the top risks, the project list and how fresh each source's data is."""
        from ..core.reports import dashboard as pages
        from ..core.reports.render import write

        store = obj.store()
        try:
            built = [
                (audience, pages.build(store, obj.config, audience, pm=obj.pm))
                for audience in audiences or AUDIENCES
            ]
        finally:
            store.close()
        for audience, data in built:
            for fmt in ("html", "json"):
                path = write(data, fmt, folder / f"dashboard-{audience}.{fmt}")
                click.echo(f"wrote {path}", err=True)
            stale = [s["source"] for s in data["sources"] if not s["verified"]]
            if stale and audience == built[0][0]:
                click.echo(f"unverified data: {', '.join(stale)}", err=True)
