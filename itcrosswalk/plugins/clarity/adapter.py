"""Clarity PPM through its public REST API (``/ppm/rest/v1``), on requests and the core HTTP policy.

Only the public API is used, never ``/private`` (Broadcom changes those payloads without
notice). On single sign-on tenants (``sso = true``) requests go to ``/tokens/rest/v1``, which
forces token auth; Basic auth is refused there.

Auth: an API key (``auth = { type = "bearer", token = ... }`` plus ``client_id``), sent as
``Authorization: Bearer`` with ``x-api-ppm-client``; Basic (for tests, says Broadcom); or a
session (Basic once against ``auth/login``, then the ``authToken`` header; renewed once when it
answers 401 or, behind single sign-on, a 200 HTML login page; logged out at the end). A 401 and
a 200 HTML page are authentication errors, never "0 records".

Paging is Clarity's: ``offset``/``limit`` at the hard caps (500 for parent objects, 200 for
child objects), always with ``sort=_internalId`` so offsets are stable, the next offset computed
from ``_pageSize`` and ``_totalCount`` (``_next`` can be mangled, KB 427298), and rows repeated
across pages dropped on ``_internalId``. Incremental reads filter ``lastUpdatedDate >=`` a
naive literal in the server's zone (``server_timezone``): Clarity writes and compares naive
local time at whole seconds, so the bound is floored to the second and the lower bound closed;
no upper bound is sent (a record edited mid-read would leave the filtered set and shift the
offsets). Deletions are invisible to the filter: projects and ideas are listed by id on every
sync (cheap, ids only) and the vanished ones tombstoned. Tasks and plan lines keep their own
timestamps: they are read for the projects changed since the stream's watermark, and for every
project on a full sweep (``full_sweep_every_days``), which also tombstones deleted ones.

Lookup labels the mapping needs (the tenant-defined status indicator) and the e-mail behind
each resource id are read once per sync, only when a page has records to map. Custom
attributes come by their API ids as configured (``custom_fields = { department =
"c_department" }``); one that is not API-enabled is absent from records (``check`` names it).

Write-back: ``writers["demand"]`` creates an idea, ``writers["work_item:project"]`` a project,
idempotent through a custom correlation attribute (``correlation_attribute``, API-enabled);
bulk creates (:meth:`ClarityWriter.create_many`) report each record's outcome, since Clarity
answers 200 with ``_errors`` for the ones it refused.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import requests

from ...core.adapter import (
    Adapter,
    Capabilities,
    CheckItem,
    Page,
    PlatformOptions,
    Probe,
    Stream,
    TimeZoneName,
    Window,
    Writer,
    WriteResult,
    described,
    read_all,
)
from ...core.client import ErrorRule, HttpClient, PlatformSpec, basic
from ...core.config import SourceConfig
from ...core.errors import (
    AccessDenied,
    AuthError,
    ConfigError,
    CrosswalkError,
    MalformedResponse,
    NotFound,
    PlatformError,
)
from ...core.http import BearerToken, RenewingBearer, is_html
from ...core.model import Demand, Record, WorkItem
from ...core.paging import ChildOffsetPaginator, OffsetPaginator
from ...core.secrets import REDACTOR, redact
from . import mapping

log = logging.getLogger("itcrosswalk.clarity")

PUBLIC = "/ppm/rest/v1"
TOKENS = "/tokens/rest/v1"
PARENT_CAP = 500
CHILD_CAP = 200
KEY_WARNING_DAYS = 14
# Periods asked of a plan's money curve: months from 2015 over thirty years (sparse segments).
TSV_PERIODS = "months,360,2015-01-01T00:00:00,fiscal"

# stream -> (resource, the functional right it needs [INF: right names as the UI shows them])
RESOURCES: dict[str, tuple[str, str]] = {
    "projects": ("projects", "Project - Navigate"),
    "tasks": ("projects", "Project - View Management"),
    "ideas": ("ideas", "Idea - Navigate"),
    "resources": ("resources", "Resource - Navigate"),
    "costPlans": ("costplandetails", "Financial Plan - View"),
    "benefitPlans": ("benefitplandetails", "Benefit Plan - View"),
    "teams": ("projects", "Project - View Management"),
    "teamAllocations": ("projects", "Project - View Management"),
}


class ClarityOptions(PlatformOptions):
    """A Clarity source's keys: single sign-on, the API client and key expiry, the server's zone,
    custom attributes."""

    sso: bool = False
    """The tenant sits behind single sign-on: use ``/tokens/rest/v1`` and an API key."""
    client_id: str | None = None
    """The API client (Administration > Authentication & Keys > Clients) the key belongs to."""
    session: bool = False
    """With basic auth: log in once (``auth/login``) and send the session token instead."""
    server_timezone: TimeZoneName = "UTC"
    """The zone the Clarity server writes and compares its naive datetimes in."""
    custom_fields: dict[str, str] = {}
    """Common-model field (or any name, kept in extra) -> custom attribute API id."""
    correlation_attribute: str = "c_crosswalkRef"
    """The API-enabled custom string attribute write-back stores its correlation id in."""
    key_expires: date | None = None
    """When the API key expires (shown once, with the key); ``check`` warns before it does."""


class ApiKey(requests.auth.AuthBase):
    """Clarity's key-based auth: ``x-api-ppm-client`` with the key as a bearer token."""

    def __init__(self, client_id: str, key: str) -> None:
        self.client_id = client_id
        self.bearer = BearerToken(key)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["x-api-ppm-client"] = self.client_id
        return self.bearer(request)


