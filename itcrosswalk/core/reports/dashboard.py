"""Executive dashboards: one page per audience (CIO, PMO, service desk, endpoints) with headline
KPIs judged red, amber or green against the City's thresholds, their trend from the metric
history, the top risks, the project list, and how fresh each source's data is.

The numbers are the metrics engine's (:func:`..metrics.compute_metrics`), so a tile says what
``crosswalk metrics`` says; a KPI the data cannot support says so with its reason and gets no
colour. Cancelled work is left out of the project list and its totals, and the page says how
much was left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import Config, ThresholdConfig
    from ..contract import Registry
    from ..store import Store

AUDIENCES: dict[str, dict[str, Any]] = {
    "cio": {
        "title": "CIO dashboard",
        "kpis": [
            "ppm.health_mix",
            "ppm.budget_variance",
            "ppm.spi",
            "itsm.sla_attainment",
            "itsm.backlog",
            "endpoint.compliance_rate",
            "compliance.pass_rate",
            "capacity.over_allocated_people",
        ],
    },
    "pmo": {
        "title": "PMO dashboard",
        "kpis": [
            "ppm.health_mix",
            "ppm.on_time_rate",
            "ppm.budget_variance",
            "ppm.spi",
            "ppm.cpi",
            "ppm.vac",
            "ppm.demand_backlog",
            "ppm.demand_cycle_days",
            "capacity.over_allocated_people",
        ],
    },
    "service-desk": {
        "title": "Service desk dashboard",
        "kpis": [
            "itsm.volume",
            "itsm.backlog",
            "itsm.mttr_hours",
            "itsm.sla_attainment",
            "itsm.platform_sla_attainment",
            "itsm.fcr_rate",
            "itsm.reopen_rate",
            "itsm.reassignment_rate",
        ],
    },
    "endpoints": {
        "title": "Endpoint dashboard",
        "kpis": [
            "endpoint.compliance_rate",
            "endpoint.encryption_rate",
            "endpoint.stale_devices",
            "endpoint.os_currency",
            "endpoint.cmdb_coverage",
            "compliance.pass_rate",
            "compliance.controls_failed",
        ],
    },
}
"""Each audience's page: its title and headline KPIs, in the order they are shown."""

CAPACITY_METRIC = "capacity.over_allocated_people"

DEFAULT_THRESHOLDS: dict[str, tuple[float, float, str]] = {
    "ppm.health_mix": (70, 50, "higher"),
    "ppm.on_time_rate": (80, 60, "higher"),
    "ppm.budget_variance": (5, 10, "lower"),
    "ppm.spi": (0.95, 0.85, "higher"),
    "ppm.cpi": (0.95, 0.85, "higher"),
    "ppm.vac": (0, -100_000, "higher"),
    "ppm.demand_cycle_days": (30, 60, "lower"),
    "itsm.sla_attainment": (90, 80, "higher"),
    "itsm.platform_sla_attainment": (90, 80, "higher"),
    "itsm.mttr_hours": (24, 72, "lower"),
    "itsm.fcr_rate": (70, 50, "higher"),
    "itsm.reopen_rate": (5, 10, "lower"),
    "itsm.reassignment_rate": (20, 35, "lower"),
    "endpoint.compliance_rate": (95, 85, "higher"),
    "endpoint.encryption_rate": (98, 90, "higher"),
    "endpoint.stale_devices": (10, 50, "lower"),
    "endpoint.os_currency": (90, 75, "higher"),
    "endpoint.cmdb_coverage": (95, 85, "higher"),
    "compliance.pass_rate": (95, 85, "higher"),
    "compliance.controls_failed": (0, 3, "lower"),
    CAPACITY_METRIC: (0, 5, "lower"),
}
"""(green, amber, which way is better) per KPI, where ``[dashboard.thresholds]`` sets none."""

COMPLIANCE_TITLES = {
    "compliance.pass_rate": ("Compliance checks passed", "%"),
    "compliance.controls_failed": ("Compliance controls failed", "count"),
}
ACTIVE = ("approved", "in_progress", "on_hold")
SIGNED = {"ppm.budget_variance"}
"""Percentages that are deviations, not shares: not drawn on a 0-100 share axis."""


