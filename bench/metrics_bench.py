"""Metrics and compliance benchmark: the standard pack and the controls over a large store.

Run by hand, never by the test suite:

    .venv/bin/python bench/metrics_bench.py --tickets 1000000 --devices 100000 --projects 5000
    .venv/bin/python bench/metrics_bench.py --postgres            # the same on PostgreSQL
    .venv/bin/python bench/metrics_bench.py --tickets 200000 --devices 20000 --compliance

It fills a store with seeded synthetic records (SQLite: kept in bench/results/ and reused while
its size matches; PostgreSQL: a database of its own on the local server, dropped afterwards
unless ``--keep``), then times ``compute_metrics`` for the full pack, without and with a
breakdown by platform, and reports the slowest metrics (in the pack's order, the first metric of
an entity, marked *, paying for the entity's shared pass); with ``--compliance``, the city
benchmark's controls (``run_controls``, findings recorded) as well. Wall seconds and this
process's CPU seconds are both printed (the database server's CPU is its own, on PostgreSQL).
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from itcrosswalk.core.config import Config
from itcrosswalk.core.metrics import MetricContext, all_metrics, compute_metrics
from itcrosswalk.core.metrics.shared import SharedScans
from itcrosswalk.core.store import Store
from itcrosswalk.registry import make_registry

HERE = Path(__file__).resolve().parent
NOW = datetime(2026, 11, 1, tzinfo=UTC)


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


def fill(store: Store, tickets: int, devices: int, projects: int, seed: int = 3) -> None:
    rng = random.Random(seed)
    groups = ["Service Desk", "Network", "Desktop", "Apps", "Security"]
    departments = ["Police", "Fire", "Water", "Transportation", "Parks", "ITD"]
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
        insert(conn, "work_item", rows)


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
    args = parser.parse_args()
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    sizes = f"{args.tickets}-{args.devices}-{args.projects}"
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
            _out, seconds, _cpu = timed(lambda: fill(store, args.tickets, args.devices, args.projects))  # fmt: skip
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
    config = Config()
    registry = make_registry()
    for by in ((), ("platform",)):
        out, seconds, cpu = timed(
            lambda by=by: compute_metrics(store, config, by=by, now=NOW, pm=registry)
        )
        label = f"by {by[0]}" if by else "no breakdown"
        print(
            f"{store.dialect}: {args.tickets} tickets, {args.devices} devices, {args.projects} projects: "
            f"{len(out)} metrics in {seconds:.2f}s, {cpu:.2f}s CPU here ({label})"  # type: ignore[arg-type]
        )
    # Each metric in the pack's order, as compute_metrics runs them: the first metric of an
    # entity pays for its census and shared pass (marked *), the others for their own queries.
    metrics = list(all_metrics(registry).values())
    ctx = MetricContext(store=store, policy=config.metrics, now=NOW)
    ctx.shared = SharedScans(ctx, metrics, ())
    timings, seen = [], set()
    for metric in metrics:
        started, cpu = time.perf_counter(), time.process_time()
        metric.compute(ctx)
        first = "*" if metric.entity not in seen else " "
        seen.add(metric.entity)
        timings.append((time.perf_counter() - started, time.process_time() - cpu, first, metric.id))
    for seconds, cpu, first, name in sorted(timings, reverse=True)[:6]:
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
    params.update(capacity_parameters(store, config, NOW, chosen))
    timings = []
    with collector_paused():  # as in the run
        for control in chosen:
            fetched, query_s, _ = timed(lambda c=control: _fetched(store.engine, c, params))
            result, judge_s, _ = timed(lambda c=control, f=fetched: _judge(c, f, sources))  # type: ignore[misc]
            rows = len(result.findings)  # type: ignore[attr-defined]
            timings.append((query_s + judge_s, query_s, judge_s, rows, control.id))
    print(f"  {'control':32} {'total':>6} {'query':>6} {'judge':>6} {'rows':>7}")
    for total, query_s, judge_s, rows, name in sorted(timings, reverse=True)[:8]:
        print(f"  {name:32} {total:6.2f} {query_s:6.2f} {judge_s:6.2f} {rows:7}")
    print(
        f"  all {len(timings)} controls: queries {sum(t[1] for t in timings):.2f}s, "
        f"judging {sum(t[2] for t in timings):.2f}s"
    )


if __name__ == "__main__":
    main()
