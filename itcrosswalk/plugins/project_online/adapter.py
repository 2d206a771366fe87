"""Project Online and Project Server: read through the ProjectData feed, write through ProjectServer.

Reads use the reporting feed ``<pwa>/_api/ProjectData`` (OData v3, read-only) with requests over
the core HTTP policy; no maintained Python client exists. Paging is server-driven and differs per
entity set, so every stream follows the link the feed names (``__next`` in verbose JSON,
``odata.nextLink`` in JSON light) with the core :class:`NextLinkPaginator` and never computes an
offset (``$top`` would cap the whole result, not a page). Both JSON formats are understood
whatever was asked for; decimals arrive as strings and dates as ``/Date(ms)/`` or ISO strings.

Streams: ``Projects`` and ``Tasks`` (summary tasks and milestones) become work items, ``Resources``
people; ``ProjectBaselines``, ``TaskBaselines``, ``Assignments``, ``Issues`` and ``Risks`` enrich
the pages being mapped, one filtered request per 15 projects, and a set the instance lacks is
skipped. Incremental by each set's modified date; deleted projects are tombstoned by full reads
(``--full`` or ``full_sweep_every_days``), the feed having no deletion log for them.

Write-back (``writers["work_item:project"]``, the core's writer protocol, so standard templates
such as ``project-charter`` apply here) lives in :mod:`.writer`: ProjectServer's create, check
out, custom fields, update, publish and check in, idempotent through the correlation id.

Auth: NTLM (requests-ntlm) or Kerberos (requests-kerberos) for Project Server on premises; a
delegated OAuth sign-in for Project Online (it refuses app-only tokens): ``crosswalk
project-online login SOURCE`` runs the device-code flow once with MSAL and keeps the refresh token
in the OS keyring; a bearer token or basic auth where an instance allows them. A credential the
server answers with SharePoint's HTML sign-in page (200, or a 302 towards it) is an AuthError.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit
from zoneinfo import ZoneInfo

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator

from ...core.adapter import (
    Adapter,
    Capabilities,
    Page,
    PlatformOptions,
    Probe,
    Stream,
    TimeZoneName,
    Window,
    Writer,
    paginate,
)
from ...core.client import ErrorRule, HttpClient, PlatformSpec, basic, bearer
from ...core.config import SourceConfig
from ...core.entra import DeviceCodeUser
from ...core.errors import (
    AccessDenied,
    AuthError,
    ConfigError,
    CrosswalkError,
    MalformedResponse,
    NotFound,
    PagingLoopError,
    PlatformError,
)
from ...core.http import platform_message
from ...core.model import Record
from ...core.paging import NextLinkPaginator
from ...core.secrets import REDACTOR
from . import mapping

log = logging.getLogger("itcrosswalk.project_online")

ACCEPT = {
    "verbose": "application/json;odata=verbose",
    "light": "application/json;odata=nometadata",
}
FEED = "_api/ProjectData"
SERVER = "_api/ProjectServer"
KEYRING_SERVICE = "itcrosswalk-project-online"
ENRICHMENTS = ("ProjectBaselines", "TaskBaselines", "Assignments", "Issues", "Risks")
IDS_PER_FILTER = 15  # 15 guid comparisons keep a URL well under IIS's 2048-character query limit
READ_PERMISSION = "Access Project Server Reporting Service"


class QueryRejected(PlatformError):
    """ProjectData refused a query (HTTP 400): a property or literal this instance lacks."""


class DelegatedOAuth(BaseModel):
    """Delegated sign-in to SharePoint-hosted Project Online (app-only tokens are refused)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str
    tenant_id: str = "organizations"
    authority: str | None = None
    """The sign-in authority; default ``https://login.microsoftonline.com/<tenant_id>``."""
    scopes: list[str] | None = None
    """Default: ``https://<pwa host>/.default`` (the delegated permissions consented)."""
    keyring_service: str = KEYRING_SERVICE


