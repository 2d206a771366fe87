"""Whole seconds of a stored moment are the same on SQLite and PostgreSQL, fractions and all.

SQLite's date functions round a fraction of a second to the millisecond, so a moment at
.9995 s or later used to count as the next second there, while PostgreSQL's floor kept it:
a ticket resolved 59.9996 s after the hour could miss a target on one store and meet it on
the other. Every whole-seconds expression (the metrics' ``epoch``, the BI views', the
controls' ``seconds_between``) drops the fraction on both.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from itcrosswalk.core.compliance.engine import _macros, parameters
from itcrosswalk.core.metrics import epoch, epoch_of
from itcrosswalk.core.store import Store, UTCDateTime
from itcrosswalk.core.views import _epoch

MOMENTS = [
    datetime(2026, 11, 1, 10, 0, 59, 999600, UTC),
    datetime(2026, 11, 1, 10, 0, 59, 999999, UTC),
    datetime(2026, 11, 1, 10, 0, 59, 999400, UTC),
    datetime(2026, 11, 1, 10, 0, 59, 500000, UTC),
    datetime(2026, 11, 1, 10, 0, 59, tzinfo=UTC),
    datetime(2026, 12, 31, 23, 59, 59, 999700, UTC),
]


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = Store(store_url)
    try:
        yield opened
    finally:
        opened.close()


def _probe(store: Store) -> sa.Table:
    table = sa.Table(
        "epoch_probe",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime),
    )
    table.create(store.engine)
    with store.engine.begin() as conn:
        conn.execute(table.insert(), [{"id": i, "at": m} for i, m in enumerate(MOMENTS)])
    return table


def test_whole_seconds_drop_the_fraction_on_both_stores(store: Store) -> None:
    table = _probe(store)
    expected = [epoch_of(m) for m in MOMENTS]
    with store.engine.connect() as conn:
        metrics = conn.execute(
            sa.select(epoch(table.c.at, store.dialect)).order_by(table.c.id)
        ).scalars()
        assert list(metrics) == expected
        views = conn.execute(sa.select(_epoch(table.c.at, store.dialect)).order_by(table.c.id))
        assert list(views.scalars()) == expected


def test_the_controls_seconds_between_drop_the_fraction_and_read_now_in_utc(
    store: Store,
) -> None:
    _probe(store)
    # A moment the City hands over in its own zone, with a fraction past .9995 s.
    now = datetime(2026, 11, 1, 6, 5, 0, 999800, timezone(timedelta(hours=-4)))
    seconds = _macros(store.dialect)["seconds_between"]("at", ":now")
    with store.engine.connect() as conn:
        got = conn.execute(
            sa.text(f"SELECT {seconds} FROM epoch_probe ORDER BY id"),
            {"now": parameters(None, now)["now"]},
        ).scalars()
        assert list(got) == [epoch_of(now) - epoch_of(m) for m in MOMENTS]
