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
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...core.adapter import Adapter, Capabilities, CheckItem, Page, Probe, Stream, Window
from ...core.client import ErrorRule, HttpClient, PlatformSpec, bearer
from ...core.config import SourceConfig
from ...core.errors import (
    AccessDenied,
    AuthError,
    ConfigError,
    ConnectError,
    MalformedResponse,
    NotFound,
    PlatformError,
)
from ...core.http import RenewingBearer, is_loopback, platform_message
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


SPEC = PlatformSpec(
    title="Dataverse",
    url_example="https://org.crm.dynamics.com",
    api_suffixes=("/api/data/v9.2", "/api/data/v9.1", "/api/data/v9.0"),
    auth_example=(
        'auth = { type = "oauth_client_credentials", client_id = "...", '
        'client_secret = "env:DATAVERSE_SECRET" } with tenant_id = "..."'
    ),
    hints={
        "bearer": "the bearer token that `{token}` points to was refused (expired, or for another environment?)",
        "oauth_client_credentials": (
            "check the client secret that `{client_secret}` points to (app {client_id} in tenant "
            "{tenant_id}; secrets expire)"
        ),
        "client_certificate": (
            "check the certificate {certificate_path} registered for app {client_id} in tenant {tenant_id}"
        ),
    },
    errors=(
        ErrorRule(
            403, AccessDenied,
            "source {source}: Dataverse refused {client_id} (HTTP 403 {message}): the app is not "
            "an application user of this environment; add it in the Power Platform admin center "
            "(Environment > Settings > Users + permissions > Application users) and give it a "
            "security role",
            contains=(NOT_APPLICATION_USER,),
        ),
        ErrorRule(
            403, AccessDenied,
            "source {source} may not read {what} (HTTP 403): the security role lacks a privilege "
            "({message}); give the application user a role with organization-level Read on it",
            contains=(MISSING_PRIVILEGE,),
        ),
        ErrorRule(400, ChangeTokenRefused, "source {source}: {what}: {message}",
                  contains=("Version stamp",)),
        ErrorRule(400, ChangeTokenRefused, "source {source}: {what}: {message}",
                  contains=(EXPIRED_TOKEN_CODE,)),
        ErrorRule(401, AuthError,
                  "authentication failed for source {source} (HTTP 401 from Dataverse): {hint}"),
        ErrorRule((400, 405, 409, 412), PlatformError,
                  "source {source}: {what} failed with HTTP {status}: {message}", needs_message=True),
    ),
)  # fmt: skip
"""Dataverse's plumbing as data: its sign-ins, hints and error table (keyed on the hex codes)."""