class ProjectOnlineOptions(PlatformOptions):
    """A Project Online / Server source's keys: the JSON format, custom fields, the zone,
    enrichment, sign-in."""

    json_format: Literal["verbose", "light"] = "verbose"
    """``verbose`` works on every Project Server; ``light`` is smaller where supported."""
    custom_fields: dict[str, str] = Field(default_factory=dict)
    """model field -> custom field display name (or feed property), e.g. department = "Department"."""
    timezone: TimeZoneName = "UTC"
    """The server's time zone: the feed's dates carry no offset."""
    enrich: list[str] = Field(default_factory=lambda: list(ENRICHMENTS))
    """Related sets read to enrich pages: ProjectBaselines, TaskBaselines, Assignments, Issues, Risks."""
    oauth: DelegatedOAuth | None = None
    project_type: str | None = None
    """The enterprise project type new projects get (default: the PWA's default type)."""

    @field_validator("custom_fields")
    @classmethod
    def _targets(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(mapping.CUSTOM_FIELD_TARGETS))
        if unknown:
            raise ValueError(
                f"custom_fields: unknown model field(s) {', '.join(unknown)}; "
                f"known: {', '.join(mapping.CUSTOM_FIELD_TARGETS)}"
            )
        return value

    @field_validator("enrich")
    @classmethod
    def _enrich(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(ENRICHMENTS))
        if unknown:
            raise ValueError(f"enrich: unknown set(s) {', '.join(unknown)}")
        return value


def odata_datetime(moment: datetime, zone: tzinfo) -> str:
    """An OData v3 ``datetime'...'`` literal in the server's wall-clock time."""
    local = moment.astimezone(zone).replace(tzinfo=None, microsecond=0)
    return f"datetime'{local.isoformat()}'"


def guid_filter(field: str, ids: list[str]) -> str:
    return "(" + " or ".join(f"{field} eq guid'{i}'" for i in ids) + ")"


# -- auth ------------------------------------------------------------------------------------------


def delegated_user(client: HttpClient, oauth: DelegatedOAuth) -> DeviceCodeUser:
    """The delegated user Project Online signs in as (SharePoint refuses app-only tokens)."""
    parts = urlsplit(client.base)
    return DeviceCodeUser(
        source=client.source.name,
        client_id=oauth.client_id,
        authority=oauth.authority or f"https://login.microsoftonline.com/{oauth.tenant_id}",
        scopes=list(oauth.scopes or [f"{parts.scheme}://{parts.netloc}/.default"]),
        keyring_service=oauth.keyring_service,
        session_for=client.new_session,
        login_command=f"crosswalk project-online login {client.source.name}",
        config_key=f"sources.{client.source.name}.oauth",
    )


def _delegated(client: HttpClient) -> DeviceCodeUser:
    assert client.options.oauth is not None  # ProjectOnlineAdapter._check_auth made sure
    return delegated_user(client, client.options.oauth)


def _ntlm(client: HttpClient) -> Any:
    try:
        from requests_ntlm import HttpNtlmAuth  # deferred: an optional extra
    except ImportError:
        raise ConfigError(
            f"sources.{client.source.name}.auth: NTLM needs requests-ntlm; "
            "run `pip install 'itcrosswalk[ntlm]'`"
        ) from None
    auth = client.source.auth
    password = client.secrets(auth.password, "auth.password")
    REDACTOR.register_basic(auth.user, password)
    return HttpNtlmAuth(auth.user, password)


def _kerberos(client: HttpClient) -> Any:
    try:
        from requests_kerberos import OPTIONAL, HTTPKerberosAuth
    except ImportError:
        raise ConfigError(
            f"sources.{client.source.name}.auth: Kerberos needs requests-kerberos; "
            "run `pip install 'itcrosswalk[kerberos]'`"
        ) from None
    return HTTPKerberosAuth(mutual_authentication=OPTIONAL)


