"""Jira Cloud (Jira Service Management desks, Jira Software epics) through the ``jira`` package.

The pycontribs ``jira`` client builds the requests and reads ``serverInfo`` to take its Cloud
paths; the core HTTP policy is its transport. The client's own retry is switched off
(``max_retries=0``): it waits ``2 x Retry-After`` capped at 60 s and then jittered down, so it
can come back before Atlassian allows (which earns a longer penalty); the core policy waits
what ``Retry-After`` says, within ``max_wait``.

Search is the one Cloud allows now: ``/rest/api/3/search/jql`` with ``nextPageToken`` (no
``total``; the end is ``isLast`` or a missing token), explicit ``fields`` and always-bounded
JQL (a project or issue-type restriction). Incremental reads filter ``updated >= <epoch ms>``:
a datetime literal would be read at minute precision in the account's profile time zone. The
engine's overlap re-reads the boundary, and records whose ``(id, updated)`` it holds are
skipped. There is no upper bound (a UTC ``now`` in JQL has the same time-zone trap). Issues
this adapter wrote are passed as ``reconcileIssues`` so search sees its own writes. Page tokens
are bound to their query and expire, so they are never stored: the watermark is.

Deletions leave no trace in Jira: every sync ends with an id-only read (``fields=id``, 5000 ids a
page) of each stream's query, and what it does not name is tombstoned. Reassignment and reopen
counts come from the changelog's own endpoints (``/changelog/bulkfetch``, one request per page
of issues, or ``/issue/{id}/changelog`` where bulk fetch is missing), never from the search's
``expand=changelog``, which keeps only 40 histories.

SLA fields (``schema.custom = com.atlassian.servicedesk:sd-sla-field``) are visible to
service desk agents only: for any other account the fields are absent, ``check`` says so and
the ``slas`` stream stops with that reason.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import requests
from pydantic import Field, field_validator

from ...core.adapter import (
    Adapter,
    Capabilities,
    CheckItem,
    Page,
    PlatformOptions,
    Probe,
    Resolver,
    Stream,
    Window,
    Writer,
    WriteResult,
)
from ...core.client import ErrorRule, PlatformSpec, basic, bearer
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
from ...core.model import Record
from ...core.paging import NextTokenPaginator, OffsetPaginator
from ...core.secrets import redact
from . import mapping

log = logging.getLogger("itcrosswalk.jira")

SEARCH_PAGE = 100  # Cloud returns at most about 100 issues a page once fields are asked for
ID_PAGE = 5000  # ids only: the one case Cloud serves 5000 a page
USER_PAGE = 100
RECONCILE_LIMIT = 50
BULK_CHANGELOG_ISSUES = 1000

TicketKind = Literal["incident", "request", "problem", "change"]
TicketStateName = Literal["new", "in_progress", "on_hold", "resolved", "closed", "cancelled"]


class JiraOptions(PlatformOptions):
    """A Jira source's keys: the projects read, the ticket, priority and status tables, the fields
    a site names."""

    projects: list[str] | None = None
    """Project keys to read; default every project the account can browse (service desks for
    tickets, the others for epics)."""
    ticket_kinds: dict[str, TicketKind] = Field(default_factory=dict)
    """Request type or issue type (id or name) -> incident, request, problem or change; added to
    the defaults for JSM's ITSM issue types."""
    priorities: dict[str, int] = Field(default_factory=dict)
    """Priority name -> 1..5 (default Highest 1 ... Lowest 5)."""
    statuses: dict[str, TicketStateName] = Field(default_factory=dict)
    """Status id or name -> ticket state, where the category alone says too little."""
    assignment_group_field: str | None = None
    """The field (``customfield_10050``) holding a ticket's assignment group or team."""
    department_field: str | None = None
    """The field holding an epic's (or, without organizations, a ticket's) department."""
    start_date_field: str | None = None
    """The field holding an epic's planned start (Jira's "Start date" is a custom field)."""
    first_response_sla: list[str] = Field(default_factory=lambda: ["Time to first response"])
    """SLA names whose first completed cycle's stop time is the first response."""
    work_levels: dict[int, Literal["epic", "program", "portfolio", "theme", "capability"]] = Field(
        default_factory=lambda: dict(mapping.DEFAULT_LEVEL_KINDS)
    )
    """Issue type hierarchy level -> work item kind (levels 1 and up are read as work)."""
    jql: dict[str, str] = Field(default_factory=dict)
    """stream -> an extra JQL restriction its reads add (``requests = "labels != test"``)."""
    service_desk_project: str | None = None
    """The project key remediation opens requests in; default the first service desk read."""
    request_type: str | None = None
    """The request type id new incidents get, so they show on the customer portal."""
    epic_project: str | None = None
    """The project key new epics go to when the fields name no parent."""
    resolution: str = "Done"
    """The resolution a resolve sets."""

    @field_validator("priorities")
    @classmethod
    def _one_to_five(cls, value: dict[str, int]) -> dict[str, int]:
        wrong = [f"{name} = {p}" for name, p in value.items() if not 1 <= p <= 5]
        if wrong:
            raise ValueError(f"{', '.join(wrong)}: a priority is from 1 to 5")
        return value


