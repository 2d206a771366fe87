"""The sync against emulators with faults switched on: every run's record tells the truth,
nothing is lost, doubled or left stale, and no fault leaves a stream stuck.

The ServiceNow emulator stands in for "a platform" here; platform-specific faults live in
``tests/plugins/<platform>/``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest

from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import LockHeld
from itcrosswalk.core.store import Store, storable
from itcrosswalk.core.sync import SyncEngine
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox.faults import unstorable
from tests.plugins.conftest import Served
from tests.plugins.servicenow.conftest import PASSWORD, count_kind


def _start_cli_sync(config: Config) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SNOW_PASSWORD": PASSWORD}
    return subprocess.Popen(
        [sys.executable, "-m", "itcrosswalk.cli", "--config", str(config.path), "sync", "snow"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _wait_for_rows(store: Store, child: subprocess.Popen[bytes], rows: int) -> None:
    deadline = time.monotonic() + 60
    while (
        store.count("ticket", source="snow") < rows
        and time.monotonic() < deadline
        and child.poll() is None
    ):
        time.sleep(0.05)
    assert child.poll() is None, "the sync ended before the signal"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signalled_sync_is_recorded_interrupted_and_releases_its_lock(
    signum: int,
    instance: Served,
    make_config: Callable[..., Config],
    open_store: Callable[[Config], Store],
) -> None:
    instance.faults.latency = 0.05
    config = make_config(instance, extra='streams = ["incident"]\npage_size = 3')
    store = open_store(config)
    child = _start_cli_sync(config)
    _wait_for_rows(store, child, 6)
    child.send_signal(signum)
    _out, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signum, err.decode()
    (run,) = store.runs("snow")
    name = signal.Signals(signum).name
    assert run["outcome"] == "interrupted" and name in (run["error"] or ""), run
    assert run["ended_at"] is not None
    assert store.lock_holder("snow") is None
    partial = store.count("ticket", source="snow")
    assert run["counts"]["incident"]["read"] > 0
    assert run["counts"]["incident"]["inserted"] + run["counts"]["incident"]["updated"] <= partial
    instance.faults.latency = 0
    resumed = SyncEngine(config, store, pm=make_registry(entry_points_group=None)).sync("snow")
    assert resumed.exit_code == 0
    assert store.count("ticket", source="snow") == count_kind(instance.world, "incident")
    assert [r["outcome"] for r in store.runs("snow")] == ["ok", "interrupted"]


def test_an_unexpected_exception_is_recorded_as_a_failed_run_with_its_reason(
    instance: Served,
    make_config: Callable[..., Config],
    open_store: Callable[[Config], Store],
    pm: Any,
) -> None:
    config = make_config(instance, extra='streams = ["incident"]\npage_size = 4')
    store = open_store(config)

    def breaks_after_two_pages(_stream: str, read: int, _total: int | None) -> None:
        if read >= 8:
            raise RuntimeError("a bug in a progress bar")

    engine = SyncEngine(config, store, pm=pm, progress=breaks_after_two_pages)
    with pytest.raises(RuntimeError):
        engine.sync("snow")
    (run,) = store.runs("snow")
    assert run["outcome"] == "failed"
    assert run["error"] == "unexpected RuntimeError: a bug in a progress bar"
    assert store.lock_holder("snow") is None
    # What the stream committed before the failure is reported, not 0.
    counts = run["counts"]["incident"]
    assert counts["status"] == "error" and counts["pages"] >= 2
    assert counts["read"] >= 8 and counts["inserted"] == store.count("ticket", source="snow") >= 8


@pytest.mark.parametrize("kind", ["surrogate", "nul"])
def test_unstorable_text_is_replaced_and_said_never_a_stuck_stream(
    kind: str,
    instance: Served,
    make_config: Callable[..., Config],
    open_store: Callable[[Config], Store],
    pm: Any,
) -> None:
    config = make_config(instance, extra='streams = ["incident"]\npage_size = 5')
    store = open_store(config)
    rows = instance.app.tables["incident"]
    spoiled = [rows[3]["sys_id"], rows[11]["sys_id"]]
    instance.app.touch("incident", spoiled[0], short_description=unstorable("Printer", kind))
    instance.app.touch("incident", spoiled[1], description=unstorable("Line one", kind))
    first = SyncEngine(config, store, pm=pm).sync("snow")
    assert first.exit_code == 0, first.streams
    total = count_kind(instance.world, "incident")
    assert store.count("ticket", source="snow") == total
    stored = {r["source_id"]: r for r in store.export("ticket", source="snow")}
    assert stored[spoiled[0]]["title"] == "Printer \ufffdtail"
    assert stored[spoiled[0]]["extra"]["sanitized_fields"] == ["title"]
    assert "sanitized_fields" in stored[spoiled[1]]["extra"]
    # Later updates behind the spoiled records still arrive: the stream moves on.
    later = [r["sys_id"] for r in rows[20:25]]
    for sys_id in later:
        instance.app.touch("incident", sys_id, short_description="updated later")
    second = SyncEngine(config, store, pm=pm).sync("snow")
    assert second.exit_code == 0
    stored = {r["source_id"]: r for r in store.export("ticket", source="snow")}
    assert all(stored[s]["title"] == "updated later" for s in later)
    assert [r["outcome"] for r in store.runs("snow")] == ["ok", "ok"]


def test_a_quarantined_payload_with_unstorable_text_is_stored(
    instance: Served,
    make_config: Callable[..., Config],
    open_store: Callable[[Config], Store],
    pm: Any,
) -> None:
    config = make_config(instance, extra='streams = ["incident"]')
    store = open_store(config)
    row = instance.app.tables["incident"][2]
    # An unparseable time fails the mapping: the record goes to quarantine with its payload.
    instance.app.touch("incident", row["sys_id"], opened_at=unstorable("not a time", "nul"))
    result = SyncEngine(config, store, pm=pm).sync("snow")
    assert result.streams[0].quarantined == 1 and result.exit_code == 3
    (item,) = store.quarantine_rows("snow", "incident")
    assert item["source_id"] == row["sys_id"]
    assert "\ufffd" in str(item["payload"]) and "\x00" not in str(item["payload"])


_AT_THE_GATE = """
import os, sys, time
from itcrosswalk.cli import main
gate = sys.argv[1]
while not os.path.exists(gate):
    time.sleep(0.005)