@dataclass(frozen=True)
class Threshold:
    green: float
    amber: float
    better: str
    origin: str

    def rag(self, value: float | None) -> str | None:
        if value is None:
            return None
        if self.better == "higher":
            return "green" if value >= self.green else "amber" if value >= self.amber else "red"
        return "green" if value <= self.green else "amber" if value <= self.amber else "red"

    def words(self, unit: str, currency: str) -> str:
        from .formats import value as shown

        sign = "≥" if self.better == "higher" else "≤"
        return (
            f"green {sign} {shown(self.green, unit, currency)}, amber {sign} "
            f"{shown(self.amber, unit, currency)} ({self.origin})"
        )


def threshold(config: Config, metric: str) -> Threshold | None:
    configured: ThresholdConfig | None = config.dashboard.thresholds.get(metric)
    if configured is not None:
        return Threshold(configured.green, configured.amber, configured.better, "the City's")
    default = DEFAULT_THRESHOLDS.get(metric)
    if default is None:
        return None
    return Threshold(float(default[0]), float(default[1]), default[2], "built-in")


def _kpi(
    metric: str,
    result: Any,
    title: str,
    unit: str,
    config: Config,
    trend: list[Any],
    *,
    unsupported: str | None = None,
) -> dict[str, Any]:
    from .formats import value as shown

    currency = config.dashboard.currency
    value = None if result is None else result.get("value")
    why = unsupported or (None if result is None else result.get("unsupported"))
    limit = threshold(config, metric)
    rag = None if why or limit is None else limit.rag(value)
    previous = [p for p in trend if p.value is not None]
    change = None
    if value is not None and len(previous) >= 2:
        change = round(float(value) - float(previous[-2].value), 4)
    return {
        "id": metric,
        "title": title,
        "unit": unit,
        "value": value,
        "shown": "not available" if why else shown(value, unit, currency),
        "n": None if result is None else result.get("n"),
        "rag": rag,
        "threshold": None if limit is None else limit.words(unit, currency),
        "unsupported": why,
        "excluded": {} if result is None else result.get("excluded") or {},
        "trend": [{"at": p.taken_at.isoformat(), "value": p.value} for p in trend],
        "change": change,
    }


def project_list(store: Store, now: datetime, *, source: str | None = None) -> dict[str, Any]:
    """The projects (a platform's stand-ins included), worst health first, cancelled ones left
    out and counted; with the total of their budgets."""
    from ..metrics import kind_condition
    from ..store import ENTITY_TABLES

    t = ENTITY_TABLES["work_item"]
    query = (
        sa.select(
            t.c.source,
            t.c.platform,
            t.c.source_id,
            t.c.number,
            t.c.name,
            t.c.kind,
            t.c.state,
            t.c.health,
            t.c.manager,
            t.c.planned_finish,
            t.c.budget,
            t.c.forecast_cost,
            t.c.actual_cost,
            t.c.url,
        )
        .where(
            t.c.deleted.is_(False),
            kind_condition(t, ("project",)),
            *([t.c.source == source] if source else []),
        )
        .order_by(t.c.source, t.c.name, t.c.source_id)
    )
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    cancelled = [r for r in rows if r["state"] == "cancelled"]
    listed = [r for r in rows if r["state"] != "cancelled"]
    order = {"red": 0, "amber": 1, "green": 2}
    listed.sort(key=lambda r: (order.get(r["health"], 3), r["source"], r["name"] or ""))
    for row in listed:
        row["late"] = bool(
            row["planned_finish"] is not None
            and row["planned_finish"] < now
            and row["state"] in ACTIVE
        )
    budgets = [r["budget"] for r in listed if r["budget"] is not None]
    health: dict[str, int] = {"red": 0, "amber": 0, "green": 0, "unknown": 0}
    for row in listed:
        health[row["health"] if row["health"] in health else "unknown"] += 1
    return {
        "list": listed,
        "count": len(listed),
        "cancelled": len(cancelled),
        "budget_total": sum(budgets) if budgets else None,
        "without_budget": len(listed) - len(budgets),
        "health": health,
    }


