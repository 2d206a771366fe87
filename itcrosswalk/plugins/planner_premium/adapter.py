"""Planner premium plans (Project for the web) through the Dataverse Web API, on requests and the
core HTTP policy.

``url`` is the environment (``https://org.crm.dynamics.com``); the adapter adds
``/api/data/v9.2``. Sign-in: an Entra app added to the environment as an application user
(``oauth_client_credentials`` or ``client_certificate``, through azure-identity, for the
``https://<env>/.default`` scope of the source's national cloud) or a ``bearer`` token.

What Dataverse makes us do (``shared/platforms/planner_premium.md``):

- the columns of each table come from the org's metadata (``EntityDefinitions`` with its
  attributes): a column the org lacks (the Project Operations cost and health columns on a pure
  Planner premium org) is never put in ``$select`` (one unknown column fails the whole query)
  and is reported absent, never 0; option-set labels are read per org
  (``EnumAttributeMetadata``), since their values and words differ between orgs;
- paging is the server's: ``Prefer: odata.maxpagesize`` and the ``@odata.nextLink`` followed
  exactly as received (its skiptoken is double-encoded); no ``$skip``;
- incremental reads by change tracking where the table has it: the first read asks
  ``Prefer: odata.track-changes`` and keeps the ``@odata.deltaLink``; later reads GET that link
  and turn ``$deletedEntity`` rows into tombstones; an expired or refused token restarts the read
  as one full read that reconciles deletions. Where change tracking is off: ``modifiedon ge``
  the watermark less the overlap (a closed lower bound, second precision), ordered by
  ``modifiedon`` and the key, "unchanged" decided by ``versionnumber``, and an id sweep for
  deletions;
- service-protection 429s are retried after their ``Retry-After`` by the core policy.

Write-back goes through the Schedule API only (``writer.py``).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...core.adapter import Adapter, Capabilities, CheckItem, Page, Stream, Window, check_status
from ...core.config import SourceConfig
from ...core.errors import (
    AccessDenied,
    AuthError,
    ConfigError,
    ConnectError,
    CrosswalkError,
    MalformedResponse,
    NotFound,
    PlatformError,
)
from ...core.http import (
    BearerToken,
    HttpPolicy,
    RenewingBearer,
    build_session,
    check_response,
    is_loopback,
    platform_message,
    send,
)
from ...core.model import Record
from ...core.secrets import REDACTOR, redact
from . import mapping

log = logging.getLogger("itcrosswalk.planner_premium")

API = "/api/data/v9.2"
AUTH_TYPES = ("oauth_client_credentials", "client_certificate", "bearer")
MAX_PAGE = 5000
# cloud -> login authority (the environment's own host names the Dataverse cloud)
CLOUDS: dict[str, str] = {
    "global": "https://login.microsoftonline.com",
    "usgov": "https://login.microsoftonline.us",
    "dod": "https://login.microsoftonline.us",
    "china": "https://login.chinacloudapi.cn",
}
NOT_APPLICATION_USER = "0x80072560"
MISSING_PRIVILEGE = "0x80040220"
EXPIRED_TOKEN_CODE = "0x80044352"
UNKNOWN_PROPERTY = "0x80060888"
ANNOTATIONS = 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
TABLES = (
    "msdyn_project",
    "msdyn_projecttask",
    "bookableresource",
    "msdyn_projectteam",
    "msdyn_resourceassignment",
    "systemuser",
    "msdyn_operationset",
)


class ScheduleUser(BaseModel):
    """The delegated, Project-licensed user the Schedule API needs (application users cannot
    use it); signed in once by ``crosswalk planner-premium login SOURCE`` (device code), its
    refresh token kept in the OS keyring."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1)
    """A public-client app registration with the Dynamics CRM ``user_impersonation`` permission."""
    keyring_service: str = "itcrosswalk-planner-premium"