sys.argv = ["crosswalk", *sys.argv[2:]]
main()
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")
def test_simultaneous_first_syncs_on_a_new_store_meet_the_lock_not_a_schema_race(
    instance: Served,
    make_config: Callable[..., Config],
    open_store: Callable[[Config], Store],
    tmp_path: Any,
) -> None:
    instance.faults.latency = 0.02
    config = make_config(instance, extra='streams = ["incident"]\npage_size = 10')
    gate = tmp_path / "go"
    env = {**os.environ, "SNOW_PASSWORD": PASSWORD}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _AT_THE_GATE, str(gate), "--config", str(config.path), "sync"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(5)
    ]
    time.sleep(1.5)  # every child imported and waiting at the gate (not a timed assertion)
    gate.write_text("go")
    errors = []
    for child in children:
        out, _err = child.communicate(timeout=120)
        errors.append((child.returncode, out.decode()))
    assert sum(1 for code, _err in errors if code == 0) >= 1, errors
    for code, err in errors:
        if code != 0:
            assert "is being synced by" in err, err  # the lock's message, nothing raw
    store = open_store(config)
    runs = store.runs("snow")
    assert all(r["outcome"] == "ok" for r in runs) and store.lock_holder("snow") is None
    assert store.count("ticket", source="snow") == count_kind(instance.world, "incident")


def test_an_edit_in_the_same_second_as_the_last_one_is_not_skipped_as_unchanged(
    instance: Served,
    make_config: Callable[..., Config],
    open_store: Callable[[Config], Store],
    pm: Any,
) -> None:
    config = make_config(instance, extra='streams = ["incident"]')
    store = open_store(config)
    SyncEngine(config, store, pm=pm).sync("snow")
    edited = [r["sys_id"] for r in instance.app.tables["incident"][:10]]
    for sys_id in edited:
        instance.app.touch("incident", sys_id, short_description="first edit")
    SyncEngine(config, store, pm=pm).sync("snow")
    instance.faults.same_second_edits = True  # the second edit lands in the same second
    for sys_id in edited:
        instance.app.touch("incident", sys_id, short_description="second edit")
    again = SyncEngine(config, store, pm=pm).sync("snow")
    stored = {r["source_id"]: r["title"] for r in store.export("ticket", source="snow")}
    assert [stored[s] for s in edited] == ["second edit"] * 10
    assert again.streams[0].updated == 10
    # The fast path holds: a re-read with nothing new maps and writes nothing.
    quiet = SyncEngine(config, store, pm=pm).sync("snow")
    assert quiet.streams[0].unchanged == quiet.streams[0].read >= 10
    assert quiet.streams[0].updated == quiet.streams[0].inserted == 0


def test_an_understated_count_during_a_full_sweep_tombstones_nothing(
    instance: Served,
    make_config: Callable[..., Config],
    open_store: Callable[[Config], Store],
    pm: Any,
) -> None:
    config = make_config(instance, extra='streams = ["incident"]\npage_size = 10')
    store = open_store(config)
    SyncEngine(config, store, pm=pm).sync("snow")
    total = count_kind(instance.world, "incident")
    instance.faults.understate_total = total // 2
    instance.faults.listings = 0  # the first answer of the sweep tells the truth, then it lies
    swept = SyncEngine(config, store, pm=pm).sync("snow", full=True)
    outcome = swept.streams[0]
    assert outcome.tombstoned == 0, f"{outcome.tombstoned} of {total} live records tombstoned"
    assert store.count("ticket", source="snow") == total
    assert outcome.status == "incomplete" and swept.exit_code == 3
    assert f"the platform counts {total} rows" in outcome.message
    assert "ACL" in outcome.message and "nothing was tombstoned" in outcome.message
    # The compliance check says so too, never "synced completely".
    assert _source_sync(store, config) == {"snow/incident": "alarm"}
    instance.faults.understate_total = 0
    after = SyncEngine(config, store, pm=pm).sync("snow", full=True)
    assert after.exit_code == 0 and store.count("ticket", source="snow") == total
    assert _source_sync(store, config) == {"snow/incident": "ok"}


