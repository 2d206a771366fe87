"""``crosswalk report compliance|portfolio|service``, ``crosswalk run`` and ``crosswalk schedule``.

Reports are written to each ``--output`` (in the format its extension names) or printed; the
compliance report runs the controls once (keeping every finding in the history) and renders
that one run in every format asked, unless ``--run`` or ``--as-of`` asks for a recorded run.
Exit 3 when a control failed, could not run, or found data it could not verify.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from . import infer_format, output_option

REPORT_FORMATS = ["html", "md", "csv", "json", "xlsx"]
# a file's extension -> the format written to it
FORMAT_OF_EXTENSION = {
    "html": "html",
    "htm": "html",
    "md": "md",
    "markdown": "md",
    "csv": "csv",
    "json": "json",
    "xlsx": "xlsx",
}


def _targets(fmt: str | None, outputs: tuple[str, ...]) -> list[tuple[str, str | None]]:
    """(format, path or None for stdout) for every rendering asked for: one per ``-o PATH``,
    its format from its extension (else ``--format``), or stdout in ``--format``."""
    if not outputs:
        chosen = fmt or "html"
        if chosen == "xlsx":
            raise click.UsageError("--format xlsx needs --output PATH")
        return [(chosen, None)]
    targets = []
    for output in outputs:
        extension = Path(output).suffix.lower().lstrip(".")
        targets.append((FORMAT_OF_EXTENSION.get(extension) or fmt or "html", output))
    return targets


def _write(payload: bytes, fmt: str, output: str | None) -> None:
    if output is None:
        if fmt == "xlsx":
            raise click.UsageError("--format xlsx needs --output PATH")
        sys.stdout.write(payload.decode("utf-8"))
        sys.stdout.flush()
        return
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    click.echo(f"wrote {path}", err=True)


def _render_all(data: dict[str, Any], targets: list[tuple[str, str | None]]) -> None:
    """Render one report's data in every format asked for: the data is built once."""
    from ..core.reports.render import render

    for fmt, output in targets:
        _write(render(data, fmt), fmt, output)


