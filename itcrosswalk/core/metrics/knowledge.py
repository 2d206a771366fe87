"""Knowledge-base quality, root-cause quality and hardware lifecycle metrics.

An article is judged by its latest version (``latest``); counts the platform carries over from
version to version are never summed. Views and uses come from the view log (``kb_use``), where a
source keeps one; a source whose log was not read gives no answer rather than a 0. Assets are in
service when in use, in stock, in maintenance or in transit; ages and warranty quarters are
judged at the moment of reading, in the City's fiscal year (``[metrics] fiscal_year_start``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa

from ..store import ENTITY_TABLES, stream_state
from . import Measure, MetricContext, MetricResult, SqlMetric, epoch, epoch_of, key_text

OPEN = ("new", "in_progress", "on_hold")
DONE = ("resolved", "closed")
IN_SERVICE = ("in_use", "in_stock", "in_maintenance", "in_transit")
DAY = 86400.0


def fiscal_year(day: date, start_month: int) -> int:
    """The fiscal year ``day`` falls in, named by the calendar year it ends in."""
    if start_month == 1:
        return day.year
    return day.year + 1 if day.month >= start_month else day.year


def fiscal_quarter(day: date, start_month: int) -> str:
    """``FY2027 Q1`` for 2026-07-15 when the fiscal year starts in July."""
    quarter = ((day.month - start_month) % 12) // 3 + 1
    return f"FY{fiscal_year(day, start_month)} Q{quarter}"


def quarter_start(day: date, start_month: int) -> date:
    """The first day of the fiscal quarter ``day`` falls in."""
    offset = ((day.month - start_month) % 12) // 3 * 3
    month = (start_month - 1 + offset) % 12 + 1
    year = day.year if month <= day.month else day.year - 1
    return date(year, month, 1)


def add_months(day: date, months: int) -> date:
    index = day.month - 1 + months
    return date(day.year + index // 12, index % 12 + 1, 1)


def unread_reason(ctx: MetricContext, entity: str, what: str) -> str | None:
    """Why the store cannot say anything from ``entity``: no stream of the source(s) read it
    completely. None when one did (its rows, even none, are then an answer)."""
    query = sa.select(stream_state.c.source, stream_state.c.access, stream_state.c.message).where(
        stream_state.c.entity == entity
    )
    if ctx.source:
        query = query.where(stream_state.c.source == ctx.source)
    with ctx.store.engine.connect() as conn:
        rows = conn.execute(query).all()
    if any(r.access in (None, "ok") for r in rows):
        return None
    if rows:
        problems = "; ".join(f"{r.source}: {r.access} {r.message or ''}".strip() for r in rows)
        return f"{what} could not be read ({problems}), so nothing can be said, which is not a 0"
    who = f"source {ctx.source}" if ctx.source else "no synced source"
    return (
        f"{who} keeps {what}"
        + (" none" if ctx.source else "")
        + ": nothing to judge, which is not a 0"
    )


def flag(condition: Any) -> Any:
    """1 for a record meeting ``condition``, else 0: a count whose ``n`` is every record judged."""
    return sa.case((condition, 1), else_=0)


class _Articles(SqlMetric):
    """Articles, each by its latest version."""

    domain = "service"
    entity = "knowledge_article"
    scope_fields = ("state",)
    unknown_is_missing = ("state",)

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.latest.is_(True)]

    def dimensions(self) -> list[str]:
        return ["source", "platform", "kind", "assignment_group"]

    def dimension_expr(self, dimension: str, ctx: MetricContext) -> Any:
        column = {
            "source": "source",
            "platform": "platform",
            "kind": "knowledge_base",
            "assignment_group": "owner_group",
        }.get(dimension)
        return None if column is None else self.table.c[column]


def _article_with(t: sa.Table, rows: Any, where: Sequence[Any]) -> Any:
    """Whether some live version of ``t``'s article (the same number in the same source) has a
    live row of ``rows`` (its ``article_id`` a version's id) meeting ``where``.

    The articles with such a row are found once, as one uncorrelated set of (source, number),
    and each article looked up in it: a test per article (an EXISTS correlated on the article)
    read every row of ``rows`` of its source for each article, as there is no index on
    ``article_id`` (1,600 articles with 40,000 views and 8,000 feedback rows: 4.3 s on SQLite
    for the pass over the articles, 0.27 s at a quarter of the size). No key in the set is NULL,
    so its negation is NOT EXISTS's: an article without a number has no version to match (false,
    as the EXISTS said)."""
    v = ENTITY_TABLES["knowledge_article"].alias("v")
    having = (
        sa.select(v.c.source, v.c.number)
        .select_from(
            rows.join(v, sa.and_(v.c.source == rows.c.source, v.c.source_id == rows.c.article_id))
        )
        .where(rows.c.deleted.is_(False), v.c.deleted.is_(False), v.c.number.is_not(None), *where)
    )
    return sa.and_(t.c.number.is_not(None), sa.tuple_(t.c.source, t.c.number).in_(having))


def _live(t: sa.Table, ctx: MetricContext) -> Any:
    return sa.and_(
        t.c.state == "published",
        t.c.valid_to >= ctx.as_of.date(),
        sa.func.coalesce(t.c.active, True).is_(True),
    )


class LiveShare(_Articles):
    id = "kb.live_share"
    title = "Knowledge articles live"
    unit = "%"
    fields = ("state",)
    measure = Measure("share", condition=_live)
    definition = (
        "Of knowledge articles (each judged by its latest version; retired ones aside), the "
        "share live as the platform itself decides it: published, valid-to date today or later "
        "(a blank valid-to hides an article too) and active. Counts of earlier versions are "
        "never added. Excluded and counted: retired articles."
    )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("retired", t.c.state == "retired")]

    def explain_columns(self, t: sa.Table, ctx: MetricContext) -> dict[str, Any]:
        return {
            "number": t.c.number,
            "version": t.c.version,
            "state": t.c.state,
            "valid_to": t.c.valid_to,
        }


class ReviewOverdue(_Articles):
    id = "kb.review_overdue"
    title = "Knowledge articles overdue for review"
    unit = "count"
    fields = ("state",)
    definition = (
        "Published knowledge articles (latest version) whose last review, the publication of "
        "that version, is more than [metrics] kb_review_days (default 365) before the moment "
        "of reading; n is the published articles judged. Excluded and counted: no publication "
        "date."
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.latest.is_(True), t.c.state == "published"]

    measure = Measure(
        "sum",
        expr=lambda t, ctx: flag(
            t.c.reviewed_on < (ctx.as_of - timedelta(days=ctx.policy.kb_review_days)).date()
        ),
    )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("no publication date", t.c.reviewed_on.is_(None))]

    def explain_columns(self, t: sa.Table, ctx: MetricContext) -> dict[str, Any]:
        return {"number": t.c.number, "version": t.c.version, "reviewed_on": t.c.reviewed_on}


def _used_since(t: sa.Table, ctx: MetricContext) -> Any:
    u = ENTITY_TABLES["knowledge_use"].alias("u")
    cutoff = ctx.as_of - timedelta(days=ctx.policy.kb_unused_days)
    return _article_with(t, u, [u.c.created_at >= cutoff, u.c.created_at <= ctx.as_of])


class UnusedArticles(_Articles):
    id = "kb.unused_articles"
    title = "Knowledge articles unused"
    unit = "count"
    fields = ("state",)
    definition = (
        "Published knowledge articles (latest version) nobody viewed or attached to a task in "
        "the [metrics] kb_unused_days (default 90) before the moment of reading, counted from "
        "the platform's view log (ServiceNow kb_use) over every version of the article. The "
        "article's own view count is not used: its meaning differs by instance (a rolling "
        "window or a lifetime count, detail says which). Unsupported where no view log was "
        "read. n is the published articles judged."
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.latest.is_(True), t.c.state == "published"]

    def coverage_reason(self, ctx: MetricContext) -> str | None:
        return super().coverage_reason(ctx) or unread_reason(
            ctx, "knowledge_use", "a knowledge view log (kb_use)"
        )

    measure = Measure("sum", expr=lambda t, ctx: flag(sa.not_(_used_since(t, ctx))))

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        t = self.table
        with ctx.store.engine.connect() as conn:
            kinds = conn.execute(
                sa.select(t.c.view_count_kind, sa.func.count())
                .where(*scope)
                .group_by(t.c.view_count_kind)
            ).all()
        result.detail["view_count_means"] = {key_text(k): int(n) for k, n in kinds}


def _open_flag(t: sa.Table, ctx: MetricContext, older_than: int = 0) -> Any:
    f = ENTITY_TABLES["knowledge_feedback"].alias("f")
    where: list[Any] = [f.c.flagged.is_(True), sa.func.coalesce(f.c.resolved, False).is_(False)]
    if older_than:
        where.append(f.c.created_at < ctx.as_of - timedelta(days=older_than))
    return _article_with(t, f, where)


class FlaggedOpen(_Articles):
    id = "kb.flagged_open"
    title = "Knowledge articles with open flags"
    unit = "count"
    fields = ("state",)
    definition = (
        "Knowledge articles (latest version; retired ones aside) with at least one flag in "
        "their feedback (any version's) not yet resolved; detail gives how many of them have "
        "a flag open for more than 30 days. Unsupported where no feedback was read (a "
        "knowledge base that never had feedback is not one whose feedback is good). n is the "
        "articles judged. Excluded and counted: retired."
    )

    def coverage_reason(self, ctx: MetricContext) -> str | None:
        return super().coverage_reason(ctx) or unread_reason(
            ctx, "knowledge_feedback", "knowledge feedback (kb_feedback)"
        )

    measure = Measure("sum", expr=lambda t, ctx: flag(_open_flag(t, ctx)))

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("retired", t.c.state == "retired")]

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        t = self.table
        with ctx.store.engine.connect() as conn:
            old = conn.execute(
                sa.select(sa.func.count()).where(
                    *scope, t.c.state != "retired", _open_flag(t, ctx, 30)
                )
            ).scalar()
        result.detail["open_over_30_days"] = int(old or 0)


def _has_article(t: sa.Table, ctx: MetricContext) -> Any:
    """Whether a live task-article link names the ticket. The linked tickets are one
    uncorrelated set of (source, task id), each ticket looked up in it: a test per ticket (an
    EXISTS correlated on the ticket) read every link of its source for each ticket, as there
    is no index on ``task_id`` (80,000 tickets and 8,000 links: 38 s in the pass over the
    tickets and 62 s for the metric's detail on SQLite, 16 times the seconds of a quarter of
    the size)."""
    link = ENTITY_TABLES["knowledge_link"].alias("l")
    linked = sa.select(link.c.source, link.c.task_id).where(
        link.c.deleted.is_(False), link.c.task_id.is_not(None)
    )
    return sa.tuple_(t.c.source, t.c.source_id).in_(linked)


class IncidentCoverage(SqlMetric):
    id = "kb.incident_coverage"
    title = "Resolved incidents with an article"
    domain = "service"
    unit = "%"
    entity = "ticket"
    kinds = ("incident",)
    fields = ("state",)
    scope_fields = ("state",)
    date_field = "opened_at"
    measure = Measure("share", condition=_has_article)
    definition = (
        "Of incidents opened in the period and resolved or closed, the share with a knowledge "
        "article attached (ServiceNow m2m_kb_task); breakdown by assignment group, detail by "
        "category. Unsupported where no task-article links were read. Excluded and counted: "
        "incidents of a source that keeps no task-article links."
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.kind == "incident", t.c.state.in_(DONE)]

    def coverage_reason(self, ctx: MetricContext) -> str | None:
        return super().coverage_reason(ctx) or unread_reason(
            ctx, "knowledge_link", "articles attached to tasks (m2m_kb_task)"
        )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        # A source that keeps no task-article links (Jira's knowledge is in Confluence) has
        # incidents whose coverage is unknown, not 0.
        linked = sa.select(stream_state.c.source).where(
            stream_state.c.entity == "knowledge_link",
            sa.func.coalesce(stream_state.c.access, "ok") == "ok",
        )
        return [("its source keeps no task-article links", t.c.source.not_in(linked))]

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        t = self.table
        scope = [*scope, *[sa.not_(c) for _r, c in self.exclusions(t, ctx)]]
        hit = sa.func.sum(sa.case((_has_article(t, ctx), 1), else_=0))
        for name, column in (("by_category", t.c.category), ("by_group", t.c.assignment_group)):
            with ctx.store.engine.connect() as conn:
                rows = conn.execute(
                    sa.select(column.label("k"), sa.func.count().label("n"), hit.label("a"))
                    .where(*scope)
                    .group_by(column)
                ).all()
            result.detail[name] = {
                key_text(r.k): round(100.0 * float(r.a or 0) / r.n, 4) for r in rows if r.n
            }


def _has_text(column: Any) -> Any:
    return sa.and_(column.is_not(None), column != "")


class _Problems(SqlMetric):
    domain = "service"
    entity = "ticket"
    kinds = ("problem",)
    scope_fields = ("state",)
    date_field = "opened_at"


def _rca_done(t: sa.Table, ctx: MetricContext) -> Any:
    return sa.and_(
        _has_text(t.c.cause_notes),
        sa.or_(_has_text(t.c.fix_notes), t.c.resolution_code == "risk_accepted"),
    )


class RcaCompletion(_Problems):
    id = "problem.rca_completion"
    title = "Closed problems with root cause and fix"
    unit = "%"
    fields = ("cause_notes", "fix_notes")
    measure = Measure("share", condition=_rca_done)
    definition = (
        "Of problems opened in the period and resolved or closed, the share with a root cause "
        "(cause notes, as text once HTML is removed) and a fix (fix notes; a problem closed as "
        "risk accepted needs no fix). Unsupported where the platform keeps no such fields "
        "(ServiceNow's legacy problem states). Excluded and counted: closed as duplicate, "
        "canceled, a problem whose platform keeps no cause or fix notes."
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.kind == "problem", t.c.state.in_(DONE)]

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [
            ("closed as duplicate", t.c.resolution_code == "duplicate"),
            ("canceled", t.c.resolution_code == "canceled"),
            (
                "the platform keeps no cause or fix notes",
                sa.and_(t.c.cause_notes.is_(None), t.c.fix_notes.is_(None)),
            ),
        ]


class KnownErrorRate(_Problems):
    id = "problem.known_error_rate"
    title = "Problems that are known errors"
    unit = "%"
    fields = ("known_error",)
    measure = Measure("share", condition=lambda t, ctx: t.c.known_error.is_(True))
    definition = (
        "Of problems opened in the period (cancelled ones aside), the share marked a known "
        "error (ServiceNow's known_error flag; on the legacy state model, the Known Error "
        "state). Excluded and counted: cancelled, known error not recorded."
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.kind == "problem"]

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [
            ("cancelled", t.c.state == "cancelled"),
            ("known error not recorded", t.c.known_error.is_(None)),
        ]


def _open_problem_on(t: sa.Table, ctx: MetricContext) -> Any:
    """An open problem, opened no later than the incident, on its CI or in its category.

    Two tests, one per column, rather than one over an OR. On SQLite, the earliest open
    problem per source and CI (category) is found once and each incident compared with it (an
    open problem opened no later than the incident exists exactly when the earliest one was):
    an EXISTS over the problems read, per incident, the problems of its category (a handful of
    categories, problems growing with the store) until one matched, 0.82 s at 200,000 tickets,
    five times the seconds of a quarter of the size; 0.25 s so. PostgreSQL keeps the EXISTS, an
    index lookup (``ix_tickets_kind_device``, ``ix_tickets_kind_category``) that stops at the
    first match: given the grouped set, it pushes the incident into it and groups the
    category's problems again for each incident (1.0 s became 5.4 s)."""

    def on(column: str) -> Any:
        p = ENTITY_TABLES["ticket"].alias(f"p_{column}")
        live = [p.c.kind == "problem", p.c.deleted.is_(False), p.c.state.in_(OPEN)]
        if ctx.dialect == "postgresql":
            return sa.exists().where(
                *live,
                p.c[column] == t.c[column],
                p.c.source == t.c.source,
                p.c.opened_at <= t.c.opened_at,
            )
        first = (
            sa.select(
                p.c.source.label("source"),
                p.c[column].label("key"),
                sa.func.min(p.c.opened_at).label("opened_at"),
            )
            .where(*live, p.c[column].is_not(None))
            .group_by(p.c.source, p.c[column])
            .subquery(f"first_open_{column}")
        )
        return sa.exists().where(
            first.c.source == t.c.source,
            first.c.key == t.c[column],
            first.c.opened_at <= t.c.opened_at,
        )

    return sa.or_(
        sa.and_(t.c.device_name.is_not(None), on("device_name")),
        sa.and_(t.c.category.is_not(None), on("category")),
    )