class PlannerPremiumOptions(BaseModel):
    """Keys of a ``[sources.NAME]`` table with ``platform = "planner_premium"`` beyond the common ones."""

    model_config = ConfigDict(extra="forbid")

    tenant_id: str | None = None
    """The Entra ID tenant; required for client credentials and certificates."""
    cloud: Literal["global", "usgov", "dod", "china"] = "global"
    authority: str | None = None
    """The login host; overrides the cloud's."""
    change_tracking: bool = True
    """Use Dataverse change tracking where the org has it on (else modifiedon and an id sweep)."""
    schedule_user: ScheduleUser | None = None
    schedule_token: str | None = None
    """A delegated bearer token reference (``env:``/``file:``/``keyring:``) for the Schedule API,
    obtained elsewhere; instead of ``schedule_user``."""
    operation_timeout: float = Field(120.0, gt=0)
    """Seconds to wait for an executed operation set to finish."""

    @field_validator("authority")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be an https:// URL (e.g. https://login.microsoftonline.us)")
        return value.rstrip("/") if value else value


class ChangeTokenRefused(PlatformError):
    """Dataverse refused a delta token (expired, or the table's tracking was reset)."""


class EntraToken(RenewingBearer):
    """An app-only token from azure-identity (secret or certificate), renewed as it expires."""

    def __init__(self, credential: Any, scope: str, hint: str) -> None:
        self.credential = credential
        self.scope = scope
        self.hint = hint
        self.access: Any = None
        self.lock = threading.Lock()

    def token(self, *, renew: bool = False) -> str:
        import time

        from azure.core.exceptions import ClientAuthenticationError

        with self.lock:
            if renew or self.access is None or self.access.expires_on - 60 < time.time():
                try:
                    self.access = self.credential.get_token(self.scope)
                except ClientAuthenticationError as exc:
                    said = next(
                        (line for line in str(exc).splitlines() if "AADSTS" in line),
                        str(exc).splitlines()[0] if str(exc) else "refused",
                    )
                    raise AuthError(redact(f"{self.hint} ({said.strip()[:240]})")) from None
                REDACTOR.register(self.access.token)
            return str(self.access.token)


def token_claims(token: str) -> dict[str, Any] | None:
    """The claims of a JWT access token (unverified: only to tell an app token from a user's)."""
    parts = token.split(".")
    if len(parts) < 2:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


