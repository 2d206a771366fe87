"""Every plugin's hot path: the client's CPU per record of each stream, beside a budget.

Run by hand, never by the test suite:

    .venv/bin/python bench/hotpath_bench.py [--size small] [--budget 50] [--pages 10,1000] [--only jira,...]

The built-in emulators serve one generated city on loopback HTTPS (in this process); each
stream of each platform is read once through its real client, untimed, then what a sync does
per record is timed on this thread's CPU clock (``time.thread_time``, so the emulator threads
and other processes do not count): the engine's per-record work (update time, id, version),
the mapping (``Stream.map``, links) and the store's page write (SQLite, one page).
Network and JSON decoding are not in these figures (nor a stream's ``prepare``, the requests
that enrich a page): they are the bare download's, which ``sync_bench.py`` measures beside the
sync. Each figure is the best of ``--repeat`` passes.

A budget per record is a marginal cost, and many streams hold a handful of records (one Jira
Align portfolio, six Project Online projects), whose page's fixed costs (its transaction, its
queries) divided by a few records say little, and a larger city does not grow them all (Jira
Align has one portfolio and one program at any ``--size``). So each stream is timed at two page sizes
(``--pages``, 10 and 1000 records), made of its real records repeated, each copy written under
a key of its own (``<id>~<n>``; the passes after the first upsert the same keys again, as a
re-read does), and the table gives the slope between them (µs per added record,
what the budget judges) beside the intercept (µs a page costs whatever it holds, almost all of
it the write's). A mapping that memoized by value would look cheaper on repeated records than
on a real page: none does.
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
PARTS = ("engine", "map", "write")


def best_of(repeat: int, run: Any) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        run()
        best = min(best, time.thread_time() - started)
    return best


def cycled(items: list[Any], n: int) -> list[Any]:
    """``n`` items: ``items`` repeated (and cut) to that length."""
    return [items[i % len(items)] for i in range(n)]


def measure_page(
    stream: Any, raws: list[dict[str, Any]], store: Store, source: str, repeat: int
) -> dict[str, float]:
    """Seconds of CPU the engine's per-record work, the mapping and the write of one page of
    ``raws`` take (best of ``repeat``), and how many records mapped."""

    def engine() -> None:
        for raw in raws:
            try:
                stream.cursor_value(raw)
            except Exception:
                pass
            stream.record_id(raw)
            stream.version(raw)

    mapped: list[Any] = []

    def mapping() -> None:
        mapped.clear()
        for raw in raws:
            try:
                record = stream.map(raw)
            except Exception:
                continue
            mapped.append(record)
            stream.links(record)

    out = {"engine": best_of(repeat, engine), "map": best_of(repeat, mapping)}
    # Each repeat of a real record is a record of its own in the store.
    seen: dict[str, int] = {}
    page = []
    for record in mapped:
        n = seen[record.source_id] = seen.get(record.source_id, -1) + 1
        page.append(record if n == 0 else record.model_copy(update={"source_id": f"{record.source_id}~{n}"}))  # fmt: skip

    def write() -> None:
        store.write_page(source=source, stream=stream.name, entity=stream.entity, records=page)

    out["write"] = best_of(repeat, write)
    out["mapped"] = len(mapped)
    return out


def measure(
    stream: Any,
    raws: list[dict[str, Any]],
    store: Store,
    source: str,
    repeat: int,
    pages: tuple[int, int],
) -> dict[str, Any]:
    """Per part, the slope (µs per added record) and intercept (µs per page) between two page
    sizes of ``raws`` repeated."""
    stream.prepare(raws)  # what enriches a page, fetched once a page: the platform's time
    small, large = pages
    at_small = measure_page(stream, cycled(raws, small), store, source, repeat)
    at_large = measure_page(stream, cycled(raws, large), store, source, repeat)
    out: dict[str, Any] = {"records": len(raws), "unmapped": large - at_large["mapped"]}
    for part in PARTS:
        slope = (at_large[part] - at_small[part]) / (large - small)
        out[part] = slope * 1e6
        out[part + "_page"] = max(0.0, at_small[part] - slope * small) * 1e6
    out["marginal"] = sum(out[p] for p in PARTS)
    out["page"] = sum(out[p + "_page"] for p in PARTS)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="small", help="tiny, small or medium city")
    parser.add_argument("--tickets", type=int, default=None)
    parser.add_argument("--devices", type=int, default=None)
    parser.add_argument("--budget", type=float, default=50.0, help="µs per record")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--limit", type=int, default=5000, help="records read per stream")
    parser.add_argument(
        "--pages", default="10,1000", help="the two page sizes the slope is taken between"
    )
    parser.add_argument("--only", default="", help="platforms to run, comma-separated (all)")
    args = parser.parse_args()
    only = {p for p in args.only.split(",") if p}
    small, large = (int(n) for n in args.pages.split(","))
    pm = make_registry()
    world = generate(11, args.size, tickets=args.tickets, devices=args.devices)
    results = []
    with tempfile.TemporaryDirectory() as tmp, start(world, pm=pm) as sandbox:
        config = load_config(str(write_config(sandbox, Path(tmp))))
        store = Store(f"sqlite:///{Path(tmp) / 'hot.db'}")
        print(
            "| platform | stream | records | engine µs/rec | map µs/rec | write µs/rec "
            f"| marginal µs/rec | fixed µs/page | ≤ {args.budget:.0f} µs |"
        )
        print("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for source_name, source in sorted(config.sources.items()):
            if only and source.platform not in only:
                continue
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
                    r = measure(stream, raws, store, source_name, args.repeat, (small, large))
                    verdict = "yes" if r["marginal"] <= args.budget else "**no**"
                    if r["unmapped"]:
                        verdict += f" ({r['unmapped']} of {large} unmapped)"
                    print(
                        f"| {source.platform} | {stream.name} | {len(raws)} | {r['engine']:.1f} | "
                        f"{r['map']:.1f} | {r['write']:.1f} | {r['marginal']:.1f} | "
                        f"{r['page']:.0f} | {verdict} |",
                        flush=True,
                    )
                    results.append(
                        {
                            "platform": source.platform,
                            "stream": stream.name,
                            **r,
                        }
                    )
            finally:
                adapter.close()
        store.close()
    within = [r for r in results if r["marginal"] <= args.budget]
    print(
        f"\n{len(within)} of {len(results)} streams within {args.budget:.0f} µs per record "
        f"(marginal, pages of {small} and {large})"
    )
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "hotpath_bench.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
