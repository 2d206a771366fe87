"""Controls rewritten for scale (a set found once and joined, where a subquery per row read a
whole table) answer as the queries they replaced, finding by finding, on SQLite and PostgreSQL.

The replaced queries are kept here as the reference; each is run beside the control over a
random store holding what the control tells apart (a source without the data, deleted rows,
links by either column, another source's ids), and every finding's status and reason compared.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.compliance.controls import Control
from itcrosswalk.core.store import ENTITY_TABLES, Store, stream_state

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _row(source: str, source_id: str, **values: Any) -> dict[str, Any]:
    return {
        "source": source,
        "platform": "servicenow",
        "source_id": source_id,
        "extra": {},
        "stream": "s",
        "deleted": False,
    } | values


def _put(store: Store, entity: str, rows: list[dict[str, Any]]) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.delete(ENTITY_TABLES[entity]))
        if rows:
            conn.execute(sa.insert(ENTITY_TABLES[entity]), rows)


def _synced(store: Store, *streams: tuple[str, str, str]) -> None:
    """Streams read completely (source, stream, entity): what a control requires."""
    with store.engine.begin() as conn:
        conn.execute(sa.delete(stream_state))
        conn.execute(
            sa.insert(stream_state),
            [{"source": s, "stream": st, "entity": e, "access": "ok"} for s, st, e in streams],
        )


def _findings(store: Store, control: Control) -> dict[str, tuple[str, str]]:
    run = run_controls(store, [control], now=NOW, record=False)
    (result,) = run.results
    assert result.error is None, result.error
    found = {f.resource: (f.status, f.reason) for f in result.findings}
    assert len(found) == len(result.findings)  # one finding per resource
    return found


def _same_as(store: Store, control_id: str, old_query: str) -> dict[str, tuple[str, str]]:
    control = load_controls()[control_id]
    found = _findings(store, control)
    assert found == _findings(store, control.model_copy(update={"query": old_query}))
    return found


UNSTAFFED_BEFORE = """\
SELECT
  w.source || '/' || w.source_id AS resource,
  COALESCE(w.number, w.name) AS label,
  w.name, w.source, w.department, w.url, w.planned_start, w.manager,
  CASE
    WHEN NOT EXISTS (SELECT 1 FROM assignments s WHERE s.deleted = FALSE AND s.source = w.source)
      THEN 'skip'
    WHEN EXISTS (
      SELECT 1 FROM assignments a
      WHERE a.deleted = FALSE AND a.source = w.source
        AND (a.project_id = w.source_id OR a.work_item_id = w.source_id)
    ) THEN 'ok'
    ELSE 'alarm'
  END AS status,
  CASE
    WHEN NOT EXISTS (SELECT 1 FROM assignments s WHERE s.deleted = FALSE AND s.source = w.source)
      THEN 'source ' || w.source || ' holds no assignments: whether the project is staffed cannot be told'
    WHEN EXISTS (
      SELECT 1 FROM assignments a
      WHERE a.deleted = FALSE AND a.source = w.source
        AND (a.project_id = w.source_id OR a.work_item_id = w.source_id)
    ) THEN 'somebody is assigned'
    ELSE 'approved, starts within 60 days, and nobody (no person, no role) is assigned'
  END AS reason
FROM work_items w
WHERE w.deleted = FALSE AND w.kind = 'project' AND w.state = 'approved'
  AND w.planned_start >= :now AND w.planned_start < :capacity_staffing_before