class PlannerPremiumAdapter(Adapter):
    """One Dataverse environment's Planner premium plans."""

    platform = "planner_premium"
    options_model = PlannerPremiumOptions

    def __init__(self, source: SourceConfig, secrets: Any, **kwargs: Any) -> None:
        super().__init__(source, secrets, **kwargs)
        base = SPEC.base_url(source)
        parts = urlsplit(base)
        if parts.scheme != "https" and not is_loopback(parts.hostname):
            raise ConfigError(f"sources.{source.name}.url: Dataverse is HTTPS only; use https://")
        self.base = base
        self.api = base + API
        self.options: PlannerPremiumOptions
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
        spec = replace(
            SPEC,
            auth={"bearer": bearer, "oauth_client_credentials": self._entra, "client_certificate": self._entra},
        )  # fmt: skip
        self.http = HttpClient(
            source, secrets, spec, base=base, options=self.options,
            hint_values=lambda: {"tenant_id": self.options.tenant_id, "client_id": getattr(source.auth, "client_id", "the app")},
        )  # fmt: skip
        self.policy = self.http.policy
        self._credential: Any = None
        self.meta: dict[str, dict[str, Any]] | None = None
        self.labels: dict[str, dict[str, dict[int, str]]] = {}
        self._users: dict[str, dict[str, Any]] | None = None
        self._teams: dict[str, list[dict[str, Any]]] | None = None
        self._resources: dict[str, dict[str, Any]] | None = None

    # -- HTTP ------------------------------------------------------------------------------------

    def credential_hint(self) -> str:
        return self.http.credential_hint()

    def _entra(self, client: HttpClient) -> requests.auth.AuthBase:
        """An app-only token from azure-identity (secret or certificate); its token requests go
        through the core policy too."""
        from azure.core.pipeline.transport import RequestsTransport

        auth = self.source.auth
        assert auth is not None
        name = self.source.name
        common: dict[str, Any] = {
            "authority": self.authority,
            "transport": RequestsTransport(
                session=client.new_session(self.authority), session_owner=False
            ),
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
        session = self.http.session
        session.headers.update({"OData-MaxVersion": "4.0", "OData-Version": "4.0"})
        return session

    @property
    def http_session(self) -> Any:
        return self.http.http_session

    def close(self) -> None:
        if self._credential is not None:
            self._credential.close()
        self.http.close()
        self._credential = None

    def check_answer(self, response: requests.Response, what: str) -> None:
        """Raise the error a Dataverse answer means, named by its hex code."""
        self.http.raise_for(response, what)

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
        self.session  # noqa: B018 - the OData headers go on the session once
        response = self.http.send(
            method, url, params=dict(params) if params else None, headers=headers, json=body
        )
        self.check_answer(response, what)
        data = self.http.json(response, what)
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

    def preflight(self) -> str | None:
        """Who signed in (``WhoAmI``): an app that is no application user stops here, named."""
        who = self.request("GET", "WhoAmI", what="the signed-in principal (WhoAmI)")
        return f"signed in as application user {who.get('UserId')}"

    def probes(self) -> list[Probe]:
        """One probe per stream, named as the sync names them: each reads one row of its table;
        the plans' line also says which cost and health columns the org lacks and whether the
        Organization read change tracking needs is granted, the people's line reads the team
        membership that enriches them."""

        def read_one(name: str) -> dict[str, Any]:
            meta = self.table(name)
            self.request("GET", meta["set"], what=name, params={"$select": meta["pk"]},
                         prefer=["odata.maxpagesize=1"])  # fmt: skip
            return meta

        def tracking(meta: Mapping[str, Any]) -> str:
            if meta["tracked"] and self.options.change_tracking:
                return "readable; change tracking on"
            return (
                "readable; change tracking off: read by modifiedon with an id sweep for deletions"
            )

        def plans() -> Any:
            meta = read_one("msdyn_project")
            words = [tracking(meta)]
            absent = sorted(set(mapping.PROJECT_OPTIONAL.values()) - meta["columns"])
            if absent:
                words.append(
                    f"absent on this org (a pure Planner premium org): {', '.join(absent)}; "
                    "reported absent, never 0"
                )
            if meta["tracked"]:
                try:
                    org = self.request("GET", "organizations", what="organization settings",
                                       params={"$select": "expirechangetrackingindays"})  # fmt: skip
                except AccessDenied as exc:
                    return CheckItem(
                        "msdyn_project", False,
                        f"{'; '.join(words)}; but change tracking needs Organization read: {exc}",
                        status="no_access",
                    )  # fmt: skip
                days = (org.get("value") or [{}])[0].get("expirechangetrackingindays")
                words.append(
                    f"change tokens expire after {days} days (ExpireChangeTrackingInDays); a "
                    "sync less often than that falls back to one full read"
                )
            return "; ".join(words)

        def people() -> str:
            meta = read_one("bookableresource")
            read_one("msdyn_projectteam")
            return tracking(meta) + "; team membership readable"

        def simple(name: str) -> Probe:
            return Probe(name, lambda: tracking(read_one(name)))

        return [
            Probe("msdyn_project", plans),
            simple("msdyn_projecttask"),
            Probe("bookableresource", people),
            simple("msdyn_resourceassignment"),
        ]

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
