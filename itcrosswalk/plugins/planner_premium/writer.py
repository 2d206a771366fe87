"""Plans created through the Schedule API: a plan from a standard template, with its tasks.

Direct writes to the scheduling tables are refused by Dataverse (``0x80040265``), so a plan is
made the way Project for the web makes one: ``msdyn_CreateProjectV1`` (the plan and its default
bucket), then one operation set (``msdyn_CreateOperationSetV1``) staging every task
(``msdyn_PssCreateV1``, parents before children, ids chosen here so children can name them),
committed by ``msdyn_ExecuteOperationSetV1``. Execution is asynchronous: the set's
``msdyn_status`` is polled until it says Completed or Failed (labels read from the org's
metadata). A failed set has its error (``msdyn_psserrorlogs``) shown, and the plan made for it
is deleted again through a set of its own, so nothing is left half-created.

Only a delegated user with a Project licence may call the Schedule API; an application user
cannot ("Project Schedule APIs can only be used by Users with Microsoft Project License"), so a
write with app-only credentials is refused before anything is sent. The delegated user signs in
once with ``crosswalk planner-premium login SOURCE`` (device code); its refresh token lives in
the OS keyring. Idempotent through the correlation id: it is written into the plan's
description as ``[crosswalk:<id>]`` and looked for before anything is created, and every id
the writer chooses derives from it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from ...core.adapter import WriteResult
from ...core.errors import AuthError, ConfigError, CrosswalkError, PlatformError
from ...core.http import BearerToken, RenewingBearer, send
from ...core.secrets import REDACTOR, redact
from . import mapping
from .adapter import PlannerPremiumAdapter, token_claims

NS = uuid.UUID("0c7c3b38-0d55-4f0e-a0a1-8a3c3e6d5f21")
MAX_OPERATIONS = 200
STANDARD_PLAN: list[tuple[str, float, float, bool]] = [
    # (task, start fraction, finish fraction, milestone) of the plan's span
    ("Initiate", 0.0, 0.1, False),
    ("Plan", 0.1, 0.25, False),
    ("Execute", 0.25, 0.85, False),
    ("Go-live", 0.85, 0.85, True),
    ("Close", 0.85, 1.0, False),
]
"""The City's standard plan: what a plan created without its own tasks gets."""
APP_ONLY = (
    'the Schedule API cannot be used by an application user (Microsoft: "Project Schedule APIs '
    'can only be used by Users with Microsoft Project License"); set schedule_user = '
    '{ client_id = "..." } and run `crosswalk planner-premium login SOURCE` once as a licensed '
    "user, or set schedule_token to a delegated token"
)


def marker(correlation_id: str) -> str:
    return f"[crosswalk:{correlation_id}]"