class PlannerPremiumAdapter(Adapter):
    """One Dataverse environment's Planner premium plans."""

    platform = "planner_premium"

    def __init__(self, source: SourceConfig, secrets: Any) -> None:
        super().__init__(source, secrets)
        if not source.url:
            raise ConfigError(
                f"sources.{source.name}.url: the Dataverse environment URL is required "
                "(https://org.crm.dynamics.com)"
            )
        base = source.url.rstrip("/")
        if "/api/data" in base.lower():
            base = base[: base.lower().index("/api/data")]
        parts = urlsplit(base)
        if parts.scheme != "https" and not is_loopback(parts.hostname):
            raise ConfigError(f"sources.{source.name}.url: Dataverse is HTTPS only; use https://")
        self.base = base
        self.api = base + API
        self.options = PlannerPremiumOptions.model_validate(source.platform_options())
        auth = source.auth
        if auth is None or auth.type not in AUTH_TYPES:
            raise ConfigError(
                f"sources.{source.name}.auth: Planner premium takes type {', '.join(AUTH_TYPES)}"
                + (f", not {auth.type!r}" if auth is not None else "")
            )
        if auth.type != "bearer" and not self.options.tenant_id:
            raise ConfigError(f"sources.{source.name}.tenant_id: required for {auth.type}")
        if self.options.authority:
            self.authority = self.options.authority
        elif is_loopback(parts.hostname):
            self.authority = f"{parts.scheme}://{parts.netloc}"  # the sandbox signs in itself
        else:
            self.authority = CLOUDS[self.options.cloud]
        self.scope = f"{parts.scheme}://{parts.netloc}/.default"
        self.policy = HttpPolicy.from_source(source)
        self._session: requests.Session | None = None
        self._credential: Any = None
        self._lock = threading.RLock()
        self._recording: list[dict[str, Any]] | None = None
        self.meta: dict[str, dict[str, Any]] | None = None
        self.labels: dict[str, dict[str, dict[int, str]]] = {}
        self._users: dict[str, dict[str, Any]] | None = None
        self._teams: dict[str, list[dict[str, Any]]] | None = None
        self._resources: dict[str, dict[str, Any]] | None = None

    # -- HTTP ------------------------------------------------------------------------------------

    def credential_hint(self) -> str:
        auth = self.source.auth
        tenant = self.options.tenant_id
        if auth is None:
            return "no auth is configured"
        if auth.type == "bearer":
            return f"the bearer token that `{auth.token}` points to was refused (expired, or for another environment?)"
        if auth.type == "oauth_client_credentials":
            return (
                f"check the client secret that `{auth.client_secret}` points to (app {auth.client_id} "
                f"in tenant {tenant}; secrets expire)"
            )
        return f"check the certificate {auth.certificate_path} registered for app {auth.client_id} in tenant {tenant}"

    def _auth(self) -> requests.auth.AuthBase:
        auth = self.source.auth
        assert auth is not None
        name = self.source.name
        if auth.type == "bearer":
            return BearerToken(self.secrets(auth.token, "auth.token"))
        from azure.core.pipeline.transport import RequestsTransport

        token_session = build_session(
            name, base_url=self.authority, policy=self.policy, ca_bundle=self.source.ca_bundle
        )
        common: dict[str, Any] = {
            "authority": self.authority,
            "transport": RequestsTransport(session=token_session, session_owner=False),
            "retry_total": 0,  # the core policy retries; azure-core's on top would multiply them
        }
        if self.authority not in CLOUDS.values():
            common["disable_instance_discovery"] = True
        tenant = str(self.options.tenant_id)
        if auth.type == "oauth_client_credentials":
            from azure.identity import ClientSecretCredential

            secret = self.secrets(auth.client_secret, "auth.client_secret")
            self._credential = ClientSecretCredential(tenant, auth.client_id, secret, **common)
        else:
            from azure.identity import CertificateCredential

            password = (
                self.secrets(auth.certificate_password, "auth.certificate_password")
                if auth.certificate_password
                else None
            )
            try:
                self._credential = CertificateCredential(
                    tenant,
                    auth.client_id,
                    certificate_path=str(auth.certificate_path),
                    password=password,
                    **common,
                )
            except (ValueError, TypeError, OSError) as exc:
                raise ConfigError(
                    redact(
                        f"sources.{name}.auth.certificate_path: cannot sign with {auth.certificate_path}: {exc}"
                    )
                ) from None
        return EntraToken(
            self._credential,
            self.scope,
            f"authentication failed for source {name}: Entra ID tenant {tenant} refused app "
            f"{auth.client_id}; {self.credential_hint()}",
        )

    @property
    def session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                session = build_session(
                    self.source.name,
                    base_url=self.base,
                    policy=self.policy,
                    ca_bundle=self.source.ca_bundle,
                )
                session.headers.update({"OData-MaxVersion": "4.0", "OData-Version": "4.0"})
                session.auth = self._auth()
                self._session = session
            return self._session

    @property
    def http_session(self) -> Any:
        return self._session

    def close(self) -> None:
        if self._credential is not None:
            self._credential.close()
        if self._session is not None:
            self._session.close()
        self._session = self._credential = None

    def recording(self, log_: list[dict[str, Any]] | None) -> None:
        """Log every request sent from now on into ``log_`` (None stops): a write reports them."""
        self._recording = log_

    def check_answer(self, response: requests.Response, what: str) -> None:
        """Raise the error a Dataverse answer means, named by its hex code."""
        status = response.status_code
        if status < 400:
            check_response(response, source=self.source.name, what=what)
            return
        code, message = error_of(response)
        name = self.source.name
        if status == 403 and code == NOT_APPLICATION_USER:
            app = getattr(self.source.auth, "client_id", "the app")
            raise AccessDenied(
                redact(
                    f"source {name}: Dataverse refused {app} (HTTP 403 {code}: {message}): the app is "
                    "not an application user of this environment; add it in the Power Platform admin "
                    "center (Environment > Settings > Users + permissions > Application users) and give "
                    "it a security role"
                )
            )
        if status == 403 and code == MISSING_PRIVILEGE:
            privilege = next(iter(_privileges(message)), "a read privilege")
            raise AccessDenied(
                redact(
                    f"source {name} may not read {what} (HTTP 403 {code}): the security role lacks "
                    f"{privilege}; give the application user a role with organization-level Read on it"
                )
            )
        if status == 400 and (code == EXPIRED_TOKEN_CODE or "Version stamp" in message):
            raise ChangeTokenRefused(redact(f"source {name}: {what}: {message}"))
        if status == 400 and code == UNKNOWN_PROPERTY:
            raise PlatformError(
                redact(f"source {name}: {what} failed (HTTP 400 {code}): {message}")
            )
        if status == 401:
            raise AuthError(
                redact(
                    f"authentication failed for source {name} (HTTP 401 from Dataverse): {self.credential_hint()}"
                )
            )
        if 400 <= status < 500 and status not in (403, 404, 429) and code:
            raise PlatformError(
                redact(f"source {name}: {what} failed with HTTP {status} ({code}): {message}")
            )
        check_response(response, source=name, what=what, credential_hint=self.credential_hint())

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        prefer: list[str] | None = None,
        body: Any = None,
    ) -> dict[str, Any]:
        """One request to the Web API (a path under it, or an absolute link it gave) -> JSON."""
        if not url.startswith("https://") and not url.startswith("http://"):
            url = f"{self.api}/{url}"
        elif urlsplit(url).netloc != urlsplit(self.base).netloc:
            raise PlatformError(
                f"source {self.source.name}: {what}: a link to another host; refusing to follow it"
            )
        headers = {"Prefer": ",".join(prefer)} if prefer else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = send(
            self.session,
            method,
            url,
            source=self.source,
            recording=self._recording,
            params=dict(params) if params else None,
            headers=headers,
            json=body,
        )
        self.check_answer(response, what)
        try:
            data = response.json()
        except ValueError:
            raise MalformedResponse(
                f"source {self.source.name}: {what} answered with a body that is not JSON"
            ) from None
        if not isinstance(data, dict):
            raise MalformedResponse(
                f"source {self.source.name}: {what} answered with JSON that is not an object"
            )
        return data

    def page_size(self) -> int:
        return min(self.source.page_size or MAX_PAGE, MAX_PAGE)

    def read_all(self, path: str, params: Mapping[str, Any], *, what: str) -> list[dict[str, Any]]:
        """Every row of a query, following ``@odata.nextLink`` as given."""
        rows: list[dict[str, Any]] = []
        url: str | None = path
        seen: set[str] = set()
        first = True
        while url:
            body = self.request(
                "GET",
                url,
                what=what,
                params=params if first else None,
                prefer=[f"odata.maxpagesize={self.page_size()}", ANNOTATIONS],
            )
            first = False
            rows += [r for r in body.get("value") or [] if isinstance(r, dict)]
            url = body.get("@odata.nextLink")
            if url in seen:
                raise PlatformError(f"source {self.source.name}: {what} paged in a cycle")
            if url:
                seen.add(url)
        return rows

    # -- metadata --------------------------------------------------------------------------------

    def load_metadata(self) -> dict[str, dict[str, Any]]:
        """Each table's entity set, key, change tracking and columns, and the option-set labels
        of the streamed tables: one request for the definitions, one per streamed table."""
        if self.meta is not None:
            return self.meta
        names = " or ".join(f"LogicalName eq '{t}'" for t in TABLES)
        body = self.request(
            "GET",
            "EntityDefinitions",
            what="table metadata (EntityDefinitions)",
            params={
                "$select": "LogicalName,EntitySetName,PrimaryIdAttribute,ChangeTrackingEnabled",
                "$filter": names,
                "$expand": "Attributes($select=LogicalName,AttributeType)",
            },
        )
        meta: dict[str, dict[str, Any]] = {}
        for item in body.get("value") or []:
            columns = set()
            for attribute in item.get("Attributes") or []:
                logical = str(attribute.get("LogicalName"))
                columns.add(
                    f"_{logical}_value"
                    if attribute.get("AttributeType") in ("Lookup", "Owner", "Customer")
                    else logical
                )
            meta[str(item.get("LogicalName"))] = {
                "set": item.get("EntitySetName"),
                "pk": item.get("PrimaryIdAttribute"),
                "tracked": bool(item.get("ChangeTrackingEnabled")),
                "columns": columns,
            }
        for table in ("msdyn_project", "msdyn_projecttask", "bookableresource"):
            if table in meta:
                self.labels[table] = self.option_sets(table)
        self.meta = meta
        return meta

    def option_sets(self, table: str) -> dict[str, dict[int, str]]:
        body = self.request(
            "GET",
            f"EntityDefinitions(LogicalName='{table}')/Attributes/Microsoft.Dynamics.CRM.EnumAttributeMetadata",
            what=f"option sets of {table}",
            params={"$select": "LogicalName", "$expand": "OptionSet($select=Options)"},
        )
        labels: dict[str, dict[int, str]] = {}
        for attribute in body.get("value") or []:
            options = (attribute.get("OptionSet") or {}).get("Options") or []
            labels[str(attribute.get("LogicalName"))] = {
                int(o["Value"]): str(
                    ((o.get("Label") or {}).get("UserLocalizedLabel") or {}).get("Label")
                    or o["Value"]
                )
                for o in options
                if isinstance(o, dict) and "Value" in o
            }
        return labels

    def table(self, logical: str) -> dict[str, Any]:
        meta = self.load_metadata()
        if logical not in meta:
            raise NotFound(
                f"source {self.source.name}: the environment has no {logical} table; is Planner "
                "premium (Project for the web) installed in this environment?"
            )
        return meta[logical]

    # -- lookups the mapping needs (once per sync, only when a page has records to map) ----------

    def users(self) -> dict[str, dict[str, Any]]:
        if self._users is None:
            rows = self.read_all(
                self.table("systemuser")["set"],
                {"$select": "systemuserid,fullname,domainname,internalemailaddress"},
                what="users (systemusers)",
            )
            self._users = {str(r["systemuserid"]): r for r in rows if r.get("systemuserid")}
        return self._users

    def emails(self) -> dict[str, str]:
        return {
            uid: str(u.get("internalemailaddress") or u.get("domainname") or "").lower()
            for uid, u in self.users().items()
            if u.get("internalemailaddress") or u.get("domainname")
        }

    def teams(self) -> dict[str, list[dict[str, Any]]]:
        """Team membership by bookable resource: the plans each one works on."""
        if self._teams is None:
            meta = self.table("msdyn_projectteam")
            rows = self.read_all(
                meta["set"],
                {
                    "$select": "msdyn_projectteamid,msdyn_name,_msdyn_project_value,_msdyn_bookableresourceid_value"
                },
                what="team members (msdyn_projectteams)",
            )
            teams: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                resource = row.get("_msdyn_bookableresourceid_value")
                if resource:
                    teams.setdefault(str(resource), []).append(
                        {"team_member_id": row.get("msdyn_projectteamid"), "plan_id": row.get("_msdyn_project_value"),
                         "plan": row.get("_msdyn_project_value" + mapping.FORMATTED)}
                    )  # fmt: skip
            self._teams = teams
        return self._teams

    def resources(self) -> dict[str, dict[str, Any]]:
        """Bookable resources by id, with the UPN of the user behind a User one (assignments
        join people on it)."""
        if self._resources is None:
            meta = self.table("bookableresource")
            rows = self.read_all(
                meta["set"],
                {
                    "$select": "bookableresourceid,name,resourcetype,msdyn_primaryemail,_userid_value"
                },
                what="bookable resources",
            )
            users = self.users() if any(r.get("_userid_value") for r in rows) else {}
            labels = self.labels.get("bookableresource", {})
            out: dict[str, dict[str, Any]] = {}
            for row in rows:
                person = mapping.map_resource(
                    row,
                    source=self.source.name,
                    base=self.base,
                    labels=labels,
                    users=users,
                    teams={},
                )
                out[person.source_id] = {
                    "upn": person.upn or person.email,
                    "name": person.name,
                    "resource_type": person.extra.get("resource_type"),
                }
            self._resources = out
        return self._resources

    # -- the adapter contract --------------------------------------------------------------------

    def streams(self) -> list[Stream]:
        self.load_metadata()
        streams: list[Stream] = [Plans(self), Tasks(self), Resources(self)]
        if "msdyn_resourceassignment" in (self.meta or {}):
            streams.append(Assignments(self))
        return streams

    def check(self) -> list[CheckItem]:
        items: list[CheckItem] = []
        try:
            who = self.request("GET", "WhoAmI", what="the signed-in principal (WhoAmI)")
        except AuthError as exc:
            return [CheckItem("sign-in", False, str(exc), status="auth")]
        except AccessDenied as exc:
            return [CheckItem("application user", False, str(exc), status="no_access")]
        except CrosswalkError as exc:
            return [CheckItem("sign-in", False, str(exc), status=check_status(exc))]
        items.append(
            CheckItem(
                "application user", True, f"signed in as user {who.get('UserId')}", status="ok"
            )
        )
        try:
            meta = self.load_metadata()
        except CrosswalkError as exc:
            return items + [CheckItem("metadata", False, str(exc), status=check_status(exc))]
        for table in (
            "msdyn_project",
            "msdyn_projecttask",
            "bookableresource",
            "msdyn_projectteam",
            "msdyn_resourceassignment",
        ):
            if table not in meta:
                items.append(
                    CheckItem(
                        table, False, f"the environment has no {table} table", status="missing"
                    )
                )
                continue
            try:
                self.request("GET", meta[table]["set"], what=table, params={"$select": meta[table]["pk"]},
                             prefer=["odata.maxpagesize=1"])  # fmt: skip
            except CrosswalkError as exc:
                items.append(CheckItem(table, False, str(exc), status=check_status(exc)))
                continue
            tracked = "change tracking on" if meta[table]["tracked"] else (
                "change tracking off: read by modifiedon with an id sweep for deletions"
            )  # fmt: skip
            items.append(CheckItem(table, True, f"readable; {tracked}", status="ok"))
        absent = sorted(
            set(mapping.PROJECT_OPTIONAL.values())
            - meta.get("msdyn_project", {}).get("columns", set())
        )
        if absent:
            items.append(CheckItem("cost and health columns", True,
                                   f"absent on this org (a pure Planner premium org): {', '.join(absent)}; "
                                   "reported absent, never 0", status="ok"))  # fmt: skip
        if any(m["tracked"] for m in meta.values()):
            try:
                org = self.request("GET", "organizations", what="organization settings",
                                   params={"$select": "expirechangetrackingindays"})  # fmt: skip
                days = (org.get("value") or [{}])[0].get("expirechangetrackingindays")
                items.append(CheckItem("organization settings", True,
                                       f"change tokens expire after {days} days (ExpireChangeTrackingInDays); a sync "
                                       "less often than that falls back to one full read", status="ok"))  # fmt: skip
            except AccessDenied as exc:
                items.append(CheckItem("organization settings", False,
                                       f"change tracking needs Organization read: {exc}", status="no_access"))  # fmt: skip
            except CrosswalkError as exc:
                items.append(
                    CheckItem("organization settings", False, str(exc), status=check_status(exc))
                )
        return items

    def capabilities(self) -> Capabilities:
        return Capabilities(
            entities={
                "work_item": [
                    "name",
                    "kind",
                    "parent_id",
                    "state",
                    "manager",
                    "planned_start",
                    "planned_finish",
                    "percent_complete",
                    "priority",
                    "budget",
                    "actual_cost",
                    "forecast_cost",
                    "health",
                ],
                "person": ["upn", "email", "name", "active"],
                "assignment": [
                    "work_item_id",
                    "project_id",
                    "work_item_name",
                    "resource_id",
                    "person_upn",
                    "person_name",
                    "role",
                    "generic",
                    "start",
                    "finish",
                    "planned_hours",
                    "actual_hours",
                    "remaining_hours",
                    "booking",
                    "active",
                ],
            },  # fmt: skip
            writes=["work_item:project"],
            auth_types=list(AUTH_TYPES),
            permissions=[
                "Dataverse application user with a security role: organization-level Read on "
                "msdyn_project, msdyn_projecttask, msdyn_projectteam, msdyn_resourceassignment, "
                "bookableresource, systemuser; Organization read (change tracking)",
                "Schedule API writes: a delegated user with a Project (Planner premium) licence",
            ],
        )

    @property
    def writers(self) -> dict[str, Any]:
        from .writer import PlanWriter

        return {"work_item:project": PlanWriter(self)}


