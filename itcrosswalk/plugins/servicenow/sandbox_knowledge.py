"""The ServiceNow emulator's knowledge, problem and asset tables, as the platform serves them
(``shared/platforms/servicenow_knowledge_problem_asset.md``).

- ``kb_knowledge``: one row per article version, the versions sharing ``number``, ``latest``
  on the newest; ``sys_view_count`` and ``use_count`` carried over to later versions (summing
  them across versions counts views twice); ``valid_to`` and ``published`` as dates; an
  article published past its valid-to date stays ``published``; a few reusable blocks
  (``kb_knowledge_block``), which are not articles.
- ``kb_use`` (the view log), ``kb_feedback`` (ratings, helpful votes, flags) and
  ``m2m_kb_task`` (articles attached to tasks), each referencing one version's sys_id.
- ``problem``: the Madrid state model (101-107, ``problem_state`` equal to ``state``) with the
  RCA fields as HTML, or the legacy one (1-4, no RCA columns), as the world's instance runs;
  ``related_incidents`` a count string; incidents name their problem in ``problem_id``.
- ``alm_hardware``: ``install_status`` and ``substatus`` in the codes the instance's
  ``sys_choice`` says, with model category, planned retirement and depreciation.
- ``sys_choice``: every choice list the emulator knows, so a client reads codes, not guesses.

Only the emulator's own tables are touched; nothing here imports the adapter or mapping.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ...sandbox.knowledge import KnowledgeWorld
from .sandbox import CHOICES, CURRENCY, DATE_ONLY, DISPLAY_FIELD, REFERENCES, _sid, _ts

if TYPE_CHECKING:
    from .sandbox import ServiceNowEmulator

WORKFLOW_STATES = {
    "draft": "Draft",
    "review": "Review",
    "scheduled_publish": "Scheduled for publish",
    "published": "Published",
    "pending_retirement": "Pending retirement",
    "retired": "Retired",
    "outdated": "Outdated",
}
LEGACY_PROBLEM_STATES = {
    "1": "Open",
    "2": "Known Error",
    "3": "Pending Change",
    "4": "Closed/Resolved",
}
SUBSTATE_LABELS = {
    "available": "Available",
    "reserved": "Reserved",
    "defective": "Defective",
    "pending_disposal": "Pending disposal",
    "pending_retirement": "Pending retirement",
    "end_of_support": "End of support",
    "disposed": "Disposed",
    "sold": "Sold",
    "donated": "Donated",
    "lost": "Lost",
    "stolen": "Stolen",
}
# Which asset state each substate belongs to (``sys_choice.dependent_value``).
SUBSTATE_OF = {
    "available": "In stock",
    "reserved": "In stock",
    "defective": "In stock",
    "pending_disposal": "In stock",
    "pending_retirement": "In use",
    "end_of_support": "In use",
    "disposed": "Retired",
    "sold": "Retired",
    "donated": "Retired",
    "lost": "Missing",
    "stolen": "Missing",
}
# The Madrid problem state the world's normalized ones stand for, and the legacy code of each.
MADRID_TO_LEGACY = {"101": "1", "102": "1", "103": "1", "104": "3", "106": "4", "107": "4"}
MADRID_COLUMNS = (
    "problem_state",
    "cause_notes",
    "fix_notes",
    "workaround",
    "known_error",
    "workaround_applied",
    "resolution_code",
    "duplicate_of",
    "major_problem",
    "fix_at",
    "confirmed_at",
)

REFERENCES.update(
    {
        "kb_knowledge": {
            "author": "sys_user",
            "kb_knowledge_base": "kb_knowledge_base",
            "kb_category": "kb_category",
            "ownership_group": "sys_user_group",
            "base_version": "kb_knowledge",
        },
        "kb_use": {"article": "kb_knowledge", "user": "sys_user"},
        "kb_feedback": {"article": "kb_knowledge", "user": "sys_user"},
        "m2m_kb_task": {"task": "task", "kb_knowledge": "kb_knowledge"},
    }
)
# Problems and incidents reference more than the other task tables: their own copies.
REFERENCES["problem"] = {
    **REFERENCES["task"],
    "rfc": "change_request",
    "duplicate_of": "problem",
    "first_reported_by_task": "task",
}
REFERENCES["incident"] = {**REFERENCES["task"], "problem_id": "problem"}
REFERENCES["alm_hardware"] = {
    **REFERENCES["alm_hardware"],
    "model_category": "cmdb_model_category",
    "department": "cmn_department",
    "location": "cmn_location",
    "depreciation": "cmdb_depreciation",
}
DISPLAY_FIELD.update(
    {
        "kb_knowledge": "number",
        "kb_knowledge_base": "title",
        "kb_category": "label",
        "cmdb_model_category": "name",
        "cmdb_depreciation": "name",
        "problem": "number",
        "change_request": "number",
    }
)
DATE_ONLY.update(
    {
        "kb_knowledge": {"valid_to", "published", "retired"},
        "alm_hardware": {"purchase_date", "warranty_expiration", "retirement_date", "retired"},
    }
)
CURRENCY["alm_hardware"] = {"cost", "salvage_value", "depreciated_amount"}


def instance_choices(kw: KnowledgeWorld) -> dict[str, dict[str, dict[str, str]]]:
    """The instance's choice lists: the emulator's, with the problem states of its state model
    and the asset codes it numbers states with."""
    choices = copy.deepcopy(CHOICES)
    if kw.problem_model == "legacy":
        choices["problem"]["state"] = dict(LEGACY_PROBLEM_STATES)
    codes = {code: label for label, code in kw.asset_codes.items()}
    choices["alm_hardware"] = {"install_status": codes, "substatus": dict(SUBSTATE_LABELS)}
    choices["kb_knowledge"] = {"workflow_state": dict(WORKFLOW_STATES)}
    return choices


def render(emu: ServiceNowEmulator) -> None:
    """Add the knowledge, root-cause and asset tables to the emulator's world rendering."""
    kw = getattr(emu.world, "knowledge", None)
    if kw is None:
        return
    emu.choices = instance_choices(kw)
    if kw.view_age_days is not None:
        emu._add(
            "sys_properties",
            {
                "sys_id": _sid("prop", "glide.knowman.view_age.days"),
                "name": "glide.knowman.view_age.days",
                "value": str(kw.view_age_days),
                "type": "integer",
            },
        )
    _knowledge(emu, kw)
    _problems(emu, kw)
    _assets(emu, kw)
    _sys_choice(emu, kw)


