"""Running controls: each control's query on a read-only connection, then the engine's verdict.

The engine owns what a query cannot know by itself: which sources could not be read fully
(a failed or interrupted sync, a stream without access, a source never synced). An ``ok``
about such data becomes ``unverified``; a control that compares against another platform's
data (``requires``) is ``skip`` where that data is absent and ``unverified`` where it could
not be read; a control that judges ``every_source`` gets a finding for each source it
returned no row for (a configured source that never synced). Queries are plain SQL for
SQLite and PostgreSQL, with a few macros for the spots where the two differ (``{{ seconds_between('a', 'b') }}``), and a handful of bound
parameters: ``:now``, ``:today`` (a date), ``:now_minus_7d``/``30d``/``90d``, ``:stale_before``, ``:stale_days`` and ``:sla_p1_seconds`` ..
``:sla_p5_seconds`` (a clock target in seconds, or -1 where the policy is in business time).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

from ..collector import collector_paused
from ..store import (
    ENTITY_TABLES,
    UTCDateTime,
    stream_state,
    sync_runs,
    threads_apart,
    without_jit,
)
from . import history
from .controls import STATUSES, Control
from .history import Finding

log = logging.getLogger("itcrosswalk.compliance")

REQUIRED_COLUMNS = ("status", "resource", "reason")
_KNOWN = {"status", "resource", "reason", "source", "department", "url"}
_UNREAD_RUNS = ("failed", "interrupted", "running")
_UNREAD_ACCESS = ("no_access", "error", "incomplete")
_QUERY_TIMEOUT_MS = 120_000


@dataclass
class ControlResult:
    """What one control found, or why it could not run."""

    control: Control
    findings: list[Finding] = field(default_factory=list)
    error: str | None = None

    def count(self, status: str) -> int:
        return sum(1 for f in self.findings if f.status == status)


@dataclass
class ComplianceRun:
    """One run of a set of controls: its id in the history and every control's result."""

    run_id: int | None
    as_of: datetime
    benchmark: str | None
    results: list[ControlResult]
    sources: dict[str, Any]

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.results for f in r.findings]

    @property
    def exit_code(self) -> int:
        """0 when every control ran and found nothing amiss; 3 otherwise (the CLI's convention)."""
        if any(r.error for r in self.results):
            return 3
        if any(f.status in ("alarm", "unverified") for f in self.findings):
            return 3
        return 0


# -- what the store could read --------------------------------------------------------------


def source_health(engine: sa.Engine, config: Any = None) -> dict[str, dict[str, Any]]:
    """Per source: its platform, last sync run, the entities it holds and those it could not read.

    ``unread`` lists entities (``"*"``: all of them) whose data is not known to be complete.
    """
    sources: dict[str, dict[str, Any]] = {}

    def entry(name: str) -> dict[str, Any]:
        return sources.setdefault(
            name,
            {"platform": None, "last_run": None, "entities": [], "unread": [], "problems": []},
        )

    configured = dict(getattr(config, "sources", {}) or {}) if config is not None else {}
    for name, source in configured.items():
        if getattr(source, "enabled", True):
            entry(name)["platform"] = source.platform
    with engine.connect() as conn:
        for state in conn.execute(sa.select(stream_state).order_by(stream_state.c.stream)):
            item = entry(state.source)
            if state.entity and state.entity not in item["entities"]:
                item["entities"].append(state.entity)
            if state.access in _UNREAD_ACCESS:
                item["unread"].append(state.entity)
                item["problems"].append(f"stream {state.stream}: {state.access}")
            elif state.window_until is not None:
                item["unread"].append(state.entity)
                item["problems"].append(f"stream {state.stream}: a sync stopped part-way")
        latest = (
            sa.select(sync_runs.c.source, sa.func.max(sync_runs.c.id).label("id"))
            .where(sync_runs.c.dry_run.is_(False))
            .group_by(sync_runs.c.source)
            .subquery()
        )
        for run in conn.execute(sa.select(sync_runs).join(latest, sync_runs.c.id == latest.c.id)):
            item = entry(run.source)
            item["last_run"] = {
                "outcome": run.outcome,
                "started_at": run.started_at.isoformat() if run.started_at else None,
                "ended_at": run.ended_at.isoformat() if run.ended_at else None,
                "error": run.error,
            }
            if run.outcome in _UNREAD_RUNS:
                item["unread"].append("*")
                item["problems"].append(f"last sync {run.outcome}")
        for name, item in sources.items():
            if item["last_run"] is None and name in configured:
                item["unread"].append("*")
                item["problems"].append("never synced")
            if item["platform"] is None:
                for table in ENTITY_TABLES.values():
                    found = conn.execute(
                        sa.select(table.c.platform).where(table.c.source == name).limit(1)
                    ).scalar()
                    if found:
                        item["platform"] = found
                        break
            item["unread"] = sorted(set(item["unread"]))
    return dict(sorted(sources.items()))


