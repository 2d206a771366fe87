"""Planner premium benchmark: a Dataverse environment of N plans with T tasks each (and a
resource assignment per task), synced through the Web API.

Run by hand, never by the test suite:

    .venv/bin/python bench/planner_bench.py --plans 500 --tasks 200

It reports, for a first sync and then an incremental one after E plans (and a task of each)
were edited and one plan deleted, and once more with nothing changed, the requests, seconds and
peak memory (RSS) of the syncing process, per stream. ``--no-change-tracking`` runs the same
against an org whose tables do not track changes (modifiedon windows and id sweeps). The
emulator runs in its own process so its memory does not count against the sync.
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
SANDBOX_TENANT = "6f1d2c3b-0a4e-4b7d-9c2f-5e8a1b3c4d60"
"""The Dataverse emulator's Entra ID tenant (``plugins/planner_premium/sandbox.py``)."""

SERVE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from itcrosswalk.sandbox.world import add_planner_premium, generate
    from itcrosswalk.sandbox.faults import Faults
    from itcrosswalk.sandbox.server import SandboxServer
    from itcrosswalk.plugins.planner_premium.sandbox import create_app
    world = generate(11, "tiny", tickets=10, devices=10)
    add_planner_premium(world, plans=int(sys.argv[1]), tasks_per_plan=int(sys.argv[2]))
    app = create_app(world, Faults(), users={"bench": "bench-token"},
                     change_tracking=sys.argv[4] == "on")
    server = SandboxServer({"planner_premium": app})
    urls = server.start()
    server.write_ca(Path(sys.argv[3]))
    t = app.tables
    print(urls["planner_premium"], len(t["msdyn_project"].rows), len(t["msdyn_projecttask"].rows),
          len(t["msdyn_resourceassignment"].rows), flush=True)
    for line in sys.stdin:  # "touch N": N plans and one task of each edited, one plan deleted
        count = int(line.split()[1])
        plans = list(t["msdyn_project"].rows)
        for pid in plans[-count:]:
            app.touch("msdyn_project", pid, msdyn_subject=t["msdyn_project"].rows[pid]["msdyn_subject"] + " (edited)")
            task = next(i for i, r in t["msdyn_projecttask"].rows.items() if r["_msdyn_project_value"] == pid)
            app.touch("msdyn_projecttask", task, msdyn_subject="edited")
        app.delete("msdyn_project", plans[0])
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
    cpu = time.process_time()
    result = engine.sync("planner")
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    manifest = store.runs("planner", limit=1)[0]["manifest"] or {}
    print(json.dumps({
        "all_requests": manifest.get("requests"),
        "seconds": round(seconds, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "requests": sum(s.requests for s in result.streams),
        "peak_mib": round(peak_kib / 1024, 1),
        "outcome": result.outcome,
        "streams": {s.stream: {"read": s.read, "requests": s.requests, "status": s.status,
                               "inserted": s.inserted, "updated": s.updated,
                               "tombstoned": s.tombstoned, "full": s.full}
                    for s in result.streams},
    }))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", type=int, default=500)
    parser.add_argument("--tasks", type=int, default=200, help="tasks per plan")
    parser.add_argument("--edits", type=int, default=20, help="plans (and a task of each) edited")
    parser.add_argument("--no-change-tracking", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="planner-bench-"))
    ca = work / "ca.pem"
    tracking = "off" if args.no_change_tracking else "on"
    serve = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(args.plans), str(args.tasks), str(ca), tracking],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert serve.stdout is not None and serve.stdin is not None
        url, plans, tasks, assignments = serve.stdout.readline().split()
        print(
            f"environment: {plans} plans, {tasks} tasks, {assignments} assignments; change tracking {tracking}"
        )
        config = work / "crosswalk.toml"
        config.write_text(
            textwrap.dedent(
                f"""
                [store]
                url = "sqlite:///{work / "bench.db"}"

                [sources.planner]
                platform = "planner_premium"
                url = "{url}"
                ca_bundle = "{ca}"
                tenant_id = "{SANDBOX_TENANT}"
                auth = {{ type = "oauth_client_credentials", client_id = "bench", client_secret = "env:PLANNER_BENCH_TOKEN" }}
                """
            )
        )
        env = {**os.environ, "PLANNER_BENCH_TOKEN": "bench-token"}

        def sync(label: str) -> dict[str, object]:
            done = subprocess.run(
                [sys.executable, "-c", SYNC, str(config)],
                capture_output=True,
                text=True,
                env=env,
                check=False,
            )
            if done.returncode:
                raise SystemExit(f"{label} failed:\n{done.stderr[-3000:]}")
            outcome = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{label}: {outcome['all_requests']} requests ({outcome['requests']} by the streams, "
                "the rest metadata), "
                f"{outcome['seconds']} s "
                f"({outcome['cpu_seconds']} s CPU), peak {outcome['peak_mib']} MiB, {outcome['outcome']}"
            )
            for name, stream in outcome["streams"].items():  # type: ignore[attr-defined]
                print(f"    {name:<18} {json.dumps(stream)}")
            return outcome

        results = {"first": sync("first sync")}
        serve.stdin.write(f"touch {args.edits}\n")
        serve.stdin.flush()
        serve.stdout.readline()
        results["incremental"] = sync(
            f"incremental ({args.edits} plans and a task of each edited, one plan deleted)"
        )
        results["unchanged"] = sync("incremental (nothing changed)")
        out = HERE / "results"
        out.mkdir(exist_ok=True)
        (out / f"planner_bench_{tracking}.json").write_text(json.dumps(results, indent=2))
    finally:
        serve.kill()
        serve.wait()


if __name__ == "__main__":
    main()
