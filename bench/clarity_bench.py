"""Clarity benchmark: a tenant of N projects with T tasks each and their cost and benefit plans.

Run by hand, never by the test suite:

    .venv/bin/python bench/clarity_bench.py --projects 2000 --tasks 100

It reports, for a first sync and then an incremental one after a few projects and tasks were
edited (and once more with nothing changed), the requests, seconds and peak memory (RSS) of
the syncing process, per stream. The emulator runs in its own process so its memory does not
count against the sync.
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
    from itcrosswalk.sandbox.world import add_clarity, generate
    from itcrosswalk.sandbox.faults import Faults
    from itcrosswalk.sandbox.server import SandboxServer
    from itcrosswalk.plugins.clarity.sandbox import create_app
    world = generate(11, "tiny", tickets=10, devices=10)
    add_clarity(world, projects=int(sys.argv[1]), tasks_per_project=int(sys.argv[2]))
    app = create_app(world, Faults(), users={"bench": "bench-key"})
    server = SandboxServer({"clarity": app})
    urls = server.start()
    server.write_ca(Path(sys.argv[3]))
    print(urls["clarity"], len(app.data["projects"]), len(app.data["tasks"]),
          len(app.data["costplandetails"]), flush=True)
    for line in sys.stdin:  # "touch N": N projects and one task of each are edited now
        count = int(line.split()[1])
        for row in [p for p in app.data["projects"] if not p["isTemplate"]][-count:]:
            app.touch("projects", row["_internalId"], name=row["name"] + " (edited)")
            for task in app.children("tasks", row["_internalId"])[:1]:
                app.touch("tasks", task["_internalId"], name=task["name"] + " (edited)")
        print("touched", flush=True)
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
    result = engine.sync("ppm")
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "seconds": round(seconds, 1),
        "requests": sum(s.requests for s in result.streams),
        "peak_mib": round(peak_kib / 1024, 1),
        "outcome": result.outcome,
        "streams": {s.stream: {"read": s.read, "requests": s.requests, "status": s.status,
                               "inserted": s.inserted, "updated": s.updated}
                    for s in result.streams},
    }))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=2000)
    parser.add_argument("--tasks", type=int, default=100, help="tasks per project")
    parser.add_argument("--edits", type=int, default=20, help="projects and tasks edited")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="clarity-bench-"))
    ca = work / "ca.pem"
    serve = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(args.projects), str(args.tasks), str(ca)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None and serve.stdin is not None
        url, projects, tasks, details = serve.stdout.readline().split()
        print(f"tenant: {projects} projects, {tasks} tasks, {details} cost plan detail rows")
        config = work / "crosswalk.toml"
        config.write_text(
            textwrap.dedent(
                f"""
                [store]
                url = "sqlite:///{work / "bench.db"}"

                [sources.ppm]
                platform = "clarity"
                url = "{url}"
                ca_bundle = "{ca}"
                auth = {{ type = "bearer", token = "env:CLARITY_BENCH_KEY" }}
                client_id = "CROSSWALK"
                custom_fields = {{ department = "c_department" }}
                """
            )
        )
        env = {**os.environ, "CLARITY_BENCH_KEY": "bench-key"}

        def sync(label: str) -> dict[str, object]:
            done = subprocess.run(
                [sys.executable, "-c", SYNC, str(config)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            outcome = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{label}: {outcome['requests']} requests, {outcome['seconds']} s, "
                f"peak {outcome['peak_mib']} MiB, {outcome['outcome']}"
            )
            for name, stream in outcome["streams"].items():  # type: ignore[attr-defined]
                print(f"    {name:<13} {json.dumps(stream)}")
            return outcome

        results = {"first": sync("first sync")}
        serve.stdin.write(f"touch {args.edits}\n")
        serve.stdin.flush()
        serve.stdout.readline()
        results["incremental"] = sync(f"incremental ({args.edits} projects edited, a task of each)")
        results["unchanged"] = sync("incremental (nothing changed)")
        out = HERE / "results"
        out.mkdir(exist_ok=True)
        (out / "clarity_bench.json").write_text(json.dumps(results, indent=2))
    finally:
        serve.kill()
        serve.wait()


if __name__ == "__main__":
    main()
