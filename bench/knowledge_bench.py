"""Knowledge, choice and asset streams: what they add to a ServiceNow sync, and the forecast.

Run by hand, never by the test suite:

    .venv/bin/python bench/knowledge_bench.py --size medium

Syncs the sandbox city's ServiceNow twice into fresh SQLite stores (the ticket/work/device
streams alone, then every stream) and reports the CPU time of each sync in this process (the
emulator serves from a thread of it, so its time counts too: compare the two, not the absolute
numbers), the records the new streams read, and the CPU time of one refresh forecast.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from itcrosswalk.core.assets.forecast import forecast
from itcrosswalk.core.config import load_config
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import generate

OLD = [
    "incident", "sc_req_item", "problem", "change_request", "task_sla", "pm_portfolio",
    "pm_program", "pm_project", "pm_project_task", "dmn_demand", "cmdb_ci_computer", "sys_user",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="small", choices=["tiny", "small", "medium"])
    args = parser.parse_args()
    pm = make_registry(entry_points_group=None)
    world = generate(7, args.size)
    with (
        runner.start(world, pm=pm, platforms=["servicenow"]) as box,
        tempfile.TemporaryDirectory() as tmp,
    ):
        results = {}
        for label, streams in (("catalogue only", OLD), ("with knowledge and assets", None)):
            folder = Path(tmp) / label.replace(" ", "_")
            path = runner.write_config(box, folder, store_url=f"sqlite:///{folder / 'store.db'}")
            config = load_config(path)
            name = next(iter(config.sources))
            if streams is not None:
                config.sources[name].streams = streams
            store = Store(config.store.url)
            started = time.process_time()
            result = SyncEngine(config, store, pm=pm).sync(name)
            cpu = time.process_time() - started
            new = {s.stream: s.read for s in result.streams if s.stream not in OLD}
            results[label] = cpu
            print(
                f"{label}: {cpu:.2f} s CPU, {sum(s.read for s in result.streams)} records; new: {new}"
            )
            if streams is None:
                started = time.process_time()
                plan = forecast(store, config, now=world.now)
                print(
                    f"forecast: {time.process_time() - started:.3f} s CPU for "
                    f"{plan.total_devices} devices due, {plan.total_cost:,.2f}"
                )
            store.close()
        ratio = results["with knowledge and assets"] / results["catalogue only"]
        print(f"ratio (all streams / catalogue only): {ratio:.2f}")


if __name__ == "__main__":
    main()