def _unread(sources: dict[str, dict[str, Any]], source: str | None, entity: str) -> str | None:
    """Why ``entity`` from ``source`` is not known to be complete, or None."""
    item = sources.get(source or "")
    if item and ("*" in item["unread"] or entity in item["unread"]):
        return "; ".join(item["problems"]) or "incomplete"
    return None


def _requirement(
    sources: dict[str, dict[str, Any]], platform: str, entity: str, present: set[str]
) -> tuple[str, str]:
    """``("ok" | "absent" | "unread", why)`` for data of ``entity`` from ``platform`` sources."""
    holders = [
        name
        for name, item in sources.items()
        if item["platform"] == platform
        and (entity in item["entities"] or "*" in item["unread"] or name in present)
    ]
    if not holders:
        return "absent", f"no {platform} source holds {entity} records"
    unread = [(n, _unread(sources, n, entity)) for n in holders]
    bad = [f"{n} ({why})" for n, why in unread if why]
    if bad:
        return "unread", f"{platform} {entity} data could not be read fully: {', '.join(bad)}"
    return "ok", ""


# -- queries --------------------------------------------------------------------------------


def _macros(dialect: str) -> dict[str, Any]:
    def seconds_between(start: str, end: str) -> str:
        # Whole seconds as integers, the same on both stores (as the metrics' ``epoch``):
        # julianday's floating-point error would flip "exactly at the target" on SQLite.
        # The fraction is cut from the text first (stored moments and the bound ``:now`` are
        # UTC): SQLite rounds it to the millisecond, so .9995 s would become the next second.
        if dialect == "sqlite":
            return (
                f"(CAST(strftime('%s', substr({end}, 1, 19)) AS INTEGER)"
                f" - CAST(strftime('%s', substr({start}, 1, 19)) AS INTEGER))"
            )
        return (
            f"(CAST(FLOOR(EXTRACT(EPOCH FROM {end})) AS BIGINT)"
            f" - CAST(FLOOR(EXTRACT(EPOCH FROM {start})) AS BIGINT))"
        )

    def serial_key(expr: str) -> str:
        # The SQL twin of model.normalize_serial for the spaces people type into ticket fields.
        tab = "CHAR(9)" if dialect == "sqlite" else "CHR(9)"
        return f"UPPER(REPLACE(REPLACE(TRIM({expr}), ' ', ''), {tab}, ''))"

    return {"seconds_between": seconds_between, "serial_key": serial_key, "dialect": dialect}


def render_query(control: Control, dialect: str) -> str:
    """The control's SQL with its macros expanded for ``dialect``."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
    return env.from_string(control.query).render(**_macros(dialect))


def _target_seconds(target: str) -> float:
    match = re.match(r"^(\d+(?:\.\d+)?)(h|bh|bd|d)$", target)
    if not match:
        return -1
    number, unit = float(match.group(1)), match.group(2)
    return {"h": number * 3600, "d": number * 86400}.get(unit, -1)


def parameters(config: Any, now: datetime) -> dict[str, Any]:
    """The bound parameters every control may use."""
    metrics = getattr(config, "metrics", None)
    stale_days = int(getattr(metrics, "stale_days", 30))
    targets = dict(getattr(metrics, "sla_targets", {}) or {}) or {
        "1": "4h",
        "2": "8h",
        "3": "3bd",
        "4": "5bd",
    }
    # In UTC, as the store keeps every moment: the queries compare and subtract it as text on
    # SQLite (see ``seconds_between``).
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    params: dict[str, Any] = {
        "now": now,
        "stale_before": now - timedelta(days=stale_days),
        "stale_days": stale_days,
        "now_minus_7d": now - timedelta(days=7),
        "now_minus_30d": now - timedelta(days=30),
        "now_minus_90d": now - timedelta(days=90),
        "today": now.date(),  # for date columns (valid-to, retirement): compared as dates
    }
    for priority in range(1, 6):
        target = targets.get(str(priority))
        params[f"sla_p{priority}_seconds"] = _target_seconds(target) if target else -1
    return params


@contextlib.contextmanager
def read_only(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection that cannot change the store, whatever a query tries."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA query_only=ON")
            try:
                yield conn
            finally:
                conn.rollback()
                conn.exec_driver_sql("PRAGMA query_only=OFF")
                conn.commit()
        else:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {_QUERY_TIMEOUT_MS}")
                without_jit(conn)
            try:
                yield conn
            finally:
                conn.rollback()


_AS_IS = frozenset({str, int, float, bool, type(None)})
"""The types a query's values mostly have, which need no conversion (one set lookup)."""