def _as_date(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


def _check_run(engine: Any, run_id: int) -> None:
    """A usage error (exit 2) for a --run id never recorded, naming the ids that were."""
    from ..core.compliance.history import run_span

    span = run_span(engine)
    if span is not None and span[0] <= run_id <= span[1]:
        return  # within the recorded range; report_for still refuses an id that is gone
    if span is None:
        known = "none is recorded yet: `crosswalk report compliance` records one"
    elif span[0] == span[1]:
        known = f"the only recorded run is {span[1]}"
    else:
        known = f"recorded runs are {span[0]} to {span[1]} (latest {span[1]})"
    raise click.BadParameter(f"no compliance run {run_id}; {known}", param_hint="'--run'")


def register(cli: click.Group) -> None:
    """Add the report, run and schedule commands to ``cli``."""

    @cli.group("report")
    def report() -> None:
        """Reports people read: compliance, portfolio and service."""

    @report.command("compliance")
    @click.option("--benchmark", default=None, help="The benchmark to run (default: city).")
    @click.option("--control", "control_ids", multiple=True, help="Only this control (repeatable).")
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(REPORT_FORMATS),
        default=None,
        help="The format on stdout, or of an --output whose extension names none (default html).",
    )
    @click.option(
        "--output",
        "-o",
        "outputs",
        type=click.Path(dir_okay=False),
        multiple=True,
        help="Write the report here, in the format its extension names (repeatable: one run, "
        "several formats).",
    )
    @click.option(
        "--as-of",
        "as_of",
        type=click.DateTime(formats=["%Y-%m-%d"]),
        default=None,
        help="Render the last run made on or before DATE, exactly as it stood (runs nothing).",
    )
    @click.option(
        "--run",
        "run_id",
        type=click.IntRange(min=1),
        default=None,
        help="Render the recorded compliance run ID again (runs nothing).",
    )
    @click.option(
        "--no-tickets",
        is_flag=True,
        help="Do not open incidents for controls that ask for them (open_tickets).",
    )
    @click.pass_obj
    def report_compliance(
        obj: Any,
        benchmark: str | None,
        control_ids: tuple[str, ...],
        fmt: str | None,
        outputs: tuple[str, ...],
        as_of: datetime | None,
        run_id: int | None,
        no_tickets: bool,
    ) -> None:
        """Run the compliance controls once over the store and render what they found, in as
        many formats as asked; or render a recorded run (--run, --as-of) without running."""
        from ..core.compliance import benchmarks, controls_for
        from ..core.reports import compliance
        from . import check_name, check_names

        targets = _targets(fmt, outputs)
        if as_of is not None and run_id is not None:
            raise click.UsageError("--as-of and --run each name a recorded run: give one")
        known = controls_for(obj.config, obj.pm)
        check_names("control", control_ids, known, param="--control")
        if benchmark is not None:
            check_name("benchmark", benchmark, benchmarks(known), param="--benchmark")
        store = obj.store()
        try:
            if as_of is not None or run_id is not None:
                if benchmark or control_ids:
                    raise click.UsageError(
                        f"{'--as-of' if as_of else '--run'} renders a recorded run; "
                        "it takes no --benchmark or --control"
                    )
                if run_id is not None:
                    _check_run(store.engine, run_id)
                data = compliance.report_for(store.engine, run_id=run_id, as_of=_as_date(as_of))
            else:
                _run, data = compliance.run_and_build(
                    store,
                    obj.config,
                    obj.pm,
                    benchmark=benchmark,
                    control_ids=control_ids,
                    open_tickets=not no_tickets,
                )
        finally:
            store.close()
        _render_all(data, targets)
        s = data["summary"]
        click.echo(
            f"run {data['run_id']}: {s['controls']} controls, {s['controls_failed']} failed, "
            f"{s['controls_unverified']} unverified, {s['controls_error']} could not run; "
            f"{s['alarm']} alarms ({s['new_alarms']} new, {s['fixed']} fixed), "
            f"{s['unverified']} unverified findings",
            err=True,
        )
        tickets = data.get("remediation") or {}
        if tickets.get("opened") or tickets.get("cleared"):
            click.echo(
                f"tickets: {len(tickets['opened'])} opened, {len(tickets['cleared'])} cleared "
                "(resolve those on the platform)",
                err=True,
            )
        for problem in tickets.get("problems") or []:
            click.echo(f"ticket not opened: {problem}", err=True)
        code = compliance.exit_code(data)
        if code:
            sys.exit(code)

    @report.command("controls")
    @click.option("--benchmark", default=None, help="Only this benchmark's controls.")
    @output_option
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json", "csv"]),
        default="table",
        callback=infer_format,
    )
    @click.pass_obj
    def report_controls(obj: Any, benchmark: str | None, fmt: str) -> None:
        """List the controls: built-in, from the config's folders, and from plugins."""
        from ..core.compliance import benchmarks, controls_for, select
        from . import _emit, check_name

        known = controls_for(obj.config, obj.pm)
        if benchmark is not None:
            check_name("benchmark", benchmark, benchmarks(known), param="--benchmark")
        chosen = select(known, benchmark=benchmark) if benchmark else None
        controls = chosen if chosen is not None else list(known.values())
        rows = [
            {
                **({"query": c.query} if fmt == "json" else {}),
                **c.summary(),
                "references": "; ".join(
                    f"{k} {', '.join(v)}" for k, v in c.references.model_dump().items() if v
                ),
            }
            for c in controls
        ]
        _emit(
            rows,
            fmt,
            None
            if fmt == "json"
            else [
                "id",
                "severity",
                "domain",
                "title",
                "benchmarks",
                "references",
                "open_tickets",
                "origin",
            ],
        )

    def _metrics_report(obj: Any, kind: str, options: dict[str, Any]) -> None:
        from ..core.reports import metrics_report
        from . import check_name, check_source
        from .metrics import DIMENSIONS

        targets = _targets(options.pop("fmt"), options.pop("outputs"))
        options["source"] = check_source(obj, options["source"])
        if options["by"] is not None:
            check_name("dimension", options["by"], DIMENSIONS, param="--by")
        store = obj.store()
        try:
            data = metrics_report.build(store, obj.config, kind, pm=obj.pm, **options)
        finally:
            store.close()
        _render_all(data, targets)

    def _metric_options(command: Any) -> Any:
        for option in reversed(
            [
                click.option("--source", default=None, help="Only this source."),
                click.option(
                    "--by",
                    default=None,
                    help="Break down by a dimension (source, platform, department, ...).",
                ),
                click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), default=None),
                click.option("--until", type=click.DateTime(formats=["%Y-%m-%d"]), default=None),
                click.option(
                    "--format",
                    "fmt",
                    type=click.Choice(REPORT_FORMATS),
                    default=None,
                    help="The format on stdout, or of an --output whose extension names none "
                    "(default html).",
                ),
                click.option(
                    "--output",
                    "-o",
                    "outputs",
                    type=click.Path(dir_okay=False),
                    multiple=True,
                    help="Write the report here, in the format its extension names (repeatable).",
                ),
            ]
        ):
            command = option(command)
        return command

    @report.command("portfolio")
    @_metric_options
    @click.pass_obj
    def report_portfolio(obj: Any, **options: Any) -> None:
        """The portfolio metrics (state, health, on-time, budget, earned value, demand)."""
        _metrics_report(obj, "portfolio", options)

    @report.command("service")
    @_metric_options
    @click.pass_obj
    def report_service(obj: Any, **options: Any) -> None:
        """The service metrics (volume, backlog, MTTR, SLA attainment, FCR, reopens)."""
        _metrics_report(obj, "service", options)

    @cli.command("run")
    @click.argument("jobs_file", type=click.Path(dir_okay=False, exists=True))
    @click.option("--job", "job_names", multiple=True, help="Only this job (repeatable).")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    @click.pass_obj
    def run(obj: Any, jobs_file: str, job_names: tuple[str, ...], fmt: str) -> None:
        """Run scheduled jobs: sync, render reports, deliver them (folder, e-mail, webhook)."""
        from ..core import jobs
        from . import _emit

        spec = jobs.load_jobs(Path(jobs_file))
        outcomes = jobs.run_jobs(
            spec, names=list(job_names), config_path=obj.config_path, pm=obj.pm
        )
        _emit(
            [o.as_row() for o in outcomes],
            fmt,
            ["job", "outcome", "exit_code", "reports", "delivered", "problems"],
        )
        code = jobs.combined_exit_code(outcomes)
        if code:
            sys.exit(code)

    @cli.command("schedule")
    @click.argument("jobs_file", type=click.Path(dir_okay=False, exists=True))
    @click.option("--cron", "style", flag_value="cron", help="Print crontab lines.")
    @click.option("--systemd", "style", flag_value="systemd", help="Print systemd units.")
    @click.option("--job", "job_names", multiple=True, help="Only this job (repeatable).")
    @click.pass_obj
    def schedule(obj: Any, jobs_file: str, style: str | None, job_names: tuple[str, ...]) -> None:
        """Print the crontab lines or systemd service and timer units for the jobs' schedules."""
        from ..core import jobs

        if style is None:
            raise click.UsageError("choose --cron or --systemd")
        spec = jobs.load_jobs(Path(jobs_file))
        text = (
            jobs.crontab(spec, names=list(job_names), config_path=obj.config_path)
            if style == "cron"
            else jobs.systemd_units(spec, names=list(job_names), config_path=obj.config_path)
        )
        click.echo(text, nl=False)
