"""Sync benchmark: incidents from the ServiceNow emulator into the store.

Run by hand, never by the test suite:

    .venv/bin/python bench/sync_bench.py --incidents 100000

It reports records per second, peak memory (RSS) of the syncing process, requests made, the
ratio of the sync's time to a bare paged download of the same records with requests, and the
requests an incremental sync with nothing changed makes. The emulator runs in its own process
so its memory does not count against the sync. Peak memory is also measured at a fifth of the
size, to show whether it grows with the number of records.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent

SERVE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from itcrosswalk.sandbox.world import generate
    from itcrosswalk.sandbox.faults import Faults
    from itcrosswalk.sandbox.server import SandboxServer
    from itcrosswalk.plugins.servicenow.sandbox import create_app
    world = generate(11, "tiny", tickets=int(sys.argv[1]))
    app = create_app(world, Faults(), users={"bench": "bench-password"})
    server = SandboxServer({"servicenow": app})
    urls = server.start()
    server.write_ca(Path(sys.argv[2]))
    incidents = sum(1 for t in world.tickets if t.kind == "incident" and t.platform == "servicenow")
    print(urls["servicenow"], incidents, flush=True)
    while True:
        time.sleep(3600)
    """
)

SYNC = textwrap.dedent(
    """
    import json, resource, sys, time
    from itcrosswalk.core.config import load_config
    from itcrosswalk.core.store import Store
    from itcrosswalk.core.sync import SyncEngine
    from itcrosswalk.registry import make_registry
    config = load_config(sys.argv[1])
    store = Store(config.store.url)
    engine = SyncEngine(config, store, pm=make_registry())
    started = time.perf_counter()
    result = engine.sync("snow")
    seconds = time.perf_counter() - started
    stream = result.streams[0]
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "read": stream.read, "requests": stream.requests,
                      "status": stream.status, "peak_mib": peak_kib / 1024}))
    """
)

BARE = textwrap.dedent(
    """
    import json, sys, time, requests
    url, ca, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    session = requests.Session()
    session.auth = ("bench", "bench-password")
    session.headers["Accept"] = "application/json"
    started = time.perf_counter()
    offset = records = requests_made = 0
    while True:
        response = session.get(f"{url}/api/now/table/incident", verify=ca, params={
            "sysparm_query": "ORDERBYsys_updated_on^ORDERBYsys_id", "sysparm_limit": size,
            "sysparm_offset": offset, "sysparm_display_value": "all",
            "sysparm_exclude_reference_link": "true", "sysparm_suppress_pagination_header": "true"})
        requests_made += 1
        rows = json.loads(response.content)["result"]
        records += len(rows)
        offset += size
        if offset >= int(response.headers["X-Total-Count"]):
            break
    print(json.dumps({"seconds": time.perf_counter() - started, "read": records, "requests": requests_made}))
    """
)


def run_json(args: list[str]) -> dict:
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench(tickets: int, page_size: int, workdir: Path) -> dict:
    ca = workdir / f"ca-{tickets}.pem"
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(tickets), str(ca)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url, incidents = server.stdout.readline().split()
        db = workdir / f"bench-{tickets}.db"
        db.unlink(missing_ok=True)
        config = workdir / f"crosswalk-{tickets}.toml"
        config.write_text(
            f'[store]\nurl = "sqlite:///{db}"\n\n[sources.snow]\nplatform = "servicenow"\nurl = "{url}"\n'
            f'ca_bundle = "{ca}"\npage_size = {page_size}\nstreams = ["incident"]\n'
            'auth = { type = "basic", user = "bench", password = "env:BENCH_PASSWORD" }\n'
        )
        os.environ["BENCH_PASSWORD"] = "bench-password"
        bare = run_json([sys.executable, "-c", BARE, url, str(ca), str(page_size)])
        first = run_json([sys.executable, "-c", SYNC, str(config)])
        again = run_json([sys.executable, "-c", SYNC, str(config)])
        return {
            "incidents": int(incidents),
            "page_size": page_size,
            "bare": bare,
            "sync": first,
            "incremental": again,
        }
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--incidents", type=int, default=100_000, help="about this many incidents")
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    tickets = int(args.incidents / 0.7)  # the world makes about 70 % of its tickets incidents
    with tempfile.TemporaryDirectory() as tmp:
        results = [
            bench(tickets // 5, args.page_size, Path(tmp)),
            bench(tickets, args.page_size, Path(tmp)),
        ]
    for r in results:
        sync, bare = r["sync"], r["bare"]
        print(
            f"{r['incidents']:>7} incidents, pages of {r['page_size']}: "
            f"sync {sync['seconds']:.1f}s ({sync['read'] / sync['seconds']:.0f} records/s, {sync['requests']} requests, "
            f"peak {sync['peak_mib']:.0f} MiB); bare download {bare['seconds']:.1f}s ({bare['requests']} requests); "
            f"ratio {sync['seconds'] / bare['seconds']:.2f}; unchanged incremental: {r['incremental']['requests']} request(s), "
            f"{r['incremental']['read']} records re-read"
        )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "sync_bench.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