def _plain(value: Any) -> Any:
    if type(value) in _AS_IS:
        return value
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _text(value: Any) -> str | None:
    if type(value) is str:
        return value
    value = _plain(value)
    return None if value is None else str(value)


def _fetch(
    engine: sa.Engine, control: Control, params: dict[str, Any]
) -> tuple[list[str], list[Sequence[Any]]]:
    """The control's column names and rows, as the driver returns them (plain tuples: a
    benchmark over a large store returns hundreds of thousands, and the engine reads each
    value once)."""
    sql = render_query(control, engine.dialect.name)
    statement = sa.text(sql)
    wanted = set(statement._bindparams)  # the names the query actually uses
    unknown = wanted - set(params)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {', '.join(sorted(':' + u for u in unknown))}; "
            f"known: {', '.join(':' + p for p in sorted(params))}"
        )
    binds = [
        sa.bindparam(
            name,
            params[name],
            type_=UTCDateTime()
            if isinstance(params[name], datetime)
            else sa.Date()
            if isinstance(params[name], date)
            else None,
        )
        for name in sorted(wanted)
    ]
    with read_only(engine) as conn:
        result = conn.execute(statement.bindparams(*binds))
        columns = list(result.keys())
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            result.close()
            raise ValueError(f"the query returns no column {', '.join(missing)}")
        # A textual query's values pass through SQLAlchemy unconverted: the driver's own rows
        # hold the same values, without a Row object each.
        rows = list(result.cursor.fetchall()) if result.cursor is not None else []
        result.close()
    return columns, rows


_STATUS_SET = frozenset(STATUSES)


def run_control(
    engine: sa.Engine,
    control: Control,
    params: dict[str, Any],
    sources: dict[str, dict[str, Any]],
) -> ControlResult:
    """Run one control; a query that fails is the control's error, not the run's."""
    return _judge(control, _fetched(engine, control, params), sources)


_Fetched = tuple[list[str], list[Sequence[Any]]] | BaseException


def _fetched(engine: sa.Engine, control: Control, params: dict[str, Any]) -> _Fetched:
    """The control's columns and rows, or what stopped its query."""
    try:
        return _fetch(engine, control, params)
    except Exception as exc:
        return exc


def _judge(
    control: Control, fetched: _Fetched, sources: dict[str, dict[str, Any]]
) -> ControlResult:
    """The control's rows as findings, with the engine's verdict on what could be read."""
    result = ControlResult(control)
    if isinstance(fetched, BaseException):
        result.error = _one_line(fetched)
        log.warning("control %s failed: %s", control.id, result.error)
        return result
    columns, rows = fetched
    # Where each named column is; a name returned twice is read from its last column, as a
    # mapping of the row would.
    where = {name: i for i, name in enumerate(columns)}
    at_status, at_resource, at_reason = (where[c] for c in REQUIRED_COLUMNS)
    at_source, at_department, at_url = (where.get(c) for c in ("source", "department", "url"))
    names = tuple(c for c in dict.fromkeys(columns) if c not in _KNOWN)
    picks = [where[c] for c in names]
    pick = (
        itemgetter(*picks)
        if len(picks) > 1
        else (lambda row, i=picks[0]: (row[i],))
        if picks
        else (lambda row: ())
    )
    present = (
        {str(row[at_source]) for row in rows if row[at_source]} if at_source is not None else set()
    )
    needs = [
        (req, *_requirement(sources, req.platform, req.entity, present)) for req in control.requires
    ]
    unread: dict[str | None, str | None] = {}  # per source: why its data is not complete
    entity, control_id, severity = control.entity, control.id, control.severity
    as_is, text = _AS_IS, _text
    findings: list[Finding] = []
    add = findings.append
    for row in rows:
        status = row[at_status]
        if type(status) is not str or status not in _STATUS_SET:
            status = (status if type(status) is str else str(status or "")).strip().lower()
            if status not in _STATUS_SET:
                result.error = (
                    f"a row has status {status!r}; a control returns one of {', '.join(STATUSES)}"
                )
                return result
        reason = row[at_reason]
        if type(reason) is not str:
            reason = text(reason) or ""
        resource = row[at_resource]
        if type(resource) is not str or not resource:
            resource = text(resource) or "(unnamed)"
        source = department = url = None
        if at_source is not None:
            source = row[at_source]
            if type(source) is not str and source is not None:
                source = text(source)
        if at_department is not None:
            department = row[at_department]
            if type(department) is not str and department is not None:
                department = text(department)
        if at_url is not None:
            url = row[at_url]
            if type(url) is not str and url is not None:
                url = text(url)
        if entity and status == "ok":
            if source not in unread:
                unread[source] = _unread(sources, source, entity)
            why = unread[source]
            if why:
                status, reason = (
                    "unverified",
                    f"{reason} — but source {source} could not be read fully ({why})",
                )
        for _req, verdict, why in needs:
            if status not in ("ok", "alarm"):
                break
            if verdict == "absent":
                status, reason = "skip", why
            elif verdict == "unread":
                status, reason = "unverified", f"{reason} — but {why}"
        values = pick(row)
        if not as_is.issuperset(map(type, values)):
            values = tuple(map(_plain, values))
        add(
            Finding(
                control_id,
                resource,
                status,
                reason,
                severity,
                source,
                department,
                url,
                dict(zip(names, values, strict=True)),
            )
        )
    result.findings = findings
    if control.every_source:
        result.findings.extend(_unjudged_sources(control, sources, result.findings))
    return result


