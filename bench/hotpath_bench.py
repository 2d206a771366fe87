"""Every plugin's hot path: the client's CPU per record of each stream, beside a budget.

Run by hand, never by the test suite:

    .venv/bin/python bench/hotpath_bench.py [--size small] [--budget 50]

The built-in emulators serve one generated city on loopback HTTPS (in this process); each
stream of each platform is read once through its real client, untimed, then what a sync does
per record is timed on this thread's CPU clock (``time.thread_time``, so the emulator threads
and other processes do not count): the engine's per-record work (update time, id, version),
the mapping (``Stream.map``, links) and the store's page write (SQLite, in pages of 1000).
Network and JSON decoding are not in these figures (nor a stream's ``prepare``, the requests
that enrich a page): they are the bare download's, which ``sync_bench.py`` measures beside the
sync. Each figure is the best of ``--repeat`` passes. A stream of a few records shows mostly a
page's fixed costs (its transaction, its queries); ``--size medium`` gives them more records.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from itcrosswalk.core.adapter import Window, paginate
from itcrosswalk.core.config import load_config
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import build_adapter
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox.runner import start, write_config
from itcrosswalk.sandbox.world import generate

HERE = Path(__file__).resolve().parent


def best_of(repeat: int, run: Any) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        run()
        best = min(best, time.thread_time() - started)
    return best


def measure(
    stream: Any, raws: list[dict[str, Any]], store: Store, source: str, repeat: int
) -> dict:
    def engine() -> None:
        for raw in raws:
            try:
                stream.cursor_value(raw)
            except Exception:
                pass
            stream.record_id(raw)
            stream.version(raw)

    mapped: list[Any] = []

    stream.prepare(raws)  # what enriches a page, fetched once a page: the platform's time

    def mapping() -> None:
        mapped.clear()
        for raw in raws:
            try:
                record = stream.map(raw)
            except Exception:
                continue
            mapped.append(record)
            stream.links(record)

    def write() -> None:
        for start_at in range(0, len(mapped), 1000):
            store.write_page(
                source=source,
                stream=stream.name,
                entity=stream.entity,
                records=mapped[start_at : start_at + 1000],
            )

    n = len(raws)
    out = {
        "engine": best_of(repeat, engine) / n * 1e6,
        "map": best_of(repeat, mapping) / n * 1e6,
    }
    out["write"] = best_of(repeat, write) / n * 1e6
    out["mapped"] = len(mapped)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="small", help="tiny, small or medium city")
    parser.add_argument("--tickets", type=int, default=None)
    parser.add_argument("--devices", type=int, default=None)
    parser.add_argument("--budget", type=float, default=50.0, help="µs per record")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--limit", type=int, default=5000, help="records read per stream")
    args = parser.parse_args()
    pm = make_registry()
    world = generate(11, args.size, tickets=args.tickets, devices=args.devices)
    results = []
    with tempfile.TemporaryDirectory() as tmp, start(world, pm=pm) as sandbox:
        config = load_config(str(write_config(sandbox, Path(tmp))))
        store = Store(f"sqlite:///{Path(tmp) / 'hot.db'}")
        print(f"| platform | stream | records | engine µs | map µs | write µs | total µs | ≤ {args.budget:.0f} µs |")  # fmt: skip
        print("|---|---|---:|---:|---:|---:|---:|---|")
        for source_name, source in sorted(config.sources.items()):
            adapter = build_adapter(config, source_name, pm)
            try:
                for stream in adapter.streams():
                    raws: list[dict[str, Any]] = []
                    try:
                        for page, _used, _after in paginate(stream, Window(None, None, True)):
                            raws.extend(page.records)
                            if len(raws) >= args.limit:
                                break
                    except Exception as exc:  # a stream the sandbox does not serve
                        print(f"| {source.platform} | {stream.name} | skipped: {type(exc).__name__} |")  # fmt: skip
                        continue
                    if not raws:
                        continue
                    r = measure(stream, raws, store, source_name, args.repeat)
                    total = r["engine"] + r["map"] + r["write"]
                    verdict = "yes" if total <= args.budget else "**no**"
                    print(
                        f"| {source.platform} | {stream.name} | {len(raws)} | {r['engine']:.1f} | "
                        f"{r['map']:.1f} | {r['write']:.1f} | {total:.1f} | {verdict} |",
                        flush=True,
                    )
                    results.append(
                        {
                            "platform": source.platform,
                            "stream": stream.name,
                            "records": len(raws),
                            **r,
                        }
                    )
            finally:
                adapter.close()
        store.close()
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "hotpath_bench.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
