"""Jira Align through REST API 2.0 (``/rest/align/api/2/``), on requests and the core HTTP policy.

Every list is read with ``$top``/``$skip`` (at most 100 a page) and comes back as a bare JSON
array, so a short page is the end (the core ``OffsetPaginator``). Incremental reads filter on
``lastUpdatedDate ge 'YYYY-MM-DD' or createDate ge 'YYYY-MM-DD'``: items never edited since
they were filed have no ``lastUpdatedDate``, so their ``createDate`` is both their cursor and
part of the filter (the core's ``window_fields``), and one created between two syncs is read by
the next. The site compares dates only (in a zone it does not state), so the read starts the
day before the boundary and the engine drops what it holds. A site that refuses
the filter on a resource is read in full instead (said once per sync), the window still
applied on the client. Portfolios and programs have neither a creation date nor many rows,
so they are read in full each time, which also tombstones the ones that disappeared.

Names behind ids (programs, strategic themes, program increments, owners) come from one
paged ``$select`` read of each reference resource, made only when a page needs them. A work
item whose parent no longer exists (purged, or in the recycle bin) is kept; the dangling
reference is recorded in ``extra`` and as a ``dangling_parent`` link.

Write-back: ``writers["work_item:epic"]`` and ``["work_item:feature"]`` create an item from
common-model fields (what ``crosswalk template apply agile-epic`` hands them), idempotent
through ``externalId`` (looked up before anything is sent); a dry run returns the exact
requests and sends nothing; a validation failure raises with the site's own message.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import requests

from ...core.adapter import (
    Adapter,
    Capabilities,
    Page,
    PlatformOptions,
    Probe,
    Stream,
    Window,
    Writer,
    WriteResult,
    described,
    read_all,
)
from ...core.client import ErrorRule, PlatformSpec, basic, bearer
from ...core.config import SourceConfig
from ...core.errors import (
    AuthError,
    ConfigError,
    ConnectError,
    CrosswalkError,
    MalformedResponse,
    PagingLoopError,
    PlatformError,
)
from ...core.http import platform_message
from ...core.model import Record, WorkItem
from ...core.paging import OffsetPaginator
from . import mapping

log = logging.getLogger("itcrosswalk.jira_align")

API = "/rest/align/api/2"
MAX_PAGE = 100

# stream name -> (API resource, read incrementally)
STREAMS: dict[str, tuple[str, bool]] = {
    "portfolios": ("Portfolios", False),
    "programs": ("Programs", False),
    "themes": ("Themes", True),
    "epics": ("Epics", True),
    "capabilities": ("Capabilities", True),
    "features": ("Features", True),
}

# source_id prefix -> API resource, to look a parent up
PREFIXES: dict[str, str] = {
    prefix: resource for resource, (_k, prefix) in mapping.RESOURCES.items()
}

# writer name (the core's ``entity:kind``) -> the API resource it creates in
WRITERS: dict[str, str] = {"work_item:epic": "Epics", "work_item:feature": "Features"}

# Fields the existence check of a resource's ids asks for (programs have no recycle bin).
ID_FIELDS: dict[str, str] = {
    "Portfolios": "id",
    "Programs": "id",
    "Themes": "id",
    "Epics": "id,isRecycled",
    "Capabilities": "id,isRecycled",
    "Features": "id,isRecycled",
}


# The HTTP plumbing, as data. Errors come as RFC 7807 problem details (the core reads them); a
# refused create spells out the validation problem's per-field errors.
SPEC = PlatformSpec(
    title="Jira Align",
    url_example="https://NAME.jiraalign.com",
    api_suffixes=(API,),  # the API's own address pasted as the site URL
    # basic: Atlassian Guard sites, an e-mail and an Atlassian API token
    auth={"bearer": bearer, "basic": basic},
    auth_example='auth = { type = "bearer", token = "env:JIRA_ALIGN_TOKEN" }',
    hints={
        "bearer": "check the API token that `{token}` points to; a Jira Align token stops "
        "working when its user regenerates it or the account is deactivated",
        "basic": "check the user and the API token that `{password}` points to",
    },
    errors=(
        ErrorRule(
            (400, 409, 422),
            PlatformError,
            "source {source}: Jira Align refused to create the {kind} (HTTP {status}): {errors}; "
            "nothing was created",
            writes=True,
        ),
    ),
)


def window_condition(fields: list[str], day: str) -> str:
    """The ``$filter`` of an incremental window: any of ``fields`` on or after ``day``
    (``or`` without parentheses, which the API 2.0 query syntax does not take)."""
    return " or ".join(f"{field} ge '{day}'" for field in fields)


class JiraAlignOptions(PlatformOptions):
    """A Jira Align source's keys: the feature hierarchy, the department field, owners, the program
    to write to."""

    feature_parent: Literal["epics", "capabilities"] = "epics"
    """What a feature's ``parentId`` points to on this site: epics, or capabilities where the
    site runs the four-level hierarchy."""
    department_field: str | None = None
    """The custom field (``customfield_70001``) that holds the City's department, if any."""
    resolve_owners: bool = True
    """Read ``/Users`` to turn owner ids into e-mail addresses (people join on e-mail)."""
    program_id: int | None = None
    """The program new epics and features go to when the fields name no parent."""


