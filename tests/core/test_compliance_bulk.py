"""The fast path of the compliance engine (rows read from the driver, findings written in bulk)
finds and keeps exactly what the plain path does: every finding with its evidence, the run's
counts, and the history a report reads (new, fixed, trend), on SQLite and on PostgreSQL.

The plain path is written out below as it was before the engine was made fast: each row read
as a mapping through SQLAlchemy, one ``Finding`` per row, the findings inserted with SQLAlchemy
Core. The store is the hand-worked city with rows no built-in control returns: statuses in
capitals, missing or numeric resources and reasons, a column named twice, dimensions of every
type a query gives (dates, timestamps, decimals, bytes, booleans, text with tabs, newlines,
backslashes and ``\\N``), a resource longer than the history keeps, and sources that could not
be read fully.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from itcrosswalk.core.compliance import Control, history, load_controls, run_controls
from itcrosswalk.core.compliance.controls import STATUSES, Requirement
from itcrosswalk.core.compliance.engine import (
    _KNOWN,
    REQUIRED_COLUMNS,
    _one_line,
    _plain,
    _requirement,
    _text,
    _unjudged_sources,
    _unread,
    parameters,
    read_only,
    render_query,
    source_health,
)
from itcrosswalk.core.compliance.history import Finding, compliance_runs, findings
from itcrosswalk.core.reports.compliance import build
from itcrosswalk.core.store import Store, StreamCursor, UTCDateTime
from tests.conftest import empty_database
from tests.core.test_compliance_controls import NOW, _ok_run, _ticket, city_store

# -- the plain path, as it was ---------------------------------------------------------------


def _plain_control(
    engine: sa.Engine, control: Control, params: dict[str, Any], sources: dict[str, Any]
) -> tuple[list[Finding], str | None]:
    try:
        statement = sa.text(render_query(control, engine.dialect.name))
        wanted = set(statement._bindparams)
        missing_params = wanted - set(params)
        if missing_params:
            raise ValueError(f"unknown parameter(s) {sorted(missing_params)}")  # not met here
        binds = [
            sa.bindparam(
                name,
                params[name],
                type_=UTCDateTime()
                if isinstance(params[name], datetime)
                else sa.Date()
                if hasattr(params[name], "isoformat")
                else None,
            )
            for name in sorted(wanted)
        ]
        with read_only(engine) as conn:
            cursor = conn.execute(statement.bindparams(*binds))
            columns = list(cursor.keys())
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise ValueError(f"the query returns no column {', '.join(missing)}")
            rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    except Exception as exc:
        return [], _one_line(exc)
    present = {str(r.get("source")) for r in rows if r.get("source")}
    needs = [_requirement(sources, q.platform, q.entity, present) for q in control.requires]
    dimensions = [c for c in columns if c not in _KNOWN]
    unread: dict[str | None, str | None] = {}
    found: list[Finding] = []
    for row in rows:
        status = row["status"]
        status = (status if type(status) is str else str(status or "")).strip().lower()
        if status not in STATUSES:
            return (
                [],
                f"a row has status {status!r}; a control returns one of {', '.join(STATUSES)}",
            )
        reason = _text(row["reason"]) or ""
        source = _text(row.get("source"))
        if control.entity and status == "ok":
            if source not in unread:
                unread[source] = _unread(sources, source, control.entity)
            why = unread[source]
            if why:
                status = "unverified"
                reason = f"{reason} — but source {source} could not be read fully ({why})"
        for verdict, why_not in needs:
            if status not in ("ok", "alarm"):
                break
            if verdict == "absent":
                status, reason = "skip", why_not
            elif verdict == "unread":
                status, reason = "unverified", f"{reason} — but {why_not}"
        found.append(
            Finding(
                control_id=control.id,
                resource=_text(row["resource"]) or "(unnamed)",
                status=status,
                reason=reason,
                severity=control.severity,
                source=source,
                department=_text(row.get("department")),
                url=_text(row.get("url")),
                dimensions={k: _plain(row[k]) for k in dimensions},
            )
        )
    if control.every_source:
        found.extend(_unjudged_sources(control, sources, found))
    return found, None


def _plain_run(store: Store, controls: list[Control], *, record: bool = True) -> dict[str, Any]:
    """What the plain path found and, with ``record``, the id of the run it kept."""
    from itcrosswalk.core.capacity.controls import capacity_parameters

    engine = store.engine
    history.ensure_tables(engine)
    sources = source_health(engine, None)
    params = parameters(None, NOW)
    params.update(capacity_parameters(store, None, NOW, controls))
    results = {c.id: _plain_control(engine, c, params, sources) for c in controls}
    run_id = None
    if record:
        described = {
            c.id: {
                **c.summary(),
                "error": results[c.id][1],
                "counts": {s: sum(f.status == s for f in results[c.id][0]) for s in STATUSES},
            }
            for c in controls
        }
        found = [f for c in controls for f in results[c.id][0]]
        counts: dict[str, Any] = {}
        departments: dict[str, dict[str, int]] = {}
        for f in found:
            counts[f.status] = counts.get(f.status, 0) + 1
            mine = departments.setdefault(f.department or "(none)", {})
            mine[f.status] = mine.get(f.status, 0) + 1
        counts["by_department"] = departments
        with engine.begin() as conn:
            key = conn.execute(
                compliance_runs.insert().values(
                    started_at=NOW,
                    ended_at=NOW,
                    as_of=NOW,
                    benchmark=None,
                    controls=described,
                    sources=sources,
                    counts=counts,
                )
            ).inserted_primary_key
            assert key is not None
            run_id = int(key[0])
            rows = [
                {
                    "run_id": run_id,
                    "control_id": f.control_id,
                    "resource": f.resource[:512],
                    "status": f.status,
                    "reason": f.reason,
                    "severity": f.severity,
                    "source": f.source,
                    "department": f.department,
                    "url": f.url,
                    "dimensions": f.dimensions,
                }
                for f in found
                if f.status != "ok"
            ]
            for start in range(0, len(rows), 1000):
                conn.execute(findings.insert(), rows[start : start + 1000])
    return {"results": results, "run_id": run_id}


# -- the store, with the rows no built-in control returns --------------------------------------

EDGES = """
SELECT
  t.source || '/' || t.source_id AS resource,
  CASE WHEN t.priority = 1 THEN ' ALARM ' WHEN t.priority = 2 THEN 'Ok' ELSE 'info' END AS status,
  CASE WHEN t.priority = 3 THEN NULL ELSE 'priority ' || CAST(t.priority AS VARCHAR(8)) END AS reason,
  t.source, t.department, t.url,
  t.number AS label, t.assignment_group AS label,
  t.opened_at, t.priority, t.reopen_count, t.title,
  {% if dialect == 'sqlite' %}
    CAST(12.5 AS REAL) AS ratio, X'c3a9ff' AS raw, date('2026-11-23') AS due
  {% else %}
    CAST(12.5 AS NUMERIC(6, 2)) AS ratio, decode('c3a9ff', 'hex') AS raw,
    CAST('2026-11-23' AS DATE) AS due
  {% endif %},
  (t.priority = 1) AS urgent
