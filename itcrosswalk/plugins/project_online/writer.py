"""Write-back through ProjectServer: a project created from common-model fields, idempotently.

The sequence is Project Server's own (``shared/platforms/project_online.md``): the form digest
from ``/_api/contextinfo``; ``Projects/Add`` with a ``ProjectCreationInformation`` (id, name,
description, start, enterprise project type); check out; the custom field values; a milestone
for the planned finish (Project computes a project's finish from its tasks); ``Draft/Update``,
``Draft/Publish(true)`` (which checks in), waiting on each queue job.

Model fields other than name, description and the dates land in the project custom fields the
source's ``custom_fields`` option names, the same mapping reads use, so a written project reads
back the same; a field with nowhere to go fails before anything is sent.

Idempotent: the project's id derives from the correlation id, so a retry finds what the first
call made; a project that has every value asked for is left alone, one missing some is completed.
A project of the same name made some other way is never touched. A failure after the checkout
checks the draft back in unchanged, and a project this call created is deleted again, so nothing
stays half-written; a project someone else has checked out is refused with the server's message.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import Any, Protocol

import requests

from ...core.adapter import WriteResult
from ...core.errors import ConfigError, CrosswalkError, NotFound, PlatformError
from ...core.secrets import REDACTOR
from . import mapping
from .mapping import odata_string

log = logging.getLogger("itcrosswalk.project_online")

VERBOSE = "application/json;odata=verbose"
CORRELATION_NAMESPACE = uuid.UUID("3f0b6a52-8d7e-4f0c-9a51-2c6d1f6f4e10")
# QueueJob.JobState (PS.JobState): 4 Success; 5 Failed, 6 FailedNotBlocking, 9 Canceled
JOB_SUCCESS, JOB_FAILED = 4, {5, 6, 9}
NATIVE_FIELDS = {"name", "description", "planned_start", "planned_finish"}
# Keys a caller may add beyond the model's fields.
OPTIONS = {"enterprise_project_type", "custom_fields"}
FINISH_MILESTONE = "Planned finish"


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return f"{value.isoformat()}T08:00:00Z"
    return str(value)


def custom_value(target: str, value: Any) -> str:
    """A model value as the text a custom field takes (and the mapping reads back)."""
    if target in mapping.WRITE_WORDS:
        return mapping.WRITE_WORDS[target].get(str(value), str(value))
    if target == "goals" or isinstance(value, list):
        return ";".join(str(v) for v in value)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


class Site(Protocol):
    """What the writer needs of its adapter (which it does not import: the adapter imports it)."""

    base: str
    source: Any
    options: Any

    def request(self, method: str, url: str, *, what: str, **kwargs: Any) -> requests.Response: ...

    def json_body(self, response: requests.Response, what: str) -> Any: ...


class ProjectWriter:
    """The ``work_item:project`` writer of a Project Online / Project Server source."""

    entity = "work_item"

    def __init__(self, adapter: Site) -> None:
        self.adapter = adapter
        self.server = f"{adapter.base}/_api/ProjectServer"
        self.contextinfo = f"{adapter.base}/_api/contextinfo"
        self.plan: list[dict[str, Any]] = []
        self.digest: str | None = None

    def __repr__(self) -> str:
        return f"<project_online writer work_item:project -> {self.server}>"

    # -- requests ---------------------------------------------------------------------------------

    def _get(self, path: str, what: str, params: Mapping[str, str] | None = None) -> Any:
        response = self.adapter.request(
            "GET", f"{self.server}/{path}", what=what, params=params, accept=VERBOSE
        )
        body = self.adapter.json_body(response, what)
        return body.get("d", body) if isinstance(body, dict) else body

    def _post(self, path: str, what: str, body: Any = None, *, dry_run: bool) -> Any:
        url = f"{self.server}/{path}"
        if not any(r["url"] == self.contextinfo for r in self.plan):
            self.plan.append({"method": "POST", "url": self.contextinfo, "body": None})
        self.plan.append({"method": "POST", "url": url, "body": body})
        if dry_run:
            return None
        if self.digest is None:
            self.digest = self._form_digest()
        response = self.adapter.request(
            "POST",
            url,
            what=what,
            json=body,
            headers={"X-RequestDigest": self.digest, "Content-Type": VERBOSE},
            accept=VERBOSE,
        )
        if not response.content:
            return {}
        payload = self.adapter.json_body(response, what)
        return payload.get("d", payload) if isinstance(payload, dict) else payload

    def _form_digest(self) -> str:
        what = "the form digest (/_api/contextinfo)"
        response = self.adapter.request("POST", self.contextinfo, what=what, accept=VERBOSE)
        body = self.adapter.json_body(response, what)
        info = body.get("d", body) if isinstance(body, dict) else {}
        info = info.get("GetContextWebInformation", info) if isinstance(info, dict) else {}
        digest = info.get("FormDigestValue") if isinstance(info, dict) else None
        if not digest:
            raise PlatformError(
                f"source {self.adapter.source.name}: /_api/contextinfo answered without a "
                "FormDigestValue"
            )
        REDACTOR.register(str(digest))
        return str(digest)

    @staticmethod
    def _results(body: Any) -> list[dict[str, Any]]:
        if isinstance(body, dict) and isinstance(body.get("results"), list):
            return body["results"]
        if isinstance(body, dict) and isinstance(body.get("value"), list):
            return body["value"]
        return body if isinstance(body, list) else []

    # -- lookups ------------------------------------------------------------------------------------

    def _project_type(self, name: str | None) -> str:
        types = self._results(
            self._get(
                "EnterpriseProjectTypes",
                "ProjectServer EnterpriseProjectTypes",
                {"$select": "Id,Name,IsDefault"},
            )
        )
        for ept in types:
            if name is None and ept.get("IsDefault") is True:
                return str(ept["Id"])
            if name is not None and str(ept.get("Name", "")).casefold() == name.casefold():
                return str(ept["Id"])
        known = ", ".join(sorted(str(t.get("Name")) for t in types)) or "none"
        wanted = repr(name) if name else "marked as the default"
        raise ConfigError(
            f"source {self.adapter.source.name}: no enterprise project type {wanted} "
            f"(the PWA has: {known}); set project_type in [sources.{self.adapter.source.name}]"
        )

    def _internal_names(self, wanted: list[str]) -> dict[str, str]:
        """Custom field display name -> InternalName (``Custom_<guid>``)."""
        if not wanted:
            return {}
        fields = self._results(
            self._get(
                "CustomFields", "ProjectServer CustomFields", {"$select": "Id,Name,InternalName"}
            )
        )
        by_name = {str(f.get("Name")): str(f.get("InternalName")) for f in fields}
        by_property = {
            mapping.property_name(str(f.get("Name"))): str(f.get("InternalName")) for f in fields
        }
        out: dict[str, str] = {}
        missing = []
        for name in wanted:
            internal = by_name.get(name) or by_property.get(mapping.property_name(name))
            if internal:
                out[name] = internal
            else:
                missing.append(name)
        if missing:
            raise ConfigError(
                f"source {self.adapter.source.name}: the PWA has no project custom field named "
                f"{', '.join(repr(m) for m in missing)}"
            )
        return out

    def _custom_values(self, fields: Mapping[str, Any]) -> dict[str, str]:
        """Custom field display name -> text, from model fields and explicit custom fields."""
        configured = self.adapter.options.custom_fields
        targets = dict(configured)
        # The built-in Project Departments field takes the department unless told otherwise.
        targets.setdefault("department", "Project Departments")
        values: dict[str, str] = {}
        homeless = []
        for name, value in fields.items():
            if name in NATIVE_FIELDS or name in OPTIONS or value is None or value == []:
                continue
            target = "goals" if name == "strategic_goals" else name
            if target not in targets:
                homeless.append(name)
                continue
            values[targets[target]] = custom_value(target, value)
        if homeless:
            source = self.adapter.source.name
            raise ConfigError(
                f"source {source}: Project Server keeps {', '.join(homeless)} in project custom "
                f"fields; name them in [sources.{source}] custom_fields "
                f'(e.g. custom_fields = {{ {homeless[0]} = "<custom field name>" }})'
            )
        for name, value in (fields.get("custom_fields") or {}).items():
            values[str(name)] = str(value)
        return values

    def _find(self, project_id: str, name: str) -> dict[str, Any] | None:
        try:
            return self._get(
                f"Projects('{project_id}')", "ProjectServer project", {"$select": "Id,Name"}
            )
        except NotFound:
            pass
        same_name = self._results(
            self._get(
                "Projects",
                "ProjectServer Projects",
                {"$filter": f"Name eq {odata_string(name)}", "$select": "Id,Name"},
            )
        )
        if same_name:
            raise PlatformError(
                f"source {self.adapter.source.name}: a project named {name!r} already exists "
                f"({same_name[0].get('Id')}) and was not made for this request (correlation id); "
                "it is left alone: choose another name, or pass that project's correlation id"
            )
        return None

    def _wait(self, project_id: str, job: Any, what: str) -> None:
        """Wait for a queue job (Update, Publish): Project Server runs them asynchronously."""
        job_id = job.get("Id") if isinstance(job, dict) else None
        if not job_id:
            return
        deadline = time.monotonic() + 120
        while True:
            state = self._get(
                f"Projects('{project_id}')/QueueJobs('{job_id}')",
                f"the queue job of {what}",
                {"$select": "Id,JobState"},
            )
            value = state.get("JobState") if isinstance(state, dict) else None
            if value == JOB_SUCCESS:
                return
            if value in JOB_FAILED or time.monotonic() > deadline:
                raise PlatformError(
                    f"source {self.adapter.source.name}: {what} did not complete in the Project "
                    f"Server queue (JobState {value}); see the PWA's queue jobs"
                )
            time.sleep(0.5)

    # -- the write ------------------------------------------------------------------------------------

    def __call__(
        self, fields: Mapping[str, Any], *, correlation_id: str, dry_run: bool = False
    ) -> WriteResult:
        """Create the project ``fields`` describe (or complete it), publish and check it in."""
        name = str(fields.get("name") or "").strip()
        if not name:
            raise ConfigError("a project needs a name")
        if not correlation_id:
            raise ConfigError("a project write needs a correlation id")
        self.plan = []
        project_id = str(uuid.uuid5(CORRELATION_NAMESPACE, f"{self.adapter.base}|{correlation_id}"))
        custom = self._custom_values(fields)
        ept_id = self._project_type(
            fields.get("enterprise_project_type") or self.adapter.options.project_type
        )
        internal = self._internal_names(list(custom))
        existing = self._find(project_id, name)
        created = False
        if existing is not None:
            current = self._get(
                f"Projects('{project_id}')/IncludeCustomFields",
                "ProjectServer project custom fields",
                {"$select": ",".join(["Id", *internal.values()])},
            )
            pending = {
                label: value
                for label, value in custom.items()
                if str((current or {}).get(internal[label]) or "") != value
            }
            if not pending:
                return self._result("exists", project_id)
        else:
            pending = custom
            info: dict[str, Any] = {
                # Verbose JSON names the complex type of a parameter.
                "__metadata": {"type": "PS.ProjectCreationInformation"},
                "Id": project_id,
                "Name": name,
                "Description": str(fields.get("description") or ""),
                "EnterpriseProjectTypeId": ept_id,
            }
            if fields.get("planned_start"):
                info["Start"] = _iso(fields["planned_start"])
            self._post("Projects/Add", "Projects/Add", {"parameters": info}, dry_run=dry_run)
            created = True
        project = f"Projects('{project_id}')"
        checked_out = False
        try:
            self._post(f"{project}/checkOut", "the checkout", dry_run=dry_run)
            checked_out = not dry_run
            for label, value in pending.items():
                self._post(
                    f"{project}/Draft/SetCustomFieldValue",
                    f"custom field {label!r}",
                    {"FieldName": internal[label], "Value": value},
                    dry_run=dry_run,
                )
            if created and fields.get("planned_finish"):
                self._post(
                    f"{project}/Draft/Tasks/Add",
                    "the planned-finish milestone",
                    {
                        "parameters": {
                            "__metadata": {"type": "PS.TaskCreationInformation"},
                            "Id": str(uuid.uuid5(uuid.UUID(project_id), FINISH_MILESTONE)),
                            "Name": FINISH_MILESTONE,
                            "Start": _iso(fields["planned_finish"]),
                            "Duration": "0d",
                            "IsManual": True,
                        }
                    },
                    dry_run=dry_run,
                )
            job = self._post(f"{project}/Draft/Update", "Draft/Update", dry_run=dry_run)
            if not dry_run:
                self._wait(project_id, job, "Draft/Update")
            job = self._post(f"{project}/Draft/Publish(true)", "Draft/Publish", dry_run=dry_run)
            if not dry_run:
                self._wait(project_id, job, "Draft/Publish")
                checked_out = False
                state = self._get(project, "ProjectServer project", {"$select": "Id,IsCheckedOut"})
                if isinstance(state, dict) and state.get("IsCheckedOut"):
                    self._post(f"{project}/Draft/CheckIn(false)", "the check-in", dry_run=False)
        except CrosswalkError:
            if not dry_run:
                self._undo(project, checked_out=checked_out, created=created)
            raise
        return self._result("dry_run" if dry_run else "created", project_id)

    def _undo(self, project: str, *, checked_out: bool, created: bool) -> None:
        """Leave nothing half-written: release our checkout; delete a project this call made."""
        try:
            if checked_out:
                self._post(f"{project}/Draft/CheckIn(true)", "the check-in (undo)", dry_run=False)
            if created:
                self._post(f"{project}/deleteObject", "the delete (undo)", dry_run=False)
        except CrosswalkError as exc:
            log.warning(
                "source %s: could not undo a failed create: %s", self.adapter.source.name, exc
            )

    def _result(self, action: str, project_id: str) -> WriteResult:
        requests_ = [
            {**r, "headers": {"X-RequestDigest": "<form digest>"}} if r["method"] == "POST" else r
            for r in self.plan
        ]
        return WriteResult(
            action=action,
            entity=self.entity,
            source_id=project_id,
            url=f"{self.adapter.base}/project%20detail%20pages/schedule.aspx?projuid={project_id}",
            requests=requests_,
        )


def plan_lines(result: WriteResult) -> Iterator[str]:
    """A write's requests as lines (``POST url body``) for people."""
    for item in result.requests:
        body = item.get("body")
        text = "" if body is None else " " + json.dumps(body, ensure_ascii=False, default=str)
        yield f"{item['method']} {item['url']}{text}"