def _knowledge(emu: ServiceNowEmulator, kw: KnowledgeWorld) -> None:
    now = emu.world.now
    bases = sorted({a.knowledge_base for a in kw.articles})
    for name in bases:
        emu._add("kb_knowledge_base", {"sys_id": _sid("kb", name), "title": name, "active": "true"})
    for name in sorted({a.category for a in kw.articles}):
        emu._add("kb_category", {"sys_id": _sid("kbcat", name), "label": name, "active": "true"})
    for article in kw.articles:
        first = article.versions[0].id
        for v in article.versions:
            emu._add(
                "kb_knowledge",
                {
                    "sys_id": v.id,
                    "number": article.number,
                    "display_number": f"{article.number} v{v.version}",
                    "version": v.version,
                    "latest": str(v.latest).lower(),
                    "base_version": first if v.id != first else "",
                    "short_description": article.title,
                    "text": f"<p><strong>{article.title}</strong></p>\n<ol><li>Open the portal.</li></ol>",
                    "workflow_state": v.state,
                    "published": v.published.isoformat() if v.published else "",
                    "valid_to": v.valid_to.isoformat() if v.valid_to else "",
                    "retired": v.updated.date().isoformat() if v.state == "retired" else "",
                    "sys_view_count": str(v.view_count),
                    "use_count": str(v.use_count),
                    "rating": "" if article.rating is None else f"{article.rating:g}",
                    "flagged": str(v.flagged).lower(),
                    "author": article.author_id,
                    "kb_knowledge_base": _sid("kb", article.knowledge_base),
                    "kb_category": _sid("kbcat", article.category),
                    "ownership_group": _sid("group", article.owner_group),
                    "active": str(v.state not in ("retired", "outdated")).lower(),
                    "article_type": "text",
                    "roles": "",
                    "can_read_user_criteria": "",
                    "cannot_read_user_criteria": "",
                    "disable_commenting": "false",
                    "disable_suggesting": "false",
                    "topic": "General",
                    "source": "",
                },
                v.created,
                v.updated,
            )
    # Reusable blocks live in kb_knowledge too; they are not articles.
    for i in range(2):
        emu._add(
            "kb_knowledge",
            {
                "sys_id": _sid("kbblock", str(i)),
                "number": f"KB00{90001 + i}",
                "short_description": f"Standard disclaimer {i + 1}",
                "workflow_state": "published",
                "published": (now - timedelta(days=900)).date().isoformat(),
                "valid_to": "2020-01-01",
                "latest": "true",
                "version": "1.0",
                "sys_view_count": "0",
                "use_count": "0",
                "active": "true",
                "sys_class_name": "kb_knowledge_block",
            },
            now - timedelta(days=900),
        )
    for use in kw.uses:
        emu._add(
            "kb_use",
            {
                "sys_id": use.id,
                "article": use.version_id,
                "user": use.user_id,
                "viewed": str(use.viewed).lower(),
                "used": str(use.used).lower(),
                "times_viewed": str(use.times_viewed),
                "search_id": "",
                "session_id": "",
            },
            use.at,
        )
    for item in kw.feedback:
        emu._add(
            "kb_feedback",
            {
                "sys_id": item.id,
                "article": item.version_id,
                "user": item.user_id,
                "rating": "" if item.rating is None else str(item.rating),
                "useful": "" if item.useful is None else ("yes" if item.useful else "no"),
                "flagged": str(item.flagged).lower(),
                "comments": item.comment,
                "reason": "inaccurate" if item.flagged else "",
                "resolved": str(item.resolved).lower(),
            },
            item.at,
            item.at + timedelta(days=3) if item.resolved else item.at,
        )
    for link in kw.links:
        emu._add(
            "m2m_kb_task",
            {"sys_id": link.id, "task": link.ticket_id, "kb_knowledge": link.version_id},
            link.at,
        )


