"""Moving a portfolio between platforms (Project Online to Planner premium): what arrived, what
is missing, what differs, and what the target cannot hold.

It reads only the store: both sources synced, their work items compared. Projects are matched
by a mapping file (source id or name -> target id or name) first, then by name (case and
spacing ignored), a name held by several projects on either side going to the pair whose dates
lie closest. Within a matched pair tasks and milestones are matched by name. What differs:
planned start and finish (by calendar day), progress (by more than a point), the number of
tasks, tasks missing, task dates, and the assignments on each task where both sources hold
assignments (where either holds none, the comparison says unverified, never "equal"). What the target cannot hold: fields
the source's projects carry that no record of the target source holds (cost, baselines, health,
custom fields), named with how many projects carry them.

``import_items`` turns the missing projects into the fields a writer takes (name, dates,
description and tasks), for ``crosswalk migrate plan`` and ``apply``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from .store import Store

PROGRESS_TOLERANCE = 1.0
"""Percentage points of progress two platforms may differ by (rounding, integer percents)."""
HOLDABLE = (
    "budget",
    "actual_cost",
    "forecast_cost",
    "baseline_cost",
    "planned_value",
    "earned_value",
    "baseline_start",
    "baseline_finish",
    "health",
    "phase",
    "sponsor",
    "department",
    "strategic_goals",
    "business_case_approved",
)
"""Project fields checked for "the target cannot hold it"."""
TASK_KINDS = ("task", "milestone")


def _key(name: Any) -> str:
    return " ".join(str(name or "").split()).casefold()


def _day(moment: Any) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.date().isoformat()


def _filled(value: Any) -> bool:
    return value not in (None, "", [], {}, "unknown")


@dataclass
class Difference:
    """One way a moved project differs from its source."""

    project: str
    source_id: str
    target_id: str
    field: str
    source_value: Any
    target_value: Any


@dataclass
class MigrationReport:
    """The comparison of ``source_from`` (moved from) with ``source_to`` (moved to)."""

    source_from: str
    source_to: str
    projects: int = 0
    matched: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, Any]] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    cannot_hold: list[dict[str, Any]] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """3 when any project is missing from the target (the move is not complete), or when
        the source holds no project at all (nothing was verified), else 0."""
        return 3 if self.missing or not self.projects else 0

    def as_json(self) -> dict[str, Any]:
        return {
            "source_from": self.source_from,
            "source_to": self.source_to,
            "projects": self.projects,
            "moved": len(self.matched),
            "missing": self.missing,
            "differences": [asdict(d) for d in self.differences],
            "cannot_hold": self.cannot_hold,
            "unverified": self.unverified,
            "matched": self.matched,
        }

    def rows(self) -> list[dict[str, Any]]:
        """One line per finding, for a table."""
        out = [
            {
                "finding": "missing",
                "project": m["name"],
                "field": "",
                "from": m["planned_start"],
                "to": "",
            }
            for m in self.missing
        ]
        out += [
            {"finding": "differs", "project": d.project, "field": d.field,
             "from": _text(d.source_value), "to": _text(d.target_value)}
            for d in self.differences
        ]  # fmt: skip
        out += [
            {"finding": "no field", "project": f"{c['projects']} projects", "field": c["field"],
             "from": "", "to": c["why"]}
            for c in self.cannot_hold
        ]  # fmt: skip
        out += [
            {"finding": "unverified", "project": "", "field": u, "from": "", "to": ""}
            for u in self.unverified
        ]
        return out


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def _tree(
    items: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """The projects, and each project's tasks and milestones (at any depth)."""
    by_id = {i["source_id"]: i for i in items}
    projects = [i for i in items if i["kind"] == "project"]
    tasks: dict[str, list[dict[str, Any]]] = {p["source_id"]: [] for p in projects}
    for item in items:
        if item["kind"] not in TASK_KINDS:
            continue
        parent, hops = item.get("parent_id"), 0
        while parent in by_id and by_id[parent]["kind"] != "project" and hops < 50:
            parent, hops = by_id[parent].get("parent_id"), hops + 1
        if parent in tasks:
            tasks[parent].append(item)
    return projects, tasks


