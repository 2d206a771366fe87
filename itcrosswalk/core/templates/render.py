"""Rendering templates to Markdown and HTML with Jinja2, from any platform's records.

The status report is computed from the common model alone (health, progress, schedule, cost
and earned value), so a ServiceNow project and a Project Server project give the same report.
Everything that came from a platform is escaped: HTML through Jinja2's autoescape, Markdown
through a finalizer that neutralises table pipes, emphasis and raw HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from ..errors import ConfigError
from ..model import ENTITIES
from ..store import Store
from .model import Template

LAYOUTS = Path(__file__).parent / "render"
FORMATS = ("md", "html")

# Work item kinds a portfolio report lists (tasks and milestones belong to their project).
PORTFOLIO_KINDS = ("program", "project", "epic", "feature")
MAX_DEPTH = 6

_MD_SPECIAL = re.compile(r"([\\`*_\[\]#|<>])")


def md_escape(value: Any) -> Any:
    """A value safe inside Markdown text and table cells: no emphasis, links, pipes or HTML."""
    if isinstance(value, Markup) or not isinstance(value, str):
        return value
    flat = " ".join(value.split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def _fmt_value(value: Any) -> str:
    if value is None or value == "" or value == [] or value == "unknown":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d")
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _money(value: Any) -> str:
    if value is None:
        return "—"
    amount = float(value)  # -$194,983: the sign before the currency, as a reader writes it
    return f"{'-' if amount < 0 else ''}${abs(amount):,.0f}"


def _percent(value: Any) -> str:
    if value is None:
        return "—"
    return f"{float(value):.0f}%"


def environment(fmt: str) -> Environment:
    """The Jinja2 environment of one output format."""
    if fmt not in FORMATS:
        raise ConfigError(f"render format {fmt!r}: use one of {', '.join(FORMATS)}")
    env = Environment(
        loader=FileSystemLoader(str(LAYOUTS)),
        # The layouts are named *.html.j2, which select_autoescape would not recognise.
        autoescape=fmt == "html",
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=md_escape if fmt == "md" else None,
    )
    env.filters.update(value=_fmt_value, money=_money, percent=_percent)
    return env


# -- finding records ----------------------------------------------------------------------------


def _row(store: Store, entity: str, conditions: list[Any]) -> list[dict[str, Any]]:
    table = store.table(entity)
    names = list(ENTITIES[entity].model_fields)
    query = sa.select(*[table.c[n] for n in names]).where(table.c.deleted.is_(False), *conditions)
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def find_record(
    store: Store, ref: str, entities: tuple[str, ...] = ("work_item",)
) -> tuple[str, dict[str, Any]]:
    """The record ``SOURCE:ID`` names (its source id, or its number), and its entity."""
    source, sep, ident = ref.partition(":")
    if not sep or not source or not ident:
        raise ConfigError(
            f"{ref!r}: name a record as SOURCE:ID (the source's name, then its id or number)"
        )
    for entity in entities:
        table = store.table(entity)
        rows = _row(
            store,
            entity,
            [table.c.source == source, sa.or_(table.c.source_id == ident, table.c.number == ident)],
        )
        if rows:
            return entity, rows[0]
    raise ConfigError(
        f"no record {ident!r} from source {source!r} in the store; sync it first, or check the id "
        f"(`crosswalk export work-items --source {source}` lists them)"
    )


def _descendants(store: Store, root: Mapping[str, Any]) -> list[dict[str, Any]]:
    table = store.table("work_item")
    found: list[dict[str, Any]] = []
    seen = {root["source_id"]}
    frontier = [root["source_id"]]
    for _ in range(MAX_DEPTH):
        if not frontier:
            break
        children = _row(
            store,
            "work_item",
            [table.c.source == root["source"], table.c.parent_id.in_(frontier)],
        )
        frontier = []
        for child in children:
            if child["source_id"] in seen:
                continue  # a parent cycle on the platform must not loop the report
            seen.add(child["source_id"])
            frontier.append(child["source_id"])
            found.append(child)
    return found


# -- the status report --------------------------------------------------------------------------


def _ratio(numerator: Any, denominator: Any) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(float(numerator) / float(denominator), 2)


def project_facts(item: Mapping[str, Any]) -> dict[str, Any]:
    """What a status report says about one work item, derived from the common model only."""
    budget, actual, forecast = (
        item.get("budget"),
        item.get("actual_cost"),
        item.get("forecast_cost"),
    )
    pv, ev = item.get("planned_value"), item.get("earned_value")
    planned_finish = item.get("planned_finish")
    finish = item.get("actual_finish")
    late_days = None
    if planned_finish is not None:
        reference = finish or datetime.now(UTC)
        if item.get("state") not in ("done", "cancelled") or finish is not None:
            late_days = max(0, (reference - planned_finish).days)
    return {
        "spi": _ratio(ev, pv),
        "cpi": _ratio(ev, actual),
        "budget_variance": None if budget is None or forecast is None else budget - forecast,
        "spent_share": _ratio(actual, budget),
        "late_days": late_days,
    }


def status_context(
    store: Store, *, item: str | None = None, portfolio: str | None = None
) -> dict[str, Any]:
    """The data of a status report for one work item, or for every work item under one."""
    if bool(item) == bool(portfolio):
        raise ConfigError("give either --item SOURCE:ID or --portfolio SOURCE:ID")
    _entity, root = find_record(store, item or portfolio or "")
    if item:
        children = _descendants(store, root)
        milestones = sorted(
            (c for c in children if c["kind"] == "milestone"),
            key=lambda c: (
                c["planned_finish"] is None,
                c["planned_finish"] or datetime.min.replace(tzinfo=UTC),
            ),
        )
        return {
            "mode": "item",
            "root": root,
            "facts": project_facts(root),
            "milestones": milestones,
            "tasks_open": sum(
                1
                for c in children
                if c["kind"] == "task" and c["state"] not in ("done", "cancelled")
            ),
            "items": [],
            "summary": {},
        }
    rows = [c for c in _descendants(store, root) if c["kind"] in PORTFOLIO_KINDS]
    rows.sort(
        key=lambda c: ({"red": 0, "amber": 1, "green": 2}.get(c["health"], 3), c["name"] or "")
    )
    items = [{**row, "facts": project_facts(row)} for row in rows]
    health: dict[str, int] = {}
    for row in rows:
        health[row["health"] or "unknown"] = health.get(row["health"] or "unknown", 0) + 1

    # Cancelled work is listed, but no part of the totals; the report says how much was left out.
    counted = [r for r in rows if r["state"] != "cancelled"]

    def total(name: str) -> float | None:
        values = [r[name] for r in counted if r[name] is not None]
        return sum(values) if values else None

    summary = {
        "count": len(counted),
        "cancelled": len(rows) - len(counted),
        "health": dict(sorted(health.items())),
        "budget": total("budget"),
        "actual_cost": total("actual_cost"),
        "forecast_cost": total("forecast_cost"),
        "spi": _ratio(total("earned_value"), total("planned_value")),
        "cpi": _ratio(total("earned_value"), total("actual_cost")),
    }
    return {
        "mode": "portfolio",
        "root": root,
        "facts": project_facts(root),
        "milestones": [],
        "tasks_open": 0,
        "items": items,
        "summary": summary,
    }


def render(
    template: Template,
    fmt: str,
    *,
    store: Store | None = None,
    item: str | None = None,
    portfolio: str | None = None,
) -> str:
    """A template rendered to ``md`` or ``html``: from a record or portfolio where given, else
    blank (a form or checklist to fill in)."""
    env = environment(fmt)
    layout = f"{template.render}.{fmt}.j2"
    if not (LAYOUTS / layout).exists():
        raise ConfigError(f"template {template.id}: no layout {template.render!r} for {fmt}")
    context: dict[str, Any] = {
        "template": template,
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "record": None,
        "entity": None,
        "labels": {f.name: f.title for f in template.fields},
        "required": {f.name for f in template.fields if f.required},
    }
    if template.render == "status-report":
        if store is None:
            raise ConfigError(
                "the status report is rendered from the store: give --item or --portfolio"
            )
        context.update(status_context(store, item=item, portfolio=portfolio))
    elif item or portfolio:
        if portfolio:
            raise ConfigError(f"template {template.id} renders one record: use --item")
        if store is None:
            raise ConfigError("rendering from a record needs the store")
        entity = template.record_entity or "work_item"
        context["entity"], context["record"] = find_record(store, item or "", (entity,))
    return env.get_template(layout).render(**context)