class SessionToken(RenewingBearer):
    """A Clarity session: ``POST auth/login`` with Basic once, then the ``authToken`` header."""

    header = "authToken"
    scheme = ""

    def __init__(self, client: HttpClient, login: str, user: str, password: str) -> None:
        self.client = client
        self.login = login
        self.basic = requests.auth.HTTPBasicAuth(user, password)
        self._token: str | None = None
        self._lock = threading.Lock()

    def stale(self, response: requests.Response) -> bool:
        # Behind single sign-on an expired session comes back as the IdP's login page.
        return response.status_code == 401 or (response.status_code < 300 and is_html(response))

    def token(self, *, renew: bool = False) -> str:
        with self._lock:
            if self._token is None or renew:
                response = self.client.request(
                    "POST", self.login, what="Clarity sign-in", auth=self.basic
                )
                body = self.client.json(response, "Clarity sign-in")
                token = body.get("authToken") if isinstance(body, dict) else None
                if not token:
                    raise MalformedResponse(
                        f"source {self.client.source.name}: auth/login answered without an authToken"
                    )
                self._token = str(token)
                # The session token is as good as the password for its lifetime: mask it
                # wherever it could be echoed (an error body, a debug log), as the OAuth
                # tokens of the other adapters are.
                REDACTOR.register(self._token)
            return self._token

    @property
    def active(self) -> str | None:
        return self._token


def _api_key(client: HttpClient) -> requests.auth.AuthBase:
    options = client.options
    if not options.client_id:
        raise ConfigError(
            f"sources.{client.source.name}.client_id: an API key is sent with its client's id "
            "(x-api-ppm-client); set client_id"
        )
    return ApiKey(options.client_id, client.secrets(client.source.auth.token, "auth.token"))


def _basic(client: HttpClient) -> requests.auth.AuthBase:
    auth, options = client.source.auth, client.options
    if options.sso:
        raise ConfigError(
            f"sources.{client.source.name}.auth: single sign-on tenants accept only an API key "
            'over REST; use auth = { type = "bearer", ... } with client_id'
        )
    if options.session:
        password = client.secrets(auth.password, "auth.password")
        return SessionToken(client, f"{client.base}{PUBLIC}/auth/login", auth.user, password)
    return basic(client)


# The HTTP plumbing, as data. Clarity's error bodies carry an ``errorCode`` callers decide on
# (the messages are localized); it answers 401, not 403, for a functional right the user lacks.
SPEC = PlatformSpec(
    title="Clarity",
    url_example="https://ppm.city.gov",
    api_suffixes=(PUBLIC, TOKENS),  # the API's own address pasted as the url
    auth={"bearer": _api_key, "basic": _basic},
    auth_example='auth = { type = "bearer", token = "env:CLARITY_API_KEY" }, with client_id = '
    '"<the API client>"',
    hints={
        "bearer": "check the API key that `{token}` points to and client_id; keys stop working "
        "when they expire (90 days at most), when the client is deactivated or after a SaaS "
        "environment refresh",
        "basic": "check the user {user} and the password that `{password}` points to",
    },
    code_field="errorCode",
    errors=(
        ErrorRule(
            401,
            AccessDenied,
            "source {source} may not read {what} (HTTP 401, {code}): {message}; grant the user "
            "{right} in Clarity",
            code="api.accessDenied",
        ),
        ErrorRule(
            401,
            AuthError,
            "authentication failed for source {source} (HTTP 401, {code}): the API key has "
            "expired (Clarity keys last at most 90 days): generate a new one under avatar > API "
            "Keys and update what `{token}` points to",
            code="api.apiKeyExpired",
        ),
        ErrorRule(
            401,
            AuthError,
            "authentication failed for source {source} (HTTP 401, {code}): the user lacks the "
            "API - Access right: ask a Clarity administrator to grant it",
            code="api.noApiAccess",
        ),
        ErrorRule(
            401,
            AuthError,
            "authentication failed for source {source} (HTTP 401, {code}): the client "
            "{client_id!r} is unknown or inactive (Administration > Authentication & Keys > "
            "Clients)",
            code="api.invalidClient",
        ),
        ErrorRule(
            tuple(s for s in range(400, 500) if s not in (401, 403, 404, 429)),
            PlatformError,
            "source {source}: {what} failed with HTTP {status}: {message}{code_note}",
            needs_message=True,
        ),
    ),
)

# resource -> the functional right reading it needs, for the messages of refused reads
RIGHTS = {resource: right for resource, right in reversed(RESOURCES.values())}


