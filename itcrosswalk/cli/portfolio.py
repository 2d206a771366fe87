"""``crosswalk portfolio``: economics, one ranked list, and the best portfolio a budget buys."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import EXIT_ATTENTION, Context, _emit, check_source, infer_format, output_option

FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
    callback=infer_format,
)  # fmt: skip


def _candidates(obj: Context, source: str | None) -> Any:
    """The funding candidates in the store, of one checked source or of all."""
    from ..core.portfolio.candidates import load

    source = check_source(obj, source)
    store = obj.store()
    try:
        return load(store, obj.config.portfolio, source=source)
    finally:
        store.close()


def _none_to_judge(count: int, excluded: Any) -> None:
    """With no candidate to judge, say so and exit 3: an empty list is not an answer."""
    if count:
        return
    click.echo(
        f"no funding candidates in the store ({len(excluded)} excluded): sync a source that "
        "keeps demands, proposals, epics or ideas with their costs first",
        err=True,
    )
    sys.exit(EXIT_ATTENTION)


def _money(value: Any) -> str:
    return "-" if value is None else f"{value:,.0f}"


def register(cli: click.Group) -> None:
    @cli.group()
    def portfolio() -> None:
        """Investment decisions: economics, ranking and selection across every platform."""

    @portfolio.command("economics")
    @click.option("--source", help="Only this configured source's candidates.")
    @click.option("--by", type=click.Choice(["platform", "source", "department", "state"]))
    @click.option(
        "--explain", is_flag=True, help="Every input: the yearly costs, benefits, discount factors."
    )
    @output_option
    @FORMAT
    @click.pass_obj
    def economics(
        obj: Context, source: str | None, by: str | None, explain: bool, fmt: str
    ) -> None:
        """NPV, IRR, payback, benefit-cost ratio and five-year TCO of every candidate."""
        from ..core.portfolio import economics_rows, explain_rows

        policy = obj.config.portfolio
        cands = _candidates(obj, source)
        if explain:
            _emit(explain_rows(cands, policy.discount_rate), fmt, title="economics: every input")
        else:
            rows = economics_rows(cands, by)
            if fmt == "table" and by is None:
                columns = ["candidate", "platform", "cost", "npv", "irr", "payback_years",
                           "discounted_payback_years", "bcr", "tco", "irr_note"]  # fmt: skip
                shown = [{**r, "cost": _money(r["cost"]), "npv": _money(r["npv"]), "tco": _money(r["tco"]),
                          "irr": "-" if r["irr"] is None else f"{100 * r['irr']:.2f}%"} for r in rows]  # fmt: skip
                _emit(
                    shown, "table", columns, title=f"economics at {100 * policy.discount_rate:.2f}%"
                )
            else:
                _emit(rows, fmt, title="economics")
        if fmt == "table":
            _excluded(cands.excluded_counts)
        _none_to_judge(len(cands.candidates), cands.excluded)

    @portfolio.command("rank")
    @click.option("--source", help="Only this configured source's candidates.")
    @output_option
    @FORMAT
    @click.pass_obj
    def rank_(obj: Context, source: str | None, fmt: str) -> None:
        """One ranked list of candidates across all platforms, each score with its parts."""
        from ..core.portfolio import rank_rows
        from ..core.portfolio.scoring import rank

        policy = obj.config.portfolio
        cands = _candidates(obj, source)
        ranking = rank(cands.candidates, policy.scoring)
        _emit(rank_rows(ranking), fmt, title="ranking")
        for status in ranking.criteria:
            if not status.supported:
                click.echo(f"criterion {status.id}: unsupported: {status.reason}", err=True)
        _none_to_judge(len(cands.candidates), cands.excluded)
        if ranking.ahp is not None:
            weights = ", ".join(f"{c.id} {c.given_weight:.3f}" for c in ranking.criteria)
            cr = ranking.ahp.cr
            tail = f"; consistency ratio {cr:.3f}" if cr is not None else ""
            click.echo(f"weights from the AHP matrix: {weights}{tail}", err=True)
        for warning in ranking.warnings:
            click.echo(f"warning: {warning}", err=True)
        if fmt == "table":
            _excluded(cands.excluded_counts)

    @portfolio.command("select")
    @click.option("--budget", type=float, help="The budget of each fiscal year it constrains.")
    @click.option(
        "--fiscal-year", help="Only this fiscal year's costs count against the budget (FY2027)."
    )
    @click.option(
        "--scenario",
        "scenarios",
        multiple=True,
        help="A [portfolio.scenarios] name; repeat to compare.",
    )
    @click.option(
        "--objective",
        type=click.Choice(["score", "npv"]),
        help="Maximise total score (default) or NPV.",
    )
    @click.option("--source", help="Only this configured source's candidates.")
    @click.option(
        "--lp",
        "lp_file",
        type=click.Path(dir_okay=False),
        help="Write the exact model (CPLEX LP format).",
    )
    @click.option(
        "-o",
        "--output-dir",
        type=click.Path(file_okay=False),
        help="Write portfolio.html, .xlsx and .json here.",
    )
    @click.option(
        "--apply",
        "apply_",
        is_flag=True,
        help="Approve the funded demands on their platforms (a dry run unless --yes).",
    )
    @click.option("--yes", is_flag=True, help="With --apply: really send the approvals.")
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    @click.pass_obj
    def select_(
        obj: Context, budget: float | None, fiscal_year: str | None, scenarios: tuple[str, ...],
        objective: str | None, source: str | None, lp_file: str | None, output_dir: str | None,
        apply_: bool, yes: bool, fmt: str,
    ) -> None:  # fmt: skip
        """Choose the set that maximises total score (or NPV) within the budget, exactly."""
        from ..core.portfolio import lp_text, run_selection
        from ..core.portfolio.economics import parse_fy

        if fiscal_year:
            try:
                parse_fy(fiscal_year)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="'--fiscal-year'") from None
        source = check_source(obj, source)
        store = obj.store()
        try:
            data = run_selection(store, obj.config.portfolio, config=obj.config, budget=budget, fiscal_year=fiscal_year,
                                 scenarios=scenarios, objective=objective, source=source)  # fmt: skip
        finally:
            store.close()
        models = data.pop("_models")
        _none_to_judge(data["candidates"], data["excluded"])
        if lp_file:
            path = Path(lp_file)
            for index, (name, model) in enumerate(models):
                target = path if index == 0 else path.with_name(f"{path.stem}-{name}{path.suffix}")
                target.write_text(lp_text(name, model), encoding="utf-8")
                click.echo(f"wrote {target}", err=True)
        if output_dir:
            _write_reports(data, Path(output_dir))
        applied = _apply(obj, data, dry_run=not yes) if apply_ else None
        if fmt == "json":
            from ..core.output import jsonable

            click.echo(json.dumps(jsonable({**data, "apply": applied}), indent=2))
            return
        _print_selection(data)
        if applied is not None:
            _emit(applied, "table", ["candidate", "platform", "action", "detail"],
                  title="apply (dry run: nothing was sent; add --yes)" if not yes else "apply")  # fmt: skip

    def _excluded(counts: dict[str, int]) -> None:
        if counts:
            click.echo("excluded: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
                       + " (portfolio economics --format json lists them)", err=True)  # fmt: skip


def _write_reports(data: dict[str, Any], folder: Path) -> None:
    from ..core.portfolio import report

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "portfolio.html").write_text(report.to_html(data), encoding="utf-8")
    (folder / "portfolio.xlsx").write_bytes(report.to_xlsx(data))
    from ..core.output import jsonable

    (folder / "portfolio.json").write_text(json.dumps(jsonable(data), indent=2), encoding="utf-8")
    click.echo(f"wrote {folder / 'portfolio.html'}, portfolio.xlsx and portfolio.json", err=True)


def _print_selection(data: dict[str, Any]) -> None:
    for s in data["selections"]:
        click.echo(f"scenario {s['scenario']}: total {s['objective']} {s['value']:.2f}, "
                   f"{len(s['funded'])} funded, {len(s['unfunded'])} not funded")  # fmt: skip
        for y in s["years"] + s["capacity"]:
            click.echo(
                f"  {y['constraint']}: {_money(y['used'])} of {_money(y['limit'])} ({_money(y['left'])} left)"
            )
        rows = [{"candidate": r["candidate"], "platform": r["platform"], "value": round(r["value"], 2),
                 "cost": _money(r["cost"]), "per $1M": r["per_million"], "name": r["name"]} for r in s["funded"]]  # fmt: skip
        _emit(
            rows,
            "table",
            ["candidate", "platform", "value", "cost", "per $1M", "name"],
            title="funded",
        )
        rows = [{"candidate": r["candidate"], "platform": r["platform"], "value": round(r["value"], 2),
                 "cost": _money(r["cost"]), "why": r["reason"]} for r in s["unfunded"]]  # fmt: skip
        _emit(rows, "table", ["candidate", "platform", "value", "cost", "why"], title="not funded")
        for w in s["warnings"]:
            click.echo(f"warning: {w}", err=True)
        best = [p for p in s["frontier"] if p["value"] is not None]
        if best:
            click.echo(
                "  frontier: "
                + ", ".join(f"{_money(p['budget'])} -> {p['value']:.1f}" for p in best)
            )
    for w in data["warnings"]:
        click.echo(f"warning: {w}", err=True)
    if data["excluded"]:
        counts: dict[str, int] = {}
        for row in data["excluded"]:
            counts[row["reason_kind"]] = counts.get(row["reason_kind"], 0) + 1
        click.echo(
            "excluded: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())), err=True
        )


def _apply(obj: Context, data: dict[str, Any], *, dry_run: bool) -> list[dict[str, Any]]:
    from ..core.portfolio.apply import approve
    from ..core.sync import build_adapter

    selection = data["selections"][0]
    note = f"Funded by itcrosswalk portfolio selection (scenario {selection['scenario']})"
    return approve(selection["funded"], lambda s: build_adapter(obj.config, s, obj.pm), note=note,
                   dry_run=dry_run)  # fmt: skip
