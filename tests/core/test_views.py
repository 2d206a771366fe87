"""The reporting views for BI tools: each one is made with the store and queried the same on
SQLite and on PostgreSQL, rows and columns alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.config import Config
from itcrosswalk.core.history import record_snapshot
from itcrosswalk.core.store import Store
from itcrosswalk.core.views import VIEWS
from itcrosswalk.registry import make_registry
from tests.core.test_compliance_controls import NOW, city_store
from tests.core.test_metrics_stores import postgres_url  # noqa: F401  (a fixture)

COLUMNS = {
    "report_portfolio_status": [
        "source",
        "platform",
        "record_id",
        "project_number",
        "project_name",
        "kind",
        "state",
        "phase",
        "health",
        "project_manager",
        "sponsor",
        "department",
        "planned_start",
        "planned_finish",
        "baseline_finish",
        "actual_finish",
        "percent_complete",
        "budget",
        "actual_cost",
        "forecast_cost",
        "cost_variance",
        "is_cancelled",
        "link",
        "updated_at",
    ],
    "report_service_kpis_by_month": [
        "month",
        "source",
        "platform",
        "ticket_kind",
        "priority",
        "tickets_opened",
        "tickets_resolved",
        "tickets_reopened",
        "tickets_reassigned",
        "mean_hours_to_resolve",
    ],
    "report_endpoint_compliance": [
        "source",
        "platform",
        "department",
        "operating_system",
        "devices",
        "compliant",
        "not_compliant",
        "compliance_unknown",
        "encrypted",
        "compliant_percent",
    ],
    "report_findings": [
        "run_id",
        "run_at",
        "is_latest_run",
        "control",
        "status",
        "severity",
        "resource",
        "reason",
        "department",
        "source",
        "link",
    ],
    "report_metric_history": [
        "snapshot_id",
        "taken_at",
        "taken_by",
        "metric",
        "breakdown",
        "breakdown_key",
        "value",
        "unit",
        "records",
        "unsupported_reason",
    ],
}
"""The views' columns: a contract with the City's BI reports (the README lists them)."""


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal | float):
        return round(float(value), 4)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == " ":
        return value[:19]  # SQLite hands a view's timestamps back as text
    return value


def _read(url: str) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    store = city_store(url)
    try:
        pm = make_registry(entry_points_group=None)
        run_controls(store, list(load_controls().values()), benchmark="city", now=NOW)
        record_snapshot(store, Config(), pm=pm, origin="test", now=NOW)
        out = {}
        with store.engine.connect() as conn:
            for view in VIEWS:
                result = conn.execute(sa.text(f"SELECT * FROM {view}"))
                columns = list(result.keys())
                rows = sorted(
                    (tuple(_plain(v) for v in row) for row in result),
                    key=lambda r: tuple("" if v is None else str(v) for v in r),
                )
                out[view] = (columns, rows)
        return out
    finally:
        store.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'store.db'}"


def test_every_view_is_made_and_answers_the_same_on_both_stores(
    sqlite_url: str,
    postgres_url: str,  # noqa: F811
) -> None:
    lite, pg = _read(sqlite_url), _read(postgres_url)
    for view in VIEWS:
        assert lite[view][0] == COLUMNS[view], view
        assert pg[view][0] == COLUMNS[view], view
        assert lite[view][1], f"{view} is empty on the test city"
        assert pg[view][1] == lite[view][1], view
    # Jira Align's epics are projects there too; cancelled ones are flagged, not dropped.
    platforms = {row[1] for row in lite["report_portfolio_status"][1]}
    assert "jira_align" in platforms
    history = lite["report_metric_history"][1]
    assert {row[3] for row in history} >= {"itsm.backlog", "compliance.pass_rate"}


def test_the_views_are_made_with_a_new_store_and_survive_its_reopening(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    try:
        with store.engine.connect() as conn:
            made = set(sa.inspect(conn).get_view_names())
        # The findings view waits for the compliance history (made on first use).
        assert made == set(VIEWS) - {"report_findings"}
        with store.engine.connect() as conn:
            assert (
                conn.execute(sa.text("SELECT count(*) FROM report_portfolio_status")).scalar() == 0
            )
    finally:
        store.close()
    again = Store(sqlite_url)
    try:
        with again.engine.connect() as conn:
            assert set(sa.inspect(conn).get_view_names()) == made
    finally:
        again.close()