"""


def test_capacity_unstaffed_as_before(store_url: str) -> None:
    store = Store(store_url)
    try:
        for seed in range(3):
            rnd = random.Random(seed)
            projects = [
                _row(
                    rnd.choice(["snow", "clar", "jira"]),  # jira keeps no assignments
                    f"p{i}",
                    kind="project",
                    name=f"Project {i}",
                    state=rnd.choice(["approved", "approved", "in_progress"]),
                    phase="initiating",
                    health="green",
                    strategic_goals=[],
                    planned_start=NOW + timedelta(days=rnd.randrange(-10, 80)),
                    deleted=rnd.random() < 0.1,
                )
                for i in range(60)
            ]
            assignments = []
            for j in range(50):
                item = f"p{rnd.randrange(70)}"  # some name no project
                by = rnd.choice(["project", "work_item", "both", "task"])
                assignments.append(
                    _row(
                        rnd.choice(["snow", "clar"]),
                        f"a{j}",
                        project_id=item if by in ("project", "both") else None,
                        work_item_id=item if by in ("work_item", "both") else f"t{j}",
                        generic=False,
                        deleted=rnd.random() < 0.2,
                    )
                )
            _put(store, "work_item", projects)
            _put(store, "assignment", assignments)
            found = _same_as(store, "capacity.unstaffed", UNSTAFFED_BEFORE)
            assert {s for s, _ in found.values()} == {"ok", "alarm", "skip"}
    finally:
        store.close()


NONCOMPLIANT_BEFORE = """\
-- Open tickets name a device by serial number or by name (ServiceNow's cmdb_ci); each is
-- grouped once, then joined, so a million tickets are read once, not once per device.
WITH open_tickets AS (
  SELECT t.number,
         {{ serial_key('t.device_serial') }} AS serial_key,
         LOWER(t.device_name) AS device_name
  FROM tickets t
  WHERE t.deleted = FALSE AND t.state IN ('new', 'in_progress', 'on_hold')
    AND (t.device_serial IS NOT NULL OR t.device_name IS NOT NULL)
),
by_serial AS (
  SELECT serial_key, MIN(number) AS number FROM open_tickets
  WHERE serial_key IS NOT NULL AND serial_key <> '' GROUP BY serial_key
),
by_name AS (
  SELECT device_name, MIN(number) AS number FROM open_tickets
  WHERE device_name IS NOT NULL GROUP BY device_name
)
SELECT
  d.source || '/' || d.source_id AS resource,
  d.name AS label,
  d.source,
  COALESCE(d.department, (
    SELECT MIN(p.department) FROM people p WHERE p.upn = d.owner AND p.deleted = FALSE
  )) AS department,
  d.url,
  d.serial,
  d.compliance,
  COALESCE(s.number, n.number) AS ticket,
  CASE WHEN COALESCE(s.number, n.number) IS NOT NULL THEN 'ok' ELSE 'alarm' END AS status,
  CASE WHEN COALESCE(s.number, n.number) IS NOT NULL
    THEN 'non-compliant, and an open ticket names the device'
    ELSE 'non-compliant, and no open ticket names the device'
  END AS reason
FROM devices d
LEFT JOIN by_serial s ON s.serial_key = d.serial_key
LEFT JOIN by_name n ON n.device_name = LOWER(d.name)
WHERE d.platform = 'intune' AND d.deleted = FALSE
  AND d.compliance IN ('noncompliant', 'conflict', 'error')
"""


def test_endpoint_noncompliant_has_ticket_as_before(store_url: str) -> None:
    store = Store(store_url)
    try:
        for seed in range(3):
            rnd = random.Random(seed)
            serials = [f"SN{k}" for k in range(30)]  # tickets name the first 10
            devices = [
                _row(
                    (platform := rnd.choice(["intune", "intune", "servicenow"])),
                    f"d{i}",
                    platform=platform,
                    name=f"Laptop-{i % 40}",
                    serial=(serial := rnd.choice([*serials, None])),
                    serial_key=serial,
                    compliance=rnd.choice(["noncompliant", "conflict", "error", "compliant"]),
                    deleted=rnd.random() < 0.1,
                )
                for i in range(50)
            ]
            tickets = [
                _row(
                    "snow",
                    f"t{j}",
                    kind="incident",
                    number=f"INC{j:04d}",
                    state=rnd.choice(["new", "in_progress", "closed"]),
                    # As people type them: spaces, a tab, lower case; or no serial at all.
                    device_serial=rnd.choice(
                        [
                            None,
                            "",
                            " ",
                            *(s.lower() for s in serials[:10]),
                            *(f" {s}\t" for s in serials[:10]),
                        ]
                    ),
                    device_name=rnd.choice([None, *(f"LAPTOP-{i}" for i in range(5, 15))]),
                    deleted=rnd.random() < 0.1,
                )
                for j in range(60)
            ]
            _put(store, "device", devices)
            _put(store, "ticket", tickets)
            _synced(store, ("intune", "managed_devices", "device"), ("snow", "incident", "ticket"))
            found = _same_as(store, "endpoint.noncompliant_has_ticket", NONCOMPLIANT_BEFORE)
            assert {s for s, _ in found.values()} == {"ok", "alarm"}
    finally:
        store.close()


ASSET_SEEN_BEFORE = """\
SELECT
  a.source || '/' || a.source_id AS resource,
  COALESCE(a.asset_tag, a.name) AS label,
  a.source,
  a.department,
  a.url,
  a.serial,
  (SELECT MAX(d.last_seen_at) FROM devices d
    WHERE d.serial_key = a.serial_key AND d.platform = 'intune' AND d.deleted = FALSE) AS last_check_in,
  CASE
    WHEN NOT EXISTS (SELECT 1 FROM devices m WHERE m.platform = 'intune' AND m.deleted = FALSE) THEN 'unverified'
    WHEN a.serial_key IS NULL THEN 'unverified'
    WHEN NOT EXISTS (
      SELECT 1 FROM devices d
      WHERE d.serial_key = a.serial_key AND d.platform = 'intune' AND d.deleted = FALSE
    ) THEN 'alarm'
    WHEN (SELECT MAX(d.last_seen_at) FROM devices d
      WHERE d.serial_key = a.serial_key AND d.platform = 'intune' AND d.deleted = FALSE) IS NULL THEN 'alarm'
    WHEN {{ seconds_between("(SELECT MAX(d.last_seen_at) FROM devices d WHERE d.serial_key = a.serial_key AND d.platform = 'intune' AND d.deleted = FALSE)", ':now') }} > 5184000 THEN 'alarm'
    ELSE 'ok'
  END AS status,
  CASE
    WHEN NOT EXISTS (SELECT 1 FROM devices m WHERE m.platform = 'intune' AND m.deleted = FALSE) THEN 'no device manager (Intune) is synced: check-ins cannot be seen'
    WHEN a.serial_key IS NULL THEN 'no usable serial number: cannot be matched to a managed device'
    WHEN NOT EXISTS (
      SELECT 1 FROM devices d
      WHERE d.serial_key = a.serial_key AND d.platform = 'intune' AND d.deleted = FALSE
    ) THEN 'in use, and no managed device has its serial number'
    WHEN (SELECT MAX(d.last_seen_at) FROM devices d
      WHERE d.serial_key = a.serial_key AND d.platform = 'intune' AND d.deleted = FALSE) IS NULL THEN 'in use, and never checked in'
    WHEN {{ seconds_between("(SELECT MAX(d.last_seen_at) FROM devices d WHERE d.serial_key = a.serial_key AND d.platform = 'intune' AND d.deleted = FALSE)", ':now') }} > 5184000 THEN 'in use, and not seen by the device manager for 60 days'
    ELSE 'checked in within 60 days'
  END AS reason
FROM assets a
WHERE a.deleted = FALSE AND a.state = 'in_use'
UNION ALL
SELECT 'hardware assets', NULL, NULL, NULL, NULL, NULL, NULL, 'unverified',
  'no synced source holds hardware asset records: nothing could be checked'
WHERE NOT EXISTS (SELECT 1 FROM assets k WHERE k.deleted = FALSE)
"""


def test_endpoint_asset_seen_as_before(store_url: str) -> None:
    store = Store(store_url)
    reasons: set[str] = set()
    try:
        for seed in range(4):
            rnd = random.Random(seed)
            serials = [f"SN{k}" for k in range(25)]
            enrols = seed != 3  # the last store: no device manager synced at all
            platforms = ["intune", "intune", "servicenow"] if enrols else ["servicenow"]
            devices = [
                _row(
                    (platform := rnd.choice(platforms)),
                    f"d{i}",
                    platform=platform,
                    name=f"Laptop-{i}",
                    compliance="compliant",
                    serial=(serial := rnd.choice([*serials[:18], None])),
                    serial_key=serial,
                    # Never, long ago, lately; a serial enrolled twice keeps its latest.
                    last_seen_at=rnd.choice(
                        [None, NOW - timedelta(days=200), NOW - timedelta(days=rnd.randrange(59))]
                    ),
                    deleted=rnd.random() < 0.1,
                )
                for i in range(40)
            ]
            assets = [
                _row(
                    "snow",
                    f"a{k}",
                    asset_tag=f"P{k}",
                    serial=(serial := rnd.choice([*serials, None])),
                    serial_key=serial,
                    state=rnd.choice(["in_use", "in_use", "in_stock"]),
                    deleted=rnd.random() < 0.1,
                )
                for k in range(40)
            ]
            if enrols:  # an asset whose only managed device never checked in
                devices.append(
                    _row("intune", "dx", platform="intune", name="X", compliance="unknown", last_seen_at=None,
                         serial="SNX", serial_key="SNX")
                )  # fmt: skip
                assets.append(
                    _row(
                        "snow", "ax", asset_tag="PX", serial="SNX", serial_key="SNX", state="in_use"
                    )
                )
            _put(store, "device", devices)
            _put(store, "asset", assets)
            _synced(
                store, ("intune", "managed_devices", "device"), ("snow", "alm_hardware", "asset")
            )
            found = _same_as(store, "endpoint.asset_seen", ASSET_SEEN_BEFORE)
            reasons.update(r for _s, r in found.values())
        # Every branch was taken in some store: each reason the control gives.
        assert len(reasons) == 6, reasons
    finally:
        store.close()


HINTED = (
    "service.aged_backlog",
    "service.urgent_assigned",
    "service.p1_problem",
    "service.p1_within_sla",
    "service.repeat_reopens",
)
HINT = "{% if dialect == 'sqlite' %} NOT INDEXED{% endif %}"


def test_the_ticket_controls_read_in_one_pass_give_the_same_findings(store_url: str) -> None:
    """SQLite's one pass over the tickets (NOT INDEXED) is a plan, not a filter: each control
    gives the findings its query gives without the hint."""
    rnd = random.Random(5)
    tickets, slas = [], []
    for i in range(300):
        opened = NOW - timedelta(hours=rnd.randrange(1, 24 * 200))
        state = rnd.choice(["new", "in_progress", "on_hold", "resolved", "closed", "cancelled"])
        resolved = (
            opened + timedelta(hours=rnd.randrange(1, 12))
            if state in ("resolved", "closed")
            else None
        )
        tickets.append(
            _row(
                "snow",
                f"t{i}",
                kind=rnd.choice(["incident", "incident", "request", "problem", "change"]),
                number=f"T{i:04d}",
                priority=rnd.choice([1, 1, 2, 3, None]),
                state=state,
                opened_at=None if rnd.random() < 0.03 else opened,
                resolved_at=resolved,
                assignment_group=rnd.choice([None, "Desk"]),
                assignee=rnd.choice([None, "ann@city.gov"]),
                reopen_count=rnd.choice([None, 0, 1, 2, 3]),
                problem_id=rnd.choice([None, "", "prb1"]),
                deleted=rnd.random() < 0.05,
            )
        )  # fmt: skip
        if rnd.random() < 0.4:
            slas.append(
                _row("snow", f"s{i}", ticket_id=f"t{i}", has_breached=rnd.choice([True, False, None]),
                     stage="in_progress")
            )  # fmt: skip
    store = Store(store_url)
    try:
        _put(store, "ticket", tickets)
        _put(store, "sla_record", slas)
        _synced(store, ("snow", "incident", "ticket"), ("snow", "task_sla", "sla_record"))
        controls = load_controls()
        for control_id in HINTED:
            assert HINT in controls[control_id].query, control_id
            found = _same_as(store, control_id, controls[control_id].query.replace(HINT, ""))
            assert len({s for s, _ in found.values()}) >= 2, control_id
    finally:
        store.close()