def _one_by_one(
    engine: sa.Engine, controls: Sequence[Control], params: dict[str, Any]
) -> Iterator[tuple[Control, _Fetched]]:
    """Each control with its rows, in order; the next control's query runs (in the database,
    or in SQLite's C code without the interpreter lock) while the engine judges the rows of
    the one before."""
    if len(controls) < 2 or not threads_apart(engine):
        for control in controls:
            yield control, _fetched(engine, control, params)
        return
    from concurrent.futures import ThreadPoolExecutor

    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="crosswalk-controls")
    try:
        pending = worker.submit(_fetched, engine, controls[0], params)
        for index, control in enumerate(controls):
            fetched = pending.result()
            if index + 1 < len(controls):
                pending = worker.submit(_fetched, engine, controls[index + 1], params)
            yield control, fetched
    finally:
        worker.shutdown(wait=True, cancel_futures=True)


def _unjudged_sources(
    control: Control, sources: dict[str, dict[str, Any]], found: list[Finding]
) -> list[Finding]:
    """A finding for each source the control returned no row for: a configured source that
    never synced (or whose only sync failed before any stream) has no rows to judge, and its
    silence must not read as a pass."""
    seen = {f.source for f in found if f.source}
    extra = []
    for name, item in sources.items():
        if name in seen:
            continue
        # A known failure (never synced, a failed sync) is an alarm; a source with a clean
        # run and no stream at all is only unjudged.
        known = "; ".join(item["problems"]) or "no stream of this source is recorded"
        extra.append(
            Finding(
                control_id=control.id,
                resource=name,
                status="alarm" if item["problems"] else "unverified",
                reason=f"{known}: run crosswalk sync {name}",
                severity=control.severity,
                source=name,
                dimensions={"platform": item["platform"]},
            )
        )
    return extra


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip()


def run_controls(
    store: Any,
    controls: Sequence[Control],
    *,
    config: Any = None,
    benchmark: str | None = None,
    now: datetime | None = None,
    record: bool = True,
) -> ComplianceRun:
    """Run ``controls`` over the store and (unless ``record`` is false) keep the findings."""
    started = datetime.now(UTC)
    now = now or started
    engine: sa.Engine = store.engine
    history.ensure_tables(engine)
    sources = source_health(engine, config)
    params = parameters(config, now)
    from ..capacity.controls import capacity_parameters

    params.update(capacity_parameters(store, config, now, controls))
    with collector_paused():  # a few objects per row, none in a cycle
        results = [
            _judge(control, fetched, sources)
            for control, fetched in _one_by_one(engine, controls, params)
        ]
        run_id = None
        if record:
            described = {}
            for r in results:
                counts = Counter(f.status for f in r.findings)
                described[r.control.id] = {
                    **r.control.summary(),
                    "error": r.error,
                    "counts": {status: counts[status] for status in STATUSES},
                }
            run_id = history.record_run(
                engine,
                started_at=started,
                as_of=now,
                benchmark=benchmark,
                controls=described,
                sources=sources,
                found=[f for r in results for f in r.findings],
            )
    return ComplianceRun(run_id, now, benchmark, results, sources)
