"""``crosswalk evaluate``: candidate platforms measured on the City's own data, ranked within
each role they can fill, with the City's requirements as a fit-gap."""

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
        "--requirements",
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="The City's requirements (requirements.toml or .xlsx): adds the fit-gap per role.",
    )
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "md", "html", "json", "xlsx"]),
        default="table",
        show_default=True,
    )
    @click.option(
        "--output", "-o", type=click.Path(dir_okay=False), help="Write here, not to stdout."
    )
    @click.pass_obj
    def evaluate(
        obj: Context,
        sources: tuple[str, ...],
        criteria: Path | None,
        requirements: Path | None,
        fmt: str,
        output: str | None,
    ) -> None:
        """Score each source within the roles it can fill (portfolio, service management,
        endpoints) on model coverage, metrics, data quality, API behaviour and integration
        effort; exit 3 when a source has not synced cleanly."""
        from ..core.evaluate import evaluate as run
        from ..core.evaluate import load_criteria
        from ..core.fitgap import load_requirements
        from ..core.output import write_json
        from ..core.reports import evaluation

        weights = load_criteria(criteria)
        wanted = load_requirements(requirements) if requirements else None
        if fmt == "xlsx" and output is None:
            raise click.UsageError("--format xlsx needs --output PATH")
        store = obj.store()
        try:
            results = run(obj.config, store, list(sources) or None, criteria=weights, pm=obj.pm)
        finally:
            store.close()
        if fmt == "table" and output is None:
            data = evaluation.pack(results, weights, wanted)
            for role in data["roles"].values():
                rows = [
                    {
                        "rank": row["rank"],
                        "source": row["source"],
                        "platform": row["platform"],
                        "total": row["total"],
                        **{c["title"]: row["scores"][c["key"]] for c in role["criteria"]},
                    }
                    for row in role["ranking"]
                ]
                _emit(rows, "table", title=role["title"])
            for role, fg in data["fit_gap"].items():
                for source in fg["candidates"]:
                    missed = fg["musts_missed"][source]
                    click.echo(
                        f"{role}: {source} fits {fg['fit'][source]}"
                        + (f"; misses must-haves {', '.join(missed)}" if missed else "")
                    )
            for result in results:
                if result.status != "ok":
                    click.echo(f"{result.source} ({result.platform}): {result.status}")
        elif fmt == "xlsx":
            assert output is not None
            Path(output).write_bytes(evaluation.render_xlsx(results, weights, wanted))
            click.echo(f"wrote {output}", err=True)
        else:
            with _open_output(output) as handle:
                if fmt == "json" or fmt == "table":
                    write_json(evaluation.pack(results, weights, wanted), handle)
                elif fmt == "md":
                    handle.write(evaluation.render_markdown(results, weights, wanted))
                else:
                    handle.write(evaluation.render_html(results, weights, wanted))
            if output:
                click.echo(f"wrote {output}", err=True)
        if any(r.status != "ok" for r in results):
            sys.exit(EXIT_ATTENTION)