# The HTTP plumbing, as data: the auth choices (basic: an e-mail and an API token; bearer: a
# Data Center personal access token) and how Jira's refusals read.
SPEC = PlatformSpec(
    title="Jira",
    url_example="https://NAME.atlassian.net",
    auth={"basic": basic, "bearer": bearer},
    auth_example='auth = { type = "basic", user = "svc@city.gov", password = '
    '"env:JIRA_API_TOKEN" }',
    hints={
        "basic": "check the e-mail {user} and the API token that `{password}` points to "
        "(tokens are revoked at id.atlassian.com, and expire)",
        "bearer": "check the personal access token that `{token}` points to",
    },
    errors=(
        ErrorRule(
            (400, 409, 422),
            PlatformError,
            "source {source}: Jira refused {what} (HTTP {status}): {errors}; nothing was changed",
            writes=True,
        ),
        ErrorRule(
            401,
            AuthError,
            "authentication failed for source {source} (HTTP 401): {hint}; Jira says: {message}",
            needs_message=True,
        ),
        ErrorRule(401, AuthError, "authentication failed for source {source} (HTTP 401): {hint}"),
        ErrorRule(
            410,
            PlatformError,
            "source {source}: {what}: Jira removed this API (HTTP 410): {message}",
        ),
        ErrorRule(
            400, PlatformError, "source {source}: Jira rejected {what} (HTTP 400): {message}"
        ),
    ),
)