class RepeatIncidents(SqlMetric):
    id = "problem.repeat_incidents"
    title = "Incidents on a CI or category with an open problem"
    domain = "service"
    unit = "count"
    entity = "ticket"
    kinds = ("incident",)
    fields = ("opened_at",)
    scope_fields = ("state",)
    date_field = "opened_at"
    definition = (
        "Incidents opened in the period on a configuration item (the device the ticket "
        "concerns) or in a category for which a problem, opened no later than the incident, "
        "is open at the moment of reading (state new, in progress or on hold); detail gives "
        "their share of the period's incidents; n is the incidents judged."
    )

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.kind == "incident"]

    measure = Measure("sum", expr=lambda t, ctx: flag(_open_problem_on(t, ctx)))

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        result.detail["share"] = (
            round(100.0 * float(result.value or 0) / result.n, 4) if result.n else None
        )


class _Assets(SqlMetric):
    domain = "endpoint"
    entity = "asset"
    scope_fields = ("state",)
    unknown_is_missing = ("state",)

    def scope(self, t: sa.Table, ctx: MetricContext) -> list[Any]:
        return [t.c.state.in_(IN_SERVICE)]

    def dimensions(self) -> list[str]:
        return ["source", "platform", "department", "kind"]

    def dimension_expr(self, dimension: str, ctx: MetricContext) -> Any:
        column = {
            "source": "source",
            "platform": "platform",
            "department": "department",
            "kind": "model_category",
        }.get(dimension)
        return None if column is None else self.table.c[column]