# The HTTP plumbing, as data: the auth choices (no ``auth`` key: the delegated sign-in), what to
# check when they are refused, and how SharePoint and Project Server refuse.
SPEC = PlatformSpec(
    title="Project Online / Server",
    url_example="https://city.sharepoint.com/sites/pwa or https://projects.city.gov/pwa",
    auth={
        "": _delegated,
        "ntlm": _ntlm,
        "kerberos": _kerberos,
        "bearer": bearer,
        "basic": basic,
    },
    hints={
        "": "sign in again with `crosswalk project-online login {source}`",
        "ntlm": "check the user and the password that `{password}` points to",
        "basic": "check the user and the password that `{password}` points to",
        "bearer": "check the user and the token that `{token}` points to",
        "kerberos": "check the Kerberos ticket of the account running crosswalk (klist)",
    },
    errors=(
        ErrorRule(
            range(300, 400),
            AuthError,
            "authentication failed for source {source}: asking for {what}, the server "
            "redirected (HTTP {status}) to {location}, SharePoint's sign-in page; {hint}",
        ),
        ErrorRule(
            401,
            AuthError,
            "authentication failed for source {source} (HTTP 401): Project Online refuses "
            "app-only tokens; use the delegated `oauth` sign-in (`crosswalk project-online "
            "login {source}`)",
            contains=("app only",),
        ),
        ErrorRule(
            403,
            AccessDenied,
            "source {source} may not read {what} (HTTP 403{said}); grant the account the "
            f"'{READ_PERMISSION}' permission (Portfolio Viewers or above)",
            url=FEED,
        ),
        ErrorRule(
            403,
            AccessDenied,
            "source {source} may not change {what} (HTTP 403{said}); the account needs New "
            "Project, Save Project and Publish Project",
        ),
        ErrorRule(
            400,
            QueryRejected,
            "source {source}: {what} refused the query (HTTP 400){said}",
            url=f"/{FEED}/",
        ),
        # A PJClientCallableException (CICOCheckedOutToOtherUser, ProjectNameAlreadyExists) is
        # the server refusing the operation, not the server being down.
        ErrorRule(
            500,
            PlatformError,
            "source {source}: Project Server refused {what} (HTTP 500): {message}",
            url=f"/{SERVER}/",
            needs_message=True,
        ),
    ),
)


# -- streams ---------------------------------------------------------------------------------------


class FeedStream(Stream):
    """One ProjectData entity set, read page by page as the feed links them."""

    set_name: str = ""
    base_filter: str | None = None
    select: tuple[str, ...] = ()
    linked = (("parent", "work_item", "parent_id"),)

    def __init__(self, adapter: ProjectOnlineAdapter) -> None:
        self.adapter = adapter
        self.paginator = NextLinkPaginator()

    def first_params(self, window: Window) -> dict[str, str]:
        terms = [self.base_filter] if self.base_filter else []
        if self.cursor_field and window.since is not None and not window.full:
            terms.append(
                f"{self.cursor_field} ge {odata_datetime(window.since, self.adapter.zone)}"
            )
        params: dict[str, str] = {}
        if terms:
            params["$filter"] = " and ".join(terms)
        if self.select:
            params["$select"] = ",".join(self.select)
        return params

    def fetch(self, token: Any, window: Window) -> Page:
        url = token.get("url")
        if url is None:
            # An instance without one of the filtered properties is read whole: the rows are
            # re-checked here and the window by the core, so nothing extra lands.
            params = self.first_params(window)
            rows, link = self.adapter.feed(self.set_name, params, drop=("$filter",))
        else:
            rows, link = self.adapter.feed_link(url, self.set_name)
        return Page(records=[r for r in rows if self.keep(r)], next_hint=link)

    def keep(self, raw: Mapping[str, Any]) -> bool:
        """Client-side re-check of the server-side filter (rows it should not have sent)."""
        return True

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        value = raw.get(self.key)
        if type(value) is str and value:  # a guid as the feed sends it: the id as it is
            return value
        return super().record_id(raw)

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        if not self.cursor_field:
            return None
        value = raw.get(self.cursor_field)
        if value in (None, "") and self.fallback_cursor_field:
            value = raw.get(self.fallback_cursor_field)
        return mapping.parse_datetime(value, self.adapter.zone)


class Projects(FeedStream):
    name = "Projects"
    set_name = "Projects"
    entity = "work_item"
    key = "ProjectId"
    cursor_field = "ProjectModifiedDate"
    fallback_cursor_field = "ProjectCreatedDate"
    # ProjectData reports no deletions; a PWA's projects are few enough to list every sync.
    id_sweep = True

    def live_ids(self) -> tuple[list[str], int | None]:
        params: dict[str, str] = {"$select": self.key}
        if self.base_filter:
            params["$filter"] = self.base_filter
        rows, link = self.adapter.feed(self.set_name, params)
        ids = [str(r[self.key]) for r in rows if r.get(self.key)]
        followed: set[str] = set()
        while link:
            if link in followed:
                raise PagingLoopError(
                    f"source {self.adapter.source.name}: {self.set_name} ids paged in a cycle "
                    f"(next link {link} came back)"
                )
            followed.add(link)
            rows, link = self.adapter.feed_link(link, self.set_name)
            ids.extend(str(r[self.key]) for r in rows if r.get(self.key))
        return ids, None  # ProjectData's feed gives no count here

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        ids = [str(r["ProjectId"]) for r in raws if r.get("ProjectId")]
        needs_baseline = [
            str(r["ProjectId"])
            for r in raws
            if r.get("ProjectId") and "ProjectBaselineCost" not in r
        ]
        self.adapter.load_related("ProjectBaselines", needs_baseline)
        for name in ("Assignments", "Issues", "Risks"):
            self.adapter.load_related(name, ids)

    def map(self, raw: Mapping[str, Any]) -> Record:
        project_id = str(raw.get("ProjectId") or "")
        combined = dict(raw)
        for key, value in self.adapter.related_row("ProjectBaselines", project_id).items():
            combined.setdefault(key, value)
        record = mapping.map_project(
            combined,
            source=self.adapter.source.name,
            base=self.adapter.base,
            custom_fields=self.adapter.options.custom_fields,
            zone=self.adapter.zone,
        )
        for name, key in (("Issues", "issues"), ("Risks", "risks")):
            rows = self.adapter.related_rows(name, project_id)
            if rows is not None:
                record.extra[key] = mapping.summarize_log(rows, key)
        team = self.adapter.related_rows("Assignments", project_id)
        if team:
            record.extra["team"] = mapping.summarize_team(team)
        return record