class ResourceStream(Stream):
    """One API resource read into WorkItems, page by page with ``$top``/``$skip``."""

    key = "id"
    entity = "work_item"
    cursor_field = "lastUpdatedDate"

    def __init__(self, adapter: JiraAlignAdapter, name: str) -> None:
        resource, incremental = STREAMS[name]
        self.adapter = adapter
        self.name = name  # type: ignore[misc]
        self.resource = resource
        self.prefix = mapping.RESOURCES[resource][1]
        self.incremental = incremental  # type: ignore[misc]
        # Portfolios and programs have no createDate to fall back on.
        self.fallback_cursor_field = "createDate" if incremental else None  # type: ignore[misc]
        self.paginator = OffsetPaginator(adapter.page_size)

    def fetch(self, token: Any, window: Window) -> Page:
        size = self.adapter.page_size
        since = window.since if (self.incremental and not window.full) else None
        condition = None
        if since is not None:
            # The site compares dates only, in a time zone it does not state: asking from the
            # day before the boundary's UTC date covers any zone; the engine drops what it has.
            day = since.astimezone(UTC).date() - timedelta(days=1)
            condition = window_condition(self.window_fields(), day.isoformat())
        records = self.adapter.fetch_page(
            self.resource, {"$top": size, "$skip": int(token)}, condition=condition
        )
        return Page(records=records, requested=size)

    def source_id(self, value: Any) -> str:
        return mapping.source_id(self.resource, value)

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        value = raw.get("id")
        if type(value) is int:  # what the API sends: the id as the core reads it, directly
            return f"{self.prefix}-{value}"
        return super().record_id(raw)

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        stamp = mapping.parse_datetime(raw.get("lastUpdatedDate"))
        if stamp is None and self.fallback_cursor_field:
            stamp = mapping.parse_datetime(raw.get(self.fallback_cursor_field))
        return stamp

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        self.adapter.prepare(self.resource, raws)

    def map(self, raw: Mapping[str, Any]) -> Record:
        adapter = self.adapter
        record = mapping.map_work(
            self.resource,
            raw,
            source=adapter.source.name,
            base=adapter.base,
            owners=adapter.owners,
            names=adapter.names,
            feature_parent="Capabilities"
            if adapter.options.feature_parent == "capabilities"
            else "Epics",
            department_field=adapter.options.department_field,
        )
        if record.updated_at is None:
            # Never edited: its creation is its last change (the stream's fallback cursor).
            record.updated_at = record.created_at
        if (
            self.resource == "Features"
            and record.planned_start is None
            and record.planned_finish is None
        ):
            # A feature is planned into a program increment: without dates of its own, the PI's.
            start, finish = adapter.increment_dates(raw.get("releaseId"))
            if start or finish:
                record.planned_start, record.planned_finish = start, finish
                record.extra["planned_from"] = "program_increment"
        adapter.seen(record.source_id, bool(record.extra.get("recycled")))
        reason = adapter.dangling(record.parent_id)
        if reason:
            record.extra["dangling_parent"] = {"ref": record.parent_id, "reason": reason}
        return record

    def links(self, record: Record) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        parent = getattr(record, "parent_id", None)
        if parent:
            out.append(("parent", "work_item", parent))
            if "dangling_parent" in record.extra:
                out.append(("dangling_parent", "work_item", parent))
        ref = getattr(record, "external_ref", None)
        if ref:
            out.append(("external", "work_item", ref))
        return out


