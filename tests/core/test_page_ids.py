"""A page write finds its records by their ids in one parameter (a JSON array on SQLite, a
``text[]`` on PostgreSQL): ids of any text must find exactly their own rows, so nothing is
counted twice, no quarantine entry outlives the record that replaced it, and no link is left
behind or taken from another record."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from itcrosswalk.core.model import Ticket
from itcrosswalk.core.store import QuarantineItem, Store

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)

# Quotes, separators, JSON and SQL syntax, escapes, non-ASCII and astral text, a long id.
ODD_IDS = [
    'a"b',
    "o'brien",
    "a,b",
    "[1, 2]",
    '{"k": 1}',
    "back\\slash",
    "tab\there",
    "ünïcödé",
    "名前",
    "emoji 😀",
    "%s %(x)s ? $1",
    "x" * 200,
    "plain",
]


@pytest.fixture
def store(store_url: str) -> Store:
    s = Store(store_url)
    yield s
    s.close()


def tickets(ids: list[str], title: str) -> list[Ticket]:
    return [
        Ticket(source="s", platform="p", source_id=i, kind="incident", title=title, updated_at=T0)
        for i in ids
    ]


def version(n: int, source_id: str) -> str:
    return f"v{n}:{source_id[:40]}"


def test_ids_of_any_text_are_counted_once_and_their_versions_found(store: Store) -> None:
    first = store.write_page(
        source="s",
        stream="t",
        entity="ticket",
        records=tickets(ODD_IDS, "one"),
        versions={i: version(1, i) for i in ODD_IDS},
    )
    assert (first.inserted, first.updated) == (len(ODD_IDS), 0)
    again = store.write_page(
        source="s",
        stream="t",
        entity="ticket",
        records=tickets(ODD_IDS[:5] + ["new"], "two"),
        versions={i: version(2, i) for i in ODD_IDS[:5] + ["new"]},
    )
    assert (again.inserted, again.updated) == (1, 5)
    assert store.count("ticket", source="s") == len(ODD_IDS) + 1
    found = store.known_versions("ticket", "s", ODD_IDS + ["new", "absent", 'a"b"'])
    assert found == {
        **{i: version(1, i) for i in ODD_IDS[5:]},
        **{i: version(2, i) for i in ODD_IDS[:5] + ["new"]},
    }
    assert store.known_versions("ticket", "s", []) == {}
    assert store.known_versions("ticket", "other", ODD_IDS) == {}


def test_a_good_record_clears_its_own_quarantine_and_replaces_its_own_links(
    store: Store,
) -> None:
    bad = ODD_IDS[:4]
    store.write_page(
        source="s",
        stream="t",
        entity="ticket",
        records=[],
        quarantined=[QuarantineItem(i, "ValueError: bad", {"sys_id": i}) for i in bad],
    )
    links = [("s", "ticket", i, "concerns", "device", f"ci-{n}") for n, i in enumerate(ODD_IDS)]
    store.write_page(
        source="s", stream="t", entity="ticket", records=tickets(ODD_IDS[4:], "x"), links=links
    )
    assert sorted(r["source_id"] for r in store.quarantine_rows("s")) == sorted(bad)
    # The first two come back good: their quarantine goes, the other two stay; their links are
    # replaced (none now), the others' are kept.
    store.write_page(source="s", stream="t", entity="ticket", records=tickets(bad[:2], "fixed"))
    assert sorted(r["source_id"] for r in store.quarantine_rows("s")) == sorted(bad[2:])
    kept = {(r["source_id"], r["target_ref"]) for r in store.links_for("s", "ticket")}
    assert kept == {(i, f"ci-{n}") for n, i in enumerate(ODD_IDS) if i not in bad[:2]}
