"""Metric history: a snapshot of every metric, its breakdowns and the compliance summary, kept in
the store with the run it came from, so reports can say "better or worse than last quarter".

A snapshot is taken by every scheduled job (:mod:`.jobs`) and by ``crosswalk metrics --record``.
State metrics (a backlog, a compliance rate, stale devices, SPI) have no past of their own: the
history is the only place their trend can come from. A metric the data could not support is
kept as unsupported, with its reason, never as 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .errors import ConfigError
from .store import Store, metric_snapshots, snapshot_runs, sync_runs

if TYPE_CHECKING:
    from .config import Config
    from .contract import Registry

SNAPSHOT_DIMENSIONS = ("platform", "source", "department")
"""The breakdowns kept with each metric: enough for a trend per platform and department."""
COMPLIANCE = "compliance"
"""The prefix of the compliance summary's figures among the metrics of a snapshot."""


@dataclass(frozen=True)
class Point:
    """One value of one metric (or one breakdown key of it) at one snapshot."""

    snapshot_id: int
    taken_at: datetime
    origin: str
    metric: str
    dimension: str
    key: str
    unit: str
    value: float | None
    n: int | None
    unsupported: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot_id,
            "taken_at": self.taken_at.isoformat(),
            "origin": self.origin,
            "metric": self.metric,
            "dimension": self.dimension or None,
            "key": self.key or None,
            "unit": self.unit,
            "value": self.value,
            "n": self.n,
            "unsupported": self.unsupported,
        }