def _problems(emu: ServiceNowEmulator, kw: KnowledgeWorld) -> None:
    legacy = kw.problem_model == "legacy"
    tickets = {t.id: t for t in emu.world.tickets}
    for row in emu.tables.get("incident", []):
        row["problem_id"] = kw.incident_problem.get(row["sys_id"], "")
    for row in emu.tables.get("problem", []):
        root = kw.root_causes.get(row["sys_id"])
        if root is None:
            continue
        ticket = tickets[row["sys_id"]]
        state = row["state"]
        row.update(
            cmdb_ci=root.ci_device or "",
            category=(root.category or "").lower(),
            related_incidents=str(len(root.incidents)),
            rfc=root.fix_change or "",
            first_reported_by_task=root.incidents[0] if root.incidents else "",
            close_notes="Closed" if ticket.closed else "",
            reopen_count="0",
        )
        if legacy:
            for column in MADRID_COLUMNS:
                row.pop(column, None)
            code = MADRID_TO_LEGACY.get(state, "1")
            if code == "1" and root.known_error:
                code = "2"  # the old model keeps a known error as a state
            row["state"] = code
            continue
        row.update(
            problem_state=state,
            cause_notes=root.cause,
            fix_notes=root.fix,
            workaround=root.workaround,
            known_error=str(root.known_error).lower(),
            workaround_applied=str(bool(root.workaround)).lower(),
            resolution_code=root.resolution_code,
            duplicate_of=root.duplicate_of or "",
            major_problem="false",
            fix_at=_ts(ticket.resolved) if root.fix else "",
            confirmed_at=_ts(ticket.responded),
        )


def _assets(emu: ServiceNowEmulator, kw: KnowledgeWorld) -> None:
    for name in sorted({life.model_category for life in kw.assets.values()}):
        emu._add("cmdb_model_category", {"sys_id": _sid("modelcat", name), "name": name})
    emu._add(
        "cmdb_depreciation", {"sys_id": _sid("depr", "Straight Line"), "name": "Straight Line"}
    )
    known = {row["name"] for row in emu.tables.get("cmn_location", [])}
    for life in kw.assets.values():
        if life.location not in known:
            emu._add("cmn_location", {"sys_id": _sid("loc", life.location), "name": life.location})
            known.add(life.location)
    devices = {d.id: d for d in emu.world.devices}
    for row in emu.tables.get("alm_hardware", []):
        life = kw.assets.get(row["ci"])
        if life is None:
            continue
        device = devices[row["ci"]]
        row.update(
            install_status=kw.asset_codes[life.state],
            substatus=life.substate,
            model_category=_sid("modelcat", life.model_category),
            department=_sid("dept", device.department),
            location=_sid("loc", life.location),
            retirement_date=life.planned_retirement.isoformat() if life.planned_retirement else "",
            retired=life.retired_on.isoformat() if life.retired_on else "",
            depreciation=_sid("depr", life.depreciation),
            salvage_value=f"{life.salvage_value:.2f}",
            depreciated_amount=f"{life.depreciated_amount:.2f}",
            cost_cc="USD",
            acquisition_method="Purchase",
        )


def _sys_choice(emu: ServiceNowEmulator, kw: KnowledgeWorld) -> None:
    rows: list[dict[str, Any]] = []
    choices: dict[str, dict[str, dict[str, str]]] = emu.choices
    for table, elements in sorted(choices.items()):
        # Asset states and substates are alm_asset's columns, which alm_hardware extends.
        name = "alm_asset" if table == "alm_hardware" else table
        for element, labels in sorted(elements.items()):
            for sequence, (value, label) in enumerate(labels.items()):
                dependent = ""
                if name == "alm_asset" and element == "substatus":
                    dependent = kw.asset_codes.get(SUBSTATE_OF.get(value, ""), "")
                rows.append(
                    {
                        "sys_id": _sid("choice", name, element, value),
                        "name": name,
                        "element": element,
                        "value": value,
                        "label": label,
                        "sequence": str(sequence * 10),
                        "inactive": "false",
                        "dependent_value": dependent,
                        "language": "en",
                    }
                )
    for row in rows:
        emu._add("sys_choice", row, emu.world.now - timedelta(days=2000))
