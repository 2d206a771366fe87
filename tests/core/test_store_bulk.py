"""The store's driver-level page write stores exactly what the SQLAlchemy statement stores.

``write_page`` converts values itself and runs one prepared statement per page; these tests
write the same records both ways (the reference is the plain SQLAlchemy upsert the store used
before) and compare the rows as the database holds them, on SQLite and PostgreSQL, for every
kind of column and for text no store can hold.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from itcrosswalk.core.model import ENTITIES, Device, Record, Ticket, WorkItem
from itcrosswalk.core.store import ENTITY_TABLES, SANITIZED_KEY, Store, _storable_row

T0 = datetime(2026, 3, 1, 8, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture
def store(store_url: str) -> Store:
    s = Store(store_url)
    yield s
    s.close()


def reference_write(store: Store, entity: str, records: list[Record], stream: str) -> None:
    """The page write as SQLAlchemy's own upsert does it (the store's former write path)."""
    table = ENTITY_TABLES[entity]
    now = datetime(2026, 4, 1, tzinfo=UTC)
    rows = []
    for record in records:
        row = record.model_dump()
        row.update(stream=stream, deleted=False, deleted_at=None, synced_at=now, run_id=7)
        row.update(sweep=None, content_hash="v1")
        rows.append(_storable_row(row))
    statement = store._insert(table)
    names = [c.name for c in table.columns if c.name not in ("source", "source_id")]
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.source, table.c.source_id],
        set_={name: statement.excluded[name] for name in names},
    )
    with store.engine.begin() as conn:
        conn.execute(statement, rows)


def raw_rows(store: Store, entity: str, source: str) -> list[tuple[Any, ...]]:
    """The rows as the database holds them (no type processing on the way out), without the
    columns that differ by design (the write time)."""
    table = ENTITY_TABLES[entity]
    names = [c.name for c in table.columns if c.name not in ("source", "synced_at")]
    with store.engine.connect() as conn:
        result = conn.exec_driver_sql(
            f"SELECT {', '.join(names)} FROM {table.name} WHERE source = '{source}' ORDER BY source_id"
        )
        return [tuple(row) for row in result]


def both_ways(store: Store, entity: str, records: list[Record]) -> None:
    fast = [r.model_copy(update={"source": "fast"}) for r in records]
    slow = [r.model_copy(update={"source": "slow"}) for r in records]
    store.write_page(
        source="fast",
        stream="s",
        entity=entity,
        records=fast,
        run_id=7,
        versions={r.source_id: "v1" for r in fast},
    )
    reference_write(store, entity, slow, "s")
    assert raw_rows(store, entity, "fast") == raw_rows(store, entity, "slow")
    assert len(raw_rows(store, entity, "fast")) == len({r.source_id for r in records})


def test_every_column_kind_is_stored_as_sqlalchemy_stores_it(store: Store) -> None:
    pacific = timezone(timedelta(hours=-8))
    tickets = [
        Ticket(
            source="x",
            platform="servicenow",
            source_id="t1",
            kind="incident",
            state="in_progress",
            priority=2,
            opened_at=T0,
            resolved_at=datetime(2026, 3, 2, 1, 2, 3, tzinfo=pacific),  # not UTC
            closed_at=datetime(2026, 3, 3, 4, 5, 6),  # naive: taken as UTC
            updated_at=datetime(999, 1, 1, tzinfo=UTC),  # a year of three digits
            reassignment_count=0,
            title="ünïcode ☃ and an astral 😀 and a \\u0000 that is only text",
            extra={"nested": {"a": [1, 2.5, None, True]}, "emoji": "😀", "big": 10**18},
        ),
        Ticket(source="x", platform="servicenow", source_id="t2", kind="request"),
    ]
    both_ways(store, "ticket", tickets)
    devices = [
        Device(
            source="x",
            platform="intune",
            source_id="d1",
            name="PC-1",
            serial="ab 12",
            encrypted=True,
            compliance="compliant",
            enrolled_at=T0,
            purchase_date=date(2024, 5, 6),
            extra={},
        )
    ]
    both_ways(store, "device", devices)
    work = [
        WorkItem(
            source="x",
            platform="clarity",
            source_id="w1",
            kind="project",
            name="Bridge",
            strategic_goals=["safety", "cost"],
            business_case_approved=False,
            budget=1.5e6,
        )
    ]
    both_ways(store, "work_item", work)


def test_unstorable_text_is_cleaned_and_named_as_before(store: Store) -> None:
    bad = [
        Ticket(
            source="x",
            platform="servicenow",
            source_id="t\x00nul",
            kind="incident",
            title="lone \ud83d surrogate",
            extra={"k\x00ey": ["deep \udc00 in a list"], "fine": "ok"},
        ),
        Ticket(
            source="x",
            platform="servicenow",
            source_id="t3",
            kind="incident",
            category="only\x00here",
        ),
    ]
    both_ways(store, "ticket", bad)
    stored = {r["source_id"]: r for r in store.export("ticket", source="fast")}
    assert set(stored) == {"t\ufffdnul", "t3"}
    first = stored["t\ufffdnul"]
    assert first["title"] == "lone \ufffd surrogate"
    assert first["extra"]["k\ufffdey"] == ["deep \ufffd in a list"]
    assert first["extra"][SANITIZED_KEY] == ["extra", "source_id", "title"]
    assert stored["t3"]["extra"][SANITIZED_KEY] == ["category"]


def test_every_entity_gets_the_driver_level_write(store: Store) -> None:
    """A new entity (a new table) takes the same path with nothing to declare."""
    for entity in ENTITIES:
        upsert = store._upsert(entity, keep_sweep=True)
        assert set(upsert.names) == {c.name for c in ENTITY_TABLES[entity].columns}
        assert "sweep" not in upsert.sql.split("DO UPDATE")[1]


def test_a_value_json_cannot_hold_fails_the_page_as_a_store_error(store: Store) -> None:
    from itcrosswalk.core.errors import StoreError

    odd = Ticket(source="x", platform="p", source_id="t1", kind="incident", extra={"s": {1, 2}})
    with pytest.raises(StoreError):
        store.write_page(source="x", stream="s", entity="ticket", records=[odd])
    assert store.count("ticket") == 0
    with store.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from tickets")).scalar() == 0
