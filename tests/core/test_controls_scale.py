"""Controls rewritten for scale (a set found once and joined, where a subquery per row read a
whole table) answer as the queries they replaced, finding by finding, on SQLite and PostgreSQL.

The replaced queries are kept here as the reference; each is run beside the control over a
random store holding what the control tells apart (a source without the data, deleted rows,
links by either column, another source's ids), and every finding's status and reason compared.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from itcrosswalk.core.compliance import load_controls, run_controls
from itcrosswalk.core.compliance.controls import Control
from itcrosswalk.core.store import ENTITY_TABLES, Store

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _row(source: str, source_id: str, **values: Any) -> dict[str, Any]:
    return {
        "source": source,
        "platform": "servicenow",
        "source_id": source_id,
        "extra": {},
        "stream": "s",
        "deleted": False,
    } | values


def _put(store: Store, entity: str, rows: list[dict[str, Any]]) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.delete(ENTITY_TABLES[entity]))
        if rows:
            conn.execute(sa.insert(ENTITY_TABLES[entity]), rows)


def _findings(store: Store, control: Control) -> dict[str, tuple[str, str]]:
    run = run_controls(store, [control], now=NOW, record=False)
    (result,) = run.results
    assert result.error is None, result.error
    found = {f.resource: (f.status, f.reason) for f in result.findings}
    assert len(found) == len(result.findings)  # one finding per resource
    return found


def _same_as(store: Store, control_id: str, old_query: str) -> dict[str, tuple[str, str]]:
    control = load_controls()[control_id]
    found = _findings(store, control)
    assert found == _findings(store, control.model_copy(update={"query": old_query}))
    return found


UNSTAFFED_BEFORE = """\
SELECT
  w.source || '/' || w.source_id AS resource,
  COALESCE(w.number, w.name) AS label,
  w.name, w.source, w.department, w.url, w.planned_start, w.manager,
  CASE
    WHEN NOT EXISTS (SELECT 1 FROM assignments s WHERE s.deleted = FALSE AND s.source = w.source)
      THEN 'skip'
    WHEN EXISTS (
      SELECT 1 FROM assignments a
      WHERE a.deleted = FALSE AND a.source = w.source
        AND (a.project_id = w.source_id OR a.work_item_id = w.source_id)
    ) THEN 'ok'
    ELSE 'alarm'
  END AS status,
  CASE
    WHEN NOT EXISTS (SELECT 1 FROM assignments s WHERE s.deleted = FALSE AND s.source = w.source)
      THEN 'source ' || w.source || ' holds no assignments: whether the project is staffed cannot be told'
    WHEN EXISTS (
      SELECT 1 FROM assignments a
      WHERE a.deleted = FALSE AND a.source = w.source
        AND (a.project_id = w.source_id OR a.work_item_id = w.source_id)
    ) THEN 'somebody is assigned'
    ELSE 'approved, starts within 60 days, and nobody (no person, no role) is assigned'
  END AS reason
FROM work_items w
WHERE w.deleted = FALSE AND w.kind = 'project' AND w.state = 'approved'
  AND w.planned_start >= :now AND w.planned_start < :capacity_staffing_before
"""


def test_capacity_unstaffed_as_before(store_url: str) -> None:
    store = Store(store_url)
    try:
        for seed in range(3):
            rnd = random.Random(seed)
            projects = [
                _row(
                    rnd.choice(["snow", "clar", "jira"]),  # jira keeps no assignments
                    f"p{i}",
                    kind="project",
                    name=f"Project {i}",
                    state=rnd.choice(["approved", "approved", "in_progress"]),
                    phase="initiating",
                    health="green",
                    strategic_goals=[],
                    planned_start=NOW + timedelta(days=rnd.randrange(-10, 80)),
                    deleted=rnd.random() < 0.1,
                )
                for i in range(60)
            ]
            assignments = []
            for j in range(50):
                item = f"p{rnd.randrange(70)}"  # some name no project
                by = rnd.choice(["project", "work_item", "both", "task"])
                assignments.append(
                    _row(
                        rnd.choice(["snow", "clar"]),
                        f"a{j}",
                        project_id=item if by in ("project", "both") else None,
                        work_item_id=item if by in ("work_item", "both") else f"t{j}",
                        generic=False,
                        deleted=rnd.random() < 0.2,
                    )
                )
            _put(store, "work_item", projects)
            _put(store, "assignment", assignments)
            found = _same_as(store, "capacity.unstaffed", UNSTAFFED_BEFORE)
            assert {s for s, _ in found.values()} == {"ok", "alarm", "skip"}
    finally:
        store.close()