def stamp(moment: Any) -> str | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class DelegatedUser(RenewingBearer):
    """The licensed user's token from the refresh token in the keyring (MSAL public client)."""

    def __init__(self, adapter: PlannerPremiumAdapter) -> None:
        user = adapter.options.schedule_user
        assert user is not None
        self.adapter = adapter
        self.user = user
        self.source = adapter.source.name
        self.access: str | None = None
        self.expires_at = 0.0
        self._app: Any = None

    @property
    def scopes(self) -> list[str]:
        # MSAL adds offline_access (the refresh token) itself and refuses it in the list.
        return [self.adapter.scope.replace("/.default", "/user_impersonation")]

    def app(self) -> Any:
        if self._app is None:
            import msal  # deferred: only writes need it (azure-identity brings it)

            tenant = self.adapter.options.tenant_id or "organizations"
            authority = f"{self.adapter.authority}/{tenant}"
            session = self.adapter.http.new_session(authority)
            known = self.adapter.authority in (
                "https://login.microsoftonline.com",
                "https://login.microsoftonline.us",
                "https://login.chinacloudapi.cn",
            )
            self._app = (
                msal.PublicClientApplication(
                    self.user.client_id, authority=authority, http_client=session
                )
                if known
                else msal.PublicClientApplication(
                    self.user.client_id, oidc_authority=f"{authority}/v2.0", http_client=session
                )
            )
        return self._app

    def _keyring(self) -> Any:
        import keyring

        return keyring

    def _accept(self, result: Mapping[str, Any]) -> str:
        if "access_token" not in result:
            reason = result.get("error_description") or result.get("error") or "no token"
            raise AuthError(
                f"authentication failed for source {self.source}: the sign-in refused the "
                f"Schedule API user ({str(reason).splitlines()[0][:200]}); run "
                f"`crosswalk planner-premium login {self.source}` again"
            )
        self.access = str(result["access_token"])
        REDACTOR.register(self.access)
        if result.get("refresh_token"):
            REDACTOR.register(str(result["refresh_token"]))
            self._keyring().set_password(
                self.user.keyring_service, self.source, str(result["refresh_token"])
            )
        self.expires_at = time.monotonic() + float(result.get("expires_in", 3600)) - 60
        return self.access

    def device_login(self, prompt: Callable[[str], None]) -> dict[str, Any]:
        app = self.app()
        flow = app.initiate_device_flow(scopes=self.scopes)
        if "user_code" not in flow:
            reason = flow.get("error_description") or flow.get("error") or "no device code"
            raise AuthError(
                f"authentication failed for source {self.source}: the device-code sign-in could "
                f"not start ({str(reason).splitlines()[0][:200]})"
            )
        prompt(str(flow.get("message") or f"{flow['verification_uri']} {flow['user_code']}"))
        self._accept(app.acquire_token_by_device_flow(flow))
        return {"source": self.source, "keyring": f"{self.user.keyring_service}/{self.source}"}

    def token(self, *, renew: bool = False) -> str:
        if not renew and self.access and time.monotonic() < self.expires_at:
            return self.access
        from ...core.secrets import resolve_secret

        refresh = resolve_secret(
            f"keyring:{self.user.keyring_service}/{self.source}",
            key=f"sources.{self.source}.schedule_user",
        )
        REDACTOR.register(refresh)
        return self._accept(self.app().acquire_token_by_refresh_token(refresh, self.scopes))


class PlanWriter:
    """``writers["work_item:project"]``: a plan and its tasks through the Schedule API."""

    def __init__(self, adapter: PlannerPremiumAdapter) -> None:
        self.adapter = adapter
        self.name = adapter.source.name
        self._session: requests.Session | None = None

    def __repr__(self) -> str:
        return f"<planner_premium writer plan -> {self.adapter.base}>"

    # -- who writes --------------------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why the configured credentials cannot call the Schedule API, known before sending."""
        options = self.adapter.options
        if options.schedule_user or options.schedule_token:
            return None
        auth = self.adapter.source.auth
        if auth is not None and auth.type in ("oauth_client_credentials", "client_certificate"):
            return f"source {self.name} signs in as app {auth.client_id}: {APP_ONLY}"
        if auth is not None and auth.type == "bearer":
            claims = token_claims(self.adapter.secrets(auth.token, "auth.token"))
            if claims is None or claims.get("idtyp") == "app" or "scp" not in claims:
                return f"source {self.name}'s bearer token is not a user's (no delegated scope): {APP_ONLY}"
        return None

    def session(self) -> requests.Session:
        if self._session is None:
            options = self.adapter.options
            auth: requests.auth.AuthBase
            if options.schedule_token:
                auth = BearerToken(self.adapter.secrets(options.schedule_token, "schedule_token"))
            elif options.schedule_user:
                auth = DelegatedUser(self.adapter)
            else:
                auth = self.adapter.session.auth  # type: ignore[assignment]
            # The shared client's session under the source's policy, with the writer's own user.
            session = self.adapter.http.new_session()
            session.headers.update({"OData-MaxVersion": "4.0", "OData-Version": "4.0"})
            session.auth = auth
            self._session = session
        return self._session

    def call(
        self,
        method: str,
        path: str,
        made: list[dict[str, Any]],
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        what: str,
    ) -> dict[str, Any]:
        url = path if path.startswith("http") else f"{self.adapter.api}/{path}"
        response = send(
            self.session(),
            method,
            url,
            source=self.adapter.source,
            recording=made,
            params=dict(params) if params else None,
            json=body,
            headers={"Content-Type": "application/json"} if body is not None else None,
        )
        self.adapter.check_answer(response, what)
        try:
            data = response.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    # -- the operation set -------------------------------------------------------------------

    def tasks(self, fields: Mapping[str, Any], correlation_id: str) -> list[dict[str, Any]]:
        """The tasks to create, each with its own id: the given ones, else the standard plan."""
        start = fields.get("planned_start")
        finish = fields.get("planned_finish")
        given = fields.get("tasks")
        out: list[dict[str, Any]] = []
        if given:
            ids: dict[str, str] = {}
            for index, task in enumerate(given):
                name = str(task.get("name") or "").strip()
                if not name:
                    raise ConfigError(f"source {self.name}: task {index + 1} has no name")
                tid = str(uuid.uuid5(NS, f"{correlation_id}|task|{index}"))
                ids[str(task.get("key") or name)] = tid
                parent = task.get("parent")
                out.append(
                    {
                        "id": tid,
                        "name": name[:250],
                        "start": stamp(task.get("planned_start") or start),
                        "finish": stamp(
                            task.get("planned_finish") or task.get("planned_start") or finish
                        ),
                        "parent": ids.get(str(parent)) if parent else None,
                    }
                )
            return out
        if not isinstance(start, datetime) or not isinstance(finish, datetime):
            raise ConfigError(
                f"source {self.name}: the standard plan needs planned_start and planned_finish"
            )
        span = finish - start
        for index, (name, a, b, _milestone) in enumerate(STANDARD_PLAN):
            out.append(
                {
                    "id": str(uuid.uuid5(NS, f"{correlation_id}|task|{index}")),
                    "name": name,
                    "start": stamp(start + span * a),
                    "finish": stamp(start + span * b if b > a else start + span * a + timedelta(0)),
                    "parent": None,
                }
            )
        return out

    def operations(
        self, project_id: str, bucket: str | None, tasks: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """The ``msdyn_PssCreateV1`` bodies (without their set id), parents before children.
        Progress and the milestone flag are never sent on create (ScheduleAPI-AV-0001)."""
        bodies = []
        for task in tasks:
            entity: dict[str, Any] = {
                "@odata.type": "Microsoft.Dynamics.CRM.msdyn_projecttask",
                "msdyn_projecttaskid": task["id"],
                "msdyn_project@odata.bind": f"/msdyn_projects({project_id})",
                "msdyn_subject": task["name"],
                "msdyn_scheduledstart": task["start"],
                "msdyn_scheduledend": task["finish"],
            }
            if bucket:
                entity["msdyn_projectbucket@odata.bind"] = f"/msdyn_projectbuckets({bucket})"
            if task["parent"]:
                entity["msdyn_parenttask@odata.bind"] = f"/msdyn_projecttasks({task['parent']})"
            bodies.append({"Entity": entity})
        return bodies

    def plan(self, fields: Mapping[str, Any], correlation_id: str) -> dict[str, Any]:
        """Everything a write sends, computed before anything is: the plan, the set, its ops."""
        name = str(fields.get("name") or "").strip()
        if not name:
            raise ConfigError(f"source {self.name}: cannot create the plan: a name is required")
        if not correlation_id or len(correlation_id) > 200:
            raise ConfigError(f"source {self.name}: give a correlation id of 1-200 characters")
        project_id = str(uuid.uuid5(NS, f"{correlation_id}|plan"))
        description = "\n".join(
            p for p in (str(fields.get("description") or "").strip(), marker(correlation_id)) if p
        )
        project: dict[str, Any] = {
            "@odata.type": "Microsoft.Dynamics.CRM.msdyn_project",
            "msdyn_projectid": project_id,
            "msdyn_subject": name[:200],
            "msdyn_description": description,
        }
        if fields.get("planned_start"):
            project["msdyn_scheduledstart"] = stamp(fields["planned_start"])
        tasks = self.tasks(fields, correlation_id)
        if len(tasks) >= MAX_OPERATIONS:
            raise ConfigError(
                f"source {self.name}: {len(tasks)} tasks do not fit one operation set "
                f"(at most {MAX_OPERATIONS} operations): split the plan"
            )
        return {
            "project": project,
            "project_id": project_id,
            "tasks": tasks,
            "operations": self.operations(project_id, None, tasks),
            "description": f"itcrosswalk {correlation_id}"[:100],
        }

    def find(self, correlation_id: str, made: list[dict[str, Any]]) -> dict[str, Any] | None:
        meta = self.adapter.table("msdyn_project")
        literal = marker(correlation_id).replace("'", "''")
        body = self.call(
            "GET",
            meta["set"],
            made,
            params={
                "$select": "msdyn_projectid,msdyn_subject",
                "$filter": f"contains(msdyn_description,'{literal}')",
            },
            what="plans carrying the correlation id",
        )
        found = body.get("value") or []
        return found[0] if found else None

    def wait(self, set_id: str, made: list[dict[str, Any]]) -> str:
        """Poll the executed set until it is done: its status label (Completed, Failed, ...)."""
        labels = self.adapter.option_sets("msdyn_operationset").get("msdyn_status", {})
        meta = self.adapter.table("msdyn_operationset")
        deadline = time.monotonic() + self.adapter.options.operation_timeout
        pause = 0.25
        while True:
            row = self.call(
                "GET",
                f"{meta['set']}({set_id})?$select=msdyn_status",
                made,
                what=f"operation set {set_id}",
            )
            status = labels.get(int(row.get("msdyn_status") or 0), str(row.get("msdyn_status")))
            if status.lower() not in ("open", "pending", "processing"):
                return status
            if time.monotonic() > deadline:
                raise PlatformError(
                    f"source {self.name}: operation set {set_id} still {status.lower()} after "
                    f"{self.adapter.options.operation_timeout:g}s; it may still finish: look under "
                    "Settings > Schedule Integration > Operation Sets before trying again"
                )
            time.sleep(pause)
            pause = min(pause * 2, 5.0)

    def failure(self, set_id: str, made: list[dict[str, Any]]) -> str:
        body = self.call(
            "GET",
            "msdyn_psserrorlogs",
            made,
            params={
                "$select": "msdyn_errorcode,msdyn_log",
                "$filter": f"_msdyn_operationset_value eq {set_id}",
            },
            what="the operation set's error log",
        )
        logs = [
            str(r.get("msdyn_log") or r.get("msdyn_errorcode")) for r in body.get("value") or []
        ]
        return "; ".join(logs) or "no error log was written (see Settings > Schedule Integration)"

    def run_set(
        self,
        project_id: str,
        operations: list[dict[str, Any]],
        made: list[dict[str, Any]],
        what: str,
    ) -> tuple[str, str]:
        """Create, stage, execute and await one operation set: ``(set id, status label)``; a set
        whose staging fails is abandoned (an open set counts against the user's 10)."""
        opened = self.call(
            "POST",
            "msdyn_CreateOperationSetV1",
            made,
            body={"ProjectId": project_id, "Description": what},
            what="creating an operation set",
        )
        set_id = str(opened.get("OperationSetId") or "")
        try:
            for body in operations:
                self.call(
                    "POST",
                    f"msdyn_Pss{'Delete' if 'RecordId' in body else 'Create'}V1",
                    made,
                    body={**body, "OperationSetId": set_id},
                    what="staging an operation",
                )
        except CrosswalkError:
            try:
                self.call(
                    "POST",
                    "msdyn_AbandonOperationSetV1",
                    made,
                    body={"OperationSetId": set_id},
                    what="abandoning the operation set",
                )
            except CrosswalkError:
                pass
            raise
        self.call(
            "POST",
            "msdyn_ExecuteOperationSetV1",
            made,
            body={"OperationSetId": set_id},
            what="executing the operation set",
        )
        return set_id, self.wait(set_id, made)

    def undo(self, project_id: str, made: list[dict[str, Any]]) -> str:
        """Delete the plan made for a set that failed (its default bucket goes with it)."""
        try:
            _set, status = self.run_set(
                project_id,
                [{"RecordId": project_id, "EntityLogicalName": "msdyn_project"}],
                made,
                "itcrosswalk undo",
            )
        except CrosswalkError as exc:
            return f"the plan {project_id} could not be deleted again ({exc}): delete it by hand"
        if status.lower() != "completed":
            return f"deleting the plan {project_id} again ended {status}: delete it by hand"
        return "the plan made for it was deleted again; nothing is left half-created"

    def __call__(
        self, fields: Mapping[str, Any], *, correlation_id: str, dry_run: bool = False
    ) -> WriteResult:
        why = self.refusal()
        if why is not None:
            raise ConfigError(why)
        made: list[dict[str, Any]] = []
        planned = self.plan(fields, correlation_id)
        url = mapping.record_url(self.adapter.base, "msdyn_project", planned["project_id"])
        existing = self.find(correlation_id, made)
        if existing is not None:
            return WriteResult(
                action="exists",
                entity="work_item",
                source_id=str(existing["msdyn_projectid"]),
                url=mapping.record_url(
                    self.adapter.base, "msdyn_project", str(existing["msdyn_projectid"])
                ),
                requests=made,
            )
        api = self.adapter.api
        if dry_run:
            set_ref = "<OperationSetId>"
            made.append(
                {
                    "method": "POST",
                    "url": f"{api}/msdyn_CreateProjectV1",
                    "body": {"Project": planned["project"]},
                }
            )
            made.append({"method": "POST", "url": f"{api}/msdyn_CreateOperationSetV1",
                         "body": {"ProjectId": planned["project_id"], "Description": planned["description"]}})  # fmt: skip
            for body in planned["operations"]:
                made.append(
                    {
                        "method": "POST",
                        "url": f"{api}/msdyn_PssCreateV1",
                        "body": {**body, "OperationSetId": set_ref},
                    }
                )
            made.append(
                {
                    "method": "POST",
                    "url": f"{api}/msdyn_ExecuteOperationSetV1",
                    "body": {"OperationSetId": set_ref},
                }
            )
            return WriteResult(
                action="dry_run",
                entity="work_item",
                source_id=planned["project_id"],
                url=url,
                requests=made,
            )
        created = self.call(
            "POST",
            "msdyn_CreateProjectV1",
            made,
            body={"Project": planned["project"]},
            what="creating the plan",
        )
        project_id = str(created.get("ProjectId") or planned["project_id"])
        bucket = self._bucket(project_id, made)
        operations = self.operations(project_id, bucket, planned["tasks"])
        try:
            set_id, status = self.run_set(project_id, operations, made, planned["description"])
        except CrosswalkError as exc:
            raise PlatformError(
                redact(
                    f"source {self.name}: staging the plan's tasks failed: {exc}; {self.undo(project_id, made)}"
                )
            ) from None
        if status.lower() != "completed":
            error = self.failure(set_id, made)
            raise PlatformError(
                redact(
                    f"source {self.name}: the Schedule API failed operation set {set_id} for plan "
                    f"{planned['project']['msdyn_subject']!r} ({status}): {error}; {self.undo(project_id, made)}"
                )
            )
        return WriteResult(
            action="created",
            entity="work_item",
            source_id=project_id,
            url=mapping.record_url(self.adapter.base, "msdyn_project", project_id),
            requests=made,
        )

    def _bucket(self, project_id: str, made: list[dict[str, Any]]) -> str | None:
        body = self.call(
            "GET",
            "msdyn_projectbuckets",
            made,
            params={
                "$select": "msdyn_projectbucketid",
                "$filter": f"_msdyn_project_value eq {project_id}",
            },
            what="the plan's default bucket",
        )
        found = body.get("value") or []
        return str(found[0]["msdyn_projectbucketid"]) if found else None


def login(adapter: PlannerPremiumAdapter, prompt: Callable[[str], None]) -> dict[str, Any]:
    """The device-code sign-in of the Schedule API user, once; the refresh token goes to the
    OS keyring."""
    if adapter.options.schedule_user is None:
        raise ConfigError(
            f'sources.{adapter.source.name}.schedule_user: set {{ client_id = "..." }} (a public '
            "client app with Dynamics CRM user_impersonation) to sign in a licensed user"
        )
    return DelegatedUser(adapter).device_login(prompt)


__all__ = ["PlanWriter", "login", "urlsplit"]
