"""Jira benchmark: a JSM desk's issues, their changelogs and SLA cycles, from the Jira emulator.

Run by hand, never by the test suite:

    .venv/bin/python bench/jira_bench.py --issues 50000

It syncs the ``requests`` and ``slas`` streams through the real ``jira`` package: a first sync,
then an incremental one after a few issues changed, and reports for each the requests made
(search pages, changelog bulk fetches, the id-only sweep), the seconds taken and the peak
memory (RSS) of the syncing process. The emulator runs in its own process so its memory does
not count against the sync. Every ticket of the generated city is put on the JSM desk, and each
carries ``--padding`` extra changelog entries beside its status, resolution and group changes.
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

SERVE = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from itcrosswalk.sandbox.world import generate
    from itcrosswalk.sandbox.faults import Faults
    from itcrosswalk.sandbox.server import SandboxServer
    from itcrosswalk.plugins.jira.sandbox import create_app
    world = generate(11, "tiny", tickets=int(sys.argv[1]))
    for ticket in world.tickets:
        ticket.platform = "jira"
    app = create_app(world, Faults(), users={"bench@city.example.gov": "bench-token"},
                     changelog_padding=int(sys.argv[3]))
    server = SandboxServer({"jira": app})
    urls = server.start()
    server.write_ca(Path(sys.argv[2]))
    histories = sum(len(i.histories) for i in app.issues.values())
    print(urls["jira"], len(app.issues), histories, flush=True)
    for line in sys.stdin:  # "touch N": N issues change between the two syncs
        keys = sorted(app.keys)[: int(line.split()[1])]
        for key in keys:
            app.touch(key, summary="changed for the bench")
        print("touched", len(keys), flush=True)
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
    started = time.perf_counter()
    result = SyncEngine(config, store, pm=make_registry()).sync("jsm")
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "seconds": round(seconds, 1),
        "peak_mib": round(peak_kib / 1024, 1),
        "requests": sum(s.requests for s in result.streams),
        "streams": {s.stream: {"status": s.status, "read": s.read, "inserted": s.inserted,
                               "updated": s.updated, "unchanged": s.unchanged,
                               "requests": s.requests, "message": s.message[:200]}
                    for s in result.streams},
    }))
    """
)


def run_json(args: list[str]) -> dict:
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def bench(issues: int, padding: int, touched: int, workdir: Path) -> dict:
    ca = workdir / "ca.pem"
    server = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(issues), str(ca), str(padding)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdin is not None
        url, count, histories = server.stdout.readline().split()
        db = workdir / "bench.db"
        config = workdir / "crosswalk.toml"
        config.write_text(
            f'[store]\nurl = "sqlite:///{db}"\n\n[sources.jsm]\nplatform = "jira"\nurl = "{url}"\n'
            f'ca_bundle = "{ca}"\nstreams = ["requests", "slas"]\n'
            'assignment_group_field = "customfield_10050"\n'
            'auth = { type = "basic", user = "bench@city.example.gov", password = "env:BENCH_TOKEN" }\n'
        )
        os.environ["BENCH_TOKEN"] = "bench-token"
        first = run_json([sys.executable, "-c", SYNC, str(config)])
        server.stdin.write(f"touch {touched}\n")
        server.stdin.flush()
        server.stdout.readline()
        incremental = run_json([sys.executable, "-c", SYNC, str(config)])
        return {
            "issues": int(count),
            "changelog_histories": int(histories),
            "first": first,
            "incremental": {"touched": touched, **incremental},
        }
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--issues", type=int, default=50_000)
    parser.add_argument("--padding", type=int, default=5, help="extra changelog entries each")
    parser.add_argument("--touch", type=int, default=200, help="issues changed before the 2nd sync")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = bench(args.issues, args.padding, args.touch, Path(tmp))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
