"""The findings history: every compliance run and every finding it made, kept.

These tables live beside the store's own (same database, own metadata), so a report can say
what is new since the last run, what was fixed, the trend, and re-render exactly what a run
found on a past date (``--as-of``), with the controls as they were described then.

Every finding that is not ``ok`` is kept row by row; ``ok`` findings are kept as counts per
control (a benchmark over 100,000 devices would otherwise add a million rows a week), and a
report shows them as counts, so what it shows is exactly what the history holds.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain
from typing import Any

import sqlalchemy as sa

from ..store import UTCDateTime, json_text

metadata = sa.MetaData()

compliance_runs = sa.Table(
    "compliance_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime()),
    sa.Column("as_of", UTCDateTime(), nullable=False),
    sa.Column("benchmark", sa.String(128)),
    # control id -> its description then (title, severity, references, ...) and any error
    sa.Column("controls", sa.JSON(), nullable=False),
    # what the tool could read when the run was made: source -> health
    sa.Column("sources", sa.JSON(), nullable=False),
    sa.Column("counts", sa.JSON()),
    # tickets remediation opened, found, or saw cleared in this run
    sa.Column("remediation", sa.JSON()),
)

findings = sa.Table(
    "findings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, nullable=False),
    sa.Column("control_id", sa.String(128), nullable=False),
    sa.Column("resource", sa.String(512), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text()),
    sa.Column("severity", sa.String(16)),
    sa.Column("source", sa.String(128)),
    sa.Column("department", sa.String(255)),
    sa.Column("url", sa.Text()),
    sa.Column("dimensions", sa.JSON()),
    # A run's findings by control, in the order a report reads them. Led by the run, so a new
    # run's rows go at the end of the index, however many runs the history holds.
    sa.Index("ix_findings_run", "run_id", "control_id", "resource"),
)

RETIRED_INDEXES = {"findings": ("ix_findings_control_resource", "ix_findings_run_id")}
"""Indexes an older version made, dropped when a store opens its history. Led by the control,
``ix_findings_control_resource`` put each new run's rows among every earlier run's, so recording
a run slowed as the history grew (200,000 tickets: 0.7 s with one run, 1.5 s after five); no
query reads by it. ``ix_findings_run`` holds what ``ix_findings_run_id`` did."""

remediations = sa.Table(
    "compliance_remediations",
    metadata,
    sa.Column("control_id", sa.String(128), primary_key=True),
    sa.Column("resource", sa.String(512), primary_key=True),
    sa.Column("target", sa.String(128), nullable=False),
    sa.Column("correlation_id", sa.String(255), nullable=False),
    sa.Column("ticket_id", sa.String(255)),
    sa.Column("ticket_url", sa.Text()),
    sa.Column("opened_at", UTCDateTime(), nullable=False),
    sa.Column("resolved_at", UTCDateTime()),
)
"""The incidents remediation opened, one per alarm, so a cleared alarm can be resolved."""


def ensure_tables(engine: sa.Engine) -> None:
    """Create the history tables, and bring those an older version made up to date: add any
    column added since (all such columns are nullable, so the history is kept), create the
    indexes added since and drop those retired (:data:`RETIRED_INDEXES`)."""
    metadata.create_all(engine)
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        missing = [c for c in table.columns if c.name not in present and c.nullable]
        indexed = {i["name"] for i in inspector.get_indexes(table.name)}
        unmade = [i for i in table.indexes if i.name not in indexed]
        retired = [name for name in RETIRED_INDEXES.get(table.name, ()) if name in indexed]
        if not (missing or unmade or retired):
            continue
        with engine.begin() as conn:
            for column in missing:
                kind = column.type.compile(dialect=engine.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")
            # IF (NOT) EXISTS: another process may be opening the same history.
            for index in unmade:
                conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
            for name in retired:
                conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")


@dataclass(slots=True)
class Finding:
    """One row a control returned, after the engine's verdict on what could be read."""

    control_id: str
    resource: str
    status: str
    reason: str = ""
    severity: str = ""
    source: str | None = None
    department: str | None = None
    url: str | None = None
    dimensions: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "control_id": self.control_id,
            "resource": self.resource,
            "status": self.status,
            "reason": self.reason,
            "severity": self.severity,
            "source": self.source,
            "department": self.department,
            "url": self.url,
            "dimensions": self.dimensions,
        }


