"""The knowledge metrics' per-record tests, looked up in a set found once, answer as the
correlated EXISTS they replaced did, record by record, on SQLite and PostgreSQL.

The EXISTS forms (an article's version with a view, an open flag, a ticket with a linked
article) are kept here as the reference; a random store with what can go wrong (articles
without a number, deleted versions and rows, another source's ids, rows outside the window,
unresolved flags marked NULL) is judged by both, and by their negations (``NOT IN`` is not
``NOT EXISTS`` when the set holds a NULL).
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from itcrosswalk.core.config import MetricsConfig
from itcrosswalk.core.metrics import MetricContext
from itcrosswalk.core.metrics.knowledge import (
    _has_article,
    _open_flag,
    _open_problem_on,
    _used_since,
)
from itcrosswalk.core.store import ENTITY_TABLES, Store
from tests.core.test_controls_scale import NOW, _row


def _random_store(url: str, seed: int) -> Store:
    rnd = random.Random(seed)
    store = Store(url)
    sources = ["snow", "other"]
    articles, uses, feedback, links, tickets = [], [], [], [], []
    for i in range(40):
        source = rnd.choice(sources)
        number = None if rnd.random() < 0.1 else f"KB{rnd.randrange(15)}"  # numbers shared
        articles.append(
            _row(
                source,
                f"a{i}",
                number=number,
                latest=rnd.random() < 0.5,
                state=rnd.choice(["published", "retired", "outdated"]),
                deleted=rnd.random() < 0.15,
            )
        )
    for j in range(200):
        made = NOW - timedelta(days=rnd.randrange(-5, 200))
        common = {
            "article_id": f"a{rnd.randrange(45)}",  # some name no article
            "deleted": rnd.random() < 0.15,
            "created_at": None if rnd.random() < 0.05 else made,
        }
        uses.append(_row(rnd.choice(sources), f"u{j}", **common))
        feedback.append(
            _row(
                rnd.choice(sources),
                f"f{j}",
                **common,
                flagged=rnd.choice([True, False, None]),
                resolved=rnd.choice([True, False, None]),
            )
        )
    for k in range(60):
        tickets.append(_row(rnd.choice(sources), f"t{k}", kind="incident", state="closed"))
    for m in range(40):
        links.append(
            _row(
                rnd.choice(sources),
                f"l{m}",
                article_id=f"a{rnd.randrange(40)}",
                task_id=f"t{rnd.randrange(70)}",
                deleted=rnd.random() < 0.2,
            )
        )
    with store.engine.begin() as conn:
        for entity, rows in (
            ("knowledge_article", articles),
            ("knowledge_use", uses),
            ("knowledge_feedback", feedback),
            ("knowledge_link", links),
            ("ticket", tickets),
        ):
            conn.execute(sa.insert(ENTITY_TABLES[entity]), rows)
    return store


def _versions_of(t: Any) -> Any:
    v = ENTITY_TABLES["knowledge_article"].alias("v")
    return v, sa.and_(v.c.source == t.c.source, v.c.number == t.c.number, v.c.deleted.is_(False))


def _used_since_exists(t: Any, ctx: MetricContext) -> Any:
    u = ENTITY_TABLES["knowledge_use"].alias("u")
    v, same_article = _versions_of(t)
    cutoff = ctx.as_of - timedelta(days=ctx.policy.kb_unused_days)
    return (
        sa.exists()
        .where(
            u.c.source == t.c.source,
            u.c.deleted.is_(False),
            u.c.created_at >= cutoff,
            u.c.created_at <= ctx.as_of,
            u.c.article_id == v.c.source_id,
        )
        .where(same_article)
    )


def _open_flag_exists(t: Any, ctx: MetricContext, older_than: int = 0) -> Any:
    f = ENTITY_TABLES["knowledge_feedback"].alias("f")
    v, same_article = _versions_of(t)
    where = [
        f.c.source == t.c.source,
        f.c.deleted.is_(False),
        f.c.flagged.is_(True),
        sa.func.coalesce(f.c.resolved, False).is_(False),
        f.c.article_id == v.c.source_id,
    ]
    if older_than:
        where.append(f.c.created_at < ctx.as_of - timedelta(days=older_than))
    return sa.exists().where(*where).where(same_article)


def _has_article_exists(t: Any, ctx: MetricContext) -> Any:
    link = ENTITY_TABLES["knowledge_link"].alias("l")
    return sa.exists().where(
        link.c.source == t.c.source, link.c.task_id == t.c.source_id, link.c.deleted.is_(False)
    )


def _answers(store: Store, t: Any, condition: Any) -> dict[tuple[str, str], tuple[int, int]]:
    """Per record: (1 if the condition holds, 1 if its negation does), as the metrics read it
    (a CASE: NULL counts as not holding)."""
    query = sa.select(
        t.c.source,
        t.c.source_id,
        sa.case((condition, 1), else_=0),
        sa.case((sa.not_(condition), 1), else_=0),
    )
    with store.engine.connect() as conn:
        return {(r[0], r[1]): (r[2], r[3]) for r in conn.execute(query)}


def test_the_knowledge_sets_answer_as_the_correlated_exists(store_url: str) -> None:
    policy = MetricsConfig()
    for seed in range(3):
        store = _random_store(store_url, seed)
        try:
            ctx = MetricContext(store=store, policy=policy, now=NOW)
            a = ENTITY_TABLES["knowledge_article"]
            t = ENTITY_TABLES["ticket"]
            cases = [
                (a, _used_since(a, ctx), _used_since_exists(a, ctx)),
                (a, _open_flag(a, ctx), _open_flag_exists(a, ctx)),
                (a, _open_flag(a, ctx, 30), _open_flag_exists(a, ctx, 30)),
                (t, _has_article(t, ctx), _has_article_exists(t, ctx)),
            ]
            for table, new, old in cases:
                found, expected = _answers(store, table, new), _answers(store, table, old)
                assert found == expected
                # The store is one where each answer occurs: the test tells them apart.
                assert {v for v, _ in expected.values()} == {0, 1}
            with store.engine.begin() as conn:  # the next seed's store starts empty
                for table in ENTITY_TABLES.values():
                    conn.execute(sa.delete(table))
        finally:
            store.close()


def _open_problem_on_exists(t: Any, ctx: MetricContext) -> Any:
    def on(column: str) -> Any:
        p = ENTITY_TABLES["ticket"].alias(f"p_{column}")
        return sa.exists().where(
            p.c.kind == "problem",
            p.c[column] == t.c[column],
            p.c.source == t.c.source,
            p.c.deleted.is_(False),
            p.c.state.in_(("new", "in_progress", "on_hold")),
            p.c.opened_at <= t.c.opened_at,
        )

    return sa.or_(
        sa.and_(t.c.device_name.is_not(None), on("device_name")),
        sa.and_(t.c.category.is_not(None), on("category")),
    )


def test_repeat_incidents_answer_as_the_exists_over_the_problems(store_url: str) -> None:
    """The earliest open problem per CI and category, compared with each incident, says what
    the EXISTS over the problems said (problems closed, deleted, of another source, opened
    after the incident or with no opened time; incidents with no CI, category or time)."""
    rnd = random.Random(11)
    rows = []
    for i in range(400):
        rows.append(
            _row(
                rnd.choice(["snow", "other"]),
                f"t{i}",
                kind=rnd.choice(["incident", "incident", "problem", "request"]),
                state=rnd.choice(["new", "in_progress", "on_hold", "resolved", "closed"]),
                category=rnd.choice([None, "Network", "Email", "Printing"]),
                device_name=rnd.choice([None, *(f"CI{k}" for k in range(12))]),
                opened_at=None
                if rnd.random() < 0.05
                else NOW - timedelta(days=rnd.randrange(0, 100)),
                deleted=rnd.random() < 0.1,
            )
        )
    store = Store(store_url)
    try:
        with store.engine.begin() as conn:
            conn.execute(sa.insert(ENTITY_TABLES["ticket"]), rows)
        ctx = MetricContext(store=store, policy=MetricsConfig(), now=NOW)
        t = ENTITY_TABLES["ticket"]
        found = _answers(store, t, _open_problem_on(t, ctx))
        expected = _answers(store, t, _open_problem_on_exists(t, ctx))
        assert found == expected
        assert {v for v, _ in expected.values()} == {0, 1}
    finally:
        store.close()
