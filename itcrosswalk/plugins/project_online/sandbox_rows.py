"""The world as this Project Web App holds it: ProjectData rows (resources, projects, the project
summary task, summary tasks and milestones with their leaf tasks, assignments, project and task
baselines, issues and risks) and the published projects ProjectServer serves.

This is where the emulator's data lives: to serve more of the world (assignments' timephased data,
cost fields, resource plans), add its rows here, in a method called from :meth:`_build`, and
declare its entity set in :mod:`.sandbox_schema`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ...sandbox.world import World
from .sandbox_schema import (
    CUSTOM_FIELDS,
    HEALTH_WORDS,
    PHASE_WORDS,
    PRIORITY_WORDS,
    PROJECT_TYPES,
    SCHEMA,
    STATE_WORDS,
    guid,
    hex_guid,
)


@dataclass
class ServerProject:
    """A project as ProjectServer holds it: published values, a draft, and who has it checked out."""

    id: str
    name: str
    ept_id: str
    description: str = ""
    start: datetime | None = None
    custom: dict[str, str] = field(default_factory=dict)
    draft_custom: dict[str, str] = field(default_factory=dict)
    checked_out_by: str | None = None
    pending: dict[str, str] | None = None
    tasks: list[dict[str, Any]] = field(default_factory=list)
    draft_tasks: list[dict[str, Any]] = field(default_factory=list)
    pending_tasks: list[dict[str, Any]] = field(default_factory=list)
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


class ReportingRows:
    """Renders the world into ``sets`` (ProjectData rows, typed: datetimes aware, decimals
    float) and ``server_projects`` (mixed into the emulator)."""

    world: World
    sets: dict[str, list[dict[str, Any]]]
    server_projects: dict[str, ServerProject]
    custom_ids: dict[str, str]

    def _build(self) -> None:
        people = {p.id: p for p in self.world.people}
        departments = {d.id: d.name for d in self.world.departments}
        work = [w for w in self.world.work if w.platform == "project_online"]
        projects = [w for w in work if w.kind == "project"]
        for index, person in enumerate(self.world.people):
            self.sets["Resources"].append(
                {
                    "ResourceId": hex_guid(person.id),
                    "ResourceName": person.name,
                    # Some resources were created without an e-mail; the claims account still has the UPN.
                    "ResourceEmailAddress": "" if index % 9 == 4 else person.upn,
                    "ResourceNTAccount": f"i:0#.f|membership|{person.upn}",
                    "ResourceDepartments": departments.get(person.department, person.department),
                    "ResourceIsActive": person.active,
                    "ResourceIsGeneric": False,
                    "ResourceType": 2,
                    "ResourceInitials": person.first_name[:1] + person.last_name[:1],
                    "ResourceStandardRate": 55.0 + (index % 7) * 5,
                    "ResourceModifiedDate": person.updated,
                    "ResourceCreatedDate": person.created,
                }
            )
        for role in ("Business Analyst", "GIS Analyst"):
            self.sets["Resources"].append(
                {
                    "ResourceId": guid("generic", role),
                    "ResourceName": role,
                    "ResourceEmailAddress": "",
                    "ResourceNTAccount": None,
                    "ResourceDepartments": "ITD",
                    "ResourceIsActive": True,
                    "ResourceIsGeneric": True,
                    "ResourceType": 2,
                    "ResourceInitials": "",
                    "ResourceStandardRate": 0.0,
                    "ResourceModifiedDate": self.world.now - timedelta(days=400),
                    "ResourceCreatedDate": self.world.now - timedelta(days=900),
                }
            )
        resources = [r for r in self.sets["Resources"] if not r["ResourceIsGeneric"]]
        for project in projects:
            pid = hex_guid(project.id)
            owner = people.get(project.manager_id or "")
            sponsor = people.get(project.sponsor_id or "")
            hours = round(project.budget / 95.0, 1)
            done_fraction = project.percent_complete / 100.0
            row: dict[str, Any] = {
                "ProjectId": pid,
                "ProjectName": project.name,
                "ProjectDescription": "",
                "ProjectStartDate": project.planned_start,
                "ProjectFinishDate": project.planned_finish,
                "ProjectActualStartDate": project.actual_start,
                "ProjectActualFinishDate": project.actual_finish,
                "ProjectPercentCompleted": int(project.percent_complete),
                "ProjectPercentWorkCompleted": int(project.percent_complete),
                "ProjectCost": project.forecast_cost,
                "ProjectActualCost": project.actual_cost,
                "ProjectRemainingCost": round(
                    max(project.forecast_cost - project.actual_cost, 0.0), 2
                ),
                "ProjectBudgetCost": None,  # empty unless budget resources are used
                "ProjectWork": hours,
                "ProjectActualWork": round(hours * done_fraction, 1),
                "ProjectRemainingWork": round(hours * (1 - done_fraction), 1),
                "ProjectBCWS": project.planned_value,
                "ProjectBCWP": project.earned_value,
                "ProjectACWP": project.actual_cost,
                "ProjectOwnerId": hex_guid(owner.id) if owner else None,
                "ProjectOwnerName": owner.name if owner else "",
                "ProjectManagerName": "",
                "ProjectDepartments": departments.get(project.department, project.department),
                "ProjectStatusDate": self.world.now.replace(
                    hour=17, minute=0, second=0, microsecond=0
                ),
                "ProjectModifiedDate": project.updated,
                "ProjectCreatedDate": project.created,
                "ProjectLastPublishedDate": project.updated,
                "ProjectType": 0,
                "EnterpriseProjectTypeId": PROJECT_TYPES["City Standard Project"],
                "EnterpriseProjectTypeName": "City Standard Project",
                "ProjectState": STATE_WORDS[project.state],
                "ProjectPhase": PHASE_WORDS[project.phase],
                "OverallHealth": HEALTH_WORDS[project.health],
                "StrategicGoals": ";".join(project.goals),
                "CityPriority": PRIORITY_WORDS[project.priority],
                "ProjectSponsor": sponsor.name if sponsor else None,
                "ProjectManager": owner.name if owner else None,
                "ProjectNumber": project.number,
                "Annéefiscale": f"FY{(project.planned_start or self.world.now).year + 1}",
                "BusinessCaseApproved": "Yes" if project.business_case_approved else "No",
            }
            self.sets["Projects"].append(row)
            self.server_projects[pid] = ServerProject(
                id=pid,
                name=project.name,
                ept_id=PROJECT_TYPES["City Standard Project"],
                start=project.planned_start,
                custom={
                    self.custom_ids[name]: str(row[prop])
                    for name, prop in CUSTOM_FIELDS.items()
                    if row.get(prop) is not None
                },
            )
            for number, (start, finish, cost, hours_) in enumerate(
                [
                    (project.planned_start, project.planned_finish, project.budget, hours),
                    # a later re-baseline, which the crosswalk must not take for baseline 0
                    (
                        project.planned_start,
                        (project.planned_finish or self.world.now) + timedelta(days=30),
                        project.budget * 1.1,
                        hours * 1.1,
                    ),
                ]
            ):
                self.sets["ProjectBaselines"].append(
                    {
                        "ProjectId": pid,
                        "BaselineNumber": number,
                        "ProjectName": project.name,
                        "ProjectBaselineStartDate": start,
                        "ProjectBaselineFinishDate": finish,
                        "ProjectBaselineCost": round(cost, 2),
                        "ProjectBaselineWork": round(hours_, 1),
                        "ProjectBaselineBudgetCost": None,
                        "ProjectBaselineModifiedDate": project.created,
                    }
                )
            self._tasks(project, pid, work, resources)
            self._logs(project, pid)

    def _task_row(self, pid: str, project_name: str, task_id: str, **values: Any) -> dict[str, Any]:
        row: dict[str, Any] = {name: None for name in SCHEMA["Tasks"]}
        row.update(ProjectId=pid, TaskId=task_id, ProjectName=project_name, TaskIsCritical=False)
        row.update(values)
        return row

    def _tasks(
        self, project: Any, pid: str, work: list[Any], resources: list[dict[str, Any]]
    ) -> None:
        summary_id = guid(pid, "project-summary")
        self.sets["Tasks"].append(
            self._task_row(
                pid,
                project.name,
                summary_id,
                TaskName=project.name,
                TaskOutlineLevel=0,
                TaskOutlineNumber="0",
                TaskWBS="0",
                TaskIndex=0,
                TaskIsSummary=True,
                TaskIsMilestone=False,
                TaskIsProjectSummary=True,
                TaskStartDate=project.planned_start,
                TaskFinishDate=project.planned_finish,
                TaskPercentCompleted=int(project.percent_complete),
                TaskCost=project.forecast_cost,
                TaskModifiedDate=project.updated,
                TaskCreatedDate=project.created,
            )
        )
        children = [w for w in work if w.parent_id == project.id]
        index = 1
        for number, item in enumerate(children, start=1):
            tid = hex_guid(item.id)
            milestone = item.kind == "milestone"
            finish = item.planned_start if milestone else item.planned_finish
            self.sets["Tasks"].append(
                self._task_row(
                    pid,
                    project.name,
                    tid,
                    TaskName=item.name,
                    TaskParentTaskId=summary_id,
                    TaskParentTaskName=project.name,
                    TaskOutlineLevel=1,
                    TaskOutlineNumber=str(number),
                    TaskWBS=str(number),
                    TaskIndex=index,
                    TaskIsSummary=not milestone,
                    TaskIsMilestone=milestone,
                    TaskIsProjectSummary=False,
                    TaskStartDate=item.planned_start,
                    TaskFinishDate=finish,
                    TaskActualStartDate=item.actual_start,
                    TaskActualFinishDate=item.actual_finish,
                    TaskPercentCompleted=int(item.percent_complete),
                    TaskCost=item.forecast_cost if not milestone else 0.0,
                    TaskActualCost=item.actual_cost if not milestone else 0.0,
                    TaskRemainingCost=round(max(item.forecast_cost - item.actual_cost, 0.0), 2)
                    if not milestone
                    else 0.0,
                    TaskWork=round(item.budget / 95.0, 1) if not milestone else 0.0,
                    TaskBCWS=item.planned_value if not milestone else 0.0,
                    TaskBCWP=item.earned_value if not milestone else 0.0,
                    TaskACWP=item.actual_cost if not milestone else 0.0,
                    TaskModifiedDate=item.updated,
                    TaskCreatedDate=item.created,
                )
            )
            self.sets["TaskBaselines"].append(
                {
                    "ProjectId": pid,
                    "TaskId": tid,
                    "BaselineNumber": 0,
                    "TaskName": item.name,
                    "TaskBaselineStartDate": item.planned_start,
                    "TaskBaselineFinishDate": finish,
                    "TaskBaselineCost": 0.0 if milestone else item.budget,
                    "TaskBaselineWork": 0.0 if milestone else round(item.budget / 95.0, 1),
                    "TaskBaselineBudgetCost": None,
                    "TaskBaselineModifiedDate": item.created,
                }
            )
            index += 1
            if milestone:
                continue
            # Leaf tasks carry the assignments; the crosswalk reads only summaries and milestones.
            for leaf in (1, 2):
                leaf_id = guid(tid, f"leaf-{leaf}")
                share = item.forecast_cost / 2
                self.sets["Tasks"].append(
                    self._task_row(
                        pid,
                        project.name,
                        leaf_id,
                        TaskName=f"{item.name}: step {leaf}",
                        TaskParentTaskId=tid,
                        TaskParentTaskName=item.name,
                        TaskOutlineLevel=2,
                        TaskOutlineNumber=f"{number}.{leaf}",
                        TaskWBS=f"{number}.{leaf}",
                        TaskIndex=index,
                        TaskIsSummary=False,
                        TaskIsMilestone=False,
                        TaskIsProjectSummary=False,
                        TaskStartDate=item.planned_start,
                        TaskFinishDate=item.planned_finish,
                        TaskPercentCompleted=int(item.percent_complete),
                        TaskCost=round(share, 2),
                        TaskWork=round(share / 95.0, 1),
                        TaskModifiedDate=item.updated,
                        TaskCreatedDate=item.created,
                    )
                )
                index += 1
                resource = resources[int(leaf_id[:8], 16) % len(resources)]
                self.sets["Assignments"].append(
                    {
                        "ProjectId": pid,
                        "AssignmentId": guid(leaf_id, "assignment"),
                        "TaskId": leaf_id,
                        "ResourceId": resource["ResourceId"],
                        "ResourceName": resource["ResourceName"],
                        "TaskName": f"{item.name}: step {leaf}",
                        "AssignmentWork": round(share / 95.0, 1),
                        "AssignmentCost": round(share, 2),
                        "AssignmentActualCost": round(share * item.percent_complete / 100, 2),
                        "AssignmentStartDate": item.planned_start,
                        "AssignmentFinishDate": item.planned_finish,
                        "AssignmentModifiedDate": item.updated,
                    }
                )

    def _logs(self, project: Any, pid: str) -> None:
        seed = int(pid[:8], 16)
        for n in range(seed % 4):
            self.sets["Issues"].append(
                {
                    "ProjectId": pid,
                    "IssueId": guid(pid, f"issue-{n}"),
                    "ProjectName": project.name,
                    "Title": f"Issue {n + 1} on {project.name}",
                    "Status": "(1) Active" if n % 2 == 0 else "(3) Closed",
                    "Priority": "(2) Medium",
                    "Category": "(1) Category1",
                    "DueDate": project.planned_finish,
                    "ModifiedDate": project.updated,
                }
            )
        for n in range(seed % 3 + 1):
            probability, impact = 0.2 + 0.2 * n, float(3 + n)
            self.sets["Risks"].append(
                {
                    "ProjectId": pid,
                    "RiskId": guid(pid, f"risk-{n}"),
                    "ProjectName": project.name,
                    "Title": f"Risk {n + 1} on {project.name}",
                    "Status": "(1) Active" if n != 1 else "(2) Postponed",
                    "Probability": probability,
                    "Impact": impact,
                    "Exposure": round(probability * impact, 2),
                    "Cost": 10000.0 * (n + 1),
                    "DueDate": project.planned_finish,
                    "ModifiedDate": project.updated,
                }
            )