class ClarityStream(Stream):
    """A top-level Clarity collection (projects, ideas, resources) read with offset paging."""

    key = "_internalId"
    cursor_field = "lastUpdatedDate"
    kind = ""
    condition: str | None = None

    def __init__(self, adapter: ClarityAdapter) -> None:
        self.adapter = adapter
        self.paginator = OffsetPaginator(PARENT_CAP)
        self._seen: set[str] = set()

    @property
    def resource(self) -> str:
        return RESOURCES[self.name][0]

    def fetch(self, token: Any, window: Window) -> Page:
        if int(token) == 0:
            self._seen = set()
        clauses = [self.condition] if self.condition else []
        if self.incremental and not window.full and window.since is not None:
            clauses.append(self.adapter.since_clause(window.since))
        params: dict[str, Any] = {"offset": int(token), "sort": "_internalId"}
        if clauses:
            params["filter"] = _join(clauses)
        page = self.adapter.page(self.resource, params, PARENT_CAP)
        page.records = self.adapter.unseen(page.records, self._seen)
        return page

    def source_id(self, value: Any) -> str:
        return mapping.source_id(self.kind, value)

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        return mapping.parse_local(raw.get("lastUpdatedDate"), self.adapter.zone)

    def live_ids(self) -> tuple[Iterable[str], int | None]:
        params: dict[str, Any] = {"fields": "_internalId", "sort": "_internalId"}
        if self.condition:
            params["filter"] = self.condition
        rows, total = self.adapter.read_all(self.resource, params)
        return [mapping.source_id(self.kind, r["_internalId"]) for r in rows], total


class Projects(ClarityStream):
    """Projects and programs (templates are not portfolio work: they are left out)."""

    name = "projects"
    entity = "work_item"
    kind = "project"
    condition = "(isTemplate = false)"
    id_sweep = True

    def __init__(self, adapter: ClarityAdapter) -> None:
        super().__init__(adapter)
        # The teams of the page being mapped, by the project's ``_internalId`` as it came:
        # kept beside the records, not in them, so a record stays what the platform sent.
        self._teams: dict[Any, list[dict[str, Any]]] = {}

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        self.adapter.load_references()
        # Team allocations ride along in extra for the capacity work: one request per project.
        self._teams = {
            raw["_internalId"]: self.adapter.team_of(int(str(raw["_internalId"]))) for raw in raws
        }

    def map(self, raw: Mapping[str, Any]) -> Record:
        a = self.adapter
        return mapping.map_project(
            raw,
            source=a.source.name,
            base=a.base,
            zone=a.zone,
            labels=a.labels,
            emails=a.emails,
            custom_fields=a.options.custom_fields,
            teams=self._teams.get(raw.get("_internalId")),
        )


class Ideas(ClarityStream):
    """Ideas: the intake, as demands."""

    name = "ideas"
    entity = "demand"
    kind = "idea"
    id_sweep = True
    linked = (("project", "work_item", "project_id"),)

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        self.adapter.load_references(labels=False)

    def map(self, raw: Mapping[str, Any]) -> Record:
        a = self.adapter
        return mapping.map_idea(
            raw,
            source=a.source.name,
            base=a.base,
            zone=a.zone,
            emails=a.emails,
            custom_fields=a.options.custom_fields,
        )


class Resources(ClarityStream):
    """Resources: the people who manage, own and staff the work."""

    name = "resources"
    entity = "person"
    kind = "resource"

    def map(self, raw: Mapping[str, Any]) -> Record:
        a = self.adapter
        return mapping.map_resource(raw, source=a.source.name, base=a.base, zone=a.zone)


class ChildStream(Stream):
    """A child collection read for each project this read covers: the projects changed since
    the stream's own watermark, or all of them on a full read.

    A child's cursor is the later of its own ``lastUpdatedDate`` and its project's (the record
    keeps its own as ``updated_at``), so the watermark also says up to which project change the
    children were read: a project edited after all its children is listed once, not on every
    sync, and the children of a newly listed project are never dropped as older than the
    window. Projects are listed when they changed after that watermark: the overlap is not
    re-read per project (it would cost a request per project and part on every sync); a
    project changed in the watermark's own second and committed after the previous read waits
    for the next full sweep, which reads every project's children.
    """

    key = "_internalId"
    cursor_field = "lastUpdatedDate"
    parts: tuple[str, ...] = ("",)

    def __init__(self, adapter: ClarityAdapter) -> None:
        self.adapter = adapter
        self.paginator = ChildOffsetPaginator(CHILD_CAP, parts=len(self.parts))
        self._parents: tuple[Window, dict[int, str | None]] | None = None
        self._seen: set[str] = set()

    def parents(self, window: Window) -> dict[int, str | None]:
        """The projects this read covers, with their ``lastUpdatedDate``, in id order."""
        if self._parents is None or self._parents[0] != window:
            clauses = [Projects.condition or ""]
            if not window.full and window.since is not None:
                watermark = window.since + timedelta(seconds=self.adapter.source.overlap_seconds)
                clauses.append(
                    f"(lastUpdatedDate > '{mapping.to_local(watermark, self.adapter.zone)}')"
                )
            rows, _total = self.adapter.read_all(
                "projects",
                {
                    "fields": "_internalId,lastUpdatedDate",
                    "sort": "_internalId",
                    "filter": _join(clauses),
                },
            )
            found = {int(str(r["_internalId"])): r.get("lastUpdatedDate") for r in rows}
            self._parents = (window, dict(sorted(found.items())))
        return self._parents[1]

    def _following(self, window: Window, parent: int | None) -> int | None:
        for candidate in self.parents(window):
            if parent is None or candidate > parent:
                return candidate
        return None

    def fetch(self, token: Any, window: Window) -> Page:
        parent = token.get("parent")
        if parent is None:
            self._seen = set()
            # No request: this page only names the first project (it counts nothing).
            return Page(records=[], total=None, next_hint=self._following(window, None))
        part = self.parts[int(token.get("part", 0))]
        try:
            page = self.request(int(parent), part, int(token.get("offset", 0)))
        except NotFound:
            # The project went between the listing and this read: nothing of it to read.
            page = Page(records=[], total=0)
        stamp = self.parents(window).get(int(parent))
        for raw in page.records:
            raw["_project"] = int(parent)
            raw["_projectUpdated"] = stamp
        page.records = self.adapter.unseen(
            page.records, self._seen, prefix=f"{part}:", key=self.record_id
        )
        page.next_hint = self._following(window, int(parent))
        return page

    def request(self, parent: int, part: str, offset: int) -> Page:
        raise NotImplementedError

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        zone = self.adapter.zone
        stamps = [
            mapping.parse_local(raw.get("lastUpdatedDate"), zone),
            mapping.parse_local(raw.get("_projectUpdated"), zone),
        ]
        known = [s for s in stamps if s is not None]
        return max(known) if known else None