class Tasks(FeedStream):
    name = "Tasks"
    set_name = "Tasks"
    entity = "work_item"
    key = "TaskId"
    cursor_field = "TaskModifiedDate"
    fallback_cursor_field = "TaskCreatedDate"
    # Leaf tasks stay in Project: the crosswalk carries the plan's structure and its milestones.
    base_filter = (
        "(TaskIsSummary eq true or TaskIsMilestone eq true) and TaskIsProjectSummary eq false"
    )

    def keep(self, raw: Mapping[str, Any]) -> bool:
        # The project summary task (outline level 0) is the project itself.
        if raw.get("TaskIsProjectSummary") is True or raw.get("TaskOutlineLevel") == 0:
            return False
        if "TaskIsSummary" in raw or "TaskIsMilestone" in raw:
            return raw.get("TaskIsSummary") is True or raw.get("TaskIsMilestone") is True
        return True

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        projects = sorted(
            {
                str(r["ProjectId"])
                for r in raws
                if r.get("ProjectId") and "TaskBaselineCost" not in r
            }
        )
        self.adapter.load_related("TaskBaselines", projects)

    def map(self, raw: Mapping[str, Any]) -> Record:
        combined = dict(raw)
        baseline = self.adapter.related_row(
            "TaskBaselines", str(raw.get("ProjectId") or ""), str(raw.get("TaskId") or "")
        )
        for key, value in baseline.items():
            combined.setdefault(key, value)
        return mapping.map_task(
            combined,
            source=self.adapter.source.name,
            base=self.adapter.base,
            custom_fields=self.adapter.options.custom_fields,
            zone=self.adapter.zone,
        )


class Resources(FeedStream):
    name = "Resources"
    set_name = "Resources"
    entity = "person"
    key = "ResourceId"
    cursor_field = "ResourceModifiedDate"
    fallback_cursor_field = "ResourceCreatedDate"
    linked = ()  # a person carries no parent

    def keep(self, raw: Mapping[str, Any]) -> bool:
        # Generic resources ("Business Analyst") are roles, not people.
        return raw.get("ResourceIsGeneric") is not True

    def map(self, raw: Mapping[str, Any]) -> Record:
        return mapping.map_resource(
            raw, source=self.adapter.source.name, base=self.adapter.base, zone=self.adapter.zone
        )


class _RelatedRead(Stream):
    """A filtered read of a related set, driven by the core pager like any stream."""

    key = "ProjectId"
    entity = "work_item"
    incremental = False

    def __init__(self, adapter: ProjectOnlineAdapter, set_name: str, params: dict[str, str]):
        self.adapter = adapter
        self.name = set_name  # type: ignore[misc]
        self.params = params
        self.paginator = NextLinkPaginator()

    def fetch(self, token: Any, window: Window) -> Page:
        if token.get("url") is None:
            rows, link = self.adapter.feed(self.name, self.params)
        else:
            rows, link = self.adapter.feed_link(token["url"], self.name)
        return Page(records=rows, next_hint=link)