def _leaves(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tasks that are not only a summary of others (a target may add a summary level)."""
    parents = {t.get("parent_id") for t in tasks}
    return [t for t in tasks if t["source_id"] not in parents]


def _distance(a: Mapping[str, Any], b: Mapping[str, Any]) -> float:
    total = 0.0
    for name in ("planned_start", "planned_finish"):
        x, y = a.get(name), b.get(name)
        total += abs((x - y).total_seconds()) if x and y else 10**9
    return total


def match(
    sources: list[dict[str, Any]], targets: list[dict[str, Any]], mapping: Mapping[str, str] | None
) -> list[tuple[dict[str, Any], dict[str, Any] | None, str]]:
    """Pair each source project with its target: by the mapping file, then by name and dates."""
    free = {t["source_id"]: t for t in targets}
    pairs: list[tuple[dict[str, Any], dict[str, Any] | None, str]] = []
    pending: list[dict[str, Any]] = []
    for project in sources:
        wanted = (mapping or {}).get(project["source_id"]) or (mapping or {}).get(project["name"])
        if wanted:
            found = free.pop(wanted, None) or next(
                (free.pop(i) for i, t in list(free.items()) if _key(t["name"]) == _key(wanted)),
                None,
            )
            pairs.append((project, found, "mapping"))
        else:
            pending.append(project)
    # Closest dates first, so two projects of one name each get their own counterpart.
    candidates = sorted(
        ((_distance(p, t), p["source_id"], t["source_id"]) for p in pending for t in free.values()
         if _key(p["name"]) == _key(t["name"])),
    )  # fmt: skip
    taken: dict[str, str] = {}
    used: set[str] = set()
    for _d, pid, tid in candidates:
        if pid in taken or tid in used:
            continue
        taken[pid] = tid
        used.add(tid)
    for project in pending:
        tid = taken.get(project["source_id"])
        pairs.append((project, free.get(tid) if tid else None, "name and dates" if tid else ""))
    return pairs


def verify(
    store: Store,
    source_from: str,
    source_to: str,
    *,
    mapping: Mapping[str, str] | None = None,
    date_tolerance_days: int = 0,
) -> MigrationReport:
    """Compare what ``source_from`` holds with what arrived in ``source_to``."""
    old = [r for r in store.export("work_item", source=source_from)]
    new = [r for r in store.export("work_item", source=source_to)]
    report = MigrationReport(source_from, source_to)
    old_projects, old_tasks = _tree(old)
    new_projects, new_tasks = _tree(new)
    report.projects = len(old_projects)
    booked: dict[str, dict[str, int]] = {}
    for side, name in (("from", source_from), ("to", source_to)):
        counts: dict[str, int] = {}
        for row in store.export("assignment", source=name):
            key = str(row.get("work_item_id") or "")
            counts[key] = counts.get(key, 0) + 1
        booked[side] = counts
    keeps_assignments = {side: bool(counts) for side, counts in booked.items()}
    # Assignments on work a source does not sync (Project Server books leaf tasks the crosswalk
    # does not read) cannot be counted per task: that side's per-task count is not earned.
    held = {"from": {r["source_id"] for r in old}, "to": {r["source_id"] for r in new}}
    elsewhere = {
        side: sum(n for key, n in counts.items() if key not in held[side])
        for side, counts in booked.items()
    }
    for side, name in (("from", source_from), ("to", source_to)):
        if keeps_assignments[side] and elsewhere[side]:
            keeps_assignments[side] = False
            total = sum(booked[side].values())
            report.unverified.append(
                f"assignments: {elsewhere[side]} of {name}'s {total} assignments are on tasks it "
                "does not sync, so assignments were not compared task by task"
            )
    for project, target, how in match(old_projects, new_projects, mapping):
        summary = {
            "name": project["name"],
            "source_id": project["source_id"],
            "planned_start": _day(project.get("planned_start")),
            "planned_finish": _day(project.get("planned_finish")),
            "tasks": len(old_tasks.get(project["source_id"], [])),
        }
        if target is None:
            report.missing.append(summary)
            continue
        report.matched.append({**summary, "target_id": target["source_id"], "matched_by": how})
        report.differences += _compare(
            project, target, old_tasks[project["source_id"]], new_tasks[target["source_id"]],
            date_tolerance_days,
            booked=booked if keeps_assignments["from"] and keeps_assignments["to"] else None,
        )  # fmt: skip
    if not (keeps_assignments["from"] and keeps_assignments["to"]):
        lacking = [
            s
            for s, kept, side in (
                (source_from, keeps_assignments["from"], "from"),
                (source_to, keeps_assignments["to"], "to"),
            )
            if not kept and not elsewhere[side]
        ]
        if lacking:
            report.unverified.append(
                f"assignments: {', '.join(lacking)} holds no assignments, so they were not compared"
            )
    if not old_projects:
        report.unverified.append(
            f"projects: {source_from} holds no projects in the store, so nothing was verified "
            "(sync it first)"
        )
    report.cannot_hold = _cannot_hold(old_projects, new_projects, old)
    return report


def _compare(
    project: dict[str, Any],
    target: dict[str, Any],
    tasks: list[dict[str, Any]],
    moved: list[dict[str, Any]],
    tolerance: int,
    *,
    booked: Mapping[str, Mapping[str, int]] | None,
) -> list[Difference]:
    found: list[Difference] = []

    def differ(name: str, a: Any, b: Any) -> None:
        found.append(
            Difference(project["name"], project["source_id"], target["source_id"], name, a, b)
        )

    def dates(prefix: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> None:
        for name in ("planned_start", "planned_finish"):
            x, y = a.get(name), b.get(name)
            if x is None and y is None:
                continue
            if x is None or y is None or abs((x.date() - y.date()).days) > tolerance:
                differ(prefix + name, _day(x), _day(y))

    dates("", project, target)
    a, b = project.get("percent_complete"), target.get("percent_complete")
    if a is not None and (b is None or abs(float(a) - float(b)) > PROGRESS_TOLERANCE):
        differ("percent_complete", a, b)
    old_leaves, new_leaves = _leaves(tasks), _leaves(moved)
    if len(old_leaves) != len(new_leaves):
        differ("task_count", len(old_leaves), len(new_leaves))
    by_name: dict[str, list[dict[str, Any]]] = {}
    for task in moved:
        by_name.setdefault(_key(task["name"]), []).append(task)
    for task in old_leaves:
        twins = by_name.get(_key(task["name"]))
        if not twins:
            differ("task missing", task["name"], None)
            continue
        twin = twins.pop(0)
        dates(f"task {task['name']}: ", task, twin)
        if booked is not None:
            x = booked["from"].get(task["source_id"], 0)
            y = booked["to"].get(twin["source_id"], 0)
            if x != y:
                differ(f"task {task['name']}: assignments", x, y)
    return found


def _cannot_hold(
    old_projects: list[dict[str, Any]],
    new_projects: list[dict[str, Any]],
    old: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    absent: set[str] = set()
    for project in new_projects:
        absent |= set((project.get("extra") or {}).get("absent_columns") or [])
    out: list[dict[str, Any]] = []
    for name in HOLDABLE:
        carrying = sum(1 for p in old_projects if _filled(p.get(name)))
        if carrying and not any(_filled(p.get(name)) for p in new_projects):
            why = "no record of the target holds it"
            if absent:
                why += f" (its org lacks {', '.join(sorted(absent))})"
            out.append({"field": name, "projects": carrying, "why": why})
    custom: dict[str, int] = {}
    for project in old_projects:
        for key in (project.get("extra") or {}).get("custom_fields") or {}:
            custom[key] = custom.get(key, 0) + 1
    for key, count in sorted(custom.items()):
        out.append({"field": f"custom field {key}", "projects": count,
                    "why": "the target has no custom fields on plans; keep it in the description or a Dataverse column"})  # fmt: skip
    if any(_filled(t.get("baseline_finish")) for t in old if t["kind"] in TASK_KINDS) and not any(
        _filled(p.get("baseline_finish")) for p in new_projects
    ):
        out.append({"field": "task baselines", "projects": len(old_projects),
                    "why": "the target keeps no baselines"})  # fmt: skip
    return out


def import_items(
    store: Store, report: MigrationReport, *, names: Iterable[str] | None = None
) -> list[tuple[dict[str, Any], str]]:
    """``(fields, correlation id)`` for each missing project (or those named), as a writer
    takes them: name, dates, a description saying where it came from, and its tasks."""
    wanted = {_key(n) for n in names} if names else None
    items = [r for r in store.export("work_item", source=report.source_from)]
    _projects, tasks = _tree(items)
    out: list[tuple[dict[str, Any], str]] = []
    for missing in report.missing:
        if wanted is not None and _key(missing["name"]) not in wanted:
            continue
        project = next(r for r in items if r["source_id"] == missing["source_id"])
        fields = {
            "name": project["name"],
            "planned_start": project.get("planned_start"),
            "planned_finish": project.get("planned_finish"),
            "description": f"Moved from {report.source_from} (project {project['source_id']}).",
            "tasks": [
                {"name": t["name"], "planned_start": t.get("planned_start"),
                 "planned_finish": t.get("planned_finish"), "milestone": t["kind"] == "milestone"}
                for t in sorted(tasks.get(project["source_id"], []), key=lambda t: (t.get("planned_start") is None, t.get("planned_start") or datetime.min, t["name"]))
            ],
        }  # fmt: skip
        out.append((fields, f"itcrosswalk:migrate:{report.source_from}:{project['source_id']}"))
    return out


def render_html(report: MigrationReport) -> str:
    """A self-contained page for the PMO; everything from a platform is escaped."""
    e = html.escape

    def table(title: str, head: list[str], rows: list[list[Any]]) -> str:
        if not rows:
            return f"<h2>{e(title)}</h2><p>None.</p>"
        cells = "".join(
            "<tr>" + "".join(f"<td>{e(_text(c))}</td>" for c in r) + "</tr>" for r in rows
        )
        header = "".join(f"<th>{e(h)}</th>" for h in head)
        return f"<h2>{e(title)}</h2><table><tr>{header}</tr>{cells}</table>"

    verdict = (
        f"{len(report.missing)} of {report.projects} projects missing"
        if report.missing
        else f"all {report.projects} projects moved"
    )
    body = [
        f"<h1>Migration check: {e(report.source_from)} &rarr; {e(report.source_to)}</h1>",
        f"<p class='verdict'>{e(verdict)}; {len(report.differences)} differences.</p>",
        table("Missing", ["project", "start", "finish", "tasks"],
              [[m["name"], m["planned_start"], m["planned_finish"], m["tasks"]] for m in report.missing]),
        table("Differs", ["project", "field", report.source_from, report.source_to],
              [[d.project, d.field, d.source_value, d.target_value] for d in report.differences]),
        table("The target cannot hold", ["field", "projects carrying it", "why"],
              [[c["field"], c["projects"], c["why"]] for c in report.cannot_hold]),
        table("Not verified", ["what"], [[u] for u in report.unverified]),
        table("Moved", ["project", "matched by", "source id", "target id"],
              [[m["name"], m["matched_by"], m["source_id"], m["target_id"]] for m in report.matched]),
    ]  # fmt: skip
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;"
        "margin-bottom:1.5em}td,th{border:1px solid #bbb;padding:4px 8px;text-align:left}"
        "th{background:#eee}.verdict{font-size:1.2em}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Migration check</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )
