"""Intune sync benchmark: N managed devices with 3 compliance policies each, from the Graph
emulator through msgraph-sdk into SQLite. Run by hand, never by the test suite:

    .venv/bin/python bench/intune_bench.py --devices 20000

It reports, for the devices and compliance streams: records, requests made (the token
request included), seconds, and the peak memory (RSS) of the syncing process. The emulator runs
in its own process so its memory and CPU are not counted against the sync.
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
    from itcrosswalk.plugins.intune.sandbox import create_app
    world = generate(11, "tiny", devices=int(sys.argv[1]))
    app = create_app(world, Faults(), users={"bench": "bench-secret-value"})
    server = SandboxServer({"intune": app})
    urls = server.start()
    server.write_ca(Path(sys.argv[2]))
    print(urls["intune"], len(app.devices), sum(len(v) for v in app.statuses.values()), flush=True)
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
    started = time.perf_counter()
    result = SyncEngine(config, store, pm=make_registry()).sync("intune")
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "streams": {s.stream: {"read": s.read, "requests": s.requests, "status": s.status} for s in result.streams},
    }))
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ca = folder / "ca.pem"
        server = subprocess.Popen(
            [sys.executable, "-c", SERVE, str(args.devices), str(ca)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            url, managed, statuses = server.stdout.readline().split()
            config = folder / "crosswalk.toml"
            config.write_text(
                f'[store]\nurl = "sqlite:///{folder / "bench.db"}"\n\n'
                f'[sources.intune]\nplatform = "intune"\nurl = "{url}/v1.0"\nca_bundle = "{ca}"\n'
                'tenant_id = "0c1e7a5e-5a1d-4c17-9e0a-c17a0f5a4d80"\n'
                'streams = ["managedDevices", "deviceStatuses"]\n'
                'auth = { type = "oauth_client_credentials", client_id = "bench", client_secret = "env:BENCH_SECRET" }\n'
            )
            env = {**os.environ, "BENCH_SECRET": "bench-secret-value"}
            out = subprocess.run(
                [sys.executable, "-c", SYNC, str(config)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
            report = json.loads(out.strip().splitlines()[-1])
            report.update(devices=int(managed), statuses=int(statuses))
            print(json.dumps(report, indent=2))
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