class Tasks(ChildStream):
    """Tasks and milestones of each project (``projects/{id}/tasks``), parents kept."""

    name = "tasks"
    entity = "work_item"
    linked = (("parent", "work_item", "parent_id"),)

    def request(self, parent: int, part: str, offset: int) -> Page:
        return self.adapter.page(
            f"projects/{parent}/tasks", {"offset": offset, "sort": "_internalId"}, CHILD_CAP
        )

    def source_id(self, value: Any) -> str:
        return mapping.source_id("task", value)

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        self.adapter.load_references(labels=False)

    def map(self, raw: Mapping[str, Any]) -> Record:
        a = self.adapter
        return mapping.map_task(
            raw,
            project=int(raw["_project"]),
            source=a.source.name,
            base=a.base,
            zone=a.zone,
            emails=a.emails,
        )


class PlanStream(ChildStream):
    """Plan detail rows of each investment, one record per row and fiscal period."""

    entity = "plan_line"
    detail_resource = ""
    plan_of_part: dict[str, str] = {}
    linked = (("investment", "work_item", "investment_id"),)

    def request(self, parent: int, part: str, offset: int) -> Page:
        condition = f"(investmentId = {parent})"
        if part:
            condition = f"({condition} and (planType = '{part}'))"
        page = self.adapter.page(
            self.detail_resource,
            {
                "offset": offset,
                "sort": "_internalId",
                "filter": condition,
                "tsvParams": f"(periods=({self.curve},{TSV_PERIODS}))",
            },
            CHILD_CAP,
        )
        rows: list[dict[str, Any]] = []
        for detail in page.records:
            curve = detail.get(self.curve)
            segments = (
                (curve or {}).get("segmentList", {}).get("segments")
                if isinstance(curve, dict)
                else None
            )
            plan = self.plan_of_part[part]
            if not segments:
                # A detail without periods is kept whole, so a malformed one is quarantined
                # with its payload rather than silently dropped.
                if segments is None:
                    rows.append({**detail, "_plan": plan, "_segment": None})
                continue
            for segment in segments:
                rows.append({**detail, self.curve: None, "_plan": plan, "_segment": segment})
        page.records = rows
        return page

    @property
    def curve(self) -> str:
        return "benefit" if self.name == "benefitPlans" else "cost"

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        segment = raw.get("_segment")
        period = str((segment or {}).get("start") or "")[:7] if isinstance(segment, dict) else ""
        return (
            f"plan-{raw.get('_internalId')}-{period}"
            if period
            else f"plan-{raw.get('_internalId')}"
        )

    def map(self, raw: Mapping[str, Any]) -> Record:
        a = self.adapter
        segment = raw.get("_segment")
        if not isinstance(segment, Mapping):
            raise ValueError("a plan detail row without fiscal periods (its curve came as a total)")
        detail = {**raw, self.curve: {"segmentList": {"segments": [segment]}}}
        (line,) = mapping.plan_lines(
            detail, plan=raw["_plan"], source=a.source.name, base=a.base, zone=a.zone
        )
        return line


class CostPlans(PlanStream):
    """Budget and forecast cost plans (``planType`` BUDGET and FORECAST, both filters mandatory)."""

    name = "costPlans"
    detail_resource = "costplandetails"
    parts = ("BUDGET", "FORECAST")
    plan_of_part = {"BUDGET": "budget", "FORECAST": "forecast"}


class BenefitPlans(PlanStream):
    """Benefit plans (``investmentId`` filter mandatory)."""

    name = "benefitPlans"
    detail_resource = "benefitplandetails"
    parts = ("",)
    plan_of_part = {"": "benefit"}


def _join(clauses: list[str]) -> str:
    clauses = [c for c in clauses if c]
    return clauses[0] if len(clauses) == 1 else "(" + " and ".join(clauses) + ")"


