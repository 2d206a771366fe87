"""The governance check: which records, on any platform, miss what their stage requires.

Each template with a ``check`` names the records it holds to account (an entity and kinds),
what places a record at a stage (its phase, or its state where the platform has no phase),
and what each stage needs. The check reads the common model in the store, so a project in
ServiceNow, an epic in Jira Align and a project in Project Server are judged by one rule.

A field that no record of a source has is called out separately: that is a gap in what the
platform (or its mapping) provides, not a project manager's omission.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from ..model import ENTITIES
from ..store import Store
from .model import CheckSpec, Requirement, Template

FINDING_COLUMNS = [
    "template",
    "source",
    "platform",
    "number",
    "name",
    "kind",
    "stage",
    "ok",
    "missing",
    "not_provided",
    "detail",
]


def is_present(value: Any) -> bool:
    """Set: not null, not an empty string or list, not the ``unknown`` of an enumeration."""
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip() not in ("", "unknown")
    if isinstance(value, list | tuple | dict):
        return len(value) > 0
    return True


def satisfies(value: Any, rule: str) -> bool:
    """Whether ``value`` meets a requirement's rule."""
    if rule == "approved":
        return value is True
    if rule == "positive":
        try:
            return value is not None and float(value) > 0
        except (TypeError, ValueError):
            return False
    return is_present(value)


def _records(store: Store, spec: CheckSpec, source: str | None) -> Iterator[dict[str, Any]]:
    table = store.table(spec.entity)
    names = list(ENTITIES[spec.entity].model_fields)
    query = sa.select(*[table.c[n] for n in names]).where(table.c.deleted.is_(False))
    if spec.kinds and "kind" in table.c:
        query = query.where(table.c.kind.in_(spec.kinds))
    if spec.skip_states:
        query = query.where(sa.or_(table.c.state.is_(None), table.c.state.not_in(spec.skip_states)))
    if source is not None:
        query = query.where(table.c.source == source)
    query = query.order_by(table.c.source, table.c.number, table.c.source_id)
    with store.engine.connect() as conn:
        for row in conn.execute(query):
            yield dict(row._mapping)


def _place(spec: CheckSpec, record: Mapping[str, Any]) -> tuple[str | None, str]:
    """The stage value of a record, and the field it came from."""
    value = record.get(spec.stage_field)
    if is_present(value):
        return str(value), spec.stage_field
    state = record.get("state")
    if spec.stage_fallback and state in spec.stage_fallback:
        return spec.stage_fallback[state], "state"
    return None, spec.stage_field


def check_template(
    store: Store, template: Template, *, source: str | None = None
) -> list[dict[str, Any]]:
    """One finding per record the template's check covers (passing ones included)."""
    spec = template.check
    if spec is None:
        return []
    records = list(_records(store, spec, source))
    fields = {need.field for stage in spec.stages for need in stage.needs()}
    provided: set[tuple[str, str]] = set()
    for record in records:
        for name in fields:
            if is_present(record.get(name)) or record.get(name) is False:
                provided.add((record["source"], name))
    findings: list[dict[str, Any]] = []
    for record in records:
        value, came_from = _place(spec, record)
        placed = spec.stage_for(value)
        base = {
            "template": template.id,
            "source": record["source"],
            "platform": record["platform"],
            "entity": spec.entity,
            "source_id": record["source_id"],
            "number": record.get("number"),
            "name": record.get("name") or record.get("title"),
            "kind": record.get("kind"),
            "url": record.get("url"),
        }
        if placed is None:
            if value is None and spec.stage_fallback:
                # A lifecycle check cannot place what has neither a phase nor a known state.
                findings.append(
                    {
                        **base,
                        "stage": None,
                        "stage_from": came_from,
                        "ok": False,
                        "missing": [spec.stage_field],
                        "not_provided": [],
                        "detail": f"no {spec.stage_field} and no known state to place it at a stage",
                    }
                )
            continue
        index, stage = placed
        needs = spec.needs(index)
        missing = [n for n in needs if not satisfies(record.get(n.field), n.rule)]
        gaps = [n.field for n in missing if (record["source"], n.field) not in provided]
        findings.append(
            {
                **base,
                "stage": stage.id,
                "stage_from": came_from,
                "ok": not missing,
                "missing": [n.field for n in missing],
                "not_provided": gaps,
                "detail": _detail(stage.title or stage.id, missing, gaps, record["source"]),
            }
        )
    return findings


def _detail(stage: str, missing: list[Requirement], gaps: list[str], source: str) -> str:
    if not missing:
        return f"{stage}: complete"
    text = f"{stage} needs: " + ", ".join(n.title for n in missing)
    if gaps:
        text += f" (no record from {source} has {', '.join(gaps)}: a platform or mapping gap)"
    return text


def run_checks(
    store: Store, templates: Iterable[Template], *, source: str | None = None
) -> list[dict[str, Any]]:
    """Findings of every template given that has a check."""
    findings: list[dict[str, Any]] = []
    for template in templates:
        findings.extend(check_template(store, template, source=source))
    return findings
