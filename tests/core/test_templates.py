"""Templates: the standard set, plugins' and the City's own, the governance check, rendering,
and applying a form through whatever writer a platform's adapter offers."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.adapter import Adapter, WriteResult
from itcrosswalk.core.config import parse_config
from itcrosswalk.core.errors import ConfigError
from itcrosswalk.core.model import Demand, Ticket, WorkItem
from itcrosswalk.core.store import Store
from itcrosswalk.core.templates.apply import (
    TemplateInputError,
    apply,
    correlation_id,
    parse_assignments,
    prepare,
)
from itcrosswalk.core.templates.check import check_template, run_checks
from itcrosswalk.core.templates.loader import load_catalog
from itcrosswalk.core.templates.render import md_escape, render
from itcrosswalk.hookspecs import hookimpl
from itcrosswalk.registry import make_registry

STANDARD = {
    "project-intake",
    "business-case",
    "project-charter",
    "status-report",
    "closure-report",
    "stage-gates",
    "problem-rca",
    "knowledge-article",
}


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


@pytest.fixture
def pm() -> Any:
    return make_registry(builtins=(), entry_points_group=None)


def project(source: str, platform: str, sid: str, **fields: Any) -> WorkItem:
    base: dict[str, Any] = {
        "source": source,
        "platform": platform,
        "source_id": sid,
        "kind": "project",
        "name": f"Project {sid}",
        "number": sid.upper(),
    }
    base.update(fields)
    return WorkItem(**base)


COMPLETE = {
    "department": "Water",
    "manager": "Maria Lopez",
    "planned_start": at("2026-01-05"),
    "planned_finish": at("2026-06-30"),
    "budget": 250000.0,
    "business_case_approved": True,
    "health": "green",
    "percent_complete": 40.0,
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    snow = [
        # executing, every gate met
        project("snow", "servicenow", "p1", phase="executing", state="in_progress", **COMPLETE),
        # planning, no manager; the execution gate's budget does not apply yet
        project(
            "snow",
            "servicenow",
            "p2",
            phase="planning",
            state="approved",
            department="Fire",
            planned_start=at("2026-02-01"),
            planned_finish=at("2026-08-01"),
        ),
        # cancelled: not held to anything
        project("snow", "servicenow", "p3", phase="executing", state="cancelled"),
        # a task is not a project
        WorkItem(
            source="snow",
            platform="servicenow",
            source_id="t1",
            kind="task",
            name="A task",
            parent_id="p1",
            state="in_progress",
        ),
        WorkItem(
            source="snow",
            platform="servicenow",
            source_id="m1",
            kind="milestone",
            name="Design <approved>",
            parent_id="p1",
            state="done",
            planned_finish=at("2026-02-15"),
            actual_finish=at("2026-02-20"),
        ),
    ]
    po = [
        # no phase on this platform: the state places it (in_progress -> execution);
        # zero budget is no budget, and no record of this source says whether the case is approved
        project(
            "pwa",
            "project_online",
            "q1",
            state="in_progress",
            **{**COMPLETE, "budget": 0.0, "business_case_approved": None, "health": "unknown"},
        ),
        # neither phase nor known state: cannot be placed at a gate
        project("pwa", "project_online", "q2", department="Parks"),
        # done, closure facts missing
        project(
            "pwa",
            "project_online",
            "q3",
            state="done",
            **{**COMPLETE, "business_case_approved": None},
            actual_start=at("2026-01-06"),
        ),
    ]
    store.write_page(source="snow", stream="pm_project", entity="work_item", records=snow)
    store.write_page(source="pwa", stream="Projects", entity="work_item", records=po)
    store.write_page(
        source="snow",
        stream="dmn_demand",
        entity="demand",
        records=[
            Demand(
                source="snow",
                platform="servicenow",
                source_id="d1",
                name="New permits portal",
                state="approved",
                department="ITD",
                requester="Ann Lee",
                estimated_cost=90000.0,
                score=71.5,
                decided_at=at("2026-01-10"),
                business_case_approved=False,
                submitted_at=at("2025-12-01"),
            ),
            Demand(
                source="snow",
                platform="servicenow",
                source_id="d2",
                name="Draft idea",
                state="draft",
            ),
        ],
    )
    store.write_page(
        source="snow",
        stream="problem",
        entity="ticket",
        records=[
            Ticket(
                source="snow",
                platform="servicenow",
                source_id="pr1",
                kind="problem",
                number="PRB0010001",
                title="Mail outages",
                state="resolved",
                assignment_group="Messaging",
                category="email",
            )
        ],
    )
    yield store
    store.close()


# -- loading ------------------------------------------------------------------------------------


def test_the_standard_templates_load_and_name_real_model_fields(pm: Any) -> None:
    catalog = load_catalog(None, pm)
    assert set(catalog.templates) == STANDARD
    assert catalog.problems == []
    assert catalog.get("project-intake").target == "demand"
    assert catalog.get("project-charter").target == "work_item:project"
    gates = catalog.get("stage-gates").check
    assert gates is not None
    assert [s.id for s in gates.stages] == ["initiation", "planning", "execution", "closure"]
    execution = {(n.field, n.rule) for n in gates.needs(2)}
    # executing requires an approved business case, a manager, a budget and planned dates
    assert {
        ("business_case_approved", "approved"),
        ("manager", "present"),
        ("budget", "positive"),
        ("planned_start", "present"),
        ("planned_finish", "present"),
    } <= execution
    with pytest.raises(ConfigError, match="no template named 'nope'.*stage-gates"):
        catalog.get("nope")


class TemplatePlugin:
    """A tiny plugin adding one template and overriding a standard one."""

    @hookimpl
    def register_templates(self, register: Any) -> None:
        register({"id": "incident-report", "title": "Major incident report", "kind": "document"})
        register(
            {
                "id": "status-report",
                "title": "Weekly status (plugin)",
                "kind": "report",
                "render": "status-report",
            }
        )
        register(
            {
                "id": "broken",
                "title": "Names a field no model has",
                "target": "demand",
                "fields": [{"name": "colour"}],
            }
        )


def test_plugins_add_and_override_templates_through_register_templates(pm: Any) -> None:
    pm.register(TemplatePlugin(), name="tplplugin")
    catalog = load_catalog(None, pm)
    assert catalog.get("incident-report").origin == "plugin"
    replaced = catalog.get("status-report")
    assert replaced.title == "Weekly status (plugin)"
    assert replaced.overrides == "built-in"
    assert "broken" not in catalog.templates
    assert any("colour" in p and "not fields of demand" in p for p in catalog.problems)
    assert STANDARD <= set(catalog.templates)


def test_the_citys_folder_extends_and_overrides_and_a_bad_file_is_reported(
    tmp_path: Path, pm: Any
) -> None:
    folder = tmp_path / "city-templates"
    folder.mkdir()
    (folder / "gates.yaml").write_text(
        "id: stage-gates\n"
        "title: City gates\n"
        "kind: gates\n"
        "check:\n"
        "  entity: work_item\n"
        "  kinds: [project]\n"
        "  stages:\n"
        "    - id: initiation\n"
        "      match: [initiating]\n"
        "      requires: [{field: sponsor}]\n"
    )
    (folder / "more.yml").write_text(
        "- id: change-request-form\n  title: Change request\n  kind: form\n  target: ticket:incident\n"
        "  fields: [{name: title, required: true}]\n"
        "- id: bad\n  title: Bad\n  check: {entity: work_item, stages: [{id: x, requires: [{field: nope}]}]}\n"
    )
    (folder / "broken.yaml").write_text("id: [unclosed\n")
    config = parse_config(
        f'[store]\nurl = "sqlite:///x.db"\n[templates]\nfolders = ["{folder.name}"]\n',
        tmp_path / "crosswalk.toml",
    )
    catalog = load_catalog(config, pm)
    gates = catalog.get("stage-gates")
    assert gates.title == "City gates" and gates.overrides == "built-in"
    assert gates.origin.endswith("gates.yaml")
    assert catalog.get("change-request-form").target == "ticket:incident"
    assert any("broken.yaml" in p and "YAML" in p for p in catalog.problems)
    assert any("more.yml" in p and "nope" in p for p in catalog.problems)


# -- the governance check -------------------------------------------------------------------------


def by_item(findings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f["source_id"]: f for f in findings}


def test_stage_gates_hold_each_project_to_every_gate_up_to_its_phase(store: Store, pm: Any) -> None:
    gates = load_catalog(None, pm).get("stage-gates")
    found = by_item(check_template(store, gates))
    assert set(found) == {"p1", "p2", "q1", "q2", "q3"}  # not the cancelled one, not tasks
    assert found["p1"]["ok"] and found["p1"]["stage"] == "execution"
    assert found["p1"]["missing"] == []
    assert found["p2"]["stage"] == "planning" and found["p2"]["missing"] == ["manager"]
    q1 = found["q1"]
    assert q1["stage"] == "execution" and q1["stage_from"] == "state"
    assert set(q1["missing"]) == {"budget", "business_case_approved"}
    # nothing from source pwa records an approval: a platform gap, said so
    assert q1["not_provided"] == ["business_case_approved"]
    assert "budget above zero" in q1["detail"] and "platform or mapping gap" in q1["detail"]
    assert found["q2"]["ok"] is False and found["q2"]["missing"] == ["phase"]
    q3 = found["q3"]
    assert q3["stage"] == "closure"
    assert set(q3["missing"]) == {"actual_cost", "business_case_approved"}


def test_every_checking_template_runs_and_only_covers_its_stage(store: Store, pm: Any) -> None:
    catalog = load_catalog(None, pm)
    findings = run_checks(store, catalog.with_checks())
    status = by_item(f for f in findings if f["template"] == "status-report")  # type: ignore[arg-type]
    assert set(status) == {"p1", "q1"}  # only projects in progress
    assert status["q1"]["missing"] == ["health"]
    closure = by_item([f for f in findings if f["template"] == "closure-report"])
    assert set(closure) == {"q3"}
    assert set(closure["q3"]["missing"]) == {"actual_finish", "actual_cost"}
    case = by_item([f for f in findings if f["template"] == "business-case"])
    assert set(case) == {"d1"}  # drafts are not screened yet
    assert case["d1"]["missing"] == ["business_case_approved"]
    rca = by_item([f for f in findings if f["template"] == "problem-rca"])
    assert set(rca["pr1"]["missing"]) == {"assignee", "resolved_at"}
    only_pwa = run_checks(store, [catalog.get("stage-gates")], source="pwa")
    assert {f["source"] for f in only_pwa} == {"pwa"}


# -- rendering ------------------------------------------------------------------------------------


@pytest.fixture
def hostile(store: Store) -> Store:
    store.write_page(
        source="snow",
        stream="pm_project",
        entity="work_item",
        records=[
            WorkItem(
                source="snow",
                platform="servicenow",
                source_id="pf",
                kind="portfolio",
                name="Capital <b>portfolio</b>",
            ),
            project(
                "snow",
                "servicenow",
                "c1",
                parent_id="pf",
                name="<script>alert(1)</script> | pipes *bold*",
                health="red",
                budget=100000.0,
                actual_cost=60000.0,
                forecast_cost=110000.0,
                planned_value=50000.0,
                earned_value=40000.0,
            ),
            project(
                "snow",
                "servicenow",
                "c2",
                parent_id="pf",
                name="Fleet yard",
                health="green",
                budget=50000.0,
                actual_cost=20000.0,
                planned_value=30000.0,
                earned_value=36000.0,
            ),
        ],
    )
    return store


def test_the_status_report_of_one_item_in_markdown_and_html(store: Store, pm: Any) -> None:
    report = load_catalog(None, pm).get("status-report")
    md = render(report, "md", store=store, item="snow:P1")  # by number
    assert "# Project status report: Project p1" in md
    assert "| green | in\\_progress | executing | 40% | Maria Lopez | Water |" in md
    assert "$250,000" in md
    assert "Design \\<approved\\>" in md  # the milestone, escaped
    assert "Open tasks: 1." in md
    html = render(report, "html", store=store, item="snow:p1")
    assert html.startswith("<!DOCTYPE html>")
    assert "Design &lt;approved&gt;" in html
    assert 'class="health health-green"' in html
    with pytest.raises(ConfigError, match="no record 'zz' from source 'snow'"):
        render(report, "md", store=store, item="snow:zz")
    with pytest.raises(ConfigError, match="SOURCE:ID"):
        render(report, "md", store=store, item="p1")


def test_a_portfolio_report_rolls_up_and_escapes_what_came_from_a_platform(
    hostile: Store, pm: Any
) -> None:
    report = load_catalog(None, pm).get("status-report")
    html = render(report, "html", store=hostile, portfolio="snow:pf")
    assert "<script>" not in html and "<b>portfolio" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Capital &lt;b&gt;portfolio&lt;/b&gt;" in html
    # budget 100,000 + 50,000; actual 60,000 + 20,000; SPI (40k+36k)/(50k+30k) = 0.95,
    # CPI 76k/80k = 0.95; forecast only where recorded: 110,000
    assert "$150,000" in html and "$80,000" in html and "$110,000" in html
    assert "0.95 / 0.95" in html
    md = render(report, "md", store=hostile, portfolio="snow:pf")
    assert "\\<script\\>alert(1)\\</script\\> \\| pipes \\*bold\\*" in md
    lines = [line for line in md.splitlines() if "pipes" in line]
    assert lines and lines[0].count(" | ") == 8  # the pipe did not add a column
    assert md.index("pipes") < md.index("Fleet yard")  # red first


def test_blank_forms_and_checklists_render_and_a_record_fills_a_document(
    store: Store, pm: Any
) -> None:
    catalog = load_catalog(None, pm)
    checklist = render(catalog.get("knowledge-article"), "md")
    assert "- [ ] An owner and a review date are set" in checklist
    gates = render(catalog.get("stage-gates"), "html")
    assert "Execution" in gates and "business case (approval)" in gates
    closure = render(catalog.get("closure-report"), "md", store=store, item="pwa:q3")
    assert "# Project closure report: Project q3" in closure
    assert "| Actual start | 2026-01-06 |" in closure
    assert md_escape("a|b\n*c*") == "a\\|b \\*c\\*"


# -- applying a form through any platform's writer --------------------------------------------------


class RecordingWriter:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, Any], str, bool]] = []

    def __call__(
        self, fields: Mapping[str, Any], *, correlation_id: str, dry_run: bool = False
    ) -> WriteResult:
        self.calls.append((dict(fields), correlation_id, dry_run))
        return WriteResult(
            action="dry_run" if dry_run else "created",
            entity="demand",
            source_id=None if dry_run else "X1",
        )


class FakeAdapter(Adapter):
    platform = "elsewhere"

    def __init__(self, writers: dict[str, Any]) -> None:
        super().__init__(type("S", (), {"name": "other"})(), lambda ref, field=None: ref)
        self._writers = writers

    @property
    def writers(self) -> dict[str, Any]:
        return self._writers


def test_apply_validates_converts_and_dispatches_by_the_templates_target(pm: Any) -> None:
    intake = load_catalog(None, pm).get("project-intake")
    writer = RecordingWriter()
    adapter = FakeAdapter({"demand": writer})
    given = parse_assignments(
        [
            "name=Permit portal",
            "department=ITD",
            "requester=ann@city.example.gov",
            "description=Online permits",
            "priority=2",
            "estimated_cost=90000.50",
        ]
    )
    applied = apply(intake, adapter, given)
    result, cid, values = applied.result, applied.correlation_id, applied.values
    assert result.action == "created" and applied.writer == "demand"
    assert values["priority"] == 2 and values["estimated_cost"] == 90000.5
    assert writer.calls == [(values, cid, False)]
    # the same key fields, spelt with other case and spaces, are the same request
    again = prepare(intake, {**given, "name": "  permit   PORTAL ", "priority": "3"})
    assert correlation_id(intake, again) == cid
    assert correlation_id(intake, {**values, "department": "Water"}) != cid
    apply(intake, adapter, given, correlation="ticket-42", dry_run=True)
    assert writer.calls[-1][1:] == ("ticket-42", True)


def test_apply_names_every_missing_field_and_refuses_what_a_platform_cannot_create(
    pm: Any,
) -> None:
    catalog = load_catalog(None, pm)
    adapter = FakeAdapter({"demand": RecordingWriter()})
    with pytest.raises(TemplateInputError, match="needs department, requester, description"):
        apply(catalog.get("project-intake"), adapter, {"name": "x"})
    with pytest.raises(TemplateInputError, match="no field colour"):
        prepare(catalog.get("project-intake"), {"colour": "red"})
    with pytest.raises(TemplateInputError, match="planned_start: 'soon' is not valid"):
        prepare(catalog.get("project-charter"), {"planned_start": "soon"})
    with pytest.raises(TemplateInputError, match="priority: '9' must be from 1 to 5"):
        prepare(catalog.get("project-intake"), {"priority": "9"})
    with pytest.raises(TemplateInputError, match="checklist: it creates no record"):
        prepare(catalog.get("knowledge-article"), {})
    charter = catalog.get("project-charter")
    fields = {
        "name": "Yard",
        "department": "Fleet",
        "manager": "m@x",
        "description": "d",
        "planned_start": "2026-03-01",
        "planned_finish": "2026-04-01",
    }
    with pytest.raises(
        ConfigError,
        match=r"cannot create work_item:project or work_item:epic: its writers create demand",
    ):
        apply(charter, adapter, fields)
    values = prepare(charter, fields)
    assert values["planned_start"] == at("2026-03-01")
    assert values["phase"] == "initiating"  # the template's default
    with pytest.raises(TemplateInputError, match="field=value"):
        parse_assignments(["novalue"])


def test_a_platform_without_projects_takes_the_charter_as_its_alternate(pm: Any) -> None:
    charter = load_catalog(None, pm).get("project-charter")
    epics, projects = RecordingWriter(), RecordingWriter()
    fields = {
        "name": "Yard",
        "department": "Fleet",
        "manager": "m@x",
        "description": "d",
        "planned_start": "2026-03-01",
        "planned_finish": "2026-04-01",
    }
    applied = apply(charter, FakeAdapter({"work_item:epic": epics}), fields)
    assert applied.writer == "work_item:epic" and len(epics.calls) == 1
    both = FakeAdapter({"work_item:epic": epics, "work_item:project": projects})
    assert apply(charter, both, fields).writer == "work_item:project"  # the target first
    assert len(epics.calls) == 1 and len(projects.calls) == 1