def error_of(response: requests.Response) -> tuple[str, str]:
    """Dataverse's ``error.code`` (hex) and message."""
    try:
        body = response.json()
    except ValueError:
        return "", platform_message(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", platform_message(response)
    return str(error.get("code") or ""), " ".join(str(error.get("message") or "").split())[:300]


def _privileges(message: str) -> list[str]:
    import re

    return re.findall(r"prv\w+", message)


# -- streams ---------------------------------------------------------------------------------------


class DataversePaginator:
    """Follows the server's links: ``{"url": None}`` builds the first request (a full read, or
    the stored delta link on an incremental one); each next token is the ``@odata.nextLink`` as
    given. A refused delta token becomes ``{"url": None, "full": True}``. Links are bound to their
    query, so a killed read starts its window again."""

    resumable = False

    def first(self, window: Window) -> Any:
        return {"url": None}

    def next(self, token: Any, page: Page) -> Any | None:
        if page.restart and not page.records and page.next_hint is None:
            return {"url": None, "full": True}
        return {"url": page.next_hint} if page.next_hint else None


class DataverseStream(Stream):
    """One Dataverse table, by change tracking where the org has it, else by ``modifiedon``."""

    table = ""
    cursor_field = "modifiedon"
    wanted: list[str] = []

    def __init__(self, adapter: PlannerPremiumAdapter) -> None:
        self.adapter = adapter
        meta = adapter.table(self.table)
        self.meta = meta
        self.key = meta["pk"]
        self.tracked = bool(meta["tracked"]) and adapter.options.change_tracking
        # Without change tracking no read sees deletions: list the ids on every sync.
        self.id_sweep = not self.tracked
        present = meta["columns"]
        self.select = [self.key] + [c for c in self.wanted if c in present and c != self.key]
        self.absent = [c for c in self.optional() if c not in present]
        self.select += [c for c in self.optional() if c in present]
        self.paginator = DataversePaginator()

    def optional(self) -> list[str]:
        return []

    @property
    def labels(self) -> dict[str, dict[int, str]]:
        return self.adapter.labels.get(self.table, {})

    def prefer(self, tracking: bool) -> list[str]:
        prefer = [f"odata.maxpagesize={self.adapter.page_size()}", ANNOTATIONS]
        return prefer + (["odata.track-changes"] if tracking else [])

    def fetch(self, token: Any, window: Window) -> Page:
        adapter = self.adapter
        what = f"{self.table} ({self.meta['set']})"
        url = token.get("url")
        restart = bool(token.get("full"))
        if url is None:
            if self.tracked and window.change_token and not window.full and not restart:
                url = window.change_token
                params: dict[str, Any] | None = None
            elif self.tracked:
                # A full read that also hands back the delta link for the next one; an
                # incremental window without a token (the first since tracking was switched on)
                # is a full read too, and reconciles deletions as one.
                restart = restart or not window.full
                url, params = self.meta["set"], {"$select": ",".join(self.select)}
            else:
                params = {
                    "$select": ",".join(self.select),
                    "$orderby": f"modifiedon asc,{self.key} asc",
                }
                if window.since is not None and not window.full:
                    params["$filter"] = "modifiedon ge " + window.since.strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    )
                url = self.meta["set"]
            try:
                body = adapter.request(
                    "GET", url, what=what, params=params, prefer=self.prefer(self.tracked)
                )
            except ChangeTokenRefused as exc:
                log.warning(
                    "source %s: %s; reading %s in full once", adapter.source.name, exc, self.table
                )
                return Page(records=[], restart=True)
        else:
            body = adapter.request("GET", url, what=what, prefer=self.prefer(self.tracked))
        value = body.get("value")
        if not isinstance(value, list):
            raise MalformedResponse(
                f"source {adapter.source.name}: {what} answered without a `value` list"
            )
        records: list[dict[str, Any]] = []
        deleted: list[str] = []
        for row in value:
            if not isinstance(row, dict):
                continue
            if (
                str(row.get("@odata.context", "")).endswith("$deletedEntity")
                or row.get("reason") == "deleted"
            ):
                if row.get("id"):
                    deleted.append(str(row["id"]))
                continue
            records.append(row)
        return Page(
            records=records,
            next_hint=body.get("@odata.nextLink"),
            deleted=deleted,
            change_token=body.get("@odata.deltaLink"),
            restart=restart,
        )

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        return mapping.parse_instant(raw.get("modifiedon"))

    def version(self, raw: Mapping[str, Any]) -> str:
        number = raw.get("versionnumber")
        return f"v{number}" if number is not None else super().version(raw)

    def live_ids(self) -> tuple[Iterable[str], int | None]:
        rows = self.adapter.read_all(
            self.meta["set"], {"$select": self.key}, what=f"{self.table} ids"
        )
        return [str(r[self.key]) for r in rows if r.get(self.key)], None


