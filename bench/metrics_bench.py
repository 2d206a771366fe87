"""Metrics and compliance benchmark: the standard pack and the controls over a large store.

Run by hand, never by the test suite:

    .venv/bin/python bench/metrics_bench.py --tickets 1000000 --devices 100000 --projects 5000
    .venv/bin/python bench/metrics_bench.py --postgres            # the same on PostgreSQL
    .venv/bin/python bench/metrics_bench.py --tickets 200000 --devices 20000 --compliance

It fills a store with seeded synthetic records (SQLite: kept in bench/results/ and reused while
its size matches; PostgreSQL: a database of its own on the local server, dropped afterwards
unless ``--keep``), then times ``compute_metrics`` for the full pack, without and with a
breakdown by platform, as the CLI computes it (several metrics at once) and one by one, and
reports the slowest metrics (in the pack's order, the first metric of an entity, marked *,
paying for the entity's shared pass); with ``--compliance``, the city
benchmark's controls (``run_controls``, findings recorded) as well. Wall seconds and this
process's CPU seconds are both printed (the database server's CPU is its own, on PostgreSQL).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from itcrosswalk.core.config import Config
from itcrosswalk.core.metrics import MetricContext, all_metrics, compute_metrics, pack_threads
from itcrosswalk.core.metrics.shared import SharedScans
from itcrosswalk.core.store import Store
from itcrosswalk.registry import make_registry

HERE = Path(__file__).resolve().parent
NOW = datetime(2026, 11, 1, tzinfo=UTC)
GROUPS = ["Service Desk", "Network", "Desktop", "Apps", "Security"]
DEPARTMENTS = ["Police", "Fire", "Water", "Transportation", "Parks", "ITD"]


def _common(source: str, platform: str, i: int, prefix: str) -> dict[str, object]:
    return {
        "source": source,
        "platform": platform,
        "source_id": f"{prefix}{i:08d}",
        "url": None,
        "updated_at": NOW,
        "created_at": NOW,
        "extra": {},
        "stream": prefix,
        "deleted": False,
        "deleted_at": None,
        "sweep": None,
        "synced_at": NOW,
        "run_id": None,
        "content_hash": None,
    }


# -- --all-entities: what the rest of the controls and the pack read, at a city's proportions --
#
# Per 10 tickets: 1 problem in 50 tickets, 1 change in 20, 1.5 SLA records, a device named on 3
# incidents in 10 (a ticket -> device link each) and a problem on 1 in 10 (an incident ->
# problem link); per 2 devices (an Intune enrolment and a CMDB computer sharing a serial, as
# fill draws them): one hardware asset (its serial the devices' for 19 in 20), one person, 3
# compliance policy states on the managed one; knowledge: an article (two versions) per 50
# tickets, a feedback row per 10, a view per 2, an article attached to 1 ticket in 10;
# portfolio: 4 assignments per project (a fifth of them timephased by month), a person booked
# per 3 projects with 12 months of capacity, a demand per 2 projects, 4 plan lines each.

CATEGORIES = [f"Category {i}" for i in range(30)]


def _ticket_extras(
    rng: random.Random, row: dict[str, object], tickets: int, devices: int
) -> dict[str, object]:
    extra: dict[str, object] = {
        "assignee": f"user{rng.randrange(max(1, devices // 2))}@city.gov"
        if rng.random() < 0.85
        else None,
        "category": rng.choice(CATEGORIES),
        "responded_at": row["opened_at"] + timedelta(minutes=rng.randrange(1, 240)),  # type: ignore[operator]
    }
    if row["kind"] == "incident":
        if rng.random() < 0.3 and devices:
            j = rng.randrange(devices)
            extra["device_name"] = f"DEV{j}"
            extra["device_serial"] = f"SN{j // 2:08d}"
        problems = max(1, tickets // 50)
        extra["problem_id"] = f"prb{rng.randrange(problems):08d}" if rng.random() < 0.1 else ""
    return extra


def _device_extras(rng: random.Random, managed: bool, devices: int) -> dict[str, object]:
    people = max(1, devices // 2)
    if managed:
        return {
            "owner": f"user{rng.randrange(people)}@city.gov" if rng.random() < 0.95 else None,
            "department": None if rng.random() < 0.2 else rng.choice(DEPARTMENTS),
            "manufacturer": rng.choice(["Dell", "HP", "Lenovo", "Apple"]),
            "model": rng.choice(["Latitude 5440", "EliteBook 840", "ThinkPad T14", "iPhone 14"]),
        }
    bought = (NOW - timedelta(days=rng.randrange(0, 2200))).date()
    return {
        "install_status": rng.choice(
            ["Installed", "Installed", "Installed", "In stock", "Retired"]
        ),
        "purchase_date": bought,
        "warranty_expiration": bought + timedelta(days=rng.choice([365, 1095, 1825])),
        "manufacturer": rng.choice(["Dell", "HP", "Lenovo", "Apple"]),
    }


def _project_extras(rng: random.Random, row: dict[str, object]) -> dict[str, object]:
    extra: dict[str, object] = {
        "manager": f"pm{rng.randrange(200)}@city.gov" if rng.random() < 0.9 else None,
        "business_case_approved": rng.choice([True, True, False, None]),
    }
    if row["state"] == "approved" and rng.random() < 0.4:  # starting soon
        start = NOW + timedelta(days=rng.randrange(0, 90))
        extra["planned_start"] = start
        extra["planned_finish"] = start + timedelta(days=200)
        extra["actual_finish"] = None
    return extra


def fill_more(
    store: Store,
    conn: object,
    insert: Callable[[object, str, list[dict[str, object]]], None],
    rng: random.Random,
    tickets: int,
    devices: int,
    projects: int,
) -> None:
    """Every other entity the controls and the metric pack read, with a stream state each."""
    from itcrosswalk.core.store import stream_state

    streams: list[tuple[str, str, str]] = []  # (source, stream, entity)

    def put(entity: str, source: str, stream: str, rows: list[dict[str, object]]) -> None:
        for start in range(0, len(rows), 20000):
            insert(conn, entity, rows[start : start + 20000])
        streams.append((source, stream, entity))

    def record(source: str, platform: str, i: int, prefix: str) -> dict[str, object]:
        return _common(source, platform, i, prefix) | {"stream": prefix}

    states = ["new", "in_progress", "on_hold", "resolved", "closed", "closed", "cancelled"]
    problems, changes = max(1, tickets // 50), max(1, tickets // 20)
    rows: list[dict[str, object]] = []
    for i in range(problems):
        opened = NOW - timedelta(minutes=rng.randrange(0, 525600))
        state = rng.choice(states)
        done = state in ("resolved", "closed")
        rows.append(
            record("snow", "servicenow", i, "prb")
            | {
                "kind": "problem",
                "number": f"PRB{i:08d}",
                "priority": rng.randint(1, 4),
                "state": state,
                "opened_at": opened,
                "resolved_at": opened + timedelta(days=rng.randrange(1, 60)) if done else None,
                "assignment_group": rng.choice(GROUPS),
                "department": rng.choice(DEPARTMENTS),
                "category": rng.choice(CATEGORIES),
                "device_name": f"DEV{rng.randrange(max(1, devices))}"
                if rng.random() < 0.5
                else None,
                "problem_state_model": "new",
                "cause_notes": rng.choice([None, "", "a cause"]) if done else None,
                "fix_notes": rng.choice([None, "", "a fix"]) if done else None,
                "known_error": rng.random() < 0.3,
                "resolution_code": rng.choice(["fix_applied", "risk_accepted", "duplicate"])
                if done
                else None,
            }
        )
    for i in range(changes):
        opened = NOW - timedelta(minutes=rng.randrange(0, 525600))
        rows.append(
            record("snow", "servicenow", i, "chg")
            | {
                "kind": "change",
                "number": f"CHG{i:08d}",
                "priority": rng.randint(1, 4),
                "state": rng.choice(states),
                "opened_at": opened,
                "assignment_group": rng.choice(GROUPS),
                "department": rng.choice(DEPARTMENTS),
            }
        )
    put("ticket", "snow", "problem", rows)
    streams.append(("snow", "change_request", "ticket"))

    rows = []
    n = 0
    for i in range(tickets):
        for name in ("resolution", "response") if rng.random() < 0.5 else ("resolution",):
            start = NOW - timedelta(minutes=rng.randrange(0, 525600))
            stage = rng.choice(["completed"] * 6 + ["in_progress"] * 3 + ["paused", "cancelled"])
            breached = rng.random()
            rows.append(
                record("snow", "servicenow", n, "sla")
                | {
                    "ticket_id": f"inc{i:08d}",
                    "sla_name": f"P{rng.randint(1, 5)} {name}",
                    "stage": stage,
                    "has_breached": None if breached < 0.02 else breached < 0.17,
                    "start_at": start,
                    "end_at": start + timedelta(hours=rng.randrange(1, 200))
                    if stage == "completed"
                    else None,
                    "planned_end_at": start + timedelta(hours=8),
                    "elapsed_seconds": float(rng.randrange(60, 10**6)),
                    "business_elapsed_seconds": float(rng.randrange(60, 10**6)),
                    "elapsed_percent": rng.uniform(0, 300),
                    "business_elapsed_percent": rng.uniform(0, 300),
                }
            )
            n += 1
    put("sla_record", "snow", "task_sla", rows)

    # Cross-system links: an incident's CI (as the ticket fields draw it) and its problem.
    links: list[dict[str, object]] = []
    for i in range(tickets):
        if rng.random() < 0.3:
            links.append(
                {
                    "source": "snow",
                    "entity": "ticket",
                    "source_id": f"inc{i:08d}",
                    "relation": "cmdb_ci",
                    "target_entity": "device",
                    "target_ref": f"dev{rng.randrange(max(1, devices)):08d}",
                    "updated_at": NOW,
                }
            )
        if rng.random() < 0.1:
            links.append(
                {
                    "source": "snow",
                    "entity": "ticket",
                    "source_id": f"inc{i:08d}",
                    "relation": "problem_id",
                    "target_entity": "ticket",
                    "target_ref": f"prb{rng.randrange(problems):08d}",
                    "updated_at": NOW,
                }
            )
    store._link_insert().run(conn, links, batch=5000)

    pairs = max(1, devices // 2)
    rows = []
    for k in range(pairs):
        bought = (NOW - timedelta(days=rng.randrange(0, 2200))).date()
        rows.append(
            record("snow", "servicenow", k, "ast")
            | {
                "asset_tag": f"P{k:07d}",
                "name": f"DEV{2 * k + 1}",
                "serial": f"SN{k:08d}" if rng.random() < 0.95 else f"AS{k:08d}",
                "serial_key": None,
                "model": "Latitude 5440",
                "model_category": "Computer",
                "state": rng.choice(["in_use"] * 8 + ["in_stock", "retired"]),
                "purchase_date": bought,
                "warranty_expiration": bought + timedelta(days=rng.choice([365, 1095, 1825])),
                "planned_retirement": bought + timedelta(days=1825) if rng.random() < 0.9 else None,
                "cost": 1200.0,
                "currency": "USD",
                "assigned_to": f"user{rng.randrange(pairs)}@city.gov",
                "department": rng.choice(DEPARTMENTS),
                "ci_id": f"dev{2 * k + 1:08d}",
            }
        )
        rows[-1]["serial_key"] = rows[-1]["serial"]
    put("asset", "snow", "alm_hardware", rows)

    booked = max(10, projects // 3)
    upns = [f"user{p}@city.gov" for p in range(max(pairs, booked))]
    upns += [f"pm{p}@city.gov" for p in range(200)]  # the project managers
    rows = [
        record("entra", "entra", p, "usr")
        | {
            "upn": upn,
            "email": upn,
            "name": f"User {p}",
            "department": rng.choice(DEPARTMENTS),
            "active": rng.random() < 0.97,
        }
        for p, upn in enumerate(upns)
    ]
    put("person", "entra", "users", rows)

    rows = [
        record("intune", "intune", n, "dcs")
        | {
            "device_id": f"dev{i:08d}",
            "policy_id": f"pol{p}",
            "policy_name": f"Policy {p}",
            "state": rng.choice(["compliant", "compliant", "noncompliant", "unknown"]),
            "last_reported_at": NOW - timedelta(days=rng.randrange(0, 30)),
        }
        for n, (i, p) in enumerate((i, p) for i in range(0, devices, 2) for p in range(3))
    ]
    put("device_compliance", "intune", "compliance", rows)
    rows = [
        record("intune", "intune", i, "app")
        | {"name": f"App {i}", "version": "1.0", "publisher": "Vendor", "device_count": 10}
        for i in range(300)
    ]
    put("installed_app", "intune", "detected_apps", rows)
    rows = [
        record("snow", "servicenow", i, "cho")
        | {
            "table_name": "incident",
            "element": "state",
            "value": str(i),
            "label": f"State {i}",
            "sequence": i,
        }
        for i in range(60)
    ]
    put("choice", "snow", "sys_choice", rows)

    articles = max(20, tickets // 50)
    rows = []
    for i in range(articles):
        for v in range(2):
            rows.append(
                record("snow", "servicenow", 2 * i + v, "kb")
                | {
                    "number": f"KB{i:07d}",
                    "version": f"{v + 1}.0",
                    "latest": v == 1,
                    "title": f"Article {i}",
                    "knowledge_base": "IT",
                    "category": rng.choice(CATEGORIES),
                    "state": rng.choice(["published"] * 8 + ["retired", "draft"])
                    if v == 1
                    else "outdated",
                    "owner_group": rng.choice(GROUPS),
                    "published_on": (NOW - timedelta(days=rng.randrange(0, 900))).date(),
                    "reviewed_on": (NOW - timedelta(days=rng.randrange(0, 900))).date(),
                    "valid_to": (NOW + timedelta(days=rng.randrange(-60, 400))).date(),
                    "active": True,
                    "view_count": rng.randrange(0, 500),
                    "view_count_kind": "lifetime",
                }
            )
    put("knowledge_article", "snow", "kb_knowledge", rows)
    rows = [
        record("snow", "servicenow", j, "kbf")
        | {
            "article_id": f"kb{rng.randrange(2 * articles):08d}",
            "flagged": rng.random() < 0.2,
            "resolved": rng.random() < 0.5,
            "created_at": NOW - timedelta(days=rng.randrange(90)),
        }
        for j in range(tickets // 10)
    ]
    put("knowledge_feedback", "snow", "kb_feedback", rows)
    rows = [
        record("snow", "servicenow", j, "kbu")
        | {
            "article_id": f"kb{rng.randrange(2 * articles):08d}",
            "user": f"user{rng.randrange(pairs)}@city.gov",
            "viewed": True,
            "used": rng.random() < 0.1,
            "times_viewed": 1,
            "created_at": NOW - timedelta(days=rng.randrange(365)),
        }
        for j in range(tickets // 2)
    ]
    put("knowledge_use", "snow", "kb_use", rows)
    rows = [
        record("snow", "servicenow", j, "kbl")
        | {
            "article_id": f"kb{rng.randrange(2 * articles):08d}",
            "task_id": f"inc{rng.randrange(max(1, tickets)):08d}",
            "task_number": None,
        }
        for j in range(tickets // 10)
    ]
    put("knowledge_link", "snow", "m2m_kb_task", rows)

    rows = []
    for i in range(projects // 2):
        state = rng.choice(["submitted", "screening", "approved", "approved", "rejected"])
        submitted = NOW - timedelta(days=rng.randrange(0, 400))
        rows.append(
            record("ppm", "project_online", i, "dmd")
            | {
                "number": f"DMND{i:07d}",
                "name": f"Demand {i}",
                "state": state,
                "department": rng.choice(DEPARTMENTS),
                "priority": rng.randint(1, 5),
                "submitted_at": submitted,
                "decided_at": submitted + timedelta(days=rng.randrange(5, 90))
                if state in ("approved", "rejected")
                else None,
                "estimated_cost": 1e5,
                "project_id": f"prj{rng.randrange(max(1, projects)):08d}"
                if state == "approved" and rng.random() < 0.8
                else None,
            }
        )
    put("demand", "ppm", "demands", rows)
    rows = [
        record("ppm", "project_online", n, "pln")
        | {
            "investment_id": f"prj{i:08d}",
            "plan": rng.choice(["budget", "forecast", "actual"]),
            "plan_id": f"plan{i}",
            "plan_of_record": True,
            "fiscal_period": f"FY27-Q{q + 1}",
            "period_start": NOW + timedelta(days=91 * q),
            "period_finish": NOW + timedelta(days=91 * (q + 1)),
            "cost_type": "capex",
            "actual": False,
            "amount": 25000.0,
            "currency": "USD",
        }
        for n, (i, q) in enumerate((i, q) for i in range(projects) for q in range(4))
    ]
    put("plan_line", "ppm", "plans", rows)

    first = datetime(NOW.year, NOW.month, 1, tzinfo=UTC)
    rows = []
    periods: list[dict[str, object]] = []
    for n in range(4 * projects):
        project = f"prj{n // 4:08d}"
        start = first + timedelta(days=rng.randrange(-60, 120))
        finish = start + timedelta(days=rng.randrange(30, 180))
        hours = float(rng.randrange(40, 600))
        generic = rng.random() < 0.1
        rows.append(
            record("ppm", "project_online", n, "asg")
            | {
                "work_item_id": project,
                "project_id": project,
                "resource_id": f"res{rng.randrange(booked)}",
                "person_upn": None if generic else f"user{rng.randrange(booked)}@city.gov",
                "role": rng.choice(["Developer", "Analyst", "Engineer", "PM"]),
                "generic": generic,
                "department": rng.choice(DEPARTMENTS),
                "start": start,
                "finish": finish,
                "planned_hours": hours,
                "granularity": "month",
                "active": True,
            }
        )
        if rng.random() < 0.2:
            for m in range(6):
                lo = (first + timedelta(days=31 * m)).date().replace(day=1)
                hi = (lo + timedelta(days=32)).replace(day=1)
                periods.append(
                    record("ppm", "project_online", len(periods), "asp")
                    | {
                        "assignment_id": f"asg{n:08d}",
                        "period_start": lo,
                        "period_finish": hi,
                        "granularity": "month",
                        "planned_hours": hours / 6,
                    }
                )
    put("assignment", "ppm", "assignments", rows)
    put("assignment_period", "ppm", "assignment_periods", periods)
    rows = []
    for p in range(booked):
        for m in range(12):
            lo = (first + timedelta(days=31 * m)).date().replace(day=1)
            rows.append(
                record("ppm", "project_online", len(rows), "cap")
                | {
                    "resource_id": f"res{p}",
                    "person_upn": f"user{p}@city.gov",
                    "period_start": lo,
                    "period_finish": (lo + timedelta(days=32)).replace(day=1),
                    "granularity": "month",
                    "hours": 160.0,
                }
            )
    put("capacity", "ppm", "capacities", rows)

    streams += [
        ("snow", "incident", "ticket"),
        ("snow", "cmdb_ci_computer", "device"),
        ("intune", "managed_devices", "device"),
        ("ppm", "projects", "work_item"),
    ]
    with_state = [
        {"source": s, "stream": st, "entity": e, "access": "ok", "updated_at": NOW}
        for s, st, e in dict.fromkeys(streams)
    ]
    conn.execute(sa.insert(stream_state), with_state)  # type: ignore[attr-defined]


def fill(
    store: Store,
    tickets: int,
    devices: int,
    projects: int,
    seed: int = 3,
    all_entities: bool = False,
) -> None:
    """Tickets, devices and projects; with ``all_entities``, also the fields and entities the
    controls and the rest of the pack read (see :func:`fill_more`), from a generator of their
    own, so the tickets, devices and projects drawn are the same either way."""
    rng = random.Random(seed)
    more = random.Random(seed + 1) if all_entities else None
    groups, departments = GROUPS, DEPARTMENTS
    states = [
        "new",
        "in_progress",
        "on_hold",
        "resolved",
        "closed",
        "closed",
        "closed",
        "cancelled",
    ]

    def insert(conn: object, entity: str, rows: list[dict[str, object]]) -> None:
        # The store's own page write at the driver (what a sync uses), without a sync's checks.
        store._upsert(entity, keep_sweep=False).run(conn, rows, batch=5000)

    with store.engine.begin() as conn:
        rows = []
        for i in range(tickets):
            opened = NOW - timedelta(minutes=rng.randrange(0, 525600))
            state = rng.choice(states)
            done = state in ("resolved", "closed")
            resolved = opened + timedelta(minutes=rng.randrange(5, 20000)) if done else None
            rows.append(
                _common("snow", "servicenow", i, "inc")
                | {
                    "kind": rng.choice(["incident", "incident", "incident", "request"]),
                    "number": f"INC{i:08d}",
                    "title": None,
                    "priority": rng.randint(1, 5),
                    "state": state,
                    "opened_at": opened,
                    "responded_at": None,
                    "resolved_at": resolved,
                    "closed_at": resolved,
                    "assignment_group": rng.choice(groups),
                    "assignee": None,
                    "requester": None,
                    "department": rng.choice(departments),
                    "category": None,
                    "device_serial": None,
                    "device_name": None,
                    "reassignment_count": rng.randint(0, 3),
                    "reopen_count": rng.choice([0, 0, 0, 1]),
                }
            )
            if more is not None:
                rows[-1].update(_ticket_extras(more, rows[-1], tickets, devices))
            if len(rows) == 20000:
                insert(conn, "ticket", rows)
                rows = []
        if rows:
            insert(conn, "ticket", rows)
        rows = []
        for i in range(devices):
            managed = i % 2 == 0
            serial = f"SN{i // 2 if rng.random() < 0.9 else i + 10**7:08d}"
            rows.append(
                _common(
                    "intune" if managed else "snow", "intune" if managed else "servicenow", i, "dev"
                )
                | {
                    "name": f"DEV{i}",
                    "serial": serial,
                    "serial_key": serial,
                    "asset_tag": None,
                    "os": rng.choice(["Windows", "iOS", "Android", "macOS"]),
                    "os_version": rng.choice(["10.0.19044", "10.0.22631", "17.2", "13", "14.1"]),
                    "owner": None,
                    "department": rng.choice(departments),
                    "enrolled_at": NOW - timedelta(days=400) if managed else None,
                    "last_seen_at": NOW - timedelta(days=rng.randrange(0, 90)) if managed else None,
                    "compliance": rng.choice(["compliant", "compliant", "noncompliant", "unknown"])
                    if managed
                    else "unknown",
                    "encrypted": rng.random() < 0.8 if managed else None,
                    "manufacturer": None,
                    "model": None,
                    "management_agent": None,
                    "ownership": None,
                    "install_status": None,
                    "purchase_date": None,
                    "warranty_expiration": None,
                }
            )
            if more is not None:
                rows[-1].update(_device_extras(more, managed, devices))
        insert(conn, "device", rows)
        rows = []
        for i in range(projects):
            budget = rng.choice([0.0, 1e5, 5e5, 2e6])
            planned_finish = NOW - timedelta(days=rng.randrange(-200, 400))
            rows.append(
                _common("ppm", "project_online", i, "prj")
                | {
                    "kind": "project",
                    "number": None,
                    "name": f"Project {i}",
                    "parent_id": None,
                    "state": rng.choice(
                        ["proposed", "approved", "in_progress", "done", "cancelled"]
                    ),
                    "phase": "executing",
                    "health": rng.choice(["green", "amber", "red", "unknown"]),
                    "sponsor": None,
                    "manager": None,
                    "department": rng.choice(departments),
                    "strategic_goals": [],
                    "priority": rng.randint(1, 5),
                    "score": None,
                    "business_case_approved": None,
                    "planned_start": planned_finish - timedelta(days=200),
                    "planned_finish": planned_finish,
                    "actual_start": None,
                    "actual_finish": planned_finish + timedelta(days=rng.randrange(-20, 60)),
                    "percent_complete": None,
                    "budget": budget,
                    "actual_cost": budget * rng.uniform(0.2, 1.3),
                    "forecast_cost": None,
                    "planned_value": budget * 0.5,
                    "earned_value": budget * rng.uniform(0.3, 0.6),
                    "external_ref": None,
                }
            )
            if more is not None:
                rows[-1].update(_project_extras(more, rows[-1]))
        insert(conn, "work_item", rows)
        if more is not None:
            fill_more(store, conn, insert, more, tickets, devices, projects)


def timed(run: object) -> tuple[object, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    out = run()  # type: ignore[operator]
    return out, time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=5_000)
    parser.add_argument("--postgres", action="store_true", help="a PostgreSQL store")
    parser.add_argument("--pg-server", default="127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--compliance", action="store_true", help="also run the controls")
    parser.add_argument("--no-metrics", action="store_true")
    parser.add_argument(
        "--all-entities",
        action="store_true",
        help="also fill every other entity the controls and metrics read (SLA records, "
        "problems, changes, links, assets, people, knowledge, capacity, demands, ...)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="each metric's and control's best of N runs"
    )
    parser.add_argument(
        "--top", type=int, default=0, help="the N slowest (default 6 metrics, 8 controls; -1 all)"
    )
    args = parser.parse_args()
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    sizes = f"{args.tickets}-{args.devices}-{args.projects}" + ("-all" if args.all_entities else "")
    database = None
    if args.postgres:
        import psycopg

        database = f"crosswalk_bench_metrics_{sizes.replace('-', '_')}"
        with psycopg.connect(f"postgresql://{args.pg_server}/postgres", autocommit=True) as conn:
            fresh = not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (database,)
            ).fetchone()
            if fresh:
                conn.execute(f'CREATE DATABASE "{database}"')
        url = f"postgresql+psycopg://{args.pg_server}/{database}"
    else:
        path = results / f"metrics-{sizes}.db"
        fresh = not path.exists()
        url = f"sqlite:///{path}"
    store = Store(url)
    try:
        if fresh:
            _out, seconds, _cpu = timed(lambda: fill(store, args.tickets, args.devices, args.projects, all_entities=args.all_entities))  # fmt: skip
            if store.dialect == "postgresql":
                with store.engine.begin() as conn:
                    conn.exec_driver_sql("ANALYZE")
            print(f"filled the store in {seconds:.1f}s")
        if not args.no_metrics:
            run_metrics(store, args)
        if args.compliance:
            run_compliance(store, args)
    finally:
        store.close()
        if database and not args.keep:
            import psycopg

            with psycopg.connect(f"postgresql://{args.pg_server}/postgres", autocommit=True) as conn:  # fmt: skip
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def run_metrics(store: Store, args: argparse.Namespace) -> None:
    registry = make_registry()
    # The pack as `crosswalk metrics` computes it (several metrics at once, [metrics] threads
    # unset), then one metric after the other: the ratio of the two is this machine's.
    for threads in (None, 1):
        config = Config()
        config.metrics.threads = threads
        how = "one by one" if threads == 1 else f"{pack_threads(store, None, 99)} threads"
        for by in ((), ("platform",)):
            out, seconds, cpu = timed(
                lambda by=by, config=config: compute_metrics(
                    store, config, by=by, now=NOW, pm=registry
                )
            )
            label = f"by {by[0]}" if by else "no breakdown"
            print(
                f"{store.dialect}: {args.tickets} tickets, {args.devices} devices, {args.projects} projects: "
                f"{len(out)} metrics in {seconds:.2f}s, {cpu:.2f}s CPU here ({label}, {how})"  # type: ignore[arg-type]
            )
    config = Config()
    # Each metric in the pack's order, as compute_metrics runs them: the first metric of an
    # entity pays for its census and shared pass (marked *), the others for their own queries.
    metrics = list(all_metrics(registry).values())
    ctx = MetricContext(store=store, policy=config.metrics, now=NOW)
    best: dict[str, tuple[float, float, str, str]] = {}
    for _ in range(args.repeat):  # each metric's best of the repeats, a fresh pack each time
        ctx.shared = SharedScans(ctx, metrics, ())
        seen: set[str] = set()
        for metric in metrics:
            started, cpu = time.perf_counter(), time.process_time()
            metric.compute(ctx)
            first = "*" if metric.entity not in seen else " "
            seen.add(metric.entity)
            took = (time.perf_counter() - started, time.process_time() - cpu, first, metric.id)
            best[metric.id] = min(best.get(metric.id, took), took)
    timings = list(best.values())
    top = args.top or 6
    for seconds, cpu, first, name in sorted(timings, reverse=True)[: top if top > 0 else None]:
        print(f"  {first}{name:32} {seconds:6.2f}s, {cpu:.2f}s CPU here")


def run_compliance(store: Store, args: argparse.Namespace) -> None:
    from itcrosswalk.core.capacity.controls import capacity_parameters
    from itcrosswalk.core.collector import collector_paused
    from itcrosswalk.core.compliance import controls_for, history, run_controls, select
    from itcrosswalk.core.compliance.engine import (
        _fetched,
        _judge,
        parameters,
        source_health,
    )

    config = Config()
    registry = make_registry()
    chosen = select(controls_for(config, registry))
    recording: list[tuple[float, float]] = []
    record_run = history.record_run

    def timed_record(*a: object, **k: object) -> int:
        out, seconds, cpu = timed(lambda: record_run(*a, **k))  # type: ignore[arg-type]
        recording.append((seconds, cpu))
        return out  # type: ignore[return-value]

    history.ensure_tables(store.engine)
    span = history.run_span(store.engine)
    earlier = 0 if span is None else span[1] - span[0] + 1
    history.record_run = timed_record  # type: ignore[assignment]
    try:
        run, seconds, cpu = timed(
            lambda: run_controls(store, chosen, config=config, benchmark="bench", now=NOW)
        )
    finally:
        history.record_run = record_run  # type: ignore[assignment]
    found = sum(len(r.findings) for r in run.results)  # type: ignore[attr-defined]
    kept = sum(1 for r in run.results for f in r.findings if f.status != "ok")  # type: ignore[attr-defined]
    print(
        f"{store.dialect}: {args.tickets} tickets, {args.devices} devices: {len(chosen)} controls "
        f"in {seconds:.2f}s, {cpu:.2f}s CPU here ({found} findings, {kept} not ok recorded "
        f"in {recording[0][0]:.2f}s, {recording[0][1]:.2f}s CPU; the history held {earlier} "
        "earlier runs)"
    )
    # Each control again, one at a time: its query (with the rows fetched) and the engine's
    # verdict on them, apart.
    sources = source_health(store.engine, config)
    params = parameters(config, NOW)
    capacity, capacity_s, capacity_cpu = timed(
        lambda: capacity_parameters(store, config, NOW, chosen)
    )
    params.update(capacity)  # type: ignore[call-overload]
    fastest: dict[str, tuple[float, float, float, float, int, str]] = {}
    with collector_paused():  # as in the run
        for _ in range(args.repeat):  # each control's best of the repeats
            for control in chosen:
                fetched, query_s, query_cpu = timed(
                    lambda c=control: _fetched(store.engine, c, params)
                )
                result, judge_s, judge_cpu = timed(
                    lambda c=control, f=fetched: _judge(c, f, sources)  # type: ignore[misc]
                )
                rows = len(result.findings)  # type: ignore[attr-defined]
                took = (
                    query_s + judge_s, query_s, judge_s, query_cpu + judge_cpu, rows, control.id
                )  # fmt: skip
                fastest[control.id] = min(fastest.get(control.id, took), took)
    timings = list(fastest.values())
    print(f"  {'control':32} {'total':>6} {'query':>6} {'judge':>6} {'CPU':>6} {'rows':>7}")
    top = args.top or 8
    for total, query_s, judge_s, cpu, rows, name in sorted(timings, reverse=True)[
        : top if top > 0 else None
    ]:
        print(f"  {name:32} {total:6.3f} {query_s:6.3f} {judge_s:6.3f} {cpu:6.3f} {rows:7}")
    print(
        f"  all {len(timings)} controls: queries {sum(t[1] for t in timings):.2f}s, "
        f"judging {sum(t[2] for t in timings):.2f}s; the capacity plan they bind "
        f"{capacity_s:.2f}s, {capacity_cpu:.2f}s CPU"
    )


if __name__ == "__main__":
    main()
