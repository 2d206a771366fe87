"""Knowledge, root-cause and asset metrics against hand-worked cases, on SQLite and PostgreSQL.

Each case says in a comment why it counts or not; the expected numbers are worked by hand.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from itcrosswalk.core.config import Config, MetricsConfig
from itcrosswalk.core.metrics import MetricContext
from itcrosswalk.core.metrics.knowledge import (
    KNOWLEDGE,
    fiscal_quarter,
    fiscal_year,
)
from itcrosswalk.core.model import (
    Asset,
    KnowledgeArticle,
    KnowledgeFeedback,
    KnowledgeLink,
    KnowledgeUse,
    Record,
    Ticket,
)
from itcrosswalk.core.store import Store, StreamCursor

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
TODAY = NOW.date()
S = {"source": "snow", "platform": "servicenow"}


def article(sid: str, number: str, version: str, state: str, **kw: Any) -> KnowledgeArticle:
    return KnowledgeArticle(**S, source_id=sid, number=number, version=version, state=state, **kw)


def page(store: Store, stream: str, entity: str, records: list[Record]) -> None:
    store.write_page(
        source="snow",
        stream=stream,
        entity=entity,
        records=records,
        cursor=StreamCursor(watermark=NOW, access="ok"),
    )


def knowledge_store(url: str, *, with_log: bool = True) -> Store:
    store = Store(url)
    page(
        store,
        "kb_knowledge",
        "knowledge_article",
        [
            # KB1: a versioned article; v1 outdated, v2 latest and live. The platform carried
            # v1's 50 views over to v2 (v2 says 70): summing would say 120.
            article(
                "a1v1",
                "KB1",
                "1.0",
                "outdated",
                latest=False,
                view_count=50,
                published_on=date(2024, 1, 10),
                valid_to=date(2100, 1, 1),
            ),
            article(
                "a1v2",
                "KB1",
                "2.0",
                "published",
                latest=True,
                view_count=70,
                published_on=date(2026, 3, 1),
                reviewed_on=date(2026, 3, 1),
                valid_to=date(2100, 1, 1),
                active=True,
                view_count_kind="rolling_30d",
            ),
            # KB2: published past its valid-to: not live; reviewed 2024 (overdue).
            article(
                "a2",
                "KB2",
                "1.0",
                "published",
                latest=True,
                published_on=date(2024, 5, 1),
                reviewed_on=date(2024, 5, 1),
                valid_to=date(2025, 5, 1),
                active=True,
                view_count_kind="rolling_30d",
            ),
            # KB3: published with no valid-to: hidden from search, so not live.
            article(
                "a3",
                "KB3",
                "1.0",
                "published",
                latest=True,
                published_on=date(2026, 10, 1),
                reviewed_on=date(2026, 10, 1),
                valid_to=None,
                active=True,
            ),
            # KB4: retired: outside the live share and the flags.
            article(
                "a4",
                "KB4",
                "1.0",
                "retired",
                latest=True,
                published_on=date(2020, 1, 1),
                valid_to=date(2021, 1, 1),
            ),
            # KB5: a draft: in the live share's denominator, not live.
            article("a5", "KB5", "0.01", "draft", latest=True),
        ],
    )
    if with_log:
        page(
            store,
            "kb_use",
            "knowledge_use",
            [
                # A view of KB1's old version 10 days ago: KB1 is used (any version counts).
                KnowledgeUse(
                    **S,
                    source_id="u1",
                    article_id="a1v1",
                    viewed=True,
                    created_at=NOW - timedelta(days=10),
                ),
                # KB2 was last viewed 200 days ago: unused.
                KnowledgeUse(
                    **S,
                    source_id="u2",
                    article_id="a2",
                    viewed=True,
                    created_at=NOW - timedelta(days=200),
                ),
                # KB3 is never viewed: unused.
            ],
        )
    page(
        store,
        "kb_feedback",
        "knowledge_feedback",
        [
            # An open flag on KB1's old version, 40 days old: KB1 has an open flag over 30 days.
            KnowledgeFeedback(
                **S,
                source_id="f1",
                article_id="a1v1",
                flagged=True,
                resolved=False,
                created_at=NOW - timedelta(days=40),
            ),
            # A resolved flag on KB2: not open.
            KnowledgeFeedback(
                **S,
                source_id="f2",
                article_id="a2",
                flagged=True,
                resolved=True,
                created_at=NOW - timedelta(days=40),
            ),
            # An open flag on retired KB4: retired articles aside.
            KnowledgeFeedback(
                **S,
                source_id="f3",
                article_id="a4",
                flagged=True,
                created_at=NOW - timedelta(days=5),
            ),
            # A rating on KB3, not a flag.
            KnowledgeFeedback(
                **S,
                source_id="f4",
                article_id="a3",
                rating=2,
                flagged=False,
                created_at=NOW - timedelta(days=5),
            ),
        ],
    )
    return store


def compute(
    store: Store, metric_id: str, policy: MetricsConfig | None = None, by: tuple[str, ...] = ()
) -> Any:
    metric = next(m for m in KNOWLEDGE if m.id == metric_id)
    ctx = MetricContext(store=store, policy=policy or Config().metrics, now=NOW)
    return metric.compute(ctx, by), list(metric.explain(ctx))


def test_live_share_judges_the_latest_version_and_the_valid_to_date(store_url: str) -> None:
    store = knowledge_store(store_url)
    try:
        result, explained = compute(store, "kb.live_share")
        # Latest versions: KB1 live, KB2 past valid-to, KB3 no valid-to, KB5 draft; KB4 retired aside.
        assert result.n == 4 and result.value == 25.0
        assert result.excluded == {"retired": 1}
        assert {e.source_id for e in explained} == {"a1v2", "a2", "a3", "a4", "a5"}
        assert "a1v1" not in {e.source_id for e in explained}, (
            "an outdated version is not an article"
        )
        review, _ = compute(store, "kb.review_overdue")
        # Published latest: KB1 (reviewed 2026-03-01), KB2 (2024-05-01 > 365 days), KB3 (2026-10-01).
        assert review.value == 1.0 and review.excluded == {"reviewed within 365 days": 2}
    finally:
        store.close()


def test_unused_articles_count_every_version_s_views_and_need_the_view_log(store_url: str) -> None:
    store = knowledge_store(store_url)
    try:
        result, explained = compute(store, "kb.unused_articles")
        assert result.value == 2.0, "KB2 (viewed 200 days ago) and KB3 (never)"
        counted = sorted(e.source_id for e in explained if e.counted)
        assert counted == ["a2", "a3"]
        assert result.excluded == {"viewed or used within 90 days": 1}
        assert result.detail["view_count_means"] == {"rolling_30d": 2, "(none)": 1}
    finally:
        store.close()


def test_unused_articles_without_a_view_log_is_unsupported(store_url: str) -> None:
    store = knowledge_store(store_url, with_log=False)
    try:
        result, _ = compute(store, "kb.unused_articles")
        assert result.value is None
        assert "kb_use" in (result.unsupported or "")
    finally:
        store.close()


def test_flagged_open_counts_articles_with_an_unresolved_flag_on_any_version(
    store_url: str,
) -> None:
    store = knowledge_store(store_url)
    try:
        result, _ = compute(store, "kb.flagged_open")
        assert result.value == 1.0  # KB1, flagged on its old version
        assert result.excluded == {"retired": 1, "no open flag": 3}
        assert result.detail["open_over_30_days"] == 1
    finally:
        store.close()


def ticket(sid: str, kind: str, state: str, **kw: Any) -> Ticket:
    kw.setdefault("opened_at", NOW - timedelta(days=30))
    return Ticket(**S, source_id=sid, kind=kind, state=state, number=sid.upper(), **kw)


def problem_store(url: str, *, legacy: bool = False) -> Store:
    store = Store(url)

    def p(sid: str, state: str, **kw: Any) -> Ticket:
        if legacy:  # a legacy instance has no RCA columns at all
            for name in ("cause_notes", "fix_notes", "resolution_code"):
                kw.pop(name, None)
        return ticket(
            sid, "problem", state, problem_state_model="legacy" if legacy else "madrid", **kw
        )

    page(
        store,
        "problem",
        "ticket",
        [
            # closed with cause and fix: complete
            p(
                "p1",
                "closed",
                cause_notes="Driver leak",
                fix_notes="Driver 4.3",
                known_error=True,
                resolution_code="fix_applied",
                category="software",
            ),
            # closed with an empty cause: incomplete
            p(
                "p2",
                "closed",
                cause_notes="",
                fix_notes="Rebooted",
                known_error=False,
                resolution_code="fix_applied",
            ),
            # risk accepted with a cause and no fix: complete
            p(
                "p3",
                "closed",
                cause_notes="Vendor bug",
                fix_notes="",
                known_error=True,
                resolution_code="risk_accepted",
            ),
            # duplicate: aside
            p(
                "p4",
                "closed",
                cause_notes="",
                fix_notes="",
                known_error=False,
                resolution_code="duplicate",
                duplicate_of="PRB1",
            ),
            # open, on the CI LAPTOP-7 and the category network; not a known error
            p(
                "p5",
                "in_progress",
                known_error=False,
                device_name="LAPTOP-7",
                category="network",
                opened_at=NOW - timedelta(days=60),
            ),
            # cancelled
            p("p6", "cancelled", known_error=None),
        ],
    )
    page(
        store,
        "incident",
        "ticket",
        [
            # on the open problem's CI, opened after it: repeat
            ticket("i1", "incident", "resolved", device_name="LAPTOP-7", category="hardware"),
            # in the open problem's category: repeat
            ticket("i2", "incident", "closed", category="network"),
            # opened before the problem: not a repeat of it
            ticket(
                "i3", "incident", "closed", category="network", opened_at=NOW - timedelta(days=90)
            ),
            # category of a closed problem only: not a repeat
            ticket("i4", "incident", "new", category="software"),
        ],
    )
    page(
        store,
        "m2m_kb_task",
        "knowledge_link",
        [KnowledgeLink(**S, source_id="l1", article_id="a1v2", task_id="i1")],
    )
    return store


def test_rca_completion_known_errors_and_repeat_incidents(store_url: str) -> None:
    store = problem_store(store_url)
    try:
        rca, explained = compute(store, "problem.rca_completion")
        # p1 and p3 complete, p2 not; p4 duplicate aside (p6 is cancelled: not in scope).
        assert rca.n == 3 and rca.value == pytest.approx(200 / 3)
        assert rca.excluded == {"closed as duplicate": 1}
        assert {e.source_id: e.value for e in explained if e.counted} == {
            "p1": 100.0,
            "p2": 0.0,
            "p3": 100.0,
        }
        known, _ = compute(store, "problem.known_error_rate")
        assert known.n == 5 and known.value == 40.0  # p1, p3 of p1-p5
        assert known.excluded == {"cancelled": 1}
        repeat, explained = compute(store, "problem.repeat_incidents")
        assert repeat.value == 2.0
        assert sorted(e.source_id for e in explained if e.counted) == ["i1", "i2"]
        assert repeat.detail["share"] == 50.0
        coverage, _ = compute(store, "kb.incident_coverage", by=("assignment_group",))
        # resolved or closed incidents: i1 (article attached), i2, i3
        assert coverage.n == 3 and coverage.value == pytest.approx(100 / 3)
        assert coverage.detail["by_category"] == {"hardware": 100.0, "network": 0.0}
    finally:
        store.close()


def test_a_legacy_instance_without_rca_fields_is_unsupported_not_zero(store_url: str) -> None:
    store = problem_store(store_url, legacy=True)
    try:
        rca, _ = compute(store, "problem.rca_completion")
        assert rca.value is None
        assert "cause_notes" in (rca.unsupported or "")
        known, _ = compute(store, "problem.known_error_rate")
        assert known.value == 40.0, "the legacy known-error state still counts"
    finally:
        store.close()


def asset(sid: str, state: str, **kw: Any) -> Asset:
    return Asset(**S, source_id=sid, state=state, **kw)


def test_age_mix_and_warranty_expiring_by_fiscal_quarter(store_url: str) -> None:
    store = Store(store_url)
    try:
        page(
            store,
            "alm_hardware",
            "asset",
            [
                # 5.5 years old, warranty ended: in the 5+ band, already expired
                asset(
                    "h1",
                    "in_use",
                    purchase_date=TODAY - timedelta(days=2009),
                    warranty_expiration=date(2024, 1, 1),
                    model_category="Laptop",
                ),
                # 1.5 years old, warranty ends 2026-12-15: FY2027 Q2
                asset(
                    "h2",
                    "in_use",
                    purchase_date=TODAY - timedelta(days=548),
                    warranty_expiration=date(2026, 12, 15),
                    model_category="Laptop",
                ),
                # in stock, warranty ends 2027-09-30: FY2028 Q1, the fourth quarter from now
                asset(
                    "h3",
                    "in_stock",
                    purchase_date=TODAY - timedelta(days=100),
                    warranty_expiration=date(2027, 9, 30),
                    model_category="Phone",
                ),
                # warranty ends 2027-10-01: past the horizon (FY2028 Q2)
                asset(
                    "h4",
                    "in_use",
                    purchase_date=TODAY - timedelta(days=1000),
                    warranty_expiration=date(2027, 10, 1),
                    model_category="Desktop",
                ),
                # retired: not in service
                asset("h5", "retired", purchase_date=date(2015, 1, 1)),
                # no purchase date, no warranty
                asset("h6", "in_use"),
            ],
        )
        age, _ = compute(store, "asset.age_mix", by=("kind",))
        assert age.n == 4 and age.excluded == {"no purchase date": 1}
        assert age.value == pytest.approx((2009 + 548 + 100 + 1000) / 4 / 365.25)
        assert age.detail["age_bands"] == {"<1": 1, "1-2": 1, "2-3": 1, "3-4": 0, "4-5": 0, "5+": 1}
        assert set(age.breakdown["kind"]) == {"Laptop", "Phone", "Desktop"}
        warranty, _ = compute(store, "asset.warranty_expiring")
        assert warranty.value == 2.0
        assert warranty.detail["by_fiscal_quarter"] == {
            "FY2027 Q2": 1,
            "FY2027 Q3": 0,
            "FY2027 Q4": 0,
            "FY2028 Q1": 1,
        }
        assert warranty.excluded == {
            "warranty already ended": 1,
            "warranty ends later": 1,
            "no warranty date": 1,
        }
    finally:
        store.close()


def test_fiscal_years_start_in_july_by_default() -> None:
    assert Config().metrics.fiscal_year_start == 7
    assert fiscal_year(date(2026, 6, 30), 7) == 2026 and fiscal_year(date(2026, 7, 1), 7) == 2027
    assert fiscal_quarter(date(2026, 7, 1), 7) == "FY2027 Q1"
    assert fiscal_quarter(date(2027, 6, 30), 7) == "FY2027 Q4"
    assert fiscal_quarter(date(2026, 3, 1), 1) == "FY2026 Q1"


def test_no_asset_source_is_unsupported(store_url: str) -> None:
    store = Store(store_url)
    try:
        for metric_id in (
            "asset.age_mix",
            "asset.warranty_expiring",
            "kb.live_share",
            "problem.rca_completion",
        ):
            result, _ = compute(store, metric_id)
            assert result.value is None and result.unsupported, metric_id
    finally:
        store.close()
