"""Finance plan lines: the common model's place for budget, forecast and benefit per period."""

from __future__ import annotations

from datetime import UTC, datetime

from itcrosswalk.core.model import EXPORT_NAMES, FinancePlanLine
from itcrosswalk.core.store import Store


def test_plan_lines_round_trip_through_the_store(store_url: str) -> None:
    store = Store(store_url)
    try:
        line = FinancePlanLine(
            source="ppm",
            platform="clarity",
            source_id="plan-5000043-2026-02",
            investment_id="project-5000003",
            plan="budget",
            fiscal_period="2026-02",
            period_start=datetime(2026, 2, 1, tzinfo=UTC),
            cost_type="capital",
            category="Hardware",
            amount=95466.67,
            currency="USD",
        )
        written = store.write_page(
            source="ppm", stream="costPlans", entity="plan_line", records=[line]
        )
        assert written.inserted == 1
        (row,) = store.export(EXPORT_NAMES["plan-lines"], source="ppm")
        assert row["amount"] == 95466.67 and row["cost_type"] == "capital"
        assert row["plan"] == "budget" and row["actual"] is False
        assert row["period_start"] == datetime(2026, 2, 1, tzinfo=UTC)
    finally:
        store.close()
