"""The knowledge controls over a large knowledge base: seconds per control, by store.

Run by hand, never by the test suite:

    .venv/bin/python bench/knowledge_controls_bench.py --articles 4000 --feedback 20000 [--postgres]

Builds a store of ``--articles`` articles (two versions each, the second the latest) and
``--feedback`` feedback rows on random versions (a fifth of them flags, half of those
resolved, up to 90 days old), then runs each knowledge control once and prints its wall and
CPU seconds and its verdicts. A control that tests each article against every feedback row
grows with their product: twice the articles and feedback, four times the seconds.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.model import ArticleState, KnowledgeArticle, KnowledgeFeedback
from itcrosswalk.core.store import Store, StreamCursor

NOW = datetime(2026, 11, 30, tzinfo=UTC)
S: dict[str, Any] = {"source": "snow", "platform": "servicenow", "extra": {}}


def fill(store: Store, articles: int, feedback: int) -> None:
    rnd = random.Random(3)
    cursor = StreamCursor(watermark=NOW, access="ok")
    versions = [
        KnowledgeArticle(
            **S,
            source_id=f"a{i}v{v}",
            number=f"KB{i:07d}",
            version=f"{v + 1}.0",
            latest=v == 1,
            state=ArticleState.PUBLISHED,
            owner_group="Service Desk",
            valid_to=(NOW + timedelta(days=rnd.randrange(-60, 400))).date(),
        )
        for i in range(articles)
        for v in range(2)
    ]
    rows = [
        KnowledgeFeedback(
            **S,
            source_id=f"f{j}",
            article_id=f"a{rnd.randrange(articles)}v{rnd.randrange(2)}",
            flagged=rnd.random() < 0.2,
            resolved=rnd.random() < 0.5,
            created_at=NOW - timedelta(days=rnd.randrange(90)),
        )
        for j in range(feedback)
    ]
    for stream, entity, records in (
        ("kb_knowledge", "knowledge_article", versions),
        ("kb_feedback", "knowledge_feedback", rows),
    ):
        for start in range(0, len(records), 1000):
            store.write_page(
                source="snow",
                stream=stream,
                entity=entity,
                records=records[start : start + 1000],
                cursor=cursor,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--articles", type=int, default=4000)
    parser.add_argument("--feedback", type=int, default=20000)
    parser.add_argument("--postgres", action="store_true", help="a PostgreSQL store")
    parser.add_argument("--pg-server", default="127.0.0.1:5432", help="user@host:port of it")
    args = parser.parse_args()
    controls = load_controls()
    chosen = [controls[c] for c in sorted(controls) if c.startswith("knowledge.")]
    with tempfile.TemporaryDirectory() as tmp:
        database = None
        if args.postgres:
            import psycopg

            database = f"crosswalk_bench_{uuid.uuid4().hex[:8]}"
            admin = f"postgresql://{args.pg_server}/postgres"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{database}"')
            url = f"postgresql+psycopg://{args.pg_server}/{database}"
        else:
            url = f"sqlite:///{Path(tmp) / 'knowledge.db'}"
        store = Store(url)
        try:
            fill(store, args.articles, args.feedback)
            print(f"{store.dialect}: {args.articles} articles, {args.feedback} feedback rows")
            for control in chosen:
                started, cpu = time.perf_counter(), time.process_time()
                run = run_controls(store, [control], now=NOW, record=False)
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
                (result,) = run.results
                counts = Counter(f.status for f in result.findings)
                print(
                    f"  {control.id:28} {seconds:6.2f}s, {cpu:.2f}s CPU here  "
                    f"{dict(sorted(counts.items()))}{'  error: ' + result.error if result.error else ''}"
                )
        finally:
            store.close()
            if database is not None:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


if __name__ == "__main__":
    main()