def _jql_key(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


class IssueStream(Stream):
    """Issues of one JQL query, read in ``updated`` order with token paging."""

    key = "id"
    cursor_field = "updated"
    # Deletions leave no trace the update filter sees: the issue ids are listed every sync.
    id_sweep = True

    def __init__(self, adapter: JiraAdapter, name: str, entity: str) -> None:
        self.adapter = adapter
        self.name = name  # type: ignore[misc]
        self.entity = entity  # type: ignore[misc]
        # Cloud pages on tokens; Data Center's classic search on startAt with a total.
        self.paginator: Any = (
            OffsetPaginator(SEARCH_PAGE) if adapter.cloud is False else NextTokenPaginator()
        )

    # what this stream reads
    def restriction(self) -> str:
        raise NotImplementedError

    def fields(self) -> list[str]:
        raise NotImplementedError

    def jql(self, window: Window | None) -> str:
        terms = [self.restriction()]
        extra = self.adapter.options.jql.get(self.name)
        if extra:
            terms.append(f"({extra})")
        if window is not None and window.since is not None and not window.full:
            # Epoch milliseconds: a datetime literal would be read in the profile's time zone.
            terms.append(f"updated >= {int(window.since.timestamp() * 1000)}")
        return " AND ".join(terms)

    def fetch(self, token: Any, window: Window) -> Page:
        jql = f"{self.jql(window)} ORDER BY updated ASC, key ASC"
        classic = isinstance(self.paginator, OffsetPaginator)
        body = self.adapter.search(
            jql,
            fields=self.fields(),
            size=SEARCH_PAGE,
            token=None if classic else token["token"],
            start=int(token) if classic else None,
            what=self.name,
        )
        issues = body.get("issues")
        if not isinstance(issues, list):
            raise MalformedResponse(
                f"source {self.adapter.source.name}: search for {self.name} answered without issues"
            )
        if classic:
            total = body.get("total")
            return Page(
                records=self.records(issues),
                total=int(total) if isinstance(total, int) else None,
                # The site may grant fewer than asked: the next offset follows what it granted.
                requested=int(body.get("maxResults") or SEARCH_PAGE),
            )
        following = None if body.get("isLast") else body.get("nextPageToken")
        return Page(records=self.records(issues), next_hint=following, requested=SEARCH_PAGE)

    def records(self, issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return issues

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        return mapping.parse_datetime((raw.get("fields") or {}).get("updated"))

    def live_ids(self) -> tuple[Iterable[str], int | None]:
        # The enhanced search gives no total, so nothing to hold the listing against.
        return self.adapter.all_ids(self.jql(None), what=self.name), None


class RequestStream(IssueStream):
    """JSM issues -> Tickets, with reassignment and reopen counts from their changelogs."""

    def __init__(self, adapter: JiraAdapter) -> None:
        super().__init__(adapter, "requests", "ticket")
        self._counts: dict[str, tuple[int | None, int]] = {}

    def restriction(self) -> str:
        return self.adapter.desk_restriction()

    def fields(self) -> list[str]:
        site = self.adapter.site
        extra = [site.request_type, site.organizations, site.first_response]
        extra += [site.assignment_group, site.department, *site.sla]
        return [*TICKET_FIELDS, *(f for f in extra if f)]

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        self._counts = self.adapter.changelog_counts([str(r["id"]) for r in raws])

    def map(self, raw: Mapping[str, Any]) -> Record:
        adapter = self.adapter
        return mapping.map_ticket(
            raw,
            source=adapter.source.name,
            base=adapter.base,
            rules=adapter.rules,
            site=adapter.site,
            counts=self._counts.get(str(raw["id"])),
        )


class SlaStream(IssueStream):
    """Each SLA field's cycles of the JSM issues -> SlaRecords (one per cycle)."""

    linked = (("measures", "ticket", "ticket_id"),)

    def __init__(self, adapter: JiraAdapter) -> None:
        super().__init__(adapter, "slas", "sla_record")

    def restriction(self) -> str:
        if not self.adapter.site.sla:
            raise NotFound(
                f"source {self.adapter.source.name}: the site has no SLA fields "
                f"({mapping.SLA_FIELD}); is Jira Service Management installed?"
            )
        return self.adapter.desk_restriction()

    def fields(self) -> list[str]:
        return ["updated", *self.adapter.site.sla]

    def records(self, issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sla_fields = set(self.adapter.site.sla)
        if issues and not any(sla_fields & set(i.get("fields") or {}) for i in issues):
            raise AccessDenied(self.adapter.not_agent_message())
        rows: list[dict[str, Any]] = []
        for issue in issues:
            rows += mapping.sla_rows(issue, self.adapter.site)
        return rows

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        return mapping.parse_datetime(raw.get("updated"))

    def map(self, raw: Mapping[str, Any]) -> Record:
        return mapping.map_sla(
            raw, source=self.adapter.source.name, base=self.adapter.base, now=datetime.now(UTC)
        )

    def sweep_key(self, source_id: str) -> str:
        return source_id.split(":", 1)[0]


class EpicStream(IssueStream):
    """Epics and the levels above them (Jira Software, Premium plans) -> WorkItems."""

    linked = (("parent", "work_item", "parent_id"),)

    def __init__(self, adapter: JiraAdapter) -> None:
        super().__init__(adapter, "epics", "work_item")

    def restriction(self) -> str:
        return self.adapter.work_restriction()

    def fields(self) -> list[str]:
        options = self.adapter.options
        extra = [options.department_field, options.start_date_field]
        return [*WORK_FIELDS, *(f for f in extra if f)]

    def map(self, raw: Mapping[str, Any]) -> Record:
        adapter = self.adapter
        return mapping.map_work(
            raw,
            source=adapter.source.name,
            base=adapter.base,
            levels=adapter.options.work_levels,
            site=adapter.site,
            start_field=adapter.options.start_date_field,
        )


class UserStream(Stream):
    """Atlassian accounts -> People (``/users/search``: a bare array, offset paging)."""

    name = "users"
    entity = "person"
    key = "accountId"
    incremental = False

    def __init__(self, adapter: JiraAdapter) -> None:
        self.adapter = adapter
        self.paginator = OffsetPaginator(USER_PAGE)

    def fetch(self, token: Any, window: Window) -> Page:
        users = self.adapter.get(
            "users/search", {"startAt": int(token), "maxResults": USER_PAGE}, what="users"
        )
        if not isinstance(users, list):
            raise MalformedResponse(
                f"source {self.adapter.source.name}: users/search answered without a list"
            )
        return Page(records=users, requested=USER_PAGE)

    def map(self, raw: Mapping[str, Any]) -> Record:
        return mapping.map_person(raw, source=self.adapter.source.name, base=self.adapter.base)


STREAM_NAMES = ("requests", "slas", "epics", "users")
TICKET_FIELDS = [
    "summary", "issuetype", "project", "status", "priority", "resolution", "resolutiondate",
    "created", "updated", "statuscategorychangedate", "assignee", "reporter", "components",
    "labels",
]  # fmt: skip
WORK_FIELDS = [
    "summary", "issuetype", "project", "status", "priority", "resolution", "resolutiondate",
    "created", "updated", "assignee", "reporter", "duedate", "parent",
]  # fmt: skip


class JiraAdapter(Adapter, platform="jira", options=JiraOptions, spec=SPEC):
    """A Jira Cloud site, read and written through the ``jira`` package."""

    def __init__(self, source: SourceConfig, secrets: Any, **kwargs: Any) -> None:
        super().__init__(source, secrets, **kwargs)
        self.rules = mapping.TicketRules(
            kinds={**mapping.DEFAULT_TICKET_KINDS, **self.options.ticket_kinds},
            # A site's own priority scheme replaces the default one whole.
            priorities=dict(self.options.priorities or mapping.DEFAULT_PRIORITIES),
            states={**mapping.DEFAULT_STATUS_STATES, **self.options.statuses},
            first_response_sla=tuple(self.options.first_response_sla),
        )
        self._client: Any = None
        self._lock = threading.RLock()
        self._site: mapping.SiteFields | None = None
        self._projects: list[dict[str, Any]] | None = None
        self._issue_types: list[dict[str, Any]] | None = None
        self._bulk_changelog = True
        self.cloud: bool | None = None
        """Jira Cloud (True) or Data Center (False), once serverInfo has said."""
        self.recent_writes: list[str] = []
        """Issue ids this adapter wrote: searches reconcile them (read-after-write)."""

    # -- the client ---------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from jira import JIRA  # deferred: `crosswalk --help` must not import it

                client = JIRA(
                    self.base,
                    # REST 2 answers on Cloud and Data Center alike; Cloud moves to 3 below.
                    options={"rest_api_version": "2", "check_update": False},
                    get_server_info=False,  # asked below, once our transport is mounted
                    max_retries=0,  # the core policy retries, honouring Retry-After
                    logging=False,
                )
                session = self.http.adopt(client._session)
                # The jira package's own retry count (it must not retry on its own schedule).
                session.max_retries = 0  # type: ignore[attr-defined]
                info = self._call(client.server_info, what="serverInfo")
                if not isinstance(info, Mapping) or "versionNumbers" not in info:
                    raise PlatformError(
                        f"source {self.source.name}: {self.base} answered serverInfo without a "
                        "version: is the url a Jira site?"
                    )
                # What JIRA(get_server_info=True) sets: the Cloud paths depend on it.
                client._version = tuple(info["versionNumbers"])
                client.deploymentType = info.get("deploymentType")
                self.cloud = info.get("deploymentType") == "Cloud"
                if self.cloud:  # v3: rich text as ADF, the API Cloud documents
                    client._options["rest_api_version"] = "3"
                self._bulk_changelog = self.cloud  # Data Center has no bulk changelog
                self.server = dict(info)
                self._client = client
            return self._client

    def _call(self, func: Any, *args: Any, what: str, **kwargs: Any) -> Any:
        """One call into the jira package, its failures read into the error tree."""
        from jira.exceptions import JIRAError

        try:
            return func(*args, **kwargs)
        except JIRAError as exc:
            response = exc.response
            if response is None:
                raise PlatformError(
                    redact(f"source {self.source.name}: {what} failed: {exc.text or exc}")
                ) from None
            self.http.raise_for(response, what)
            raise PlatformError(
                redact(f"source {self.source.name}: {what}: HTTP {response.status_code}")
            ) from None
        except requests.JSONDecodeError:
            # Before RequestException, which it also is: a torn body is not a network fault.
            raise self.http.not_json(what) from None
        except requests.RequestException as exc:
            raise self.http.connection_error(exc) from None
        except ValueError:
            raise self.http.not_json(what) from None

    def url(self, path: str) -> str:
        return f"{self.base}/rest/api/{'2' if self.cloud is False else '3'}/{path}"

    def rich(self, text: str) -> Any:
        """Rich text as the API version takes it: ADF on Cloud (v3), a string on Data Center."""
        return _adf(text) if self.cloud is not False else text

    def get(self, path: str, params: Mapping[str, Any] | None = None, *, what: str) -> Any:
        client = self.client
        return self._call(client._get_json, path, params=dict(params or {}), what=what)

    def post(self, path: str, body: Mapping[str, Any], *, what: str) -> Any:
        client = self.client
        response = self._call(
            client._session.post, self.url(path), data=json.dumps(body), what=what
        )
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise MalformedResponse(
                f"source {self.source.name}: {what} answered with a body that is not JSON"
            ) from None

    # -- the site -----------------------------------------------------------------------------

    @property
    def site(self) -> mapping.SiteFields:
        with self._lock:
            if self._site is None:
                fields = self.get("field", what="the field list")
                if isinstance(fields, list):
                    # The jira package reads /field again on its first search to translate
                    # clause names; it gets this answer instead of a second request.
                    self.client._fields_cache_value = {
                        name: f["id"] for f in fields for name in f.get("clauseNames") or []
                    }
                site = mapping.SiteFields(
                    assignment_group=self.options.assignment_group_field,
                    department=self.options.department_field,
                )
                for item in fields if isinstance(fields, list) else []:
                    custom = (item.get("schema") or {}).get("custom")
                    if custom == mapping.SLA_FIELD:
                        site.sla[str(item["id"])] = str(item.get("name") or item["id"])
                    elif custom == mapping.REQUEST_TYPE_FIELD:
                        site.request_type = str(item["id"])
                    elif custom == mapping.ORGANIZATIONS_FIELD:
                        site.organizations = str(item["id"])
                    elif custom == mapping.FIRST_RESPONSE_FIELD:
                        site.first_response = str(item["id"])
                statuses = self.get("status", what="the status list")
                site.done_statuses = {
                    str(s["id"])
                    for s in statuses if isinstance(statuses, list)
                    if (s.get("statusCategory") or {}).get("key") == "done"
                }  # fmt: skip
                self._site = site
            return self._site

    def projects(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._projects is None:
                found = self.get("project", what="the project list")
                projects = found if isinstance(found, list) else []
                wanted = self.options.projects
                if wanted is not None:
                    known = {p.get("key") for p in projects}
                    missing = [k for k in wanted if k not in known]
                    if missing:
                        raise AccessDenied(
                            f"source {self.source.name}: project {', '.join(missing)} is not "
                            "visible to the account: check the key, and grant it Browse projects"
                        )
                    projects = [p for p in projects if p.get("key") in wanted]
                self._projects = projects
            return self._projects

    def _restriction(self, desks: bool) -> str:
        projects = self.projects()
        keys = [
            str(p["key"]) for p in projects if (p.get("projectTypeKey") == "service_desk") == desks
        ]
        if not keys:
            if not projects:
                raise AccessDenied(
                    f"source {self.source.name}: the account sees no project; grant it the "
                    "Browse projects permission"
                )
            kind = "service desk (Jira Service Management)" if desks else "Jira Software"
            raise NotFound(f"source {self.source.name}: no {kind} project among those read")
        return f"project in ({', '.join(_jql_key(k) for k in keys)})"

    def desk_restriction(self) -> str:
        return self._restriction(True)

    def issue_types(self) -> list[dict[str, Any]]:
        with self._lock:
            if self._issue_types is None:
                found = self.get("issuetype", what="the issue type list")
                self._issue_types = found if isinstance(found, list) else []
            return self._issue_types

    def work_types(self) -> list[str]:
        """The ids of the issue types read as work: epics, and the levels configured above."""
        levels = self.options.work_levels
        return sorted(
            str(t["id"])
            for t in self.issue_types()
            if int(t.get("hierarchyLevel") or 0) >= 1
            and int(t.get("hierarchyLevel") or 0) in levels
        )

    def work_restriction(self) -> str:
        types = self.work_types()
        if not types:
            raise NotFound(f"source {self.source.name}: the site has no epic issue type")
        return f"{self._restriction(False)} AND issuetype in ({', '.join(types)})"

    def not_agent_message(self) -> str:
        return (
            f"source {self.source.name}: the account is not a service desk agent, so Jira "
            f"hides the SLA fields ({', '.join(self.site.sla.values())}); add it to the "
            "service project's agents (a JSM agent licence) to read SLAs"
        )

    # -- reading ------------------------------------------------------------------------------

    def search(
        self,
        jql: str,
        *,
        fields: list[str],
        size: int,
        token: str | None,
        what: str,
        start: int | None = None,
    ) -> dict[str, Any]:
        """One page of ``/search/jql`` on Cloud, of the classic ``/search`` from ``start`` on
        Data Center (POST: long JQL and field lists stay out of the URL)."""
        client = self.client
        if not self.cloud:
            body = self._call(
                client.search_issues,
                jql,
                startAt=start or 0,
                maxResults=size,
                fields=list(fields),
                json_result=True,
                use_post=True,
                what=f"the JQL of {what} ({jql})",
            )
            if not isinstance(body, dict):
                raise MalformedResponse(
                    f"source {self.source.name}: search for {what} answered without a result"
                )
            return body
        reconcile = [int(i) for i in self.recent_writes[-RECONCILE_LIMIT:]]
        body = self._call(
            client.enhanced_search_issues,
            jql,
            nextPageToken=token,
            maxResults=size,
            fields=list(fields),
            reconcileIssues=reconcile or None,
            json_result=True,
            use_post=True,
            what=f"the JQL of {what} ({jql})",
        )
        if not isinstance(body, dict):
            raise MalformedResponse(
                f"source {self.source.name}: search for {what} answered without a result "
                "(did the site say it is not Jira Cloud?)"
            )
        return body

    def all_ids(self, jql: str, *, what: str) -> Iterator[str]:
        """Every issue id a query matches, 5000 a page (ids only; 1000 on Data Center)."""
        token: str | None = None
        seen: set[str] = set()
        if not self.cloud:
            start = 0
            while True:
                body = self.search(
                    f"{jql} ORDER BY key ASC",
                    fields=["id"],
                    size=1000,
                    token=None,
                    what=what,
                    start=start,
                )
                issues = body.get("issues") or []
                for issue in issues:
                    yield str(issue["id"])
                start += len(issues)
                if not issues or start >= int(body.get("total") or 0):
                    return
        while True:
            body = self.search(
                f"{jql} ORDER BY key ASC", fields=["id"], size=ID_PAGE, token=token, what=what
            )
            for issue in body.get("issues") or []:
                yield str(issue["id"])
            token = None if body.get("isLast") else body.get("nextPageToken")
            if not token:
                return
            if token in seen:
                raise PlatformError(
                    f"source {self.source.name}: the id-only read of {what} paged in a cycle"
                )
            seen.add(token)

    def changelogs(self, ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The status, resolution, assignee and group histories of these issues."""
        out: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        if not ids:
            return out
        wanted = ["status", "resolution", "assignee"]
        if self.site.assignment_group:
            wanted.append(self.site.assignment_group)
        if self._bulk_changelog:
            try:
                for start in range(0, len(ids), BULK_CHANGELOG_ISSUES):
                    chunk = ids[start : start + BULK_CHANGELOG_ISSUES]
                    token: str | None = None
                    while True:
                        body: dict[str, Any] = {
                            "issueIdsOrKeys": chunk,
                            "fieldIds": wanted,
                            "maxResults": 1000,
                        }
                        if token:
                            body["nextPageToken"] = token
                        page = self.post("changelog/bulkfetch", body, what="the changelogs")
                        for log_ in page.get("issueChangeLogs") or []:
                            out.setdefault(str(log_.get("issueId")), []).extend(
                                log_.get("changeHistories") or []
                            )
                        following = page.get("nextPageToken")
                        if not following or following == token:
                            break
                        token = following
                return out
            except NotFound:
                # Data Center has no bulk fetch: each issue's own changelog, paged.
                self._bulk_changelog = False
                out = {i: [] for i in ids}
        for issue_id in ids:
            start_at = 0
            while True:
                page = self.get(
                    f"issue/{issue_id}/changelog",
                    {"startAt": start_at, "maxResults": 100},
                    what=f"the changelog of issue {issue_id}",
                )
                values = page.get("values") or []
                out[issue_id].extend(values)
                start_at += len(values)
                if page.get("isLast", True) or not values:
                    break
        return out

    def changelog_counts(self, ids: list[str]) -> dict[str, tuple[int | None, int]]:
        site = self.site
        return {
            issue_id: mapping.changelog_counts(histories, site)
            for issue_id, histories in self.changelogs(ids).items()
        }

    # -- the adapter contract -----------------------------------------------------------------

    def streams(self) -> list[Stream]:
        # What the streams read depends on the site (its field ids, projects, issue types):
        # learnt once, when they are declared, so no stream's read pays for it.
        self.discover()
        return [RequestStream(self), SlaStream(self), EpicStream(self), UserStream(self)]

    def discover(self) -> None:
        """Read the site's fields, statuses, projects and issue types (five requests). A part
        that cannot be read is left for the stream that needs it to report."""
        for learn in (lambda: self.site, self.projects, self.work_types):
            try:
                learn()
            except (AuthError, ConnectError):
                raise
            except CrosswalkError as exc:
                # Throttled or refused: asking on would only earn longer waits.
                log.info("source %s: %s", self.source.name, exc)
                return

    def preflight(self) -> str:
        """The site (serverInfo), the account, and the Browse projects permission every
        stream needs (without it every search comes back empty)."""
        self.client  # noqa: B018 - connects: serverInfo
        me = self.get("myself", what="the account (myself)")
        try:
            granted = self.get(
                "mypermissions", {"permissions": "BROWSE_PROJECTS"}, what="the permissions"
            )
            browse = bool(
                ((granted.get("permissions") or {}).get("BROWSE_PROJECTS") or {}).get(
                    "havePermission"
                )
            )
        except CrosswalkError as exc:
            browse = False
            log.info("source %s: mypermissions: %s", self.source.name, exc)
        if not browse:
            raise AccessDenied(
                f"source {self.source.name}: the account lacks the Browse projects permission, "
                "so every search comes back empty; grant it in the projects' permission scheme"
            )
        info = self.server
        return (
            f"Jira {info.get('deploymentType') or 'Data Center'} {info.get('version')} as "
            f"{me.get('emailAddress') or me.get('accountId')}, profile time zone "
            f"{me.get('timeZone')} (incremental reads use epoch milliseconds: it shifts nothing)"
        )

    def probes(self) -> list[Probe]:
        # Named up front: building the streams reads the site, which the preflight tests.
        return [Probe(name, lambda n=name: self._check_stream(n)) for name in STREAM_NAMES]

    def _check_stream(self, name: str) -> CheckItem | tuple[str, int | None]:
        stream = next(s for s in self.streams() if s.name == name)
        if not isinstance(stream, IssueStream):
            stream.fetch(stream.paginator.first(Window(None, None)), Window(None, None))
            return "readable", None
        jql = stream.jql(None)
        body = self.search(jql, fields=stream.fields(), size=1, token=None, what=stream.name)
        if isinstance(stream, SlaStream):
            issues = body.get("issues") or []
            if issues and not set(self.site.sla) & set(issues[0].get("fields") or {}):
                return CheckItem(stream.name, False, self.not_agent_message(), status="no_access")
        count = None
        if getattr(self.client, "_is_cloud", False):
            count = self._call(
                self.client.approximate_issue_count, jql, what=f"a count of {stream.name}"
            )
        detail = f"about {count} issues" if count is not None else "readable"
        estimate = max(1, -(-int(count) // SEARCH_PAGE)) + 1 if count is not None else None
        return detail, estimate

    def capabilities(self) -> Capabilities:
        return Capabilities(
            entities={
                "ticket": (
                    "kind number title priority state opened_at responded_at resolved_at "
                    "closed_at assignment_group assignee requester department category "
                    "reassignment_count reopen_count"
                ).split(),
                "sla_record": (
                    "ticket_id sla_name stage has_breached start_at end_at planned_end_at "
                    "business_elapsed_seconds business_elapsed_percent"
                ).split(),
                "work_item": (
                    "kind number name parent_id state phase manager sponsor department priority "
                    "planned_start planned_finish actual_finish"
                ).split(),
                "person": ["upn", "email", "name", "active"],
            },  # fmt: skip
            writes=sorted(WRITERS),
            auth_types=["basic", "bearer"],
            permissions=[
                "Browse projects on the service desk and software projects",
                "service desk agent (JSM licence) to see SLA fields",
                "write-back: Create issues, Transition issues and Add comments in the service project",
            ],
        )

    # -- write-back ---------------------------------------------------------------------------

    @property
    def writers(self) -> dict[str, Writer]:
        return {
            "ticket:incident": RequestWriter(self, "incident"),
            "work_item:epic": EpicWriter(self),
        }

    @property
    def resolvers(self) -> dict[str, Resolver]:
        return {"ticket:incident": RequestResolver(self)}

    def desk_project(self) -> str:
        if self.options.service_desk_project:
            return self.options.service_desk_project
        for project in self.projects():
            if project.get("projectTypeKey") == "service_desk":
                return str(project["key"])
        raise ConfigError(
            f"source {self.source.name}: no service desk project to open requests in; set "
            f"service_desk_project in [sources.{self.source.name}]"
        )

    def find_labelled(self, label: str, restriction: str) -> dict[str, Any] | None:
        """The oldest issue carrying ``label`` (the correlation id) under ``restriction``."""
        body = self.search(
            f"{restriction} AND labels = {_jql_key(label)} ORDER BY created ASC",
            fields=["status", "labels"],
            size=10,
            token=None,
            what="the correlation label",
        )
        found = [
            i
            for i in body.get("issues") or []
            if label in (i.get("fields") or {}).get("labels", [])
        ]
        return found[0] if found else None

    def type_id(self, *, name: str | None = None, level: int | None = None) -> str:
        for item in self.issue_types():
            if name is not None and item.get("name") == name:
                return str(item["id"])
            if level is not None and int(item.get("hierarchyLevel") or 0) == level:
                return str(item["id"])
        raise ConfigError(
            f"source {self.source.name}: the site has no issue type {name or f'of level {level}'}"
        )

    def create(self, fields: dict[str, Any], what: str) -> dict[str, Any]:
        response = self.write("POST", "issue", {"fields": fields}, what=what)
        try:
            created = response.json()
            issue_id = str(created["id"])
        except (ValueError, KeyError, TypeError):
            raise MalformedResponse(
                f"source {self.source.name}: Jira accepted {what} without naming the issue"
            ) from None
        self.recent_writes.append(issue_id)
        return created

    def write(self, method: str, path: str, body: Any, *, what: str) -> requests.Response:
        """A write through the client's session; a refusal raises with Jira's own words."""
        client = self.client
        return self._call(
            client._session.request, method, self.url(path), data=json.dumps(body), what=what
        )


def _adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document (v3 takes rich text as ADF)."""
    return {
        "version": 1,
        "type": "doc",
        "content": [
            {"type": "paragraph", "content": [{"type": "text", "text": line}]}
            for line in text.split("\n")
            if line.strip()
        ]
        or [{"type": "paragraph", "content": []}],
    }


def _label(correlation_id: str, source: str) -> str:
    if not correlation_id or any(c.isspace() for c in correlation_id) or len(correlation_id) > 255:
        raise ConfigError(
            f"source {source}: the correlation id must be 1-255 characters without spaces "
            "(it is stored as a Jira label)"
        )
    return correlation_id


PROPERTY = "itcrosswalk"
WRITERS = ("ticket:incident", "work_item:epic")


class RequestWriter:
    """Opens a JSM request (an issue of the service project) for a finding, idempotently: the
    correlation id is a label (searchable) and the ``itcrosswalk`` issue property."""

    def __init__(self, adapter: JiraAdapter, kind: str) -> None:
        self.adapter = adapter
        self.kind = kind

    def __repr__(self) -> str:
        return f"<jira writer ticket:{self.kind}>"

    def __call__(
        self, fields: Mapping[str, Any], *, correlation_id: str, dry_run: bool = False
    ) -> WriteResult:
        adapter = self.adapter
        label = _label(correlation_id, adapter.source.name)
        unknown = sorted(set(fields) - {"title", "description", "priority", "category"})
        if unknown:
            raise PlatformError(
                f"the Jira ticket:{self.kind} writer cannot set {', '.join(unknown)} "
                "(it sets: category, description, priority, title)"
            )
        project = adapter.desk_project()
        made: list[dict[str, Any]] = []
        restriction = f"project = {_jql_key(project)}"
        made.append(
            {
                "method": "POST",
                "url": adapter.url("search/jql"),
                "body": {"jql": f"{restriction} AND labels = {_jql_key(label)}"},
            }
        )
        existing = adapter.find_labelled(label, restriction)
        if existing is not None:
            return WriteResult(
                "exists",
                "ticket",
                str(existing["id"]),
                f"{adapter.base}/browse/{existing['key']}",
                made,
            )
        title = str(fields.get("title") or "").strip()
        if not title:
            raise PlatformError("title: a JSM request needs a summary")
        body: dict[str, Any] = {
            "project": {"key": project},
            "issuetype": {"id": adapter.type_id(name=_kind_type(self.kind))},
            "summary": title[:255],
            "description": adapter.rich(str(fields.get("description") or "")),
            "labels": [label],
        }
        if fields.get("priority") is not None:
            wanted = int(fields["priority"])
            names = [n for n, p in adapter.rules.priorities.items() if p == wanted]
            if not names:
                raise PlatformError(f"priority: no Jira priority maps to {wanted}")
            body["priority"] = {"name": names[0]}
        if fields.get("category"):
            body["components"] = [{"name": str(fields["category"])}]
        if adapter.options.request_type and adapter.site.request_type:
            body[adapter.site.request_type] = adapter.options.request_type
        create = {"method": "POST", "url": adapter.url("issue"), "body": {"fields": body}}
        if dry_run:
            made.append(create)
            return WriteResult("dry_run", "ticket", requests=made)
        made.append(create)
        created = adapter.create(body, f"opening a request in {project}")
        issue_id, key = str(created["id"]), str(created.get("key") or created["id"])
        prop = {"correlation_id": correlation_id, "by": "itcrosswalk"}
        made.append(
            {
                "method": "PUT",
                "url": adapter.url(f"issue/{issue_id}/properties/{PROPERTY}"),
                "body": prop,
            }
        )
        adapter.write("PUT", f"issue/{issue_id}/properties/{PROPERTY}", prop, what=f"marking {key}")
        return WriteResult("created", "ticket", issue_id, f"{adapter.base}/browse/{key}", made)


def _kind_type(kind: str) -> str:
    return {"incident": "[System] Incident", "request": "[System] Service request"}[kind]


class RequestResolver:
    """Resolves the request a writer opened (found by its label), with the note as a comment."""

    def __init__(self, adapter: JiraAdapter) -> None:
        self.adapter = adapter

    def __call__(self, correlation_id: str, *, note: str, dry_run: bool = False) -> WriteResult:
        adapter = self.adapter
        label = _label(correlation_id, adapter.source.name)
        project = adapter.desk_project()
        made: list[dict[str, Any]] = []
        found = adapter.find_labelled(label, f"project = {_jql_key(project)}")
        if found is None:
            return WriteResult("missing", "ticket", requests=made)
        issue_id, key = str(found["id"]), str(found.get("key"))
        url = f"{adapter.base}/browse/{key}"
        category = (
            ((found.get("fields") or {}).get("status") or {}).get("statusCategory") or {}
        ).get("key")
        if category == "done":
            return WriteResult("already_resolved", "ticket", issue_id, url, made)
        offered = adapter.get(f"issue/{issue_id}/transitions", what=f"the transitions of {key}")
        done = [
            t for t in offered.get("transitions") or []
            if ((t.get("to") or {}).get("statusCategory") or {}).get("key") == "done"
        ]  # fmt: skip
        if not done:
            raise PlatformError(
                f"source {adapter.source.name}: {key} has no transition to a done status from here"
            )
        # JSM's ITSM workflow offers Resolved and Closed (and Canceled): resolving is preferred.
        chosen = next((t for t in done if t.get("name") == "Resolved"), None) or next(
            (
                t
                for t in done
                if (t.get("to") or {}).get("name") not in ("Canceled", "Cancelled", "Declined")
            ),
            done[0],
        )
        transition = {
            "transition": {"id": chosen["id"]},
            "fields": {"resolution": {"name": adapter.options.resolution}},
        }
        comment = {"body": adapter.rich(note)}
        planned = [
            {"method": "POST", "url": adapter.url(f"issue/{issue_id}/comment"), "body": comment},
            {
                "method": "POST",
                "url": adapter.url(f"issue/{issue_id}/transitions"),
                "body": transition,
            },
        ]
        made += planned
        if dry_run:
            return WriteResult("dry_run", "ticket", issue_id, url, made)
        adapter.write("POST", f"issue/{issue_id}/comment", comment, what=f"commenting on {key}")
        adapter.write("POST", f"issue/{issue_id}/transitions", transition, what=f"resolving {key}")
        adapter.recent_writes.append(issue_id)
        return WriteResult("resolved", "ticket", issue_id, url, made)


class EpicWriter:
    """Creates an epic from common-model fields, idempotently through its correlation label.

    ``parent_id`` is an issue key above epics (an initiative) or a project key; without it the
    epic goes to ``epic_project``. Model fields Jira has no place for are written into the
    description rather than dropped.
    """

    def __init__(self, adapter: JiraAdapter) -> None:
        self.adapter = adapter

    def __repr__(self) -> str:
        return "<jira writer work_item:epic>"

    def _fail(self, message: str) -> ConfigError:
        return ConfigError(f"source {self.adapter.source.name}: cannot create the epic: {message}")

    def __call__(
        self, fields: Mapping[str, Any], *, correlation_id: str, dry_run: bool = False
    ) -> WriteResult:
        adapter = self.adapter
        label = _label(correlation_id, adapter.source.name)
        name = str(fields.get("name") or "").strip()
        if not name:
            raise self._fail("a name is required")
        parent = str(fields.get("parent_id") or "").strip() or None
        project = adapter.options.epic_project
        parent_key = None
        if parent and "-" in parent:
            parent_key, project = parent, parent.rsplit("-", 1)[0]
        elif parent:
            project = parent
        if not project:
            raise self._fail(
                f"no project: give parent_id (a project key or an initiative's key), or set "
                f"epic_project in [sources.{adapter.source.name}]"
            )
        made: list[dict[str, Any]] = []
        restriction = f"project = {_jql_key(project)}"
        made.append(
            {
                "method": "POST",
                "url": adapter.url("search/jql"),
                "body": {"jql": f"{restriction} AND labels = {_jql_key(label)}"},
            }
        )
        existing = adapter.find_labelled(label, restriction)
        if existing is not None:
            return WriteResult(
                "exists",
                "work_item",
                str(existing["id"]),
                f"{adapter.base}/browse/{existing['key']}",
                made,
            )
        body: dict[str, Any] = {
            "project": {"key": project},
            "issuetype": {"id": adapter.type_id(level=1)},
            "summary": name[:255],
            "labels": [label],
        }
        if parent_key:
            body["parent"] = {"key": parent_key}
        notes: list[str] = []
        for key, value in fields.items():
            if value in (None, "", []) or key in ("name", "parent_id", "description"):
                continue
            if key == "planned_finish" and isinstance(value, datetime):
                body["duedate"] = value.date().isoformat()
            elif (
                key == "planned_start"
                and isinstance(value, datetime)
                and adapter.options.start_date_field
            ):
                body[adapter.options.start_date_field] = value.date().isoformat()
            elif key == "department" and adapter.options.department_field:
                body[adapter.options.department_field] = {"value": str(value)}
            else:
                shown = ", ".join(map(str, value)) if isinstance(value, list) else value
                notes.append(f"{key.replace('_', ' ').capitalize()}: {shown}")
        description = "\n".join(
            p for p in (str(fields.get("description") or "").strip(), *notes) if p
        )
        if description:
            body["description"] = adapter.rich(description)
        create = {"method": "POST", "url": adapter.url("issue"), "body": {"fields": body}}
        made.append(create)
        if dry_run:
            return WriteResult("dry_run", "work_item", requests=made)
        created = adapter.create(body, f"creating an epic in {project}")
        return WriteResult(
            "created",
            "work_item",
            str(created["id"]),
            f"{adapter.base}/browse/{created.get('key')}",
            made,
        )
