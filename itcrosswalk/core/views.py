"""Reporting views for BI tools: stable SQL views over the store with friendly column names, so
Power BI, Excel or any SQL client can read the store directly without knowing its tables.

The views are SQLAlchemy selects compiled for the store's own dialect, so SQLite and PostgreSQL
give the same rows. They are made when a store is created or migrated (:func:`ensure_views`
from :func:`.migrations.prepare`), dropped around a migration (a table rebuilt under a view
would break it), and made again whenever a snapshot is kept, which also adds
``report_findings`` once the compliance history exists. Their names and columns are a
contract: a change to one is a new view, never an edit (see the README's "Reporting views").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

VIEWS: tuple[str, ...] = (
    "report_portfolio_status",
    "report_service_kpis_by_month",
    "report_endpoint_compliance",
    "report_findings",
    "report_metric_history",
)


def _epoch(column: Any, dialect: str) -> Any:
    """Whole seconds since 1970 of a stored UTC moment, the fraction dropped on both stores
    (see :func:`itcrosswalk.core.metrics.epoch`)."""
    if dialect == "sqlite":
        return sa.cast(sa.func.strftime("%s", sa.func.substr(column, 1, 19)), sa.BigInteger)
    return sa.cast(sa.func.floor(sa.extract("epoch", column)), sa.BigInteger)


def _month(column: Any, dialect: str) -> Any:
    """``YYYY-MM`` of a stored UTC moment, in UTC."""
    if dialect == "sqlite":
        return sa.func.strftime("%Y-%m", column)
    return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM")


def _round(value: Any, places: int) -> Any:
    return sa.func.round(sa.cast(value, sa.Numeric), places)


def _count_if(condition: Any) -> Any:
    return sa.func.sum(sa.case((condition, 1), else_=0))


def portfolio_status(dialect: str) -> Any:
    from .metrics import kind_condition
    from .store import ENTITY_TABLES

    t = ENTITY_TABLES["work_item"]
    cost = sa.func.coalesce(t.c.forecast_cost, t.c.actual_cost)
    return sa.select(
        t.c.source.label("source"),
        t.c.platform.label("platform"),
        t.c.source_id.label("record_id"),
        t.c.number.label("project_number"),
        t.c.name.label("project_name"),
        t.c.kind.label("kind"),
        t.c.state.label("state"),
        t.c.phase.label("phase"),
        t.c.health.label("health"),
        t.c.manager.label("project_manager"),
        t.c.sponsor.label("sponsor"),
        t.c.department.label("department"),
        t.c.planned_start.label("planned_start"),
        t.c.planned_finish.label("planned_finish"),
        t.c.baseline_finish.label("baseline_finish"),
        t.c.actual_finish.label("actual_finish"),
        t.c.percent_complete.label("percent_complete"),
        t.c.budget.label("budget"),
        t.c.actual_cost.label("actual_cost"),
        t.c.forecast_cost.label("forecast_cost"),
        (cost - t.c.budget).label("cost_variance"),
        sa.case((t.c.state == "cancelled", 1), else_=0).label("is_cancelled"),
        t.c.url.label("link"),
        t.c.updated_at.label("updated_at"),
    ).where(t.c.deleted.is_(False), kind_condition(t, ("project",)))


def service_kpis_by_month(dialect: str) -> Any:
    from .store import ENTITY_TABLES

    t = ENTITY_TABLES["ticket"]
    month = _month(t.c.opened_at, dialect).label("month")
    resolved = t.c.resolved_at.is_not(None) & (t.c.resolved_at >= t.c.opened_at)
    seconds = sa.case(
        (resolved, _epoch(t.c.resolved_at, dialect) - _epoch(t.c.opened_at, dialect)),
        else_=None,
    )
    return (
        sa.select(
            month,
            t.c.source.label("source"),
            t.c.platform.label("platform"),
            t.c.kind.label("ticket_kind"),
            t.c.priority.label("priority"),
            sa.func.count().label("tickets_opened"),
            _count_if(resolved).label("tickets_resolved"),
            _count_if(t.c.reopen_count > 0).label("tickets_reopened"),
            _count_if(t.c.reassignment_count > 0).label("tickets_reassigned"),
            _round(sa.func.sum(seconds) / 3600.0 / sa.func.nullif(_count_if(resolved), 0), 2).label(
                "mean_hours_to_resolve"
            ),
        )
        .where(t.c.deleted.is_(False), t.c.opened_at.is_not(None))
        .group_by(month, t.c.source, t.c.platform, t.c.kind, t.c.priority)
    )


def endpoint_compliance(dialect: str) -> Any:
    from .store import ENTITY_TABLES

    t = ENTITY_TABLES["device"]
    compliant = _count_if(t.c.compliance == "compliant")
    judged = _count_if(t.c.compliance.in_(("compliant", "noncompliant")))
    return (
        sa.select(
            t.c.source.label("source"),
            t.c.platform.label("platform"),
            sa.func.coalesce(t.c.department, "(none)").label("department"),
            sa.func.coalesce(t.c.os, "(none)").label("operating_system"),
            sa.func.count().label("devices"),
            compliant.label("compliant"),
            _count_if(t.c.compliance == "noncompliant").label("not_compliant"),
            _count_if(~t.c.compliance.in_(("compliant", "noncompliant"))).label(
                "compliance_unknown"
            ),
            _count_if(t.c.encrypted.is_(True)).label("encrypted"),
            _round(100.0 * compliant / sa.func.nullif(judged, 0), 2).label("compliant_percent"),
        )
        .where(t.c.deleted.is_(False))
        .group_by(
            t.c.source,
            t.c.platform,
            sa.func.coalesce(t.c.department, "(none)"),
            sa.func.coalesce(t.c.os, "(none)"),
        )
    )


def findings(dialect: str) -> Any:
    from .compliance.history import compliance_runs
    from .compliance.history import findings as table

    latest = sa.select(sa.func.max(compliance_runs.c.id)).scalar_subquery()
    return sa.select(
        table.c.run_id.label("run_id"),
        compliance_runs.c.as_of.label("run_at"),
        sa.case((table.c.run_id == latest, 1), else_=0).label("is_latest_run"),
        table.c.control_id.label("control"),
        table.c.status.label("status"),
        table.c.severity.label("severity"),
        table.c.resource.label("resource"),
        table.c.reason.label("reason"),
        table.c.department.label("department"),
        table.c.source.label("source"),
        table.c.url.label("link"),
    ).select_from(table.join(compliance_runs, compliance_runs.c.id == table.c.run_id))


def metric_history(dialect: str) -> Any:
    from .store import metric_snapshots as m
    from .store import snapshot_runs as r

    return sa.select(
        r.c.id.label("snapshot_id"),
        r.c.taken_at.label("taken_at"),
        r.c.origin.label("taken_by"),
        m.c.metric.label("metric"),
        sa.func.nullif(m.c.dimension, "").label("breakdown"),
        sa.func.nullif(m.c.key, "").label("breakdown_key"),
        m.c.value.label("value"),
        m.c.unit.label("unit"),
        m.c.n.label("records"),
        m.c.unsupported.label("unsupported_reason"),
    ).select_from(m.join(r, r.c.id == m.c.snapshot_id))


BUILDERS: dict[str, Callable[[str], Any]] = {
    "report_portfolio_status": portfolio_status,
    "report_service_kpis_by_month": service_kpis_by_month,
    "report_endpoint_compliance": endpoint_compliance,
    "report_findings": findings,
    "report_metric_history": metric_history,
}
NEEDS = {"report_findings": ("findings", "compliance_runs")}
"""Views over tables made on first use (the compliance history): made once those exist."""


def view_sql(name: str, dialect: sa.Dialect) -> str:
    """The ``SELECT`` a view is made of, compiled for ``dialect`` with its literals inline."""
    query = BUILDERS[name](dialect.name)
    return str(query.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def drop_views(conn: sa.Connection) -> None:
    """Drop every reporting view (before a migration rebuilds the tables under them)."""
    for name in reversed(VIEWS):
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")


def ensure_views(conn: sa.Connection) -> list[str]:
    """Make (or remake) every reporting view whose tables exist; returns those made."""
    tables = set(sa.inspect(conn).get_table_names())
    made = []
    for name in VIEWS:
        if not set(NEEDS.get(name, ())) <= tables:
            continue
        conn.exec_driver_sql(f"DROP VIEW IF EXISTS {name}")
        conn.exec_driver_sql(f"CREATE VIEW {name} AS {view_sql(name, conn.dialect)}")
        made.append(name)
    return made


def ensure_views_on(engine: sa.Engine) -> list[str]:
    """:func:`ensure_views` in a transaction of its own."""
    with engine.begin() as conn:
        return ensure_views(conn)
