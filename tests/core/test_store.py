"""The store on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from itcrosswalk.core.errors import LockHeld, StoreError
from itcrosswalk.core.model import Device, Ticket
from itcrosswalk.core.store import QuarantineItem, Store, StreamCursor

T0 = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def ticket(n: int, **fields: object) -> Ticket:
    values: dict[str, object] = {
        "source": "snow",
        "platform": "servicenow",
        "source_id": f"t{n:05d}",
        "kind": "incident",
        "number": f"INC{n:07d}",
        "priority": 3,
        "state": "new",
        "opened_at": T0 + timedelta(minutes=n),
        "updated_at": T0 + timedelta(minutes=n),
        "extra": {"u_field": n},
    }
    values.update(fields)
    return Ticket.model_validate(values)


@pytest.fixture
def store(store_url: str) -> Store:
    s = Store(store_url)
    yield s
    s.close()


def test_upserts_are_idempotent_and_counted(store: Store) -> None:
    page = [ticket(i) for i in range(5)]
    first = store.write_page(source="snow", stream="incident", entity="ticket", records=page)
    again = store.write_page(source="snow", stream="incident", entity="ticket", records=page)
    assert (first.inserted, first.updated) == (5, 0)
    assert (again.inserted, again.updated) == (0, 5)
    assert store.count("ticket") == 5


def test_a_key_repeated_in_one_page_is_written_once_last_wins(store: Store) -> None:
    page = [ticket(1, title="old"), ticket(1, title="new")]
    result = store.write_page(source="snow", stream="incident", entity="ticket", records=page)
    assert result.inserted == 1
    assert [r["title"] for r in store.export("ticket")] == ["new"]


def test_a_page_and_its_cursor_commit_together_or_not_at_all(store: Store) -> None:
    cursor = StreamCursor(watermark=T0, resume_token={"offset": 5})
    broken = ticket(2)
    object.__setattr__(broken, "kind", None)  # violates NOT NULL only inside the database
    with pytest.raises(StoreError) as failure:
        store.write_page(
            source="snow",
            stream="incident",
            entity="ticket",
            records=[ticket(1), broken] + [ticket(i) for i in range(3, 200)],
            cursor=cursor,
        )
    # One line naming the store and the cause: no SQL, no parameters (record data).
    message = str(failure.value)
    assert message.startswith(
        f"the store {store.url} failed: IntegrityError"
    ) or message.startswith(f"the store {store.url} failed: NotNullViolation"), message
    assert "\n" not in message and len(message) < 400
    assert "INSERT" not in message.upper() and "INC0000001" not in message
    assert store.count("ticket") == 0
    assert store.get_cursor("snow", "incident") is None


def test_datetimes_come_back_aware_utc_and_json_columns_as_objects(store: Store) -> None:
    store.write_page(source="snow", stream="incident", entity="ticket", records=[ticket(7)])
    (row,) = list(store.export("ticket"))
    assert row["opened_at"] == T0 + timedelta(minutes=7)
    assert row["opened_at"].tzinfo is not None
    assert row["extra"] == {"u_field": 7}
    cursor = StreamCursor(
        watermark=T0, window_until=T0 + timedelta(hours=1), resume_token={"t": "x"}
    )
    store.save_cursor("snow", "incident", "ticket", cursor)
    back = store.get_cursor("snow", "incident")
    assert back == cursor


def test_tombstones_mark_what_the_sweep_did_not_see(store: Store) -> None:
    store.write_page(
        source="snow",
        stream="incident",
        entity="ticket",
        records=[ticket(i) for i in range(4)],
        sweep="a",
    )
    store.write_page(
        source="snow", stream="incident", entity="ticket", records=[ticket(0), ticket(2)], sweep="b"
    )
    assert store.tombstone(source="snow", stream="incident", entity="ticket", sweep="b") == 2
    assert store.count("ticket") == 2
    assert store.count("ticket", include_deleted=True) == 4
    assert store.known_versions("ticket", "snow", ["t00000", "t00001"]).keys() == {"t00000"}
    store.write_page(source="snow", stream="incident", entity="ticket", records=[ticket(1)])
    assert store.count("ticket") == 3, "a record that comes back is live again"


def test_quarantine_is_replaced_and_cleared_when_the_record_maps(store: Store) -> None:
    bad = QuarantineItem("t00001", "ValueError: bad date", {"opened_at": "31/12"})
    store.write_page(
        source="snow", stream="incident", entity="ticket", records=[], quarantined=[bad]
    )
    store.write_page(
        source="snow", stream="incident", entity="ticket", records=[], quarantined=[bad]
    )
    rows = store.quarantine_rows("snow")
    assert len(rows) == 1 and rows[0]["payload"] == {"opened_at": "31/12"}
    store.write_page(source="snow", stream="incident", entity="ticket", records=[ticket(1)])
    assert store.quarantine_rows("snow") == []


def test_links_are_replaced_with_the_record(store: Store) -> None:
    link = ("snow", "ticket", "t00001", "concerns", "device", "ci-1")
    store.write_page(
        source="snow", stream="incident", entity="ticket", records=[ticket(1)], links=[link]
    )
    other = ("snow", "ticket", "t00001", "concerns", "device", "ci-2")
    store.write_page(
        source="snow", stream="incident", entity="ticket", records=[ticket(1)], links=[other]
    )
    assert [r["target_ref"] for r in store.links_for("snow", "ticket")] == ["ci-2"]


def test_locks_name_the_holder_and_stale_ones_are_taken_over(store: Store) -> None:
    host = socket.gethostname()
    store.acquire_lock("snow", "ops@elsewhere pid 1", host="elsewhere", pid=1)
    with pytest.raises(LockHeld, match="ops@elsewhere pid 1"):
        store.acquire_lock("snow", "me", host=host, pid=2)
    assert store.break_lock("snow")
    store.acquire_lock("snow", "ghost", host=host, pid=2**22 + 12345)  # no such process
    store.acquire_lock("snow", "me", host=host, pid=3)
    assert store.lock_holder("snow")["holder"] == "me"


def test_status_and_runs(store: Store) -> None:
    run = store.start_run(
        source="snow", full=True, dry_run=False, holder="me", manifest={"config_digest": "abc"}
    )
    store.write_page(
        source="snow",
        stream="incident",
        entity="ticket",
        records=[ticket(1), ticket(2)],
        cursor=StreamCursor(watermark=T0, access="ok", remote_total=3),
        run_id=run,
    )
    store.finish_run(
        run,
        outcome="ok",
        counts={"incident": {"read": 2}},
        error=None,
        manifest={"config_digest": "abc"},
    )
    (row,) = store.status()
    assert (row["records"], row["remote_total"], row["access"], row["last_run_outcome"]) == (
        2,
        3,
        "ok",
        "ok",
    )
    assert store.runs("snow")[0]["counts"] == {"incident": {"read": 2}}


def test_a_page_of_ten_thousand_records(store: Store) -> None:
    page = [
        Device(
            source="intune",
            platform="intune",
            source_id=f"d{i}",
            serial=f"sn {i}",
            compliance="compliant",
        )
        for i in range(10_000)
    ]
    result = store.write_page(
        source="intune", stream="managedDevices", entity="device", records=page
    )
    assert result.inserted == 10_000
    assert store.count("device", source="intune") == 10_000
    assert next(store.export("device"))["serial_key"].startswith("SN")


def test_a_sqlite_store_writes_ahead_and_checkpoints_seldom(tmp_path: Path) -> None:
    """Every connection of a SQLite store: the write-ahead log (readers beside a sync), fsync at
    checkpoints only, and a checkpoint every WAL_AUTOCHECKPOINT pages; the log is gone once
    the store is closed, with everything written in the database."""
    import sqlite3

    from itcrosswalk.core.store import WAL_AUTOCHECKPOINT

    path = tmp_path / "s.db"
    store = Store(f"sqlite:///{path}")
    try:
        with store.engine.connect() as conn:
            pragma = {
                name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
                for name in ("journal_mode", "synchronous", "wal_autocheckpoint")
            }
        assert pragma == {
            "journal_mode": "wal",
            "synchronous": 1,
            "wal_autocheckpoint": WAL_AUTOCHECKPOINT,
        }
        tickets = [ticket(n) for n in range(300)]
        store.write_page(source="snow", stream="incident", entity="ticket", records=tickets)
        assert (tmp_path / "s.db-wal").exists()
    finally:
        store.close()
    assert not (tmp_path / "s.db-wal").exists()
    with sqlite3.connect(path) as plain:
        assert plain.execute("SELECT count(*) FROM tickets").fetchone() == (300,)
