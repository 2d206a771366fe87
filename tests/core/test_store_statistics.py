"""A PostgreSQL store gets statistics for the tables a sync writes once the first page is in:
without them the planner matches a page's ids by filtering every row of the source, and each
page costs more than the one before (100,000 incidents with their links: 54 s instead of 17)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from itcrosswalk.core.model import Ticket
from itcrosswalk.core.store import Store

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _page(first: int, n: int) -> tuple[list[Ticket], list[tuple[str, str, str, str, str, str]]]:
    tickets = [
        Ticket(
            source="snow",
            platform="servicenow",
            source_id=f"t{i:06d}",
            kind="incident",
            updated_at=NOW,
        )  # fmt: skip
        for i in range(first, first + n)
    ]
    links = [("snow", "ticket", t.source_id, "concerns", "device", f"ci-{i % 7}")
             for i, t in enumerate(tickets)]  # fmt: skip
    return tickets, links


@pytest.mark.postgres
def test_the_first_page_written_gives_the_planner_statistics(
    store_url: str,
) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's planner only")
    store = Store(store_url)
    try:
        for first in (0, 500):
            tickets, links = _page(first, 500)
            store.write_page(
                source="snow", stream="incident", entity="ticket", records=tickets, links=links
            )
        with store.engine.connect() as conn:
            analyzed = dict(
                conn.execute(
                    sa.text(
                        "SELECT relname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                        "WHERE relname IN ('tickets', 'links')"
                    )
                ).all()
            )
            known = dict(
                conn.execute(
                    sa.text(
                        "SELECT relname, reltuples FROM pg_class "
                        "WHERE relname IN ('tickets', 'links')"
                    )
                ).all()
            )
        assert analyzed == {"tickets": True, "links": True}
        # The planner knows what the first page wrote (it scales that by size from then on).
        assert known["tickets"] >= 500 and known["links"] >= 500, known
        assert store.count("ticket", source="snow") == 1000
    finally:
        store.close()