class ClarityAdapter(Adapter, platform="clarity", options=ClarityOptions, spec=SPEC):
    """A Clarity PPM tenant, read (and written) through the public REST API."""

    def __init__(self, source: SourceConfig, secrets: Any, **kwargs: Any) -> None:
        super().__init__(source, secrets, **kwargs)
        self.api = self.base + (TOKENS if self.options.sso else PUBLIC)
        self.zone = ZoneInfo(self.options.server_timezone)
        self._lock = threading.RLock()
        self.labels: dict[str, dict[str, str]] = {}
        self.emails: dict[str, str] = {}
        self._references: set[str] = set()
        self._describe: dict[str, set[str] | None] = {}
        self._offered: set[str] = set()

    # -- HTTP --------------------------------------------------------------------------------

    def hint_values(self) -> dict[str, Any]:
        return {"client_id": self.options.client_id, "right": "the right"}

    @property
    def session(self) -> requests.Session:
        return self.http.session

    @property
    def http_session(self) -> Any:
        return self.http.http_session

    def close(self) -> None:
        session, auth = self.http.http_session, self.http.auth
        token = auth.active if isinstance(auth, SessionToken) else None
        if session is not None and token:
            try:
                session.delete(
                    f"{self.api}/auth/logout", headers={"authToken": token}, auth=lambda r: r
                )
            except requests.RequestException:
                pass  # the session times out on its own
        self.http.close()

    def get(self, path: str, params: Mapping[str, Any] | None = None, *, what: str = "") -> Any:
        """GET one API path (relative to the API root) and return its JSON body."""
        what = what or f"Clarity {path.split('?')[0]}"
        right = RIGHTS.get(path.split("/", 1)[0], "the functional right this read needs")
        return self.http.get(f"{self.api}/{path}", params, what=what, context={"right": right})

    def page(self, path: str, params: Mapping[str, Any], cap: int) -> Page:
        """One page of a collection at the hard cap (or the smaller configured ``page_size``);
        the step is what the server says it served (``_pageSize``)."""
        query = {**params, "limit": min(self.source.page_size or cap, cap)}
        body = self.get(path, query)
        if not isinstance(body, dict) or not isinstance(body.get("_results"), list):
            raise MalformedResponse(
                f"source {self.source.name}: Clarity {path} did not answer with a collection"
            )
        records = [r for r in body["_results"] if isinstance(r, dict)]
        size = body.get("_pageSize")
        size = int(size) if isinstance(size, int) and size > 0 else cap
        total = body.get("_totalCount")
        if not isinstance(total, int):
            # No count: a full page means there may be more (the step past it is asked).
            offset = int(params.get("offset") or 0)
            total = offset + len(records) + (size if len(records) >= size else 0)
        return Page(records=records, total=total, requested=size)

    def read_all(
        self, path: str, params: Mapping[str, Any]
    ) -> tuple[list[dict[str, Any]], int | None]:
        """Every row of a collection (small fields), through the core paging loop."""
        rows, total = read_all(
            path,
            lambda offset: self.page(path, {**params, "offset": int(offset)}, PARENT_CAP),
            OffsetPaginator(PARENT_CAP),
        )
        return self.unseen(rows, set()), total

    @staticmethod
    def unseen(
        records: list[dict[str, Any]],
        seen: set[str],
        *,
        prefix: str = "",
        key: Callable[[dict[str, Any]], str | None] | None = None,
    ) -> list[dict[str, Any]]:
        """Rows not met before in this read (offset paging can serve one twice), by
        ``_internalId`` (a number in lists, a string in bulk answers) or by ``key``."""
        out = []
        for raw in records:
            ident = key(raw) if key is not None else raw.get("_internalId")
            marker = f"{prefix}{str(ident).strip()}" if ident is not None else None
            if marker is not None:
                if marker in seen:
                    continue
                seen.add(marker)
            out.append(raw)
        return out

    def since_clause(self, since: datetime) -> str:
        """``lastUpdatedDate >=`` the bound as Clarity compares it: naive, server zone, seconds."""
        return f"(lastUpdatedDate >= '{mapping.to_local(since, self.zone)}')"

    # -- reference data ------------------------------------------------------------------------

    def load_references(self, *, labels: bool = True) -> None:
        """Once per sync, when a page has records to map: the status indicator's (and the
        status and progress) labels, and the e-mail behind each resource id."""
        with self._lock:
            if labels and "labels" not in self._references:
                for attribute, code in (
                    ("statusIndicator", "INVESTMENT_STATUS_INDICATOR"),
                    ("status", "INVESTMENT_OBJ_STATUS"),
                    ("progress", "INVESTMENT_OBJ_PROGRESS"),
                ):
                    try:
                        rows, _ = self.read_all(f"lookups/{code}/lookupValues", {})
                    except (NotFound, PlatformError) as exc:
                        log.warning(
                            "source %s: lookup %s unreadable: %s", self.source.name, code, exc
                        )
                        continue
                    self.labels[attribute] = {
                        str(r.get("id")): str(r.get("displayValue"))
                        for r in rows
                        if r.get("id") is not None
                    }
                self._references.add("labels")
            if "emails" not in self._references:
                try:
                    rows, _ = self.read_all(
                        "resources", {"fields": "_internalId,emailAddress", "sort": "_internalId"}
                    )
                except (AccessDenied, NotFound, PlatformError) as exc:
                    # Without Resource - Navigate managers stay names (kept in extra).
                    log.warning("source %s: resources unreadable: %s", self.source.name, exc)
                    rows = []
                self.emails = {
                    str(r["_internalId"]): str(r["emailAddress"]).strip().lower()
                    for r in rows
                    if r.get("emailAddress")
                }
                self._references.add("emails")

    def team_of(self, project: int) -> list[dict[str, Any]]:
        """A project's team: who is allocated, how many hours, hard or soft booked."""
        try:
            rows = self.page(
                f"projects/{project}/teams", {"sort": "_internalId"}, CHILD_CAP
            ).records
        except (NotFound, AccessDenied, PlatformError):
            return []
        out = []
        for row in rows:
            resource = mapping.lookup_id(row.get("resource"))
            out.append(
                {
                    "resource": mapping.source_id("resource", resource) if resource else None,
                    "email": self.emails.get(resource or ""),
                    "name": mapping.lookup_label(row.get("resource")),
                    "allocation_hours": row.get("allocation"),
                    "hard_allocation_hours": row.get("hardAllocation"),
                    "booking": mapping.lookup_id(row.get("bookingStatus")),
                    "role": row.get("requirementName"),
                }
            )
        return out

    def attributes(self, resource: str) -> set[str] | None:
        """The API ids ``/describe/{resource}`` lists (None when the resource is not offered)."""
        with self._lock:
            if resource not in self._describe:
                try:
                    body = self.get(f"describe/{resource}")
                except NotFound:
                    self._describe[resource] = None
                else:
                    found = body.get("attributes") if isinstance(body, dict) else None
                    self._describe[resource] = {
                        str(a.get("name") or a.get("attributeName"))
                        for a in (found or [])
                        if isinstance(a, dict)
                    }
            return self._describe[resource]

    # -- the adapter contract ------------------------------------------------------------------

    def streams(self) -> list[Stream]:
        return [
            Projects(self),
            Tasks(self),
            Ideas(self),
            Resources(self),
            CostPlans(self),
            BenefitPlans(self),
            *_allocation_streams(self),
        ]

    def preflight(self) -> str:
        """The sign-in (the user's profile), and the resources ``/describe`` offers."""
        profile = self.get("virtual/userProfile", what="the signed-in user's profile")
        user = profile.get("userName") if isinstance(profile, dict) else None
        try:
            listed = self.get("describe")
            self._offered = {
                str(r.get("resourceName"))
                for r in (listed.get("_results") or [])
                if isinstance(r, dict)
            }
        except CrosswalkError as exc:
            log.warning("source %s: /describe unreadable: %s", self.source.name, exc)
            self._offered = set()
        return f"signed in as {user} (API - Access granted)"

    def probes(self) -> list[Probe]:
        return [
            Probe(stream, lambda s=stream, r=resource, g=right: self._stream_check(s, r, g))
            for stream, (resource, right) in RESOURCES.items()
        ]

    def check(self) -> list[CheckItem]:
        """One line per stream, as sync names them. The sign-in, the API key's expiry (on the
        first stream's line) and custom attributes that are not API-enabled (on the line of the
        stream they belong to) are said where they matter."""
        items = {item.name: item for item in super().check()}
        first = next(iter(items.values()))
        if len(items) < len(RESOURCES):  # a failure stopped the check
            return list(items.values())
        auth = self.source.auth
        if auth is not None and auth.type == "bearer":
            ok, status, words = self._key_check()
            first.detail += f"; API key {words}"
            if not ok:
                first.ok, first.status = False, status
        for stream, resource in (("projects", "projects"), ("ideas", "ideas")):
            known = self.attributes(resource) if items[stream].ok else None
            if known is None:
                continue
            wanted = dict(self.options.custom_fields)
            wanted["write-back correlation"] = self.options.correlation_attribute
            for field_name, attribute in wanted.items():
                if attribute in known:
                    continue
                item = items[stream]
                item.ok, item.status = False, "missing"
                item.detail += (
                    f"; custom attribute {attribute} ({field_name}) is not API-enabled on "
                    f"{resource}: syncs leave it empty; give it an API Attribute ID in Clarity "
                    "Studio (Administration > Objects > Attributes)"
                )
        return list(items.values())

    def _key_check(self) -> tuple[bool, str, str]:
        """Whether the key is good for a while yet, the check status if not, and in words."""
        expires = self.options.key_expires
        if expires is None:
            return True, "ok", "expiry unknown (keys last at most 90 days; set key_expires)"
        left = (expires - datetime.now(UTC).date()).days
        if left < 0:
            return False, "auth", f"expired on {expires}: generate a new one"
        if left <= KEY_WARNING_DAYS:
            return (
                False,
                "error",
                f"expires on {expires} (in {left} days): generate a new one and update its "
                "secret before then",
            )
        return True, "ok", f"expires on {expires} (in {left} days)"

    def _stream_check(self, stream: str, resource: str, right: str) -> CheckItem:
        if self._offered and resource not in self._offered:
            return CheckItem(
                stream,
                False,
                f"/describe does not list {resource}: the user lacks {right}, or the tenant "
                "does not offer it",
                status="no_access",
            )
        params: dict[str, Any] = {"fields": "_internalId", "limit": 1}
        if resource == "costplandetails":
            params["filter"] = "((investmentId = 0) and (planType = 'BUDGET'))"
        elif resource == "benefitplandetails":
            params["filter"] = "(investmentId = 0)"
        elif resource == "projects":
            params["filter"] = Projects.condition
        body = self.http.get(
            f"{self.api}/{resource}", params, what=f"Clarity {resource}", context={"right": right}
        )
        total = body.get("_totalCount") if isinstance(body, dict) else None
        if stream in ("tasks", "costPlans", "benefitPlans"):
            return CheckItem(stream, True, "readable, per project", status="ok")
        if isinstance(total, int):
            return CheckItem(
                stream,
                True,
                f"{total} records, {PARENT_CAP} per page",
                estimate_requests=max(1, -(-total // PARENT_CAP)),
                status="ok",
            )
        return CheckItem(stream, True, "readable", estimate_requests=1, status="ok")

    def capabilities(self) -> Capabilities:
        return Capabilities(
            entities={
                "work_item": (
                    "kind number name parent_id state phase health manager department priority "
                    "business_case_approved planned_start planned_finish baseline_start "
                    "baseline_finish actual_start actual_finish percent_complete budget "
                    "forecast_cost"
                ).split(),
                "demand": (
                    "number name state requester department priority business_case_approved "
                    "submitted_at decided_at estimated_cost project_id"
                ).split(),
                "person": ["upn", "email", "name", "department", "office", "active"],
                "plan_line": (
                    "investment_id plan plan_id plan_name plan_of_record fiscal_period "
                    "period_start period_finish cost_type actual category amount currency"
                ).split(),
                **_allocation_fields(),
            },  # fmt: skip
            writes=["demand", "work_item:project"],
            auth_types=["bearer", "basic"],
            permissions=[
                "API - Access, and an API key of an API client (or basic auth off SSO)",
                "Project - Navigate, Project - View Management, Idea - Navigate, "
                "Resource - Navigate, Financial Plan - View, Benefit Plan - View",
                "write-back: Idea - Create, Project - Create, and an API-enabled correlation "
                "attribute",
            ],
        )

    # -- write-back ----------------------------------------------------------------------------

    @property
    def writers(self) -> dict[str, Writer]:
        return {
            "demand": ClarityWriter(self, "ideas", "demand"),
            "work_item:project": ClarityWriter(self, "projects", "work_item"),
        }


@dataclass
class BulkOutcome:
    """One record of a bulk create: its result, or Clarity's refusal (message and errorCode)."""

    correlation_id: str
    result: WriteResult | None = None
    error: str | None = None
    error_code: str | None = None


class ClarityWriter:
    """Creates ideas or projects from common-model fields, idempotently.

    The correlation id goes into the configured custom attribute, and records carrying it are
    looked for before anything is sent. Bodies go in one bulk ``POST {"d": [...]}``: Clarity
    answers 200 and lists the refused records in ``_errors``, so each record's outcome is
    reported on its own and none is reported created that was not.
    """

    def __init__(self, adapter: ClarityAdapter, collection: str, entity: str) -> None:
        self.adapter = adapter
        self.collection = collection
        self.entity = entity
        self.kind = "idea" if collection == "ideas" else "project"

    def __repr__(self) -> str:
        return f"<clarity writer {self.kind} -> {self.collection}>"

    def _fail(self, message: str) -> ConfigError:
        return ConfigError(
            f"source {self.adapter.source.name}: cannot create the {self.kind}: {message}"
        )

    def _attribute(self) -> str:
        attribute = self.adapter.options.correlation_attribute
        known = self.adapter.attributes(self.collection)
        if known is not None and attribute not in known:
            raise self._fail(
                f"the correlation attribute {attribute} is not API-enabled on {self.collection} "
                "(write-back would not be idempotent); API-enable it or set correlation_attribute"
            )
        return attribute

    def payload(self, fields: Mapping[str, Any], correlation_id: str) -> dict[str, Any]:
        """The body of one record (references resolved on the tenant)."""
        model = Demand if self.entity == "demand" else WorkItem
        unknown = sorted(set(fields) - set(model.model_fields) - {"description"})
        if unknown:
            raise self._fail(f"the {self.entity} model has no field {', '.join(unknown)}")
        name = str(fields.get("name") or "").strip()
        if not name:
            raise self._fail("a name is required")
        digest = hashlib.sha256(correlation_id.encode()).hexdigest()[:10].upper()
        body: dict[str, Any] = {
            "code": str(fields.get("number") or f"CW-{digest}"),
            "name": name[:240],
        }
        if self.kind == "project":
            body["isActive"] = True
        custom = self.adapter.options.custom_fields
        written = mapping.WRITE_FIELDS[self.kind]
        notes: list[str] = []
        for key, value in fields.items():
            if value in (None, "", []) or key in ("name", "number", "description"):
                continue
            if key in custom:
                body[custom[key]] = str(value)
            elif key in written:
                body[written[key]] = (
                    mapping.to_local(value, self.adapter.zone)
                    if isinstance(value, datetime)
                    else value
                )
            elif key == "priority":
                body["priority"] = (int(value) - 1) * 8 + 2
            elif key == "estimated_cost" and self.kind == "idea":
                body["estimatedCost"] = {"amount": f"{float(value):.2f}", "currency": "USD"}
            elif key in ("manager", "requester"):
                self.adapter.load_references(labels=False)
                wanted = str(value).strip().lower()
                match = next((i for i, e in self.adapter.emails.items() if e == wanted), None)
                if match is None:
                    raise self._fail(f"{key} {value!r} matches no Clarity resource's e-mail")
                body["manager" if key == "manager" else "originatingRequestor"] = match
            else:
                notes.append(f"{key.replace('_', ' ').capitalize()}: {value}")
        description = described(fields, notes)
        if description:
            body["description"] = description
        return body

    def find(self, attribute: str, correlation_id: str) -> dict[str, Any] | None:
        literal = correlation_id.replace("'", "''")
        rows, _ = self.adapter.read_all(
            self.collection,
            {"fields": f"_internalId,code,{attribute}", "filter": f"({attribute} = '{literal}')"},
        )
        matches = [r for r in rows if str(r.get(attribute) or "") == correlation_id]
        return min(matches, key=lambda r: int(str(r["_internalId"]))) if matches else None

    def _result(self, action: str, native: Any, made: list[dict[str, Any]]) -> WriteResult:
        ident = int(str(native).strip())
        return WriteResult(
            action=action,
            entity=self.entity,
            source_id=mapping.source_id(self.kind, ident),
            url=f"{self.adapter.api}/{self.collection}/{ident}",
            requests=made,
        )

    def create_many(
        self, items: list[tuple[Mapping[str, Any], str]], *, dry_run: bool = False
    ) -> list[BulkOutcome]:
        """Create several records in one bulk request: one outcome per ``(fields, correlation)``."""
        adapter = self.adapter
        outcomes: dict[str, BulkOutcome] = {}
        pending: list[tuple[str, dict[str, Any]]] = []
        with adapter.http.recording() as made:
            attribute = self._attribute()
            for fields, correlation_id in items:
                if not correlation_id or not correlation_id.strip() or len(correlation_id) > 240:
                    raise self._fail("give a correlation id of 1-240 characters")
                existing = self.find(attribute, correlation_id)
                if existing is not None:
                    outcomes[correlation_id] = BulkOutcome(
                        correlation_id, self._result("exists", existing["_internalId"], made)
                    )
                    continue
                body = self.payload(fields, correlation_id)
                body[attribute] = correlation_id
                pending.append((correlation_id, body))
            url = f"{adapter.api}/{self.collection}"
            if pending and dry_run:
                made.append({"method": "POST", "url": url, "body": {"d": [b for _c, b in pending]}})
                for correlation_id, _body in pending:
                    outcomes[correlation_id] = BulkOutcome(
                        correlation_id,
                        WriteResult(action="dry_run", entity=self.entity, requests=made),
                    )
                pending = []
            response = (
                adapter.http.send(
                    "POST",
                    url,
                    json={"d": [b for _c, b in pending]},
                    headers={"x-api-full-response": "true"},
                )
                if pending
                else None
            )
        if response is not None:
            adapter.http.raise_for(response, f"creating Clarity {self.collection}")
            body = adapter.http.json(response, f"creating Clarity {self.collection}")
            if not isinstance(body, dict):
                raise MalformedResponse(
                    f"source {adapter.source.name}: the bulk create answered without _results"
                )
            by_code = {b["code"]: c for c, b in pending}
            for row in body.get("_results") or []:
                correlation_id = str(row.get(attribute) or "") or by_code.get(
                    str(row.get("code")), ""
                )
                if correlation_id in dict(pending):
                    outcomes[correlation_id] = BulkOutcome(
                        correlation_id, self._result("created", row["_internalId"], made)
                    )
            for error in body.get("_errors") or []:
                ref = str(error.get("resourceId") or "")
                correlation_id = by_code.get(ref) or next(
                    (c for c, b in pending if b.get("name") == ref and c not in outcomes), ""
                )
                if correlation_id:
                    outcomes[correlation_id] = BulkOutcome(
                        correlation_id,
                        error=redact(str(error.get("errorMessage") or "refused")),
                        error_code=str(error.get("errorCode") or "") or None,
                    )
            for correlation_id, _body in pending:
                if correlation_id not in outcomes:
                    # Neither created nor refused by name: look for it rather than guess.
                    found = self.find(attribute, correlation_id)
                    outcomes[correlation_id] = (
                        BulkOutcome(
                            correlation_id, self._result("created", found["_internalId"], made)
                        )
                        if found
                        else BulkOutcome(correlation_id, error="Clarity reported no outcome for it")
                    )
        return [outcomes[c] for _f, c in items]

    def __call__(
        self, fields: Mapping[str, Any], *, correlation_id: str, dry_run: bool = False
    ) -> WriteResult:
        (outcome,) = self.create_many([(fields, correlation_id)], dry_run=dry_run)
        if outcome.result is None:
            code = f" ({outcome.error_code})" if outcome.error_code else ""
            raise PlatformError(
                f"source {self.adapter.source.name}: Clarity refused to create the {self.kind}: "
                f"{outcome.error}{code}; nothing was created"
            )
        return outcome.result


def _allocation_streams(adapter: ClarityAdapter) -> list[Stream]:
    from .allocations import allocation_streams

    return allocation_streams(adapter)


def _allocation_fields() -> dict[str, list[str]]:
    from .allocations import ALLOCATION_FIELDS

    return ALLOCATION_FIELDS