def compliance_rows(summary: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The compliance summary as snapshot rows (``compliance.pass_rate`` in %, counts)."""
    if not summary:
        return []
    rate = summary.get("pass_rate")
    rows: list[dict[str, Any]] = [
        {
            "metric": f"{COMPLIANCE}.pass_rate",
            "unit": "%",
            "value": None if rate is None else round(100.0 * float(rate), 4),
            "n": summary.get("findings"),
            "unsupported": None if rate is not None else "no finding could be judged",
        },
    ]
    for name in ("controls", "controls_passed", "controls_failed", "controls_unverified"):
        rows.append({"metric": f"{COMPLIANCE}.{name}", "unit": "count", "value": summary.get(name)})
    rows.append(
        {
            "metric": f"{COMPLIANCE}.alarms",
            "unit": "count",
            "value": summary.get("alarm"),
            "breakdown": {"severity": dict(summary.get("alarms_by_severity") or {})},
        }
    )
    rows.append(
        {"metric": f"{COMPLIANCE}.unverified", "unit": "count", "value": summary.get("unverified")}
    )
    return rows


def latest_compliance(store: Store) -> tuple[int | None, dict[str, Any] | None]:
    """The newest recorded compliance run's id and summary (None when none was ever run)."""
    from .compliance.history import compliance_runs, ensure_tables

    ensure_tables(store.engine)
    with store.engine.connect() as conn:
        newest = conn.execute(sa.select(sa.func.max(compliance_runs.c.id))).scalar()
    if newest is None:
        return None, None
    from .reports.compliance import report_for

    data = report_for(store.engine, run_id=int(newest))
    return int(newest), data["summary"]


def source_freshness(store: Store) -> dict[str, dict[str, Any]]:
    """Per source the last sync run: when it ended, how, and whether its data is complete."""
    out: dict[str, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        newest = (
            sa.select(sync_runs.c.source, sa.func.max(sync_runs.c.id).label("id"))
            .where(sync_runs.c.dry_run.is_(False))
            .group_by(sync_runs.c.source)
            .subquery()
        )
        rows = conn.execute(sa.select(sync_runs).join(newest, newest.c.id == sync_runs.c.id)).all()
        good = dict(
            conn.execute(
                sa.select(sync_runs.c.source, sa.func.max(sync_runs.c.ended_at))
                .where(sync_runs.c.dry_run.is_(False), sync_runs.c.outcome == "ok")
                .group_by(sync_runs.c.source)
            ).all()
        )
    for row in rows:
        verified = row.outcome == "ok"
        out[row.source] = {
            "last_run_at": row.ended_at or row.started_at,
            "outcome": row.outcome,
            "last_ok_at": good.get(row.source),
            "verified": verified,
            "problem": None if verified else (row.error or f"the last sync ended {row.outcome}"),
        }
    return out


def record_snapshot(
    store: Store,
    config: Config,
    *,
    pm: Registry,
    origin: str,
    now: datetime | None = None,
    compliance: tuple[int | None, dict[str, Any] | None] | None = None,
) -> int:
    """Compute every metric with its breakdowns and keep them, with the compliance summary
    (``compliance``: a run id and its summary; default the newest recorded run), as one
    snapshot. Returns the snapshot's id."""
    from .metrics import compute_metrics

    if not origin.strip():
        raise ConfigError("a snapshot names the run it came from (origin)")
    now = now or datetime.now(UTC)
    results = compute_metrics(store, config, by=SNAPSHOT_DIMENSIONS, now=now, pm=pm)
    compliance_run, summary = compliance if compliance is not None else latest_compliance(store)
    rows: list[dict[str, Any]] = []

    def add(metric: str, unit: str, dimension: str, key: str, value: Any, **extra: Any) -> None:
        rows.append(
            {
                "metric": metric,
                "unit": unit,
                "dimension": dimension,
                "key": key[:255],
                "value": None if value is None else float(value),
                "n": extra.get("n"),
                "unsupported": extra.get("unsupported"),
            }
        )

    for result in results:
        add(
            result.id, result.unit, "", "", result.value, n=result.n, unsupported=result.unsupported
        )
        for dimension, cells in result.breakdown.items():
            for key, value in cells.items():
                add(result.id, result.unit, dimension, key, value)
    for item in compliance_rows(summary):
        add(
            item["metric"],
            item["unit"],
            "",
            "",
            item["value"],
            n=item.get("n"),
            unsupported=item.get("unsupported"),
        )
        for dimension, cells in (item.get("breakdown") or {}).items():
            for key, value in cells.items():
                add(item["metric"], item["unit"], dimension, str(key), value)
    freshness = {
        name: {
            "last_run_at": None if f["last_run_at"] is None else f["last_run_at"].isoformat(),
            "outcome": f["outcome"],
        }
        for name, f in source_freshness(store).items()
    }
    with store.engine.begin() as conn:
        snapshot_id = conn.execute(
            snapshot_runs.insert().values(
                taken_at=now,
                origin=origin[:255],
                compliance_run_id=compliance_run,
                sources=freshness,
            )
        ).inserted_primary_key[0]
        # A breakdown can name one key twice only through truncation; the first one is kept.
        seen: set[tuple[str, str, str]] = set()
        unique = []
        for row in rows:
            ident = (row["metric"], row["dimension"], row["key"])
            if ident not in seen:
                seen.add(ident)
                unique.append({**row, "snapshot_id": snapshot_id})
        if unique:
            conn.execute(metric_snapshots.insert(), unique)
    from .views import ensure_views_on

    ensure_views_on(store.engine)  # the findings view, once the compliance history exists
    return int(snapshot_id)


def history(
    store: Store,
    metric: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    dimension: str | None = None,
    key: str | None = None,
) -> list[Point]:
    """The metric's recorded values, oldest first: the headline value, or with ``dimension``
    every key of that breakdown (one key with ``key``)."""
    t, r = metric_snapshots, snapshot_runs
    where: list[Any] = [t.c.metric == metric, t.c.dimension == (dimension or "")]
    if key is not None:
        where.append(t.c.key == key)
    if since is not None:
        where.append(r.c.taken_at >= since)
    if until is not None:
        where.append(r.c.taken_at < until)
    query = (
        sa.select(
            t.c.snapshot_id,
            r.c.taken_at,
            r.c.origin,
            t.c.metric,
            t.c.dimension,
            t.c.key,
            t.c.unit,
            t.c.value,
            t.c.n,
            t.c.unsupported,
        )
        .join(r, r.c.id == t.c.snapshot_id)
        .where(*where)
        .order_by(r.c.taken_at, t.c.snapshot_id, t.c.key)
    )
    with store.engine.connect() as conn:
        return [Point(*row) for row in conn.execute(query).all()]


def known_metrics(store: Store) -> list[str]:
    """Every metric id some snapshot holds."""
    with store.engine.connect() as conn:
        return [
            m
            for (m,) in conn.execute(
                sa.select(metric_snapshots.c.metric).distinct().order_by(metric_snapshots.c.metric)
            )
        ]


def series(store: Store, metrics: Sequence[str], *, limit: int = 24) -> dict[str, list[Point]]:
    """The last ``limit`` headline values of each metric, oldest first, for sparklines."""
    out: dict[str, list[Point]] = {}
    for metric in metrics:
        points = history(store, metric)
        out[metric] = points[-limit:]
    return out