# What each related set is read for: its $select, extra $filter, and how rows are keyed.
RELATED: dict[str, dict[str, Any]] = {
    "ProjectBaselines": {
        "select": (
            "ProjectId",
            "BaselineNumber",
            "ProjectBaselineStartDate",
            "ProjectBaselineFinishDate",
            "ProjectBaselineCost",
            "ProjectBaselineWork",
            "ProjectBaselineBudgetCost",
        ),
        "filter": "BaselineNumber eq 0",
    },
    "TaskBaselines": {
        "select": (
            "ProjectId",
            "TaskId",
            "BaselineNumber",
            "TaskBaselineStartDate",
            "TaskBaselineFinishDate",
            "TaskBaselineCost",
            "TaskBaselineWork",
            "TaskBaselineBudgetCost",
        ),
        "filter": "BaselineNumber eq 0",
    },
    "Assignments": {
        "select": ("ProjectId", "ResourceId", "ResourceName", "AssignmentWork", "AssignmentCost"),
        "filter": None,
    },
    "Issues": {"select": ("ProjectId", "IssueId", "Status"), "filter": None},
    "Risks": {"select": ("ProjectId", "RiskId", "Status", "Exposure"), "filter": None},
}
_BOOKKEEPING = {"ProjectId", "TaskId", "BaselineNumber", "__metadata"}


# -- the adapter -----------------------------------------------------------------------------------


