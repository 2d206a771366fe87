"""Sync benchmark: the same ServiceNow incidents read by three clients, in one run.

Run by hand, never by the test suite:

    .venv/bin/python bench/sync_bench.py --incidents 100000
    .venv/bin/python bench/sync_bench.py --incidents 20000 --postgres   # SQLite and PostgreSQL
    .venv/bin/python bench/sync_bench.py --memory 20000,100000,400000    # peak memory only

One Table API double (``bench/snow_double.py``, independent of the project's emulator) serves
the incidents over HTTPS in its own process; each reader runs in its own process against it,
pages of ``--page-size`` rows with ``sysparm_display_value=all`` and no reference links:

- a bare paged ``requests`` download (JSON decoded, nothing kept);
- ``crosswalk sync`` of the incident stream into SQLite (and PostgreSQL with ``--postgres``),
  then the same sync again with nothing changed (its requests and re-read records);
- dlt's ``rest_api`` source into DuckDB (skipped, with a line saying so, when dlt or duckdb is
  not installed: ``pip install 'itcrosswalk[bench]'``).

For each it prints wall seconds, the ratio to the bare download, the user+system CPU of the
reading process during the read (imports excluded) per record, and its peak RSS. The machine
may be loaded: CPU per record and the ratios of one run are the figures to quote. The sync's
store is checked afterwards: every incident there once, nothing quarantined.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
USER, PASSWORD = "bench", "bench-password"

# What every reader reports: the read's wall time and CPU (after its imports), its peak RSS.
MEASURE = textwrap.dedent(
    """
    import json, resource, time
    def _usage():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime, r.ru_stime
    def report(started, cpu0, **extra):
        seconds = time.perf_counter() - started
        user, system = _usage()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        print(json.dumps({"seconds": seconds, "user": user - cpu0[0], "system": system - cpu0[1],
                          "children_cpu": children.ru_utime + children.ru_stime,
                          "peak_mib": peak, **extra}))
    """
)

BARE = MEASURE + textwrap.dedent(
    """
    import sys, requests
    url, ca, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    session = requests.Session()
    session.auth = ("bench", "bench-password")
    session.headers["Accept"] = "application/json"
    cpu0, started = _usage(), time.perf_counter()
    offset = records = requests_made = 0
    while True:
        response = session.get(f"{url}/api/now/table/incident", verify=ca, params={
            "sysparm_query": "ORDERBYsys_updated_on^ORDERBYsys_id", "sysparm_limit": size,
            "sysparm_offset": offset, "sysparm_display_value": "all",
            "sysparm_exclude_reference_link": "true", "sysparm_suppress_pagination_header": "true"})
        response.raise_for_status()
        requests_made += 1
        rows = json.loads(response.content)["result"]
        records += len(rows)
        offset += size
        if offset >= int(response.headers["X-Total-Count"]):
            break
    report(started, cpu0, read=records, requests=requests_made)
    """
)

SYNC = MEASURE + textwrap.dedent(
    """
    import sys
    from itcrosswalk.core.config import load_config
    from itcrosswalk.core.store import Store
    from itcrosswalk.core.sync import SyncEngine
    from itcrosswalk.registry import make_registry
    config = load_config(sys.argv[1])
    profile = sys.argv[2] if len(sys.argv) > 2 else ""
    store = Store(config.store.url)
    engine = SyncEngine(config, store, pm=make_registry())
    cpu0, started = _usage(), time.perf_counter()
    if profile:
        import cProfile
        profiler = cProfile.Profile(time.thread_time)  # CPU of the mapping thread, not GIL waits
        result = profiler.runcall(engine.sync, "snow")
        profiler.dump_stats(profile)
    else:
        result = engine.sync("snow")
    stream = result.streams[0]
    stored = store.count("ticket", source="snow")
    report(started, cpu0, read=stream.read, requests=stream.requests, status=stream.status,
           quarantined=stream.quarantined, unchanged=stream.unchanged, stored=stored,
           inserted=stream.inserted, updated=stream.updated)
    """
)

# SQLite's own work in the sync's page writes: the rows the sync stored (tickets and their
# links), upserted again into an empty store of the same schema by plain sqlite3, with the
# store's own statements, values ready, a page of ``size`` rows per transaction. No client
# code runs: this is the floor of the store's write, the B-trees of the table and its indexes.
FLOOR = MEASURE + textwrap.dedent(
    """
    import sqlite3, sys
    from itcrosswalk.core.store import Store
    synced, empty, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = Store(f"sqlite:///{empty}")
    ticket, link = store._upsert("ticket", keep_sweep=False), store._link_insert()
    store.close()
    source = sqlite3.connect(synced)
    def rows(table, names):
        return source.execute(f"SELECT {', '.join(names)} FROM {table} ORDER BY rowid").fetchall()
    tickets, links = rows("tickets", ticket.names), rows("links", link.names)
    pages = [tickets[i : i + size] for i in range(0, len(tickets), size)]
    per_page = -(-len(links) // max(1, len(pages)))
    conn = sqlite3.connect(empty, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL"):
        conn.execute(f"PRAGMA {pragma}")
    cpu0, started = _usage(), time.perf_counter()
    for n, page in enumerate(pages):
        conn.execute("BEGIN")
        conn.executemany(ticket.sql, page)
        conn.executemany(link.sql, links[n * per_page : (n + 1) * per_page])
        conn.execute("COMMIT")
    report(started, cpu0, read=len(tickets), links=len(links), requests=0)
    """
)

DLT = MEASURE + textwrap.dedent(
    """
    import sys
    import dlt, requests
    from dlt.sources.rest_api import rest_api_source
    url, ca, size, workdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    session = requests.Session()
    session.verify = ca
    source = rest_api_source({
        "client": {
            "base_url": url,
            "auth": {"type": "http_basic", "username": "bench", "password": "bench-password"},
            "session": session,
        },
        "resources": [{
            "name": "incident",
            "write_disposition": "append",
            "endpoint": {
                "path": "api/now/table/incident",
                "params": {"sysparm_query": "ORDERBYsys_updated_on^ORDERBYsys_id",
                           "sysparm_limit": size, "sysparm_offset": 0,
                           "sysparm_display_value": "all",
                           "sysparm_exclude_reference_link": "true"},
                "data_selector": "result",
                "paginator": {"type": "header_link"},
            },
        }],
    })
    pipeline = dlt.pipeline(
        pipeline_name="snow_bench", destination=dlt.destinations.duckdb(f"{workdir}/dlt.duckdb"),
        dataset_name="snow", pipelines_dir=f"{workdir}/dlt-pipelines", progress="log" if False else None)
    cpu0, started = _usage(), time.perf_counter()
    pipeline.run(source)
    with pipeline.sql_client() as client:
        rows = client.execute_sql("select count(*) from incident")[0][0]
    report(started, cpu0, read=rows, requests=None)
    """
)


def run_json(args: list[str], env: dict[str, str] | None = None) -> dict:
    # Not from the checkout's folder: ``python -c`` puts the working directory first on the
    # path, ahead of PYTHONPATH, and a --baseline run would import this checkout instead.
    done = subprocess.run(args, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir())
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])}... failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


class DoubleProcess:
    """The Table API double, in its own process (its CPU is the platform's, not the reader's)."""

    def __init__(self, incidents: int, workdir: Path) -> None:
        self.ca = workdir / "double-ca.pem"
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "snow_double.py"), "--incidents", str(incidents)]
            + ["--ca", str(self.ca), "--user", USER, "--password", PASSWORD],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().split()[0]

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            self.process.wait()


def write_config(path: Path, store_url: str, url: str, ca: Path, page_size: int) -> None:
    path.write_text(
        f'[store]\nurl = "{store_url}"\n\n[sources.snow]\nplatform = "servicenow"\nurl = "{url}"\n'
        f'ca_bundle = "{ca}"\npage_size = {page_size}\nstreams = ["incident"]\n'
        'auth = { type = "basic", user = "bench", password = "env:BENCH_PASSWORD" }\n'
    )


class PostgresDatabase:
    """A database of its own on the local server, dropped afterwards."""

    def __init__(self, server: str) -> None:
        import psycopg

        self.server = server
        self.name = f"crosswalk_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(f"postgresql://{server}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = f"postgresql+psycopg://{server}/{self.name}"

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(f"postgresql://{self.server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def have_dlt() -> str | None:
    try:
        import dlt  # noqa: F401
        import duckdb  # noqa: F401
    except ImportError as exc:
        return f"dlt skipped: {exc.name} is not installed (pip install 'itcrosswalk[bench]')"
    return None


def sync_run(config: Path, env: dict[str, str], profile: str = "") -> dict:
    return run_json([sys.executable, "-c", SYNC, str(config)] + ([profile] if profile else []), env)


def check_store(result: dict, incidents: int, label: str) -> None:
    """Nothing lost or doubled: every incident stored once, none quarantined."""
    if result["stored"] != incidents or result["read"] != incidents or result["quarantined"]:
        raise SystemExit(
            f"{label}: {result['read']} read, {result['stored']} stored, "
            f"{result['quarantined']} quarantined of {incidents} incidents"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--postgres", action="store_true", help="also sync into PostgreSQL")
    parser.add_argument("--pg-server", default="127.0.0.1:5432", help="user@host:port of it")
    parser.add_argument("--no-dlt", action="store_true", help="skip dlt even if installed")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="bare download and SQLite sync this many times, alternated; the best of each",  # fmt: skip
    )
    parser.add_argument("--profile", help="write a cProfile of the SQLite sync to this file")
    parser.add_argument(
        "--baseline",
        help="a checkout of another version of itcrosswalk: its SQLite sync runs too, for a before/after in one run",  # fmt: skip
    )
    parser.add_argument(
        "--memory",
        help="comma-separated sizes: only the SQLite sync's peak memory at each (flat in N?)",
    )
    args = parser.parse_args()
    env = {**os.environ, "BENCH_PASSWORD": PASSWORD}
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.memory:
            memory(work, [int(n) for n in args.memory.split(",")], args.page_size, env, out)
            return
        n = args.incidents
        double = DoubleProcess(n, work)
        rows: list[tuple[str, dict]] = []
        notes: list[str] = []
        try:
            bares: list[dict] = []
            firsts: list[dict] = []
            config = work / "sqlite.toml"
            for attempt in range(args.repeat):
                # Alternated, so a change in the machine's load falls on both alike.
                bares.append(
                    run_json(
                        [
                            sys.executable,
                            "-c",
                            BARE,
                            double.url,
                            str(double.ca),
                            str(args.page_size),
                        ]  # fmt: skip
                    )
                )
                db = work / "bench.db"
                for stale in work.glob("bench.db*"):
                    stale.unlink()
                write_config(config, f"sqlite:///{db}", double.url, double.ca, args.page_size)
                profile = args.profile if args.profile and attempt == 0 else ""
                firsts.append(sync_run(config, env, profile))
                check_store(firsts[-1], n, "SQLite sync")
            rows.append(("bare download (JSON decoded, nothing kept)", best(bares)))
            rows.append(("itcrosswalk `sync` (incident stream only), SQLite", best(firsts)))
            floor_db = work / "floor.db"
            floor = run_json(
                [sys.executable, "-c", FLOOR, str(db), str(floor_db), str(args.page_size)]
            )
            notes.append(
                f"SQLite's own work in those page writes (the {floor['read']} incidents and "
                f"{floor['links']} links stored, upserted again by plain sqlite3 with the store's "
                f"statements, values ready): {cpu_us(floor):.0f} µs CPU per record, the floor "
                "of the store's write"
            )
            if args.baseline:
                for stale in work.glob("bench.db*"):
                    stale.unlink()
                before = sync_run(config, {**env, "PYTHONPATH": args.baseline})
                check_store(before, n, "baseline sync")
                rows.append(("itcrosswalk `sync`, SQLite, the baseline version", before))
                for stale in work.glob("bench.db*"):
                    stale.unlink()
                sync_run(config, env)  # the store again as this version leaves it
            again = sync_run(config, env)
            notes.append(
                f"unchanged re-sync (SQLite): {again['requests']} request(s), {again['read']} "
                f"records re-read, {again['unchanged']} unchanged, {again['seconds']:.1f}s"
            )
            if args.postgres:
                database = PostgresDatabase(args.pg_server)
                try:
                    config_pg = work / "pg.toml"
                    write_config(config_pg, database.url, double.url, double.ca, args.page_size)
                    pg = sync_run(config_pg, env)
                    check_store(pg, n, "PostgreSQL sync")
                    rows.append(("itcrosswalk `sync` (incident stream only), PostgreSQL", pg))
                    pg_again = sync_run(config_pg, env)
                    notes.append(
                        f"unchanged re-sync (PostgreSQL): {pg_again['requests']} request(s), "
                        f"{pg_again['unchanged']} unchanged, {pg_again['seconds']:.1f}s"
                    )
                finally:
                    database.drop()
            missing = "dlt skipped: --no-dlt" if args.no_dlt else have_dlt()
            if missing:
                notes.append(missing)
            else:
                import dlt

                dl = run_json(
                    [
                        sys.executable,
                        "-c",
                        DLT,
                        double.url,
                        str(double.ca),
                        str(args.page_size),
                        tmp,
                    ],
                    {**env, "REQUESTS_CA_BUNDLE": str(double.ca)},  # dlt's own session reads it
                )
                rows.append((f"dlt {dlt.__version__} `rest_api` → DuckDB", dl))
        finally:
            double.close()
    print_table(n, args.page_size, rows, notes)
    (out / "sync_bench.json").write_text(
        json.dumps(
            {"incidents": n, "page_size": args.page_size, "rows": rows, "notes": notes}, indent=2
        )  # fmt: skip
    )


def best(runs: list[dict]) -> dict:
    """The run of least wall time, with the least CPU of all the runs (each the figure the
    machine's load inflated least)."""
    fastest = dict(min(runs, key=lambda r: r["seconds"]))
    cheapest = min(runs, key=lambda r: r["user"] + r["system"])
    fastest.update(user=cheapest["user"], system=cheapest["system"], runs=len(runs))
    return fastest


def cpu_us(r: dict) -> float:
    return (r["user"] + r["system"] + r.get("children_cpu", 0)) / max(1, r["read"]) * 1e6


def print_table(n: int, page: int, rows: list[tuple[str, dict]], notes: list[str]) -> None:
    bare = rows[0][1]["seconds"]
    bare_cpu = cpu_us(rows[0][1])
    print(f"\n{n} ServiceNow incidents, pages of {page}, sysparm_display_value=all, no reference links")  # fmt: skip
    print("(the Table API double in its own process; each reader in its own; one run)\n")
    print("| reader | seconds | × bare download | CPU µs/record | CPU µs/record beyond bare | peak MiB |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|")
    for label, r in rows:
        print(
            f"| {label} | {r['seconds']:.1f} | {r['seconds'] / bare:.2f} | {cpu_us(r):.0f} | "
            f"{cpu_us(r) - bare_cpu:.0f} | {r['peak_mib']:.0f} |"
        )
    sync = next((r for label, r in rows if label.endswith("SQLite")), None)
    dl = next((r for label, r in rows if label.startswith("dlt")), None)
    pg = next((r for label, r in rows if "PostgreSQL" in label), None)
    print()
    if sync and dl:
        print(f"itcrosswalk is {dl['seconds'] / sync['seconds']:.1f}× faster than dlt (wall), "
              f"{cpu_us(dl) / cpu_us(sync):.1f}× less CPU per record")  # fmt: skip
    if sync and pg:
        print(f"PostgreSQL store / SQLite store: {pg['seconds'] / sync['seconds']:.2f}× wall, "
              f"{cpu_us(pg) / cpu_us(sync):.2f}× CPU per record")  # fmt: skip
    for note in notes:
        print(note)


def memory(work: Path, sizes: list[int], page: int, env: dict[str, str], out: Path) -> None:
    """Peak RSS of the SQLite sync at each size: flat in N is the claim."""
    results = []
    for n in sizes:
        double = DoubleProcess(n, work)
        try:
            config = work / f"mem-{n}.toml"
            db = work / f"mem-{n}.db"
            write_config(config, f"sqlite:///{db}", double.url, double.ca, page)
            r = sync_run(config, env)
            check_store(r, n, f"sync of {n}")
            db.unlink()
        finally:
            double.close()
        results.append({"incidents": n, **r})
        print(
            f"{n:>8} incidents: peak {r['peak_mib']:.0f} MiB, {r['seconds']:.1f}s, "
            f"{cpu_us(r):.0f} µs CPU/record",
            flush=True,
        )
    (out / "sync_memory.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
