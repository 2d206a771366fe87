"""``crosswalk evaluate``: candidate platforms side by side, measured on the City's own data."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import EXIT_ATTENTION, Context, _emit, _open_output


def register(cli: click.Group) -> None:
    """Add ``crosswalk evaluate``."""

    @cli.command()
    @click.argument("sources", nargs=-1)
    @click.option(
        "--criteria",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="A TOML file weighting what the City cares about (default: the PMO's criteria).",
    )
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "md", "html", "json"]),
        default="table",
        show_default=True,
    )
    @click.option(
        "--output", "-o", type=click.Path(dir_okay=False), help="Write here, not to stdout."
    )
    @click.pass_obj
    def evaluate(
        obj: Context, sources: tuple[str, ...], criteria: Path | None, fmt: str, output: str | None
    ) -> None:
        """Score each source on model coverage, metrics, data quality, API behaviour and
        integration effort; exit 3 when a source has not synced cleanly."""
        from ..core.evaluate import evaluate as run
        from ..core.evaluate import load_criteria
        from ..core.output import write_json

        weights = load_criteria(criteria)
        store = obj.store()
        try:
            results = run(obj.config, store, list(sources) or None, criteria=weights, pm=obj.pm)
        finally:
            store.close()
        if fmt == "table" and output is None:
            from ..core.reports.evaluation import matrix

            names, rows = matrix(results)
            table = [
                {"criterion": row["criterion"], "weight": row["weight"], **row["scores"]}
                for row in rows
            ]
            _emit(table, "table", ["criterion", "weight", *names], title="platform evaluation")
            for result in results:
                click.echo(f"{result.rank}. {result.source} ({result.platform}): {result.status}")
        else:
            with _open_output(output) as handle:
                if fmt == "json" or fmt == "table":
                    write_json([r.as_json() for r in results], handle)
                elif fmt == "md":
                    from ..core.reports.evaluation import render_markdown

                    handle.write(render_markdown(results))
                else:
                    from ..core.reports.evaluation import render_html

                    handle.write(render_html(results))
            if output:
                click.echo(f"wrote {output}", err=True)
        if any(r.status != "ok" for r in results):
            sys.exit(EXIT_ATTENTION)
