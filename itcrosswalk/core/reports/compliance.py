"""The compliance report's content, built from the findings history (never from live data).

Building from the history is what makes ``--as-of`` exact: the report of a past run is the
same document it was that day, with the controls described as they were then. The result
is plain JSON-ready data; :mod:`.render` turns it into HTML, Markdown, CSV, XLSX or JSON.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..compliance import history
from ..compliance.controls import SEVERITIES
from ..errors import CrosswalkError

if TYPE_CHECKING:
    from ..contract import Registry

STATUS_ORDER = ("alarm", "unverified", "info", "skip", "ok")


class NoHistory(CrosswalkError):
    """No compliance run was recorded (before the date asked for)."""


def pick_run(engine: sa.Engine, as_of: date | datetime | None = None) -> int:
    """The id of the latest run, or of the latest run made on or before ``as_of``."""
    history.ensure_tables(engine)
    until = None
    if isinstance(as_of, datetime):
        until = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    elif isinstance(as_of, date):
        until = history.end_of(as_of)
    ids = history.run_ids(engine, until=until, limit=1)
    if not ids:
        when = f" on or before {as_of.isoformat()}" if as_of else ""
        raise NoHistory(
            f"no compliance run was recorded{when}; `crosswalk report compliance` runs the controls"
        )
    return ids[0]


def _key(finding: history.Finding) -> tuple[str, str]:
    return finding.control_id, finding.resource


def _label(finding: history.Finding) -> str:
    label = finding.dimensions.get("label")
    return str(label) if label not in (None, "") else finding.resource


def _rate(ok: int, alarm: int, unverified: int) -> float | None:
    judged = ok + alarm + unverified
    return round(ok / judged, 4) if judged else None


def build(engine: sa.Engine, run_id: int, *, trend_runs: int = 12) -> dict[str, Any]:
    """The report of run ``run_id``: summary, controls, departments, trend, findings, fixes."""
    run = history.load_run(engine, run_id)
    control_ids = list(run.controls)
    previous = history.previous_findings(engine, run, control_ids)
    by_control: dict[str, list[history.Finding]] = {cid: [] for cid in control_ids}
    for f in run.findings:
        by_control.setdefault(f.control_id, []).append(f)

    new_keys: set[tuple[str, str]] = set()
    fixed: list[dict[str, Any]] = []
    controls: list[dict[str, Any]] = []
    previous_run_seen = any(p is not None for p in previous.values())
    for cid in control_ids:
        described = dict(run.controls[cid])
        found = by_control.get(cid, [])
        counts: Counter[str] = Counter(described.pop("counts", None) or {})
        before = previous.get(cid)
        before_alarms = {_key(f): f for f in (before or []) if f.status == "alarm"}
        now_alarms = {_key(f) for f in found if f.status == "alarm"}
        now_status = {_key(f): f.status for f in found}
        control_new = {k for k in now_alarms if k not in before_alarms}
        new_keys |= control_new
        control_fixed = [
            {
                "control_id": cid,
                "title": described.get("title"),
                "severity": described.get("severity"),
                "resource": f.resource,
                "label": _label(f),
                "was": f.reason,
                "now": now_status.get(k, "ok or gone"),
                "source": f.source,
                "department": f.department,
                "url": f.url,
            }
            for k, f in sorted(before_alarms.items())
            if k not in now_alarms and not (described.get("error"))
        ]
        fixed += control_fixed
        judged = counts["ok"] + counts["alarm"] + counts["unverified"]
        why: str | None = None
        if described.get("error"):
            verdict = "error"
        elif counts["alarm"]:
            verdict = "fail"
        elif counts["unverified"]:
            verdict = "unverified"
        elif not judged:
            # A control that looked at nothing has not passed: before any sync, or with no P1
            # incident in the store, "0 failed" would be a claim the data never backed.
            verdict = "unverified"
            skipped = [f.reason for f in found if f.status == "skip"]
            why = (
                f"checked no record: all {sum(counts.values())} findings were skipped or for "
                f"information ({skipped[0] if skipped else 'nothing to compare with'})"
                if sum(counts.values())
                else "checked no record: the store holds nothing this control judges"
            )
        else:
            verdict = "pass"
        controls.append(
            {
                **described,
                "verdict": verdict,
                "verdict_reason": why,
                "checked": judged,
                "counts": {s: counts.get(s, 0) for s in STATUS_ORDER},
                "pass_rate": _rate(counts["ok"], counts["alarm"], counts["unverified"]),
                "new": len(control_new),
                "fixed": len(control_fixed),
                "first_run": before is None,
            }
        )

    severity_rank = {s: i for i, s in enumerate(SEVERITIES)}
    controls.sort(
        key=lambda c: (
            ("error", "fail", "unverified", "pass").index(c["verdict"]),
            severity_rank.get(c.get("severity", "info"), 9),
            c["id"],
        )
    )
    total: Counter[str] = Counter()
    for control in controls:
        total.update(control["counts"])
    alarms_by_severity = {s: 0 for s in SEVERITIES}
    for f in run.findings:
        if f.status == "alarm":
            alarms_by_severity[f.severity or "info"] = alarms_by_severity.get(f.severity, 0) + 1

    departments = {
        name: Counter(counts) for name, counts in (run.counts.get("by_department") or {}).items()
    }
    by_department: list[dict[str, Any]] = sorted(
        (
            {
                "department": name,
                "alarm": c["alarm"],
                "unverified": c["unverified"],
                "ok": c["ok"],
                "pass_rate": _rate(c["ok"], c["alarm"], c["unverified"]),
            }
            for name, c in departments.items()
        ),
        key=lambda d: (-int(d["alarm"]), str(d["department"])),
    )

    rows = []
    for f in run.findings:
        rows.append(
            {
                **f.as_json(),
                "title": run.controls.get(f.control_id, {}).get("title"),
                "label": _label(f),
                "new": _key(f) in new_keys,
            }
        )
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    rows.sort(
        key=lambda r: (
            rank.get(r["status"], 9),
            severity_rank.get(r["severity"], 9),
            r["control_id"],
            r["label"],
        )
    )
    return {
        "report": "compliance",
        "run_id": run.id,
        "run_at": run.started_at.isoformat(),
        "as_of": run.as_of.isoformat(),
        "benchmark": run.benchmark,
        "summary": {
            "controls": len(controls),
            "controls_passed": sum(1 for c in controls if c["verdict"] == "pass"),
            "controls_failed": sum(1 for c in controls if c["verdict"] == "fail"),
            "controls_unverified": sum(1 for c in controls if c["verdict"] == "unverified"),
            "controls_error": sum(1 for c in controls if c["verdict"] == "error"),
            "findings": sum(total.values()),
            **{s: total.get(s, 0) for s in STATUS_ORDER},
            "pass_rate": _rate(total["ok"], total["alarm"], total["unverified"]),
            "alarms_by_severity": alarms_by_severity,
            "new_alarms": len(new_keys),
            "fixed": len(fixed),
            "compared_with_earlier_run": previous_run_seen,
        },
        "controls": controls,
        "by_department": by_department,
        "trend": [
            {**point, "at": point["at"].isoformat()}
            for point in history.trend(engine, run, trend_runs)
        ],
        "sources": run.sources,
        "findings": rows,
        "fixed": fixed,
        "remediation": run.remediation,
    }


def report_for(
    engine: sa.Engine, *, run_id: int | None = None, as_of: Any = None
) -> dict[str, Any]:
    """The report of ``run_id``, or of the run that stood on ``as_of``, or of the latest run."""
    if run_id is not None:
        history.ensure_tables(engine)
        with engine.connect() as conn:
            known = conn.execute(
                sa.select(history.compliance_runs.c.id).where(
                    history.compliance_runs.c.id == run_id
                )
            ).first()
        if known is None:
            raise NoHistory(
                f"no compliance run {run_id} was recorded; `crosswalk report compliance` runs "
                "the controls and says the id of the run it records"
            )
        return build(engine, run_id)
    return build(engine, pick_run(engine, as_of))


def run_and_build(
    store: Any,
    config: Any,
    pm: Registry,
    *,
    benchmark: str | None = None,
    control_ids: tuple[str, ...] | list[str] = (),
    now: datetime | None = None,
    open_tickets: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Run the chosen controls now, keep the findings, open the tickets opted-in controls ask
    for (unless ``open_tickets`` is false), and build the report of that run."""
    from dataclasses import asdict

    from ..compliance import controls_for, run_controls, select
    from ..compliance.remediation import remediate

    chosen = select(controls_for(config, pm), benchmark=benchmark, ids=list(control_ids))
    if store_is_empty(store):
        raise EmptyStore(
            "the store holds no synced data, so no control can be judged (none passes by "
            "default): run `crosswalk sync` first; no compliance run was recorded"
        )
    label = benchmark or ("controls" if control_ids else "city")
    run = run_controls(store, chosen, config=config, benchmark=label, now=now)
    assert run.run_id is not None
    if open_tickets and any(c.open_tickets for c in chosen):
        done = remediate(store, config, run, pm=pm)
        history.set_remediation(store.engine, run.run_id, asdict(done))
    return run, build(store.engine, run.run_id)