class JiraAlignAdapter(Adapter, platform="jira_align", options=JiraAlignOptions, spec=SPEC):
    """A Jira Align site, read (and written) through REST API 2.0."""

    def __init__(self, source: SourceConfig, secrets: Any, **kwargs: Any) -> None:
        super().__init__(source, secrets, **kwargs)
        if source.page_size and source.page_size > MAX_PAGE:
            log.warning(
                "source %s: page_size %d is more than Jira Align serves; using %d",
                source.name,
                source.page_size,
                MAX_PAGE,
            )
        self.page_size = min(source.page_size or MAX_PAGE, MAX_PAGE)
        self._lock = threading.RLock()
        self._unfiltered: set[str] = set()
        self._owners: dict[str, str] | None = None
        self._names: dict[str, str] = {}
        self._increments: dict[int, tuple[Any, Any]] = {}
        self._named: set[str] = set()
        self._seen: dict[str, bool] = {}
        self._listed: set[str] = set()

    # -- HTTP --------------------------------------------------------------------------------

    def fetch_page(
        self, resource: str, params: Mapping[str, Any], *, condition: str | None = None
    ) -> list[dict[str, Any]]:
        """One page of a resource: a bare JSON array.

        A ``condition`` the site refuses (HTTP 400) is dropped, said once, and the page asked
        again; so is a ``$select`` naming a field the site lacks (whole items come back).
        """
        what = f"Jira Align {resource}"
        url = f"{self.base}{API}/{resource}"
        query = dict(params)
        if condition and resource not in self._unfiltered:
            query["$filter"] = condition
        response = self.http.send_dropping(
            "GET",
            url,
            params=query,
            drop=("$filter", "$select"),
            refused=lambda key, value, answer: self._refused(resource, key, value, answer),
        )
        self.http.raise_for(response, what)
        body = self.http.json(response, what)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise MalformedResponse(
                f"source {self.source.name}: {what} answered with {type(body).__name__}, not the array of items the API returns"
            )
        return body

    def _refused(self, resource: str, key: str, value: Any, response: requests.Response) -> None:
        said = platform_message(response) or "HTTP 400"
        if key == "$select":
            log.info(
                "source %s: %s refused $select=%s (%s); reading whole items",
                self.source.name, resource, value, said,
            )  # fmt: skip
            return
        with self._lock:
            first = resource not in self._unfiltered
            self._unfiltered.add(resource)
        if first:
            log.warning(
                "source %s: the site refused $filter=%s on %s (%s); reading %s in full instead, "
                "filtered on the client",
                self.source.name, value, resource, said, resource,
            )  # fmt: skip

    def get_item(self, resource: str, native_id: int) -> dict[str, Any] | None:
        """One item by id, or None when the site has no such item."""
        what = f"Jira Align {resource} {native_id}"
        response = self.http.send("GET", f"{self.base}{API}/{resource}/{native_id}")
        if response.status_code == 404:
            return None
        self.http.raise_for(response, what)
        body = self.http.json(response, what)
        if not isinstance(body, dict):
            raise MalformedResponse(f"source {self.source.name}: {what} is not a JSON object")
        return body

    def read_all(
        self, resource: str, select: str, *, condition: str | None = None
    ) -> list[dict[str, Any]]:
        """Every item of a resource, ``$select``-ed small, paged until a short page."""
        firsts: set[Any] = set()

        def load(skip: Any) -> Page:
            page = self.fetch_page(
                resource,
                {"$top": self.page_size, "$skip": int(skip), "$select": select},
                condition=condition,
            )
            if page and page[0].get("id") in firsts:
                raise PagingLoopError(
                    f"source {self.source.name}: {resource} paged in a cycle ($skip={skip} "
                    "answered a page read before); the site ignores $skip?"
                )
            firsts.update(p.get("id") for p in page[:1])
            return Page(records=page, requested=self.page_size)

        return read_all(resource, load, OffsetPaginator(self.page_size))[0]

    # -- reference data ------------------------------------------------------------------------

    @property
    def owners(self) -> dict[str, str]:
        return self._owners or {}

    @property
    def names(self) -> dict[str, str]:
        return self._names

    def increment_dates(self, release_id: Any) -> tuple[datetime | None, datetime | None]:
        """A program increment's start and end, where the Releases read gave them."""
        try:
            start, end = self._increments[int(release_id)]
            return mapping.parse_datetime(start), mapping.parse_datetime(end)
        except (KeyError, TypeError, ValueError):
            return None, None

    def prepare(self, resource: str, raws: list[dict[str, Any]]) -> None:
        """Load what a page's items refer to: owners, names, and whether their parents exist."""
        if resource in ("Epics", "Capabilities", "Features"):
            if (
                self.options.resolve_owners
                and self._owners is None
                and any(r.get("ownerId") for r in raws)
            ):
                self._load_owners()
            wanted = {"Programs"} if any(r.get("primaryProgramId") for r in raws) else set()
            if any(r.get("themeId") for r in raws):
                wanted.add("Themes")
            if any(r.get("releaseIds") or r.get("releaseId") for r in raws):
                wanted.add("Releases")
            for reference in sorted(wanted - self._named):
                self._load_names(reference)
        feature_parent = (
            "Capabilities" if self.options.feature_parent == "capabilities" else "Epics"
        )
        unknown: set[str] = set()
        for raw in raws:
            try:
                parent = mapping.parent_ref(resource, raw, feature_parent)
            except (TypeError, ValueError):
                continue
            if parent and parent not in self._seen:
                unknown.add(PREFIXES[parent.split("-", 1)[0]])
        for reference in sorted(unknown - self._listed):
            self._list_ids(reference)

    def _load_owners(self) -> None:
        owners: dict[str, str] = {}
        try:
            users = self.read_all("Users", "id,uid,email")
        except CrosswalkError as exc:
            if isinstance(exc, AuthError | ConnectError):
                raise
            log.warning("source %s: owners stay as ids: %s", self.source.name, exc)
            users = []
        for user in users:
            email = str(user.get("email") or "").strip().lower()
            if not email:
                continue
            for key in ("id", "uid"):
                if user.get(key) not in (None, ""):
                    owners[str(user[key])] = email
        self._owners = owners

    def _load_names(self, resource: str) -> None:
        self._named.add(resource)
        fields = "id,title,startDate,endDate" if resource == "Releases" else "id,title"
        try:
            items = self.read_all(resource, fields)
        except CrosswalkError as exc:
            if isinstance(exc, AuthError | ConnectError):
                raise
            log.warning("source %s: %s names unavailable: %s", self.source.name, resource, exc)
            return
        prefix = "release" if resource == "Releases" else mapping.RESOURCES[resource][1]
        for item in items:
            if item.get("id") is not None and item.get("title"):
                self._names[f"{prefix}-{int(item['id'])}"] = str(item["title"])
            if resource == "Releases" and item.get("id") is not None:
                self._increments[int(item["id"])] = (item.get("startDate"), item.get("endDate"))
            if resource in ID_FIELDS and item.get("id") is not None:
                self._seen.setdefault(f"{prefix}-{int(item['id'])}", False)
        if resource in ID_FIELDS:
            self._listed.add(resource)

    def _list_ids(self, resource: str) -> None:
        """Learn every id of a resource (and which are recycled), to tell a dangling parent."""
        try:
            found = self.read_all(resource, ID_FIELDS[resource])
        except CrosswalkError as exc:
            if isinstance(exc, AuthError | ConnectError):
                raise
            # Parents we cannot list are assumed to exist rather than reported as dangling.
            log.warning("source %s: cannot check %s parents: %s", self.source.name, resource, exc)
            return
        self._listed.add(resource)
        prefix = mapping.RESOURCES[resource][1]
        for item in found:
            if item.get("id") is not None:
                self.seen(f"{prefix}-{int(item['id'])}", mapping.parse_flag(item.get("isRecycled")))

    def seen(self, source_id: str, recycled: bool) -> None:
        """Record that an item exists (and whether it sits in the recycle bin)."""
        self._seen[source_id] = recycled

    def dangling(self, parent: str | None) -> str | None:
        """Why a parent reference dangles (``missing``, ``recycled``), or None when it holds."""
        if not parent:
            return None
        resource = PREFIXES.get(parent.split("-", 1)[0])
        if parent in self._seen:
            return "recycled" if self._seen[parent] else None
        if resource in self._listed:
            return "missing"
        return None  # not checked (its resource is not readable here): assume it holds

    # -- the adapter contract ------------------------------------------------------------------

    def streams(self) -> list[Stream]:
        return [ResourceStream(self, name) for name in STREAMS]

    def probes(self) -> list[Probe]:
        return [
            Probe(name, lambda r=resource, i=incremental: self._probe(r, i))
            for name, (resource, incremental) in STREAMS.items()
        ]

    def _probe(self, resource: str, incremental: bool) -> tuple[str, int]:
        # Incremental streams try their filter too, so a refusal shows before the first sync.
        today = datetime.now(UTC).date().isoformat()
        fields = ["lastUpdatedDate", "createDate"]
        condition = window_condition(fields, today) if incremental else None
        self.fetch_page(resource, {"$top": 1, "$select": "id"}, condition=condition)
        detail = "readable"
        if resource in self._unfiltered:
            detail += (
                "; the site refuses $filter on lastUpdatedDate/createDate: every sync reads it "
                "in full"
            )
        # Lists carry no count: the first sync costs at least one request per resource.
        return detail, 1

    def capabilities(self) -> Capabilities:
        return Capabilities(
            entities={
                "work_item": (
                    "kind number name parent_id state phase health manager department "
                    "strategic_goals score planned_start planned_finish actual_start "
                    "actual_finish budget actual_cost forecast_cost external_ref"
                ).split()
            },
            writes=sorted(WRITERS),
            auth_types=["bearer", "basic"],
            permissions=[
                "an API token of a user who can see the portfolios and programs to sync",
                "create: the user's role may add epics (features) to the target program",
            ],
        )

    # -- write-back ----------------------------------------------------------------------------

    @property
    def writers(self) -> dict[str, Writer]:
        return {key: ItemWriter(self, resource) for key, resource in WRITERS.items()}

    def find_by_external_id(self, resource: str, external_id: str) -> dict[str, Any] | None:
        """The item of ``resource`` whose ``externalId`` is ``external_id``, if any."""
        literal = external_id.replace("'", "''")
        items = self.read_all(resource, "id,externalId", condition=f"externalId eq '{literal}'")
        # A site that refused the filter answered with everything: match on the client.
        matches = [i for i in items if str(i.get("externalId") or "") == external_id]
        return min(matches, key=lambda i: int(i["id"])) if matches else None


