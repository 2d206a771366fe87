"""``crosswalk metrics``: the standard metrics over the store, and each one explained."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import click

from . import (
    Context,
    SuggestingChoice,
    _emit,
    check_name,
    check_names,
    check_source,
    infer_format,
    output_option,
)

# core.metrics.DIMENSIONS, repeated so `crosswalk --help` does not import SQLAlchemy.
DIMENSIONS = ("source", "platform", "department", "priority", "assignment_group", "kind", "month")


def _moment(value: date | datetime | None, obj: Context) -> datetime | None:
    """A --since/--until value; without a zone, in the City's calendar zone."""
    from ..core.metrics import city_moment

    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return city_moment(value, obj.config.metrics)


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "currency":
        return f"{value:,.0f}"
    return f"{value:,.2f}"


def _table_rows(results: list[Any], by: tuple[str, ...]) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per metric; with one --by, one column per key, side by side."""
    pivot = by[0] if len(by) == 1 else None
    keys: list[str] = []
    if pivot:
        for result in results:
            for key in result.breakdown.get(pivot, {}):
                if key not in keys:
                    keys.append(key)
    rows = []
    for result in results:
        row: dict[str, Any] = {
            "metric": result.id,
            "unit": result.unit,
            "all": _number(result.value, result.unit),
            "n": result.n,
        }
        if result.unsupported:
            row["all"] = "unsupported"
            row["note"] = result.unsupported
        elif result.excluded:
            row["note"] = "excluded: " + ", ".join(
                f"{reason} {count}" for reason, count in sorted(result.excluded.items())
            )
        if pivot:
            cells = result.breakdown.get(pivot)
            for key in keys:
                row[key] = (
                    "n/a"
                    if cells is None
                    else _number(cells.get(key), result.unit)
                    if key in cells
                    else "-"
                )
        elif by:
            row["breakdown"] = "; ".join(
                f"{dim} {key}={_number(v, result.unit)}"
                for dim, cells in result.breakdown.items()
                for key, v in cells.items()
            )
        rows.append(row)
    columns = ["metric", "unit", "all", "n", *keys] + (["breakdown"] if by and not pivot else [])
    return rows, columns + ["note"]


def _csv_rows(results: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for result in results:
        base = {"id": result.id, "title": result.title, "unit": result.unit}
        rows.append(
            {
                **base,
                "dimension": "",
                "key": "",
                "value": result.value,
                "n": result.n,
                "unsupported": result.unsupported or "",
            }
        )
        for dimension, cells in result.breakdown.items():
            for key, value in cells.items():
                rows.append(
                    {
                        **base,
                        "dimension": dimension,
                        "key": key,
                        "value": value,
                        "n": "",
                        "unsupported": "",
                    }
                )
    return rows


def _explained(e: Any, fmt: str) -> dict[str, Any]:
    """One ``--explain`` row: the verdict, then where the record's department came from (the
    platform's own field, or derived from the requester or primary user it names), then every
    number the verdict rests on."""
    row: dict[str, Any] = {
        "source": e.source,
        "source_id": e.source_id,
        "record": e.label,
        "counted": e.counted,
        "reason": e.reason,
        "value": e.value,
    }
    if e.department is not None:
        row["department"] = e.department.department
        if fmt == "table":
            row["department_from"] = e.department.text  # "requester Ana Moore": one cell
        else:
            row["department_from"] = e.department.origin
            row["department_person"] = e.department.person
    # a nested object in JSON, one cell of "name=value" pairs in a table or CSV
    row["detail"] = (
        e.detail if fmt == "json" else "; ".join(f"{k}={v}" for k, v in e.detail.items())
    )
    return row


def register(cli: click.Group) -> None:
    """Add ``crosswalk metrics`` (compute, ``list``, ``show ID [--explain]``)."""

    @cli.group(invoke_without_command=True)
    @click.option("--domain", type=click.Choice(["service", "portfolio", "endpoint"]))
    @click.option("--source", help="Only this configured source's records.")
    @click.option(
        "--by",
        "by",
        multiple=True,
        type=SuggestingChoice(DIMENSIONS),
        help="Break every metric down by this dimension (repeatable).",
    )
    @click.option(
        "--since",
        type=click.DateTime(),
        help="Start of the period (inclusive), in the City's calendar zone.",
    )
    @click.option(
        "--until",
        type=click.DateTime(),
        help="End of the period (exclusive), in the City's calendar zone.",
    )
    @click.option("--metric", "ids", multiple=True, help="Only this metric (repeatable).")
    @click.option(
        "--record",
        is_flag=True,
        help="Also keep every metric and the compliance summary in the metric history.",
    )
    @click.option(
        "--history",
        "history_of",
        metavar="METRIC",
        help="Show the metric's recorded values over time instead (with --by: one breakdown).",
    )
    @click.option(
        "--from",
        "from_",
        type=click.DateTime(),
        help="With --history: snapshots taken at or after this moment (City's calendar zone).",
    )
    @click.option(
        "--to",
        "to",
        type=click.DateTime(),
        help="With --history: snapshots taken before this moment (City's calendar zone).",
    )
    @output_option
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json", "csv"]),
        default="table",
        callback=infer_format,
    )
    @click.pass_context
    def metrics(
        ctx: click.Context,
        domain: str | None,
        source: str | None,
        by: tuple[str, ...],
        since: datetime | None,
        until: datetime | None,
        ids: tuple[str, ...],
        record: bool,
        history_of: str | None,
        from_: datetime | None,
        to: datetime | None,
        fmt: str,
    ) -> None:
        """Compute the standard metrics the same way for every platform's records."""
        if ctx.invoked_subcommand is not None:
            return
        from ..core.metrics import all_metrics, compute_metrics

        obj: Context = ctx.obj
        if history_of is not None:
            _show_history(obj, history_of, by, _moment(from_, obj), _moment(to, obj), fmt)
            return
        if from_ is not None or to is not None:
            raise click.UsageError("--from and --to go with --history METRIC")
        source = check_source(obj, source)
        check_names("metric", ids, all_metrics(obj.pm), param="--metric")
        store = obj.store()
        try:
            results = compute_metrics(
                store,
                obj.config,
                list(ids) or None,
                domain=domain,
                source=source,
                by=by,
                since=_moment(since, obj),
                until=_moment(until, obj),
                pm=obj.pm,
            )
            if record:
                from ..core.history import record_snapshot

                if ids or domain or source or since or until:
                    raise click.UsageError(
                        "--record keeps the whole picture: every metric over every source, "
                        "now; drop --metric, --domain, --source, --since and --until"
                    )
                snapshot = record_snapshot(store, obj.config, pm=obj.pm, origin="metrics --record")
                click.echo(f"recorded snapshot {snapshot} in the metric history", err=True)
        finally:
            store.close()
        if fmt == "json":
            _emit([r.as_json() for r in results], "json")
        elif fmt == "csv":
            _emit(_csv_rows(results), "csv")
        else:
            rows, columns = _table_rows(results, by)
            _emit(rows, "table", columns, title="metrics")

    def _show_history(
        obj: Context,
        metric: str,
        by: tuple[str, ...],
        since: datetime | None,
        until: datetime | None,
        fmt: str,
    ) -> None:
        from ..core.history import COMPLIANCE, history, known_metrics
        from ..core.metrics import all_metrics

        if len(by) > 1:
            raise click.UsageError("--history shows one breakdown at a time: give one --by")
        store = obj.store()
        try:
            recorded = known_metrics(store)
            names = set(all_metrics(obj.pm)) | set(recorded)
            if not any(n.startswith(COMPLIANCE + ".") for n in names):
                names |= {f"{COMPLIANCE}.pass_rate", f"{COMPLIANCE}.controls_failed"}
            check_name("metric", metric, names, param="--history")
            points = history(
                store, metric, since=since, until=until, dimension=by[0] if by else None
            )
        finally:
            store.close()
        if not points:
            click.echo(
                f"no snapshot holds {metric} yet"
                + (" in that period" if since or until else "")
                + ": scheduled jobs and `crosswalk metrics --record` keep them",
                err=True,
            )
        rows = [p.as_json() for p in points]
        if fmt == "table":
            for row, point in zip(rows, points, strict=True):
                row["taken_at"] = point.taken_at.strftime("%Y-%m-%d %H:%M UTC")
                row["value"] = (
                    "unsupported" if row["unsupported"] else _number(row["value"], row["unit"])
                )
            columns = ["taken_at", "origin", "value", "unit", "n", "unsupported"]
            if by:
                columns.insert(2, "key")
            _emit(rows, "table", columns, title=f"{metric}: history")
        else:
            _emit(rows, fmt)

    @metrics.command("list")
    @output_option
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["table", "json", "csv"]),
        default="table",
        callback=infer_format,
    )
    @click.pass_obj
    def metrics_list(obj: Context, fmt: str) -> None:
        """Every metric: id, domain, unit and title."""
        from ..core.metrics import all_metrics

        rows = [m.describe() for m in all_metrics(obj.pm).values()]
        if fmt == "table":
            _emit(rows, "table", ["id", "domain", "unit", "title"], title="metrics")
        else:
            _emit(rows, fmt)

    @metrics.command("show")
    @click.argument("metric_id")
    @click.option("--explain", is_flag=True, help="List every record counted or excluded, and why.")
    @click.option("--source", help="Only this configured source's records.")
    @click.option("--since", type=click.DateTime())
    @click.option("--until", type=click.DateTime())
    @click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table")
    @click.pass_obj
    def metrics_show(
        obj: Context,
        metric_id: str,
        explain: bool,
        source: str | None,
        since: datetime | None,
        until: datetime | None,
        fmt: str,
    ) -> None:
        """A metric's definition; with --explain, which records counted and which did not."""
        from ..core.metrics import MetricContext, all_metrics

        registry = all_metrics(obj.pm)
        metric = registry[check_name("metric", metric_id, registry, param="METRIC_ID")]
        source = check_source(obj, source)
        if not explain:
            described = metric.describe()
            if fmt == "table":
                for key, value in described.items():
                    shown = ", ".join(value) if isinstance(value, list) else value
                    click.echo(f"{key:>11}: {shown}")
            else:
                _emit([described], fmt)
            return
        store = obj.store()
        try:
            ctx = MetricContext(
                store=store,
                policy=obj.config.metrics,
                source=source,
                since=_moment(since, obj),
                until=_moment(until, obj),
            )
            rows = [_explained(e, fmt) for e in metric.explain(ctx)]
        finally:
            store.close()
        _emit(rows, fmt, title=f"{metric.id}: {metric.title}")
        if fmt == "table":
            counted = sum(1 for r in rows if r["counted"])
            click.echo(f"{counted} counted, {len(rows) - counted} excluded")
