"""Clarity team allocations: each project's team rows as assignments, and their
``allocationCurve`` read by month with ``tsvParams`` as the assignments' periods.

A team row books a resource (or, with ``requirementName`` and no resource, a role nobody
fills yet) on an investment; ``allocation`` is its total in hours. Without ``tsvParams`` the
curve comes back as that total [DOC], so the period stream always asks for months. The person
joins on the resource's ``emailAddress``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from ...core.adapter import Page
from ...core.model import Assignment, AssignmentPeriod, Record
from . import mapping
from .adapter import CHILD_CAP, TSV_PERIODS, ChildStream

ALLOCATION_FIELDS: dict[str, list[str]] = {
    "assignment": ["work_item_id", "project_id", "resource_id", "person_upn", "person_name",
                   "role", "generic", "start", "finish", "planned_hours", "granularity",
                   "booking"],
    "assignment_period": ["assignment_id", "period_start", "period_finish", "granularity",
                          "planned_hours"],
}  # fmt: skip


def _float(value: Any) -> float | None:
    return None if value in (None, "") else float(value)


class TeamAssignments(ChildStream):
    """``projects/{id}/teams``: who is booked on each investment, for how many hours."""

    name = "teams"
    entity = "assignment"
    # A team row edited on a project that did not change is listed under no changed project:
    # teams are read whole on every sync (one request per project), and what left is tombstoned.
    incremental = False

    def request(self, parent: int, part: str, offset: int) -> Page:
        return self.adapter.page(
            f"projects/{parent}/teams", {"offset": offset, "sort": "_internalId"}, CHILD_CAP
        )

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        try:
            return mapping.source_id("team", raw.get("_internalId"))
        except (TypeError, ValueError):
            return None

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        self.adapter.load_references(labels=False)

    def map(self, raw: Mapping[str, Any]) -> Record:
        a = self.adapter
        sid = mapping.source_id("team", raw["_internalId"])
        resource = mapping.lookup_id(raw.get("resource"))
        project = mapping.source_id("project", raw["_project"])
        role = raw.get("requirementName") or raw.get("projectRoleName")
        return Assignment(
            source=a.source.name,
            platform="clarity",
            source_id=sid,
            url=f"{a.base}/pm/#/project/{raw['_project']}/staff",
            updated_at=mapping.parse_local(raw.get("lastUpdatedDate"), a.zone),
            work_item_id=project,
            project_id=project,
            resource_id=mapping.source_id("resource", resource) if resource else None,
            person_upn=a.emails.get(resource or "") if resource else None,
            person_name=mapping.lookup_label(raw.get("resource")),
            role=str(role) if role else None,
            generic=resource is None,
            start=mapping.parse_local(raw.get("startDate"), a.zone),
            finish=mapping.parse_local(raw.get("finishDate"), a.zone),
            planned_hours=_float(raw.get("allocation")),
            granularity="month" if raw.get("startDate") else None,
            booking={"H": "hard", "S": "soft", "M": "mixed"}.get(
                mapping.lookup_id(raw.get("bookingStatus")) or "", None
            ),
            extra={"hardAllocation": _float(raw.get("hardAllocation"))},
        )

    def links(self, record: Record) -> list[tuple[str, str, str]]:
        project = getattr(record, "project_id", None)
        return [("staffs", "work_item", project)] if project else []


class TeamAllocationPeriods(ChildStream):
    """Each team row's ``allocationCurve`` by month: one period record per segment."""

    name = "teamAllocations"
    entity = "assignment_period"
    incremental = False

    def request(self, parent: int, part: str, offset: int) -> Page:
        page = self.adapter.page(
            f"projects/{parent}/teams",
            {
                "offset": offset,
                "sort": "_internalId",
                "tsvParams": f"(periods=(allocationCurve,{TSV_PERIODS})),(workEffortUnit=hours)",
            },
            CHILD_CAP,
        )
        rows: list[dict[str, Any]] = []
        for team in page.records:
            curve = team.get("allocationCurve")
            if not isinstance(curve, dict):
                continue  # a team row without a curve keeps only its total (the teams stream)
            segments = curve.get("segmentList", {}).get("segments")
            if segments is None:
                # A curve without segments despite tsvParams: kept whole to be quarantined.
                rows.append({**team, "_segment": None})
                continue
            for segment in segments:
                rows.append({**team, "allocationCurve": None, "_segment": segment})
        page.records = rows
        return page

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        segment = raw.get("_segment")
        start = str((segment or {}).get("start") or "")[:10] if isinstance(segment, dict) else ""
        return (
            f"team-{raw.get('_internalId')}:{start}" if start else f"team-{raw.get('_internalId')}"
        )

    def map(self, raw: Mapping[str, Any]) -> Record:
        a = self.adapter
        segment = raw.get("_segment")
        if not isinstance(segment, Mapping):
            raise ValueError("an allocation curve without periods (it came as a total)")
        start = date.fromisoformat(str(segment["start"])[:10])
        finish = date.fromisoformat(str(segment["finish"])[:10]) + timedelta(days=1)
        return AssignmentPeriod(
            source=a.source.name,
            platform="clarity",
            source_id=f"team-{int(str(raw['_internalId']))}:{start.isoformat()}",
            updated_at=mapping.parse_local(raw.get("lastUpdatedDate"), a.zone),
            assignment_id=mapping.source_id("team", raw["_internalId"]),
            period_start=start,
            period_finish=finish,
            granularity="month",
            planned_hours=_float(segment.get("value")),
        )


def allocation_streams(adapter: Any) -> list[Any]:
    return [TeamAssignments(adapter), TeamAllocationPeriods(adapter)]