def _created_id(response: requests.Response) -> int | None:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("id") not in (None, ""):
        return int(body["id"])
    if isinstance(body, int):
        return body
    location = response.headers.get("Location", "").rstrip("/")
    tail = location.rsplit("/", 1)[-1] if location else ""
    return int(tail) if tail.isdigit() else None


class ItemWriter:
    """Creates an epic or a feature from common-model fields, idempotently.

    The correlation id goes into ``externalId``, and an item carrying it is looked for before
    anything is sent. References are resolved by name first (the owner's e-mail to a user,
    a strategic goal to a theme, a parent to its program), so a typo fails with its name
    instead of creating an item pointing nowhere. Model fields Jira Align has no place for
    (sponsor, priority, ...) are written into the description rather than dropped.
    """

    def __init__(self, adapter: JiraAlignAdapter, resource: str) -> None:
        self.adapter = adapter
        self.resource = resource
        self.kind = mapping.RESOURCES[resource][1]

    def __repr__(self) -> str:
        return f"<jira_align writer {self.kind} -> {self.resource}>"

    def _fail(self, message: str) -> ConfigError:
        return ConfigError(
            f"source {self.adapter.source.name}: cannot create the {self.kind}: {message}"
        )

    def _program_of(self, parent: str) -> tuple[dict[str, Any], int | None]:
        """The body keys a parent reference sets, and the program it implies."""
        prefix, _sep, number = parent.rpartition("-")
        if not number.isdigit():
            raise self._fail(
                f"parent_id {parent!r} is not a Jira Align reference (program-11, epic-1200)"
            )
        native = int(number)
        prefix = prefix or ("program" if self.resource == "Epics" else "epic")
        if prefix == "program":
            return {}, native
        if self.resource == "Epics" or prefix not in ("epic", "capability"):
            raise self._fail(
                f"parent_id {parent!r}: an {self.kind} belongs to a program (program-<id>)"
            )
        resource = "Epics" if prefix == "epic" else "Capabilities"
        found = self.adapter.get_item(resource, native)
        if found is None:
            raise self._fail(f"its parent {parent} does not exist on the site")
        program = found.get("primaryProgramId")
        return {"parentId": native}, int(program) if program not in (None, "") else None

    def _owner_id(self, email: str) -> str:
        wanted = email.strip().lower()
        for user in self.adapter.read_all("Users", "id,uid,email"):
            if str(user.get("email") or "").strip().lower() == wanted:
                return str(user["id"])
        raise self._fail(f"manager {email!r} matches no Jira Align user's e-mail")

    def _theme_id(self, goal: str) -> int:
        wanted = " ".join(goal.split()).casefold()
        for theme in self.adapter.read_all("Themes", "id,title"):
            if " ".join(str(theme.get("title") or "").split()).casefold() == wanted:
                return int(theme["id"])
        raise self._fail(f"strategic goal {goal!r} matches no strategic theme")

    def payload(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The JSON body that creates the item (references resolved on the site)."""
        unknown = sorted(set(fields) - set(WorkItem.model_fields) - {"description"})
        if unknown:
            raise self._fail(f"the work item model has no field {', '.join(unknown)}")
        name = str(fields.get("name") or "").strip()
        if not name:
            raise self._fail("a name is required")
        body: dict[str, Any] = {"title": name, "type": 1, "state": 1}
        program: int | None = self.adapter.options.program_id
        if fields.get("parent_id"):
            keys, implied = self._program_of(str(fields["parent_id"]))
            body.update(keys)
            program = implied or program
        if program is None:
            raise self._fail(
                "no program: give parent_id (program-<id>), or set program_id in "
                f"[sources.{self.adapter.source.name}]"
            )
        body["primaryProgramId"] = program
        notes: list[str] = []
        for key, value in fields.items():
            if value in (None, "", []) or key in ("name", "parent_id", "description"):
                continue
            target = mapping.WRITE_FIELDS.get(key)
            if key == "manager":
                body["ownerId"] = self._owner_id(str(value))
            elif key == "strategic_goals":
                goals = value if isinstance(value, list) else [value]
                body["themeId"] = self._theme_id(str(goals[0]))
                notes += [f"Strategic goal: {g}" for g in goals[1:]]
            elif key == "department" and self.adapter.options.department_field:
                body["customFields"] = [{self.adapter.options.department_field: str(value)}]
            elif key == "state":
                if value not in mapping.WRITE_STATES:
                    raise self._fail(f"a new {self.kind} cannot start as {value}")
                body["state"] = mapping.WRITE_STATES[value]
            elif key in mapping.DERIVED_FIELDS:
                continue  # the site derives these (the phase follows the state)
            elif target is not None:
                body[target] = _wire(value)
            else:
                label = key.replace("_", " ").capitalize()
                notes.append(f"{label}: {_wire(value)}")
        description = described(fields, notes)
        if description:
            body["description"] = description
        return body

    def __call__(
        self, fields: Mapping[str, Any], *, correlation_id: str, dry_run: bool = False
    ) -> WriteResult:
        if not correlation_id or not correlation_id.strip() or len(correlation_id) > 255:
            raise self._fail(
                "give a correlation id of 1-255 characters (it is stored in externalId)"
            )
        adapter = self.adapter
        url = f"{adapter.base}{API}/{self.resource}"
        with adapter.http.recording() as made:
            existing = adapter.find_by_external_id(self.resource, correlation_id)
            if existing is not None:
                native = int(existing["id"])
                return WriteResult(
                    action="exists",
                    entity="work_item",
                    source_id=mapping.source_id(self.resource, native),
                    url=f"{adapter.base}{API}/{self.resource.lower()}/{native}",
                    requests=made,
                )
            body = self.payload(fields)
            body["externalId"] = correlation_id
            if dry_run:
                made.append({"method": "POST", "url": url, "body": body})
                return WriteResult(action="dry_run", entity="work_item", requests=made)
            response = adapter.http.send("POST", url, json=body)
        adapter.http.raise_for(response, f"creating a Jira Align {self.kind}", kind=self.kind)
        made_id = _created_id(response)
        if made_id is None:
            found = adapter.find_by_external_id(self.resource, correlation_id)
            made_id = int(found["id"]) if found else None
        if made_id is None:
            raise MalformedResponse(
                f"source {adapter.source.name}: Jira Align accepted the {self.kind} (HTTP "
                f"{response.status_code}) without naming it; look for external id {correlation_id}"
            )
        return WriteResult(
            action="created",
            entity="work_item",
            source_id=mapping.source_id(self.resource, made_id),
            url=f"{adapter.base}{API}/{self.resource.lower()}/{made_id}",
            requests=made,
        )


def _wire(value: Any) -> Any:
    """A value as the API takes it: date-times in UTC with milliseconds and a Z."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return value