class Plans(DataverseStream):
    """``msdyn_project``: plans as project work items."""

    name = "msdyn_project"
    entity = "work_item"
    table = "msdyn_project"
    wanted = ["msdyn_subject", *mapping.PROJECT_COLUMNS.values(), *mapping.PROJECT_EXTRA_COLUMNS]

    def optional(self) -> list[str]:
        return list(mapping.PROJECT_OPTIONAL.values())

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        if any(r.get("_msdyn_projectmanager_value") for r in raws):
            self.adapter.users()

    def map(self, raw: Mapping[str, Any]) -> Record:
        return mapping.map_project(
            raw,
            source=self.adapter.source.name,
            base=self.adapter.base,
            labels=self.labels,
            absent=self.absent,
            emails=self.adapter.emails() if self.adapter._users is not None else {},
        )


class Tasks(DataverseStream):
    """``msdyn_projecttask``: tasks and milestones under their summary task or plan."""

    name = "msdyn_projecttask"
    entity = "work_item"
    table = "msdyn_projecttask"
    wanted = [*mapping.TASK_COLUMNS.values(), *mapping.TASK_EXTRA_COLUMNS]

    def map(self, raw: Mapping[str, Any]) -> Record:
        return mapping.map_task(
            raw, source=self.adapter.source.name, base=self.adapter.base, labels=self.labels
        )

    def links(self, record: Record) -> list[tuple[str, str, str]]:
        parent = getattr(record, "parent_id", None)
        return [("child_of", "work_item", parent)] if parent else []