def exit_code(data: dict[str, Any]) -> int:
    """3 when a control failed, could not run, found data it could not verify, or had nothing
    to check; else 0."""
    s = data["summary"]
    failed = s["alarm"] or s["unverified"] or s["controls_error"]
    return 3 if (failed or s.get("controls_unverified")) else 0


class EmptyStore(CrosswalkError):
    """The store holds no synced data: every control would pass having looked at nothing."""

    exit_code = 3


def store_is_empty(store: Any) -> bool:
    """No sync has run and no entity table holds a record."""
    from ..store import ENTITY_TABLES, sync_runs

    with store.engine.connect() as conn:
        if conn.execute(sa.select(sync_runs.c.id).limit(1)).first() is not None:
            return False
        for table in ENTITY_TABLES.values():
            if conn.execute(sa.select(table.c.source_id).limit(1)).first() is not None:
                return False
    return True


def write_compliance(
    store: Any,
    config: Any,
    pm: Registry,
    directory: Any,
    formats: tuple[str, ...] = ("html", "json"),
    *,
    now: datetime | None = None,
) -> list[Any]:
    """Run the City benchmark and write ``compliance.<ext>`` for each format into ``directory``
    (what ``crosswalk demo`` ends with); returns the paths written."""
    from pathlib import Path

    from .render import EXTENSIONS, write

    _run, data = run_and_build(store, config, pm, now=now)
    folder = Path(directory)
    return [write(data, fmt, folder / f"compliance.{EXTENSIONS[fmt]}") for fmt in formats]