class ProjectOnlineAdapter(
    Adapter, platform="project_online", options=ProjectOnlineOptions, spec=SPEC
):
    """A Project Web App (Project Online or Project Server), read through ProjectData."""

    def __init__(self, source: SourceConfig, secrets: Any, **kwargs: Any) -> None:
        super().__init__(source, secrets, **kwargs)
        self.zone = ZoneInfo(self.options.timezone)
        self._related: dict[str, dict[str, list[dict[str, Any]]]] = {n: {} for n in RELATED}
        # (set, project) -> (its rows, those rows by TaskId): a task finds its row at once
        self._by_task: dict[tuple[str, str], tuple[list[dict[str, Any]], dict[str, Any]]] = {}
        self._absent: set[str] = set()
        self._check_auth()

    # -- the client -------------------------------------------------------------------------------

    def _check_auth(self) -> None:
        """Refuse what cannot work before any request: app-only grants, a missing extra."""
        auth = self.source.auth
        name = self.source.name
        if auth is None:
            if self.options.oauth is None:
                raise ConfigError(
                    f"sources.{name}.auth: Project Server needs credentials: "
                    '{ type = "ntlm", user = "CITY\\\\svc", password = "env:..." }, { type = "kerberos" }, '
                    "or for Project Online a delegated sign-in (an `oauth = { client_id = ... }` key)"
                )
            return
        if auth.type in ("oauth_client_credentials", "client_certificate"):
            raise ConfigError(
                f"sources.{name}.auth: Project Online refuses app-only tokens "
                f"({auth.type}); use a delegated sign-in: remove `auth`, add "
                '`oauth = { client_id = "...", tenant_id = "..." }` and run '
                f"`crosswalk project-online login {name}`"
            )
        extras = {"ntlm": ("requests_ntlm", "ntlm"), "kerberos": ("requests_kerberos", "kerberos")}
        if auth.type in extras:
            module, extra = extras[auth.type]
            if importlib.util.find_spec(module) is None:
                raise ConfigError(
                    f"sources.{name}.auth: {auth.type} needs {module.replace('_', '-')}; "
                    f"run `pip install 'itcrosswalk[{extra}]'`"
                )
        elif auth.type not in ("bearer", "basic"):
            raise ConfigError(
                f"sources.{name}.auth.type: {auth.type!r} is not supported by Project Online / "
                "Server (ntlm, kerberos, bearer, basic, or the delegated `oauth` sign-in)"
            )

    @property
    def session(self) -> requests.Session:
        return self.http.session

    # -- one request -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        accept: str | None = None,
        drop: tuple[str, ...] = (),
    ) -> requests.Response:
        """One request, its failure turned into the error tree; returns a usable response.
        A query key in ``drop`` the server refuses (HTTP 400) is dropped and said."""
        sent = {"Accept": accept or ACCEPT[self.options.json_format], **(headers or {})}
        response = self.http.send_dropping(
            method,
            url,
            params=dict(params or {}),
            drop=drop,
            refused=lambda key, value, answer: self._refused(what, key, value, answer),
            json=json,
            headers=sent,
            allow_redirects=False,  # a redirect here is a sign-in page; never follow it with credentials
        )
        where = urlsplit(urljoin(response.url, response.headers.get("Location", "")))
        self.http.raise_for(response, what, location=f"{where.netloc}{where.path}")
        return response

    def _refused(self, what: str, key: str, value: Any, response: requests.Response) -> None:
        log.warning(
            "source %s: %s refused %s=%s (HTTP 400: %s); reading it without a server-side filter",
            self.source.name, what, key, value, platform_message(response) or "no message",
        )  # fmt: skip

    def json_body(self, response: requests.Response, what: str) -> Any:
        """The response's JSON; a body that is not JSON is a malformed response."""
        try:
            return response.json()
        except ValueError:
            head = response.text.lstrip()[:40]
            hint = (
                ' (Atom XML: the server ignored the JSON Accept header; try json_format = "verbose")'
                if head.startswith("<")
                else ""
            )
            raise MalformedResponse(
                f"source {self.source.name}: {what} answered with a body that is not JSON{hint}"
            ) from None

    def feed(
        self, set_name: str, params: Mapping[str, str], *, drop: tuple[str, ...] = ()
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The first page of a ProjectData entity set: its rows and the next link (``drop``:
        the query keys read without, should the instance refuse them)."""
        url = f"{self.base}/{FEED}/{set_name}"
        what = f"ProjectData {set_name}"
        response = self.request("GET", url, what=what, params=params, drop=drop)
        return self._rows(response, set_name)

    def feed_link(self, link: str, set_name: str) -> tuple[list[dict[str, Any]], str | None]:
        """A page the feed linked to, fetched as named (its path and query never rebuilt)."""
        absolute = urljoin(f"{self.base}/{FEED}/", link)
        mine, theirs = urlsplit(self.base), urlsplit(absolute)
        if (theirs.scheme, theirs.netloc) != (mine.scheme, mine.netloc):
            # A server behind a proxy names its internal host (alternate access mappings);
            # the page is asked of the configured host, so credentials go nowhere else.
            log.debug(
                "source %s: next link names %s; asking %s",
                self.source.name,
                theirs.netloc,
                mine.netloc,
            )
            absolute = theirs._replace(scheme=mine.scheme, netloc=mine.netloc).geturl()
        response = self.request("GET", absolute, what=f"ProjectData {set_name}")
        return self._rows(response, set_name)

    def _rows(
        self, response: requests.Response, set_name: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        what = f"ProjectData {set_name}"
        body = self.json_body(response, what)
        rows: Any = None
        link: Any = None
        if isinstance(body, dict) and isinstance(body.get("d"), dict | list):
            d = body["d"]
            rows = d.get("results") if isinstance(d, dict) else d
            link = d.get("__next") if isinstance(d, dict) else None
        elif isinstance(body, dict) and "value" in body:
            rows = body["value"]
            link = body.get("odata.nextLink") or body.get("@odata.nextLink")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise MalformedResponse(
                f"source {self.source.name}: {what} answered with JSON that is neither verbose "
                '({"d": {"results": [...]}}) nor light ({"value": [...]})'
            )
        if link is not None and not isinstance(link, str):
            raise MalformedResponse(
                f"source {self.source.name}: {what} sent a next link that is not a URL"
            )
        return rows, link or None

    # -- related sets ------------------------------------------------------------------------------

    def load_related(self, set_name: str, project_ids: list[str]) -> None:
        """Read ``set_name`` for these projects (one request per 15 of them, plus its pages)."""
        if set_name not in self.options.enrich or set_name in self._absent:
            return
        spec = RELATED[set_name]
        # Only the projects of the page being mapped are held, so a full read of a large PWA
        # stays small; tasks come in key order, so a project whose tasks span pages is read once.
        store = self._related[set_name]
        current = {p for p in project_ids if p}
        for stale in set(store) - current:
            del store[stale]
        wanted = sorted(current - set(store))
        for start in range(0, len(wanted), IDS_PER_FILTER):
            chunk = wanted[start : start + IDS_PER_FILTER]
            terms = [guid_filter("ProjectId", chunk)]
            if spec["filter"]:
                terms.append(spec["filter"])
            params = {"$filter": " and ".join(terms), "$select": ",".join(spec["select"])}
            found: dict[str, list[dict[str, Any]]] = {p: [] for p in chunk}
            try:
                for page, _used, _after in paginate(
                    _RelatedRead(self, set_name, params), Window(None, None), prefetch=False
                ):
                    for row in page.records:
                        found.setdefault(str(row.get("ProjectId")), []).append(row)
            except (NotFound, AccessDenied, QueryRejected) as exc:
                # Issues and Risks exist only where projects have sites; a set the account may
                # not read leaves the records without that enrichment, not without data.
                self._absent.add(set_name)
                log.warning("source %s: no %s enrichment: %s", self.source.name, set_name, exc)
                return
            store.update(found)
        for key in [k for k in self._by_task if k[0] == set_name and k[1] not in store]:
            del self._by_task[key]

    def related_rows(self, set_name: str, project_id: str) -> list[dict[str, Any]] | None:
        """The rows read for a project, or None when the set was not read for it."""
        return self._related[set_name].get(project_id)

    def related_row(
        self, set_name: str, project_id: str, task_id: str | None = None
    ) -> dict[str, Any]:
        rows = self._related[set_name].get(project_id) or []
        if task_id is None:
            row = rows[0] if rows else None
        else:
            index = self._by_task.get((set_name, project_id))
            if index is None or index[0] is not rows:
                by_task: dict[str, Any] = {}
                for candidate in rows:
                    by_task.setdefault(str(candidate.get("TaskId")), candidate)
                index = self._by_task[(set_name, project_id)] = (rows, by_task)
            row = index[1].get(task_id)
        if row is None:
            return {}
        return {k: v for k, v in row.items() if k not in _BOOKKEEPING}

    # -- the adapter contract ----------------------------------------------------------------------

    def streams(self) -> list[Stream]:
        from .capacity import capacity_streams

        return [Projects(self), Tasks(self), Resources(self), *capacity_streams(self)]

    def generic_resources(self) -> set[str]:
        """The generic resources' ids (roles, not people), read once per adapter."""
        if getattr(self, "_generic", None) is None:
            from .capacity import read_generic_resources

            self._generic: set[str] | None = read_generic_resources(self)
        return self._generic or set()

    def probes(self) -> list[Probe]:
        return [Probe(s.name, lambda s=s: self._probe(s)) for s in self.streams()]

    def _probe(self, stream: Stream) -> tuple[str, int | None]:
        assert isinstance(stream, FeedStream)
        try:
            rows, link = self.feed(
                stream.set_name, {**stream.first_params(Window(None, None)), "$select": stream.key}
            )
        except QueryRejected:
            rows, link = [], None  # the read falls back to no server filter; still readable
        count = self._count(stream.set_name)
        per_page = max(len(rows), 1)
        if count is None:
            return f"readable, {per_page} rows per page", None
        return f"{count} rows, {per_page} per page", max(1, -(-count // per_page)) if link else 1

    def _count(self, set_name: str) -> int | None:
        """``<Set>/$count``, where the service offers it."""
        try:
            response = self.request(
                "GET", f"{self.base}/{FEED}/{set_name}/$count", what=set_name, accept="text/plain"
            )
            return int(response.text.strip())
        except (CrosswalkError, ValueError):
            return None

    def capabilities(self) -> Capabilities:
        work = (
            "kind number name parent_id state phase health manager department strategic_goals "
            "priority planned_start planned_finish actual_start actual_finish percent_complete "
            "budget actual_cost forecast_cost planned_value earned_value"
        ).split()
        return Capabilities(
            entities={
                "work_item": work,
                "person": ["upn", "email", "name", "department", "active"],
                **_capacity_fields(),
            },
            writes=["work_item:project"],
            auth_types=["ntlm", "kerberos", "oauth_device_code", "bearer", "basic"],
            permissions=[
                f"{READ_PERMISSION} (read ProjectData)",
                "New Project, Save Project, Publish Project (write-back of projects)",
            ],
        )

    @property
    def writers(self) -> dict[str, Writer]:
        from .writer import ProjectWriter

        return {"work_item:project": ProjectWriter(self)}

    def device_login(self, prompt: Callable[[str], None]) -> dict[str, Any]:
        """Run the delegated device-code sign-in once and keep the refresh token in the keyring."""
        if self.options.oauth is None or self.source.auth is not None:
            raise ConfigError(
                f"sources.{self.source.name}: `crosswalk project-online login` is for the "
                "delegated sign-in; set `oauth = { client_id = ..., tenant_id = ... }` and no `auth`"
            )
        return delegated_user(self.http, self.options.oauth).device_login(prompt)


def _capacity_fields() -> dict[str, list[str]]:
    from .capacity import CAPACITY_FIELDS

    return CAPACITY_FIELDS