def _age_days(t: sa.Table, ctx: MetricContext) -> Any:
    # Whole days: a date against the day of reading (its UTC midnight), as a purchase date is.
    today = datetime.combine(ctx.as_of.date(), time(0), UTC)
    return (sa.literal(epoch_of(today)) - epoch(t.c.purchase_date, ctx.dialect)) / DAY


class AgeMix(_Assets):
    id = "asset.age_mix"
    title = "Hardware age"
    unit = "years"
    fields = ("purchase_date",)
    measure = Measure("mean", expr=lambda t, ctx: _age_days(t, ctx), scale=1 / 365.25)
    definition = (
        "Of hardware assets in service (in use, in stock, in maintenance, in transit), the mean "
        "age in years since purchase at the moment of reading; detail gives them in bands "
        "(under 1, 1-2, 2-3, 3-4, 4-5, 5 years and over). Breakdown 'kind' is the model "
        "category. Excluded and counted: no purchase date."
    )
    BANDS = (("<1", 1), ("1-2", 2), ("2-3", 3), ("3-4", 4), ("4-5", 5))

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("no purchase date", t.c.purchase_date.is_(None))]

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        t = self.table
        age = _age_days(t, ctx) / 365.25
        band = sa.case(*[(age < limit, name) for name, limit in self.BANDS], else_="5+").label(
            "band"
        )
        with ctx.store.engine.connect() as conn:
            rows = conn.execute(
                sa.select(band, sa.func.count().label("n"))
                .where(*scope, t.c.purchase_date.is_not(None))
                .group_by(band)
            ).all()
        counts = {name: 0 for name, _ in self.BANDS} | {"5+": 0}
        counts.update({row.band: int(row.n) for row in rows})
        result.detail["age_bands"] = counts