FROM tickets t
WHERE t.deleted = FALSE
"""

ODD_ROWS = [
    # a numeric reason, no resource, no source
    "SELECT NULL AS resource, 'alarm' AS status, 42 AS reason, 7 AS n",
    # an empty resource, a numeric source
    "SELECT '' AS resource, 'unverified' AS status, 'empty' AS reason, 5 AS source, 'Fire' AS department",
    # a resource longer than the history keeps
    "SELECT '" + "r" * 600 + "' AS resource, 'alarm' AS status, 'long' AS reason, 'snow' AS source",
]


def _edge_controls() -> list[Control]:
    base = load_controls()["service.repeat_reopens"]
    edges = base.model_copy(update={"id": "test.edges", "query": EDGES})
    return [
        edges,
        edges.model_copy(
            update={
                "id": "test.compared",
                "requires": [Requirement(platform="intune", entity="device")],
            }
        ),
        edges.model_copy(
            update={
                "id": "test.absent",
                "requires": [Requirement(platform="clarity", entity="assignment")],
            }
        ),
        *(
            base.model_copy(update={"id": f"test.odd{i}", "query": query, "entity": None})
            for i, query in enumerate(ODD_ROWS)
        ),
        base.model_copy(update={"id": "test.syntax", "query": "SELECT FROM WHERE"}),
        base.model_copy(
            update={
                "id": "test.status",
                "query": "SELECT 'maybe' AS status, 'r' AS resource, '' AS reason",
            }
        ),
        base.model_copy(
            update={
                "id": "test.empty",
                "query": "SELECT 'ok' AS status, 'r' AS resource, '' AS reason WHERE 1 = 0",
            }
        ),
    ]


def _controls() -> list[Control]:
    return [*load_controls().values(), *_edge_controls()]


def _edge_store(url: str) -> Store:
    s = city_store(url)
    s.write_page(
        source="snow",
        stream="incident",
        entity="ticket",
        records=[
            _ticket("t90", "INC0090", priority=3, state="new", opened_at=NOW, title="Zürich\tö\n"),
            _ticket("t91", "INC0091", priority=2, state="new", opened_at=NOW, title='a\\Nb \\ "q"'),
        ],
        quarantined=[],
        cursor=StreamCursor(watermark=NOW, access="ok"),
    )
    return s


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    s = _edge_store(store_url)
    yield s
    s.close()


@pytest.fixture
def other_url(store_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database beside ``store_url``, of the same kind."""
    folder = tmp_path / "other"
    folder.mkdir()
    kind = "sqlite" if store_url.startswith("sqlite") else "postgresql"
    with empty_database(kind, folder) as url:
        yield url