def _breached_p1(store: Store, config: Config, pm: Registry, now: datetime) -> dict[str, Any]:
    """Priority 1 incidents opened in the last 30 days that missed the City's target."""
    from ..metrics import MetricContext, all_metrics

    metric = all_metrics(pm).get("itsm.sla_attainment")
    if metric is None:
        return {"count": None, "list": [], "unsupported": "the SLA metric is not installed"}
    since = now - timedelta(days=30)
    ctx = MetricContext(store=store, policy=config.metrics, since=since, until=now, now=now)
    result = metric.compute(ctx)
    if result.unsupported:
        return {"count": None, "list": [], "unsupported": result.unsupported}
    from ..store import ENTITY_TABLES

    t = ENTITY_TABLES["ticket"]
    with store.engine.connect() as conn:
        p1 = {
            (r.source, r.source_id): r
            for r in conn.execute(
                sa.select(t.c.source, t.c.source_id, t.c.url, t.c.title).where(
                    t.c.deleted.is_(False), t.c.priority == 1, t.c.opened_at >= since
                )
            )
        }
    missed = [
        e
        for e in metric.explain(ctx)
        if e.counted and e.value == 0.0 and (e.source, e.source_id) in p1
    ]
    listed = []
    for e in missed[:10]:
        found = p1.get((e.source, e.source_id))
        listed.append(
            {
                "source": e.source,
                "number": e.label,
                "title": found.title if found else None,
                "url": found.url if found else None,
            }
        )
    return {"count": len(missed), "list": listed, "unsupported": None, "since": since}


def _freshness(store: Store) -> list[dict[str, Any]]:
    from ..history import source_freshness

    runs = source_freshness(store)
    by_source: dict[str, dict[str, Any]] = {}
    for row in store.status():
        item = by_source.setdefault(
            row["source"], {"source": row["source"], "quarantined": 0, "denied": []}
        )
        item["quarantined"] += int(row["quarantined"] or 0)
        if row["access"] not in (None, "ok"):
            item["denied"].append(f"{row['stream']} ({row['access']})")
    out = []
    for name in sorted(set(runs) | set(by_source)):
        run = runs.get(name, {})
        item = by_source.get(name, {"quarantined": 0, "denied": []})
        problems = []
        if not run:
            problems.append("never synced")
        elif not run["verified"]:
            problems.append(str(run["problem"]))
        if item["quarantined"]:
            problems.append(f"{item['quarantined']} records quarantined")
        if item["denied"]:
            problems.append("not fully readable: " + ", ".join(item["denied"]))
        out.append(
            {
                "source": name,
                "as_of": run.get("last_ok_at") or run.get("last_run_at"),
                "last_outcome": run.get("outcome"),
                "verified": not problems,
                "problems": problems,
            }
        )
    return out


