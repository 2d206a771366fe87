"""ProjectServer (CSOM over REST) as the emulated Project Web App answers it: ``contextinfo`` and
form digests, enterprise project types, custom fields, published projects, ``Projects/Add``,
check-out, draft custom fields and tasks, ``Draft/Update``, ``Draft/Publish``, ``Draft/CheckIn``,
queue jobs, ``deleteObject``, and the ``PJClientCallableException`` errors."""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime, tzinfo
from typing import Any

from ...sandbox.emulator import Environ, Response
from .sandbox_odata import FilterParser, ODataError
from .sandbox_rows import ServerProject
from .sandbox_schema import CUSTOM_FIELDS, JOB_SUCCESS, PROJECT_TYPES, SCHEMA, B, G, S, guid

Query = dict[str, list[str]]
"""A parsed query string: each parameter's values."""


class ProjectServerApi:
    """The ``/_api/contextinfo`` and ``/_api/ProjectServer`` side of the emulator (mixed into it)."""

    sets: dict[str, list[dict[str, Any]]]
    server_projects: dict[str, ServerProject]
    custom_ids: dict[str, str]
    digests: dict[str, float]
    jobs: dict[str, int]
    fail_actions: dict[str, str]
    zone: tzinfo
    lock: threading.RLock

    # -- ProjectServer -----------------------------------------------------------------------------

    def _contextinfo(
        self, environ: dict[str, Any], base: str
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        stamp = datetime.now(UTC).strftime("%d %b %Y %H:%M:%S -0000")
        digest = f"0x{secrets.token_hex(64).upper()},{stamp}"
        with self.lock:
            self.digests[digest] = time.time() + 1800
        info = {
            "FormDigestTimeoutSeconds": 1800,
            "FormDigestValue": digest,
            "LibraryVersion": "16.0.17928.20000",
            "SiteFullUrl": base,
            "SupportedSchemaVersions": ["14.0.0.0", "15.0.0.0"],
            "WebFullUrl": base,
        }
        if self._verbose(environ):
            info = {"__metadata": {"type": "SP.ContextWebInformation"}, **info}
            return (
                "200 OK",
                [("Content-Type", "application/json;odata=verbose;charset=utf-8")],
                json.dumps({"d": {"GetContextWebInformation": info}}).encode(),
            )
        return (
            "200 OK",
            [("Content-Type", "application/json;odata=nometadata;charset=utf-8")],
            json.dumps(info).encode(),
        )

    def _ok(
        self, environ: dict[str, Any], value: Any, type_name: str | None = None
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        if self._verbose(environ):
            if isinstance(value, list):
                body: Any = {
                    "d": {
                        "results": [
                            {"__metadata": {"type": type_name}, **v} if type_name else v
                            for v in value
                        ]
                    }
                }
            else:
                body = {"d": {"__metadata": {"type": type_name}, **value} if type_name else value}
            return (
                "200 OK",
                [("Content-Type", "application/json;odata=verbose;charset=utf-8")],
                json.dumps(body, ensure_ascii=False).encode(),
            )
        body = {"value": value} if isinstance(value, list) else value
        return (
            "200 OK",
            [("Content-Type", "application/json;odata=nometadata;charset=utf-8")],
            json.dumps(body, ensure_ascii=False).encode(),
        )

    def _published(
        self, project: ServerProject, select: list[str] | None, custom: bool
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "Id": project.id,
            "Name": project.name,
            "Description": project.description,
            "IsCheckedOut": project.checked_out_by is not None,
            "CheckOutDescription": "",
            "StartDate": project.start.strftime("%Y-%m-%dT%H:%M:%S") if project.start else None,
            "CreatedDate": project.created.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        if custom:
            row.update(project.custom)
        if select:
            unknown = [s for s in select if s not in row and not s.startswith("Custom_")]
            if unknown:
                raise ODataError(
                    400,
                    f"The property '{unknown[0]}' does not exist on type 'PS.PublishedProject'.",
                )
            row = {k: row.get(k) for k in select}
        return row

    def _server(
        self, environ: Environ, rest: str, method: str, query: Query, user: str
    ) -> Response:
        select = [s.strip() for s in query.get("$select", [""])[0].split(",") if s.strip()] or None
        if method == "POST":
            digest = environ.get("HTTP_X_REQUESTDIGEST", "")
            with self.lock:
                valid = self.digests.get(digest, 0) > time.time()
            if not valid:
                raise ODataError(
                    403,
                    "The security validation for this page is invalid and might be corrupted. Please use your web browser's Back button to try your operation again.",
                    "-2130575251, Microsoft.SharePoint.SPException",
                )
        if rest == "EnterpriseProjectTypes" and method == "GET":
            types = [
                {"Id": i, "Name": n, "Description": "", "IsDefault": n == "Enterprise Project"}
                for n, i in PROJECT_TYPES.items()
            ]
            return self._ok(environ, types, "PS.EnterpriseProjectType")
        if rest == "CustomFields" and method == "GET":
            fields = [
                {
                    "Id": guid("cf", n),
                    "Name": n,
                    "InternalName": self.custom_ids[n],
                    "FieldType": 21,
                    "IsRequired": False,
                }
                for n in CUSTOM_FIELDS
            ]
            return self._ok(environ, fields, "PS.CustomField")
        if rest == "Projects" and method == "GET":
            with self.lock:
                projects = list(self.server_projects.values())
            if "$filter" in query:
                schema = {"Id": G, "Name": S, "IsCheckedOut": B}
                predicate = FilterParser(
                    query["$filter"][0], schema, "PublishedProject", self.zone
                ).parse()
                projects = [
                    p
                    for p in projects
                    if predicate(
                        {"Id": p.id, "Name": p.name, "IsCheckedOut": p.checked_out_by is not None}
                    )
                ]
            return self._ok(
                environ,
                [self._published(p, select, False) for p in projects],
                "PS.PublishedProject",
            )
        if rest == "Projects/Add" and method == "POST":
            return self._add(environ)
        match = re.fullmatch(r"Projects\('([0-9a-fA-F-]{36})'\)(?:/(.*))?", rest)
        if not match:
            raise ODataError(404, f"Cannot find resource for the request {rest}.")
        project_id, action = match.group(1).lower(), match.group(2) or ""
        with self.lock:
            project = self.server_projects.get(project_id)
            if project is None:
                raise ODataError(
                    404,
                    f"PJClientCallableException: ProjectNotFound\r\nProjectNotFound\r\nprojUid = {project_id}",
                    "20005, Microsoft.ProjectServer.PJClientCallableException",
                )
            return self._project_action(environ, project, action, method, select, user)

    def _pj_error(self, name: str, detail: str, code: int) -> ODataError:
        return ODataError(
            500,
            f"PJClientCallableException: {name}\r\n{name}\r\n{detail}",
            f"{code}, Microsoft.ProjectServer.PJClientCallableException",
        )

    def _add(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        try:
            payload = json.loads(self.body(environ) or b"{}")
            info = payload["parameters"]
            name = str(info["Name"]).strip()
        except (ValueError, KeyError, TypeError):
            raise ODataError(
                400,
                "The parameter parameters does not exist in method Add.",
                "-1, Microsoft.SharePoint.Client.InvalidClientQueryException",
            ) from None
        with self.lock:
            if any(p.name.casefold() == name.casefold() for p in self.server_projects.values()):
                raise self._pj_error("ProjectNameAlreadyExists", f"name = {name}", 1001)
            ept = str(
                info.get("EnterpriseProjectTypeId") or PROJECT_TYPES["Enterprise Project"]
            ).lower()
            if ept not in PROJECT_TYPES.values():
                raise self._pj_error("EnterpriseProjectTypeInvalid", f"eptUid = {ept}", 11701)
            project_id = str(info.get("Id") or uuid.uuid4()).lower()
            start = (
                datetime.fromisoformat(str(info["Start"]).replace("Z", "+00:00"))
                if info.get("Start")
                else datetime.now(UTC)
            )
            project = ServerProject(
                id=project_id,
                name=name,
                ept_id=ept,
                description=str(info.get("Description") or ""),
                start=start,
            )
            self.server_projects[project_id] = project
            self._publish_row(project)
            return self._ok(environ, self._published(project, None, False), "PS.PublishedProject")

    def _publish_row(self, project: ServerProject) -> None:
        """What the reporting database shows after a publish."""
        now = datetime.now(UTC).replace(microsecond=0)
        ept_name = next(n for n, i in PROJECT_TYPES.items() if i == project.ept_id)
        row = next((r for r in self.sets["Projects"] if r["ProjectId"] == project.id), None)
        if row is None:
            fresh: dict[str, Any] = {name: None for name in SCHEMA["Projects"]}
            row = fresh
            row.update(
                ProjectId=project.id,
                ProjectCreatedDate=project.created,
                ProjectPercentCompleted=0,
                ProjectPercentWorkCompleted=0,
                ProjectCost=0.0,
                ProjectActualCost=0.0,
                ProjectRemainingCost=0.0,
                ProjectWork=0.0,
                ProjectActualWork=0.0,
                ProjectRemainingWork=0.0,
                ProjectBCWS=0.0,
                ProjectBCWP=0.0,
                ProjectACWP=0.0,
                ProjectOwnerName="",
                ProjectManagerName="",
                ProjectType=0,
                ProjectStartDate=project.start,
                ProjectFinishDate=project.start,
            )
            self.sets["Projects"].append(row)
        row.update(
            ProjectName=project.name,
            ProjectDescription=project.description,
            EnterpriseProjectTypeId=project.ept_id,
            EnterpriseProjectTypeName=ept_name,
            ProjectModifiedDate=now,
            ProjectLastPublishedDate=now,
        )
        for task in project.tasks:
            if any(t["TaskId"] == task["id"] for t in self.sets["Tasks"]):
                continue
            self.sets["Tasks"].append(
                self._task_row(
                    project.id,
                    project.name,
                    task["id"],
                    TaskName=task["name"],
                    TaskParentTaskId=guid(project.id, "project-summary"),
                    TaskOutlineLevel=1,
                    TaskWBS=str(len(project.tasks)),
                    TaskIsSummary=False,
                    TaskIsMilestone=task["milestone"],
                    TaskIsProjectSummary=False,
                    TaskStartDate=task["start"],
                    TaskFinishDate=task["start"],
                    TaskPercentCompleted=0,
                    TaskCost=0.0,
                    TaskModifiedDate=now,
                    TaskCreatedDate=now,
                )
            )
        if project.tasks:
            row["ProjectFinishDate"] = max(t["start"] for t in project.tasks)
        by_internal = {self.custom_ids[n]: prop for n, prop in CUSTOM_FIELDS.items()}
        for internal, value in project.custom.items():
            row[by_internal[internal]] = value

    def _job(self) -> dict[str, Any]:
        job_id = str(uuid.uuid4())
        self.jobs[job_id] = JOB_SUCCESS
        return {"Id": job_id, "JobState": JOB_SUCCESS}

    def _project_action(
        self,
        environ: dict[str, Any],
        project: ServerProject,
        action: str,
        method: str,
        select: list[str] | None,
        user: str,
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        if method == "GET":
            if action == "":
                return self._ok(
                    environ, self._published(project, select, False), "PS.PublishedProject"
                )
            if action == "IncludeCustomFields":
                return self._ok(
                    environ, self._published(project, select, True), "PS.PublishedProject"
                )
            job = re.fullmatch(r"QueueJobs\('([0-9a-fA-F-]{36})'\)", action)
            if job and job.group(1) in self.jobs:
                return self._ok(
                    environ,
                    {"Id": job.group(1), "JobState": self.jobs[job.group(1)]},
                    "PS.QueueJob",
                )
            raise ODataError(404, f"Cannot find resource for the request {action}.")
        holder = project.checked_out_by
        if action == "checkOut":
            if holder is not None and holder != user:
                raise self._pj_error(
                    "CICOCheckedOutToOtherUser", f"The project is checked out to {holder}.", 10101
                )
            project.checked_out_by = user
            project.draft_custom = dict(project.custom)
            project.draft_tasks = []
            return self._ok(environ, {"Id": project.id, "Name": project.name}, "PS.DraftProject")
        if action == "deleteObject":
            if holder is not None and holder != user:
                raise self._pj_error(
                    "CICOCheckedOutToOtherUser", f"The project is checked out to {holder}.", 10101
                )
            self.delete_project(project.id)
            return self._ok(environ, self._job(), "PS.QueueJob")
        if not action.startswith("Draft/"):
            raise ODataError(404, f"Cannot find resource for the request {action}.")
        if holder != user:
            if holder is None:
                raise self._pj_error("CICONotCheckedOut", "The project is not checked out.", 10105)
            raise self._pj_error(
                "CICOCheckedOutToOtherUser", f"The project is checked out to {holder}.", 10101
            )
        verb = action[len("Draft/") :]
        if verb in self.fail_actions:
            raise self._pj_error(self.fail_actions[verb], f"project = {project.name}", 11000)
        if verb == "SetCustomFieldValue":
            try:
                payload = json.loads(self.body(environ) or b"{}")
                field_name, value = str(payload["FieldName"]), payload["Value"]
            except (ValueError, KeyError, TypeError):
                raise ODataError(
                    400,
                    "The parameter FieldName does not exist in method SetCustomFieldValue.",
                    "-1, Microsoft.SharePoint.Client.InvalidClientQueryException",
                ) from None
            if field_name not in self.custom_ids.values():
                raise self._pj_error("CustomFieldInvalidUID", f"fieldName = {field_name}", 11501)
            project.draft_custom[field_name] = str(value)
            return "204 No Content", [], b""
        if verb == "Tasks/Add":
            try:
                info = json.loads(self.body(environ) or b"{}")["parameters"]
                name = str(info["Name"])
                start = datetime.fromisoformat(str(info["Start"]).replace("Z", "+00:00"))
            except (ValueError, KeyError, TypeError):
                raise ODataError(
                    400,
                    "The parameter parameters does not exist in method Add.",
                    "-1, Microsoft.SharePoint.Client.InvalidClientQueryException",
                ) from None
            milestone = str(info.get("Duration", "1d")).strip().lower() in ("0d", "0", "0h")
            project.draft_tasks.append(
                {
                    "id": str(info.get("Id") or uuid.uuid4()).lower(),
                    "name": name,
                    "start": start,
                    "milestone": milestone,
                }
            )
            return self._ok(
                environ, {"Id": project.draft_tasks[-1]["id"], "Name": name}, "PS.DraftTask"
            )
        if verb == "Update":
            project.pending = dict(project.draft_custom)
            project.pending_tasks = list(project.draft_tasks)
            return self._ok(environ, self._job(), "PS.QueueJob")
        publish = re.fullmatch(r"Publish\((true|false)\)", verb)
        if publish:
            if project.pending is not None:
                project.custom = dict(project.pending)
                project.pending = None
            if project.pending_tasks:
                project.tasks += project.pending_tasks
                project.pending_tasks = []
            self._publish_row(project)
            if publish.group(1) == "true":
                project.checked_out_by = None
            return self._ok(environ, self._job(), "PS.QueueJob")
        checkin = re.fullmatch(r"CheckIn\((true|false)\)", verb)
        if checkin:
            project.checked_out_by = None
            project.draft_custom = {}
            project.draft_tasks = []
            return self._ok(environ, self._job(), "PS.QueueJob")
        raise ODataError(404, f"Cannot find resource for the request {action}.")