def _as_found(findings_: list[Finding]) -> list[tuple[Any, ...]]:
    return [
        (
            f.control_id,
            f.resource,
            f.status,
            f.reason,
            f.severity,
            f.source,
            f.department,
            f.url,
            json.dumps(f.dimensions),
        )
        for f in findings_
    ]


def _recorded(store: Store, run_id: int) -> tuple[list[tuple[Any, ...]], dict[str, Any]]:
    """The run's findings as stored (the dimensions as their JSON text), in the order kept."""
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                findings.c.control_id,
                findings.c.resource,
                findings.c.status,
                findings.c.reason,
                findings.c.severity,
                findings.c.source,
                findings.c.department,
                findings.c.url,
                sa.cast(findings.c.dimensions, sa.Text),
            )
            .where(findings.c.run_id == run_id)
            .order_by(findings.c.id)
        ).all()
        head = conn.execute(
            sa.select(
                compliance_runs.c.controls, compliance_runs.c.counts, compliance_runs.c.sources
            ).where(compliance_runs.c.id == run_id)
        ).one()
    return [tuple(r) for r in rows], {
        "controls": head.controls,
        "counts": head.counts,
        "sources": head.sources,
    }


def _same_run(store: Store) -> None:
    controls = _controls()
    fast = run_controls(store, controls, now=NOW)
    plain = _plain_run(store, controls)
    for result in fast.results:
        want, error = plain["results"][result.control.id]
        assert result.error == error, result.control.id
        assert _as_found(result.findings) == _as_found(want), result.control.id
    assert fast.run_id is not None
    got_rows, got_head = _recorded(store, fast.run_id)
    want_rows, want_head = _recorded(store, plain["run_id"])
    assert got_rows == want_rows
    assert got_head["counts"] == want_head["counts"]
    assert got_head["sources"] == want_head["sources"]
    for cid, described in want_head["controls"].items():
        mine = got_head["controls"][cid]
        assert mine["counts"] == described["counts"], cid
        assert mine == described, cid
    assert (
        history.load_run(store.engine, fast.run_id).findings
        == history.load_run(store.engine, plain["run_id"]).findings
    )


def test_the_fast_path_finds_and_keeps_what_the_plain_path_does(store: Store) -> None:
    _same_run(store)
    run = run_controls(store, _edge_controls(), now=NOW, record=False)
    got = {r.control.id: {f.resource: f for f in r.findings} for r in run.results}
    # The rows are the ones meant: each rule of the verdict is met.
    edges = got["test.edges"]
    assert edges["snow/t1"].status == "alarm"  # ' ALARM '
    assert edges["snow/t91"].status == "ok"  # 'Ok'
    assert edges["snow/t90"].reason == ""  # NULL
    assert edges["snow/t90"].dimensions["title"] == "Zürich\tö\n"
    assert edges["snow/t91"].dimensions["title"] == 'a\\Nb \\ "q"'
    assert edges["snow/t1"].dimensions["label"] == "Network"  # the last column of the name
    assert edges["snow/t1"].dimensions["raw"] == "é\ufffd"
    assert edges["snow/t1"].dimensions["due"] == "2026-11-23"
    assert edges["snow/t1"].dimensions["ratio"] == 12.5
    assert edges["snow/t1"].dimensions["opened_at"].startswith("2026-11-23")
    assert got["test.absent"]["snow/t1"].status == "skip"
    assert got["test.odd0"]["(unnamed)"].reason == "42"
    assert got["test.odd1"]["(unnamed)"].source == "5"
    assert len(next(iter(got["test.odd2"]))) == 600
    errors = {r.control.id: r.error for r in run.results}
    assert errors["test.syntax"] and "status 'maybe'" in (errors["test.status"] or "")
    assert got["test.empty"] == {} and errors["test.empty"] is None
    with store.engine.connect() as conn:
        kept = conn.execute(sa.select(sa.func.max(sa.func.length(findings.c.resource)))).scalar()
    assert kept == 512