def _source_sync(store: Store, config: Config) -> dict[str, str]:
    control = load_controls()["data.source_sync"]
    run = run_controls(store, [control], config=config, record=False)
    return {f.resource: f.status for f in run.results[0].findings}


def _emulator_titles(instance: Served) -> dict[str, str]:
    """What the platform holds now: sys_id -> title, as a store can hold it."""
    return {
        row["sys_id"]: storable(row.get("short_description", ""))[0]
        for row in instance.app.tables["incident"]
    }


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_kill_and_resume_concurrent_syncs_and_a_fault_storm_lose_double_and_stale_nothing(
    instance: Served,
    make_config: Callable[..., Config],
    open_store: Callable[[Config], Store],
    pm: Any,
) -> None:
    app, faults = instance.app, instance.faults
    config = make_config(instance, extra='streams = ["incident"]\npage_size = 4')
    store = open_store(config)
    rows = app.tables["incident"]
    # Every fault at once: slow answers, throttling, 5xx bursts, truncated bodies, rows that
    # move between pages, and text no store can hold.
    app.touch("incident", rows[1]["sys_id"], short_description=unstorable("Storm", "surrogate"))
    app.touch("incident", rows[9]["sys_id"], short_description=unstorable("Storm", "nul"))
    faults.latency = 0.03
    faults.throttle_every = 9
    faults.retry_after = 0
    faults.server_errors_next = 1
    faults.malformed_next = 2
    faults.mutate_between_pages = 1

    # Run A: killed outright (SIGKILL) mid-read, after a concurrent sync met its lock.
    first = _start_cli_sync(config)
    _wait_for_rows(store, first, 8)
    with pytest.raises(LockHeld, match="is being synced by"):
        SyncEngine(config, store, pm=pm).sync("snow")
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=60)
    # Run B: resumes from A's committed pages (taking over A's stale lock), then SIGTERM.
    second = _start_cli_sync(config)
    _wait_for_rows(store, second, store.count("ticket", source="snow") + 4)
    second.send_signal(signal.SIGTERM)
    second.communicate(timeout=60)
    assert second.returncode == 128 + signal.SIGTERM
    # Run C: resumes again and finishes through the faults still on.
    assert SyncEngine(config, store, pm=pm).sync("snow").exit_code == 0
    # Changes between syncs: deletions, a new record, edits, then edits in the same second.
    for row in rows[20:22]:
        app.delete("incident", row["sys_id"])
    app.insert("incident", {"number": "INC0099999", "short_description": "New in the storm"})
    edited = [r["sys_id"] for r in rows[30:33]]
    for sys_id in edited:
        app.touch("incident", sys_id, short_description="edited once")
    assert SyncEngine(config, store, pm=pm).sync("snow").exit_code == 0  # run D
    faults.same_second_edits = True
    for sys_id in edited:
        app.touch("incident", sys_id, short_description="edited twice, same second")
    faults.same_second_edits = False
    assert SyncEngine(config, store, pm=pm).sync("snow").exit_code == 0  # run E
    # Run F: a full sweep while the count lies low: refused, nothing tombstoned.
    faults.understate_total = 10
    faults.listings = 0
    lied = SyncEngine(config, store, pm=pm).sync("snow", full=True)
    assert lied.exit_code == 3 and lied.streams[0].tombstoned == 0
    faults.understate_total = 0
    # Run G: the full sweep with a truthful count tombstones the two deletions.
    swept = SyncEngine(config, store, pm=pm).sync("snow", full=True)
    assert swept.exit_code == 0 and swept.streams[0].tombstoned == 2

    assert faults.malformed_next == faults.server_errors_next == 0, "the faults were met"
    expected = _emulator_titles(instance)
    live = {r["source_id"]: r["title"] for r in store.export("ticket", source="snow")}
    assert set(live) == set(expected), "nothing lost, nothing left live that was deleted"
    stale = {k: (live[k], v) for k, v in expected.items() if live[k] != v}
    assert stale == {}, "nothing stale"
    everything = list(store.export("ticket", source="snow", include_deleted=True))
    assert len(everything) == len({r["source_id"] for r in everything}), "nothing doubled"
    assert store.quarantine_rows("snow") == []
    assert store.lock_holder("snow") is None
    outcomes = [(r["outcome"], r["error"] or "") for r in reversed(store.runs("snow"))]
    assert [o for o, _e in outcomes] == [
        "interrupted",  # A: killed; found stale by B, which recorded why
        "interrupted",  # B: SIGTERM
        "ok",
        "ok",
        "ok",
        "partial",  # F: the sweep refused, and says so
        "ok",
    ], outcomes
    assert "stale" in outcomes[0][1] and "SIGTERM" in outcomes[1][1]
    assert "nothing was tombstoned" in outcomes[5][1]