class Resources(DataverseStream):
    """``bookableresource`` (and its ``systemuser``): people, with their plan team memberships."""

    name = "bookableresource"
    entity = "person"
    table = "bookableresource"
    wanted = mapping.RESOURCE_COLUMNS

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        if any(r.get("_userid_value") for r in raws):
            self.adapter.users()
        if "msdyn_projectteam" in (self.adapter.meta or {}):
            self.adapter.teams()

    def map(self, raw: Mapping[str, Any]) -> Record:
        return mapping.map_resource(
            raw,
            source=self.adapter.source.name,
            base=self.adapter.base,
            labels=self.labels,
            users=self.adapter._users or {},
            teams=self.adapter._teams or {},
        )


class Assignments(DataverseStream):
    """``msdyn_resourceassignment``: who is booked on each task, for how many hours."""

    name = "msdyn_resourceassignment"
    entity = "assignment"
    table = "msdyn_resourceassignment"
    wanted = mapping.ASSIGNMENT_COLUMNS

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        self.adapter.resources()

    def map(self, raw: Mapping[str, Any]) -> Record:
        return mapping.map_assignment(
            raw,
            source=self.adapter.source.name,
            base=self.adapter.base,
            resources=self.adapter._resources or {},
        )

    def links(self, record: Record) -> list[tuple[str, str, str]]:
        task = getattr(record, "work_item_id", None)
        return [("staffs", "work_item", task)] if task else []


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


__all__ = ["ConnectError", "PlannerPremiumAdapter", "quote"]