def build(
    store: Store,
    config: Config,
    audience: str,
    *,
    pm: Registry,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The dashboard's data for one audience (the JSON the page is drawn from)."""
    from ..history import series
    from ..metrics import all_metrics, compute_metrics

    if audience not in AUDIENCES:
        raise ConfigError(f"unknown audience {audience!r}; choose from {', '.join(AUDIENCES)}")
    now = now or datetime.now(UTC)
    spec = AUDIENCES[audience]
    registry = all_metrics(pm)
    wanted = [m for m in spec["kpis"] if m in registry]
    results = (
        {
            r.id: r.as_json()
            for r in compute_metrics(store, config, wanted, by=["platform"], now=now, pm=pm)
        }
        if wanted
        else {}
    )
    compliance_now = _compliance_now(store)
    trends = series(store, spec["kpis"], limit=24)
    kpis = []
    for metric in spec["kpis"]:
        trend = trends.get(metric, [])
        if metric in registry:
            definition = registry[metric]
            kpis.append(
                _kpi(metric, results.get(metric), definition.title, definition.unit, config, trend)
            )
        elif metric in COMPLIANCE_TITLES:
            title, unit = COMPLIANCE_TITLES[metric]
            figure = compliance_now.get(metric)
            kpis.append(
                _kpi(
                    metric,
                    figure,
                    title,
                    unit,
                    config,
                    trend,
                    unsupported=None
                    if figure
                    else "no compliance run is recorded yet: `report compliance` makes one",
                )
            )
        else:
            kpis.append(
                _kpi(
                    metric,
                    None,
                    "Over-allocated people" if metric == CAPACITY_METRIC else metric,
                    "count",
                    config,
                    trend,
                    unsupported="not available: no installed metric measures it yet",
                )
            )
    projects = project_list(store, now)
    risks = _risks(store, config, pm, now, projects, results, registry)
    comparison = _comparison(kpis, results)
    return {
        "report": "dashboard",
        "audience": audience,
        "title": spec["title"],
        "generated_at": now.isoformat(),
        "timezone": config.metrics.calendar.timezone,
        "currency": config.dashboard.currency,
        "kpis": kpis,
        "risks": risks,
        "projects": projects,
        "comparison": comparison,
        "sources": _freshness(store),
    }


def _compliance_now(store: Store) -> dict[str, dict[str, Any]]:
    from ..history import latest_compliance

    run_id, summary = latest_compliance(store)
    if summary is None:
        return {}
    rate = summary.get("pass_rate")
    return {
        "compliance.pass_rate": {
            "value": None if rate is None else round(100.0 * rate, 4),
            "n": summary.get("findings"),
            "unsupported": None if rate is not None else "no finding could be judged",
            "run": run_id,
        },
        "compliance.controls_failed": {
            "value": summary.get("controls_failed"),
            "n": summary.get("controls"),
            "unsupported": None,
            "run": run_id,
        },
    }


def _risks(
    store: Store,
    config: Config,
    pm: Registry,
    now: datetime,
    projects: dict[str, Any],
    results: dict[str, Any],
    registry: dict[str, Any],
) -> dict[str, Any]:
    from ..metrics import compute_metrics

    red = [p for p in projects["list"] if p["health"] == "red"]
    fleet: dict[str, Any]
    compliance = (
        compute_metrics(store, config, ["endpoint.compliance_rate"], now=now, pm=pm)[0].as_json()
        if "endpoint.compliance_rate" in registry
        else None
    )
    if compliance is None or compliance["unsupported"] or compliance["value"] is None:
        fleet = {
            "share": None,
            "unsupported": (compliance or {}).get("unsupported") or "no compliance data",
        }
    else:
        fleet = {
            "share": round(100.0 - float(compliance["value"]), 4),
            "devices": compliance["n"],
            "unsupported": None,
        }
    if CAPACITY_METRIC in registry:
        result = compute_metrics(store, config, [CAPACITY_METRIC], now=now, pm=pm)[0].as_json()
        capacity = {
            "count": result["value"],
            "unsupported": result["unsupported"],
        }
    else:
        capacity = {
            "count": None,
            "unsupported": "not available: no installed metric measures it yet",
        }
    return {
        "red_projects": {"count": len(red), "list": red[:10]},
        "breached_p1": _breached_p1(store, config, pm, now),
        "noncompliant_fleet": fleet,
        "over_allocated_people": capacity,
    }


def _comparison(kpis: list[dict[str, Any]], results: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-platform values of the percentage KPIs, side by side on one 0-100 scale."""
    out = []
    for kpi in kpis:
        result = results.get(kpi["id"])
        if not result or kpi["unit"] != "%" or kpi["id"] in SIGNED or result.get("unsupported"):
            continue
        cells = result.get("breakdown", {}).get("platform") or {}
        if len(cells) >= 2:
            out.append({"id": kpi["id"], "title": kpi["title"], "unit": "%", "values": dict(cells)})
    return out


def charts(data: dict[str, Any]) -> dict[str, str]:
    """Every chart of the page, by id, drawn from the data alone."""
    from . import svg

    out: dict[str, str] = {}
    for kpi in data["kpis"]:
        if kpi["trend"]:
            colour = svg.RAG.get(kpi["rag"] or "", svg.NEUTRAL)
            out[f"trend-{kpi['id']}"] = svg.sparkline(
                f"trend-{kpi['id']}",
                [p["at"][:10] for p in kpi["trend"]],
                [p["value"] for p in kpi["trend"]],
                unit=kpi["unit"],
                colour=colour,
            )
    health = data["projects"]["health"]
    out["project-health"] = svg.bars(
        "project-health",
        ["red", "amber", "green", "unknown"],
        [float(health[k]) for k in ("red", "amber", "green", "unknown")],
        unit="count",
        title="Projects by health (cancelled left out)",
        colours=[svg.HEALTH_COLOURS[k] for k in ("red", "amber", "green", "unknown")],
        width=460,
    )
    for item in data["comparison"]:
        labels = sorted(item["values"])
        out[f"compare-{item['id']}"] = svg.bars(
            f"compare-{item['id']}",
            labels,
            [item["values"][k] for k in labels],
            unit="%",
            title=f"{item['title']} by platform",
            width=460,
        )
    return out