def test_sources_read_partly_give_the_same_verdicts_both_ways(store: Store) -> None:
    _ok_run(store, "intune", outcome="failed", error="authentication failed for source intune")
    store.save_cursor(
        "snow", "cmdb_ci_computer", "device", StreamCursor(access="no_access", message="ACL")
    )
    store.save_cursor(
        "snow", "pm_project", "work_item", StreamCursor(access="ok", window_until=NOW)
    )
    _same_run(store)
    run = run_controls(store, _edge_controls()[:2], now=NOW, record=False)
    compared = {f.resource: f.status for f in run.results[1].findings}
    assert compared["snow/t91"] == "unverified"  # Intune could not be read: no verdict


def test_the_history_a_report_reads_is_the_same_both_ways(store_url: str, other_url: str) -> None:
    """Two runs each way, some alarms fixed in between: new, fixed, trend and counts agree."""
    controls = _controls()

    def two_runs(url: str, fast: bool) -> dict[str, Any]:
        s = _edge_store(url)
        try:
            ids = []
            for _ in range(2):
                run_id = (
                    run_controls(s, controls, now=NOW).run_id
                    if fast
                    else _plain_run(s, controls)["run_id"]
                )
                assert run_id is not None
                ids.append(run_id)
                with s.engine.begin() as conn:
                    conn.execute(sa.text("UPDATE devices SET encrypted = TRUE, owner = 'x'"))
                    conn.execute(sa.text("UPDATE tickets SET assignee = 'al' WHERE priority = 1"))
            report = build(s.engine, ids[-1])
        finally:
            s.close()
        # When the sync runs of each store were made: the clock's, not the engine's.
        report.pop("run_at")
        report.pop("sources")
        return report

    fast, plain = two_runs(store_url, True), two_runs(other_url, False)
    assert fast == plain
    assert fast["summary"]["alarm"] > 0
    assert sum(c["fixed"] for c in fast["controls"]) > 0, "the second run fixed some alarms"
    assert len(fast["trend"]) == 2


def test_the_collector_is_back_on_after_a_run(store: Store) -> None:
    import gc

    run_controls(store, _controls()[:3], now=NOW, record=False)
    assert gc.isenabled()
    gc.disable()
    try:
        run_controls(store, _controls()[:3], now=NOW, record=False)
        assert not gc.isenabled(), "a caller's choice is left as it was"
    finally:
        gc.enable()


def test_an_in_memory_store_is_read_on_its_one_connection() -> None:
    # An in-memory SQLite database exists on one connection only: no query may go elsewhere.
    s = _edge_store("sqlite://")
    try:
        run = run_controls(s, _controls(), now=NOW)
        assert run.run_id is not None
        edges = next(r for r in run.results if r.control.id == "test.edges")
        with s.engine.connect() as conn:
            tickets = conn.execute(sa.text("SELECT COUNT(*) FROM tickets")).scalar()
        assert len(edges.findings) == tickets == 12
    finally:
        s.close()


def test_a_history_an_older_version_made_gets_the_run_index_and_keeps_its_runs(
    store: Store,
) -> None:
    """An older version indexed findings by control and resource, which put each new run's
    rows among every earlier run's (recording slowed as the history grew) and served no query.
    Opening that history drops it for one index led by the run, and keeps every run."""
    controls = _controls()
    engine = store.engine
    first = run_controls(store, controls, now=NOW)
    with engine.begin() as conn:  # the history as the older version left it
        conn.exec_driver_sql("DROP INDEX ix_findings_run")
        conn.exec_driver_sql("CREATE INDEX ix_findings_run_id ON findings (run_id)")
        conn.exec_driver_sql(
            "CREATE INDEX ix_findings_control_resource ON findings (control_id, resource)"
        )
    before = history.load_run(engine, first.run_id)
    second = run_controls(store, controls, now=NOW)
    names = {i["name"] for i in sa.inspect(engine).get_indexes("findings")}
    assert names == {"ix_findings_run"}
    assert history.load_run(engine, first.run_id).findings == before.findings
    again = history.load_run(engine, second.run_id)
    assert [f.as_json() for f in again.findings] == [f.as_json() for f in before.findings]
    history.ensure_tables(engine)  # once up to date, opening it again changes nothing
    assert {i["name"] for i in sa.inspect(engine).get_indexes("findings")} == names