class WarrantyExpiring(_Assets):
    id = "asset.warranty_expiring"
    title = "Warranties ending in the next four fiscal quarters"
    unit = "count"
    fields = ("warranty_expiration",)
    definition = (
        "Hardware assets in service whose warranty ends from the moment of reading to the end "
        "of the fourth fiscal quarter from now (this quarter and the next three; [metrics] "
        "fiscal_year_start, default July); detail gives them by fiscal quarter, and how many "
        "in service are already out of warranty; n is the assets judged. Excluded and counted: "
        "no warranty date."
    )

    @staticmethod
    def horizon(ctx: MetricContext) -> tuple[date, date]:
        today = ctx.as_of.date()
        start = quarter_start(today, ctx.policy.fiscal_year_start)
        return today, add_months(start, 12)

    measure = Measure(
        "sum",
        expr=lambda t, ctx: flag(
            sa.and_(
                t.c.warranty_expiration >= WarrantyExpiring.horizon(ctx)[0],
                t.c.warranty_expiration < WarrantyExpiring.horizon(ctx)[1],
            )
        ),
    )

    def exclusions(self, t: sa.Table, ctx: MetricContext) -> list[tuple[str, Any]]:
        return [("no warranty date", t.c.warranty_expiration.is_(None))]

    def finish(
        self, ctx: MetricContext, result: MetricResult, scope: list[Any], by: Sequence[str]
    ) -> None:
        t = self.table
        today, end = self.horizon(ctx)
        start_month = ctx.policy.fiscal_year_start
        quarters: dict[str, int] = {}
        moment = quarter_start(today, start_month)
        while moment < end:
            quarters[fiscal_quarter(moment, start_month)] = 0
            moment = add_months(moment, 3)
        with ctx.store.engine.connect() as conn:
            days = conn.execute(
                sa.select(t.c.warranty_expiration).where(
                    *scope, t.c.warranty_expiration >= today, t.c.warranty_expiration < end
                )
            ).scalars()
            for day in days:
                quarters[fiscal_quarter(day, start_month)] += 1
        result.detail["by_fiscal_quarter"] = quarters
        with ctx.store.engine.connect() as conn:
            expired = conn.execute(
                sa.select(sa.func.count()).where(*scope, t.c.warranty_expiration < today)
            ).scalar()
        result.detail["already_expired"] = int(expired or 0)


KNOWLEDGE: list[SqlMetric] = [
    LiveShare(),
    ReviewOverdue(),
    UnusedArticles(),
    FlaggedOpen(),
    IncidentCoverage(),
    RcaCompletion(),
    KnownErrorRate(),
    RepeatIncidents(),
    AgeMix(),
    WarrantyExpiring(),
]