@dataclass
class Run:
    """A compliance run as recorded: when, which controls, what the sources held, the findings."""

    id: int
    started_at: datetime
    as_of: datetime
    benchmark: str | None
    controls: dict[str, dict[str, Any]]
    sources: dict[str, Any]
    findings: list[Finding]
    remediation: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)


_COLUMNS = (
    "run_id",
    "control_id",
    "resource",
    "status",
    "reason",
    "severity",
    "source",
    "department",
    "url",
    "dimensions",
)


def _insert_findings(conn: sa.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Rows of ``_COLUMNS`` (dimensions as JSON text) into ``findings``, the fastest way each
    store takes them: one ``executemany`` on SQLite, ``COPY`` on PostgreSQL."""
    if not rows:
        return
    dialect = conn.dialect.name
    names = ", ".join(_COLUMNS)
    driver = conn.connection.driver_connection
    if dialect == "sqlite":
        # Rows of a few hundred parameters per statement: a third less work than one
        # statement per row, within the 999 parameters any SQLite build takes.
        one = "(" + ", ".join("?" for _ in _COLUMNS) + ")"
        size = 999 // len(_COLUMNS)
        cursor = driver.cursor()  # type: ignore[union-attr]
        try:
            full = f"INSERT INTO findings ({names}) VALUES " + ", ".join([one] * size)
            for start in range(0, len(rows), size):
                batch = rows[start : start + size]
                statement = (
                    full
                    if len(batch) == size
                    else f"INSERT INTO findings ({names}) VALUES " + ", ".join([one] * len(batch))
                )
                cursor.execute(statement, list(chain.from_iterable(batch)))
        finally:
            cursor.close()
    elif dialect == "postgresql":
        with (
            driver.cursor() as cursor,  # type: ignore[union-attr]
            cursor.copy(f"COPY findings ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
    else:  # pragma: no cover - the two stores the tool supports take the paths above
        keyed = [dict(zip(_COLUMNS, row, strict=True)) for row in rows]
        for item in keyed:
            item["dimensions"] = json.loads(item["dimensions"])
        conn.execute(findings.insert(), keyed)


def record_run(
    engine: sa.Engine,
    *,
    started_at: datetime,
    as_of: datetime,
    benchmark: str | None,
    controls: dict[str, dict[str, Any]],
    sources: dict[str, Any],
    found: Sequence[Finding],
) -> int:
    """Keep one run and its findings in one transaction; returns the run's id."""
    counts: dict[str, Any] = {}
    departments: dict[str, dict[str, int]] = {}
    for (department, status), n in Counter((f.department, f.status) for f in found).items():
        counts[status] = counts.get(status, 0) + n
        mine = departments.setdefault(department or "(none)", {})
        mine[status] = mine.get(status, 0) + n
    counts["by_department"] = departments
    with engine.begin() as conn:
        key = conn.execute(
            compliance_runs.insert().values(
                started_at=started_at,
                ended_at=datetime.now(UTC),
                as_of=as_of,
                benchmark=benchmark,
                controls=controls,
                sources=sources,
                counts=counts,
            )
        ).inserted_primary_key
        assert key is not None
        run_id = int(key[0])
        dumps = json_text
        rows = [
            (
                run_id,
                f.control_id,
                f.resource[:512],
                f.status,
                f.reason,
                f.severity,
                f.source,
                f.department,
                f.url,
                dumps(f.dimensions),
            )
            for f in found
            if f.status != "ok"
        ]
        _insert_findings(conn, rows)
    return run_id


def _finding(row: Any) -> Finding:
    return Finding(
        control_id=row.control_id,
        resource=row.resource,
        status=row.status,
        reason=row.reason or "",
        severity=row.severity or "",
        source=row.source,
        department=row.department,
        url=row.url,
        dimensions=dict(row.dimensions or {}),
    )


def end_of(day: date) -> datetime:
    """The last instant of ``day`` in UTC: ``--as-of 2026-11-23`` means as it stood that day."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) - timedelta(
        microseconds=1
    )


def run_ids(engine: sa.Engine, *, until: datetime | None = None, limit: int = 12) -> list[int]:
    """The ids of the latest runs up to ``until`` (newest first), by the time each judged
    the data at (its ``as_of``: the moment it ran, unless a test or a replay set it)."""
    query = (
        sa.select(compliance_runs.c.id)
        .order_by(compliance_runs.c.as_of.desc(), compliance_runs.c.id.desc())
        .limit(limit)
    )
    if until is not None:
        query = query.where(compliance_runs.c.as_of <= until)
    with engine.connect() as conn:
        return [int(i) for i in conn.execute(query).scalars()]


def run_span(engine: sa.Engine) -> tuple[int, int] | None:
    """The lowest and highest recorded run id, or None before the first run."""
    ensure_tables(engine)
    with engine.connect() as conn:
        low, high = conn.execute(
            sa.select(sa.func.min(compliance_runs.c.id), sa.func.max(compliance_runs.c.id))
        ).one()
    return None if high is None else (int(low), int(high))


def load_run(engine: sa.Engine, run_id: int) -> Run:
    with engine.connect() as conn:
        head = conn.execute(sa.select(compliance_runs).where(compliance_runs.c.id == run_id)).one()
        rows = conn.execute(
            sa.select(findings)
            .where(findings.c.run_id == run_id)
            .order_by(findings.c.control_id, findings.c.resource, findings.c.id)
        ).all()
    return Run(
        id=int(head.id),
        started_at=head.started_at,
        as_of=head.as_of,
        benchmark=head.benchmark,
        controls=dict(head.controls or {}),
        sources=dict(head.sources or {}),
        findings=[_finding(r) for r in rows],
        remediation=dict(head.remediation or {}),
        counts=dict(head.counts or {}),
    )


def set_remediation(engine: sa.Engine, run_id: int, remediation: dict[str, Any]) -> None:
    """Keep what remediation did with the run, so a past report shows it as it was."""
    with engine.begin() as conn:
        conn.execute(
            compliance_runs.update()
            .where(compliance_runs.c.id == run_id)
            .values(remediation=remediation)
        )


def previous_findings(
    engine: sa.Engine, run: Run, control_ids: Sequence[str]
) -> dict[str, list[Finding] | None]:
    """For each control, the findings of the latest earlier run that ran it (None: never ran)."""
    out: dict[str, list[Finding] | None] = {cid: None for cid in control_ids}
    with engine.connect() as conn:
        earlier = conn.execute(
            sa.select(compliance_runs.c.id, compliance_runs.c.controls)
            .where(compliance_runs.c.id < run.id)
            .order_by(compliance_runs.c.id.desc())
            .limit(200)
        ).all()
        for cid in control_ids:
            for prior in earlier:
                if cid in (prior.controls or {}) and not (prior.controls[cid] or {}).get("error"):
                    rows = conn.execute(
                        sa.select(findings).where(
                            findings.c.run_id == prior.id, findings.c.control_id == cid
                        )
                    ).all()
                    out[cid] = [_finding(r) for r in rows]
                    break
    return out


def trend(engine: sa.Engine, run: Run, limit: int = 12) -> list[dict[str, Any]]:
    """Per run up to ``run`` (oldest first): when it judged the data, and each status's count."""
    with engine.connect() as conn:
        heads = conn.execute(
            sa.select(compliance_runs.c.id, compliance_runs.c.as_of, compliance_runs.c.counts)
            .where(compliance_runs.c.id <= run.id)
            .order_by(compliance_runs.c.id.desc())
            .limit(limit)
        ).all()
    return [
        {"run_id": int(head.id), "at": head.as_of, **_rates(dict(head.counts or {}))}
        for head in reversed(heads)
    ]


def _rates(counts: dict[str, int]) -> dict[str, Any]:
    ok, alarm, unverified = (counts.get(k, 0) for k in ("ok", "alarm", "unverified"))
    judged = ok + alarm + unverified
    return {
        "ok": ok,
        "alarm": alarm,
        "unverified": unverified,
        "info": counts.get("info", 0),
        "skip": counts.get("skip", 0),
        "pass_rate": round(ok / judged, 4) if judged else None,
    }
