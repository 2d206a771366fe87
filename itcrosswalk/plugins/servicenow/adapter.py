"""ServiceNow through the Table API, with PySNC (ServiceNow's own client) over the core HTTP policy.

PySNC builds the client, the query parameters and validates responses; the core HTTP policy is
its transport (timeouts, retries honouring Retry-After, the configured CA bundle on every
request). Pages are read as raw JSON rather than through GlideRecord iteration, which wraps every
field in an object and costs more than the download itself.

Paging is keyset on ``(sys_updated_on, sys_id)``: each page asks for the rows after the last
one read, so rows that change during a read are neither skipped nor doubled by shifting
offsets. The Table API applies ``sysparm_limit`` before ACLs, so a short (even empty) page is
not the end: ``X-Total-Count`` says how many rows the query matches, and an empty page keeps
its anchor and moves the offset past the rows the account cannot see.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

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
from ...core.client import ErrorRule, PlatformSpec, basic, bearer, oauth
from ...core.config import SourceConfig
from ...core.errors import AccessDenied, ConfigError, MalformedResponse, NotFound, PlatformError
from ...core.http import is_html, json_body, platform_message
from ...core.model import Record, parse_priority
from . import mapping

log = logging.getLogger("itcrosswalk.servicenow")

DEFAULT_PAGE_SIZE = 1000
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# The stream catalogue: table -> (entity, roles that usually grant read access)
TABLES: dict[str, tuple[str, str]] = {
    "incident": ("ticket", "itil"),
    "sc_req_item": ("ticket", "itil"),
    "problem": ("ticket", "itil or problem_manager"),
    "change_request": ("ticket", "itil or change_manager"),
    "task_sla": ("sla_record", "itil or sla_admin"),
    "pm_portfolio": ("work_item", "it_portfolio_manager"),
    "pm_program": ("work_item", "it_program_manager"),
    "pm_project": ("work_item", "it_project_manager or it_project_user"),
    "pm_project_task": ("work_item", "it_project_manager or it_project_user"),
    "dmn_demand": ("demand", "it_demand_manager or it_demand_user"),
    "cmdb_ci_computer": ("device", "itil or asset"),
    "sys_user": ("person", "itil or user_admin"),
}


class ServiceNowOptions(PlatformOptions):
    """A ServiceNow source's keys: custom columns and extra queries per table, the asset read, the
    close code."""

    columns: dict[str, dict[str, str]] = Field(default_factory=dict)
    """table -> {model field: native column}, for instances with custom (``u_*``) columns."""
    query: dict[str, str] = Field(default_factory=dict)
    """table -> an extra encoded query every read of that table adds (``active=true``)."""
    assets: bool = True
    """Read ``alm_hardware`` to add purchase and warranty dates to computers."""
    close_code: str | None = None
    """The incident close code a resolve sets, where the instance's choices differ from
    ``Solution provided`` (older releases: ``Solved (Permanently)``)."""

    @field_validator("columns", "query")
    @classmethod
    def _known_tables(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = [t for t in value if t not in TABLES]
        if unknown:
            raise ValueError(
                f"unknown table(s) {', '.join(unknown)}; the streams are {', '.join(TABLES)}"
            )
        return value

    @field_validator("query")
    @classmethod
    def _no_ordering(cls, value: dict[str, str]) -> dict[str, str]:
        for table, query in value.items():
            if "ORDERBY" in query:
                # The read's own order (sys_updated_on, sys_id) is what keyset paging rests on.
                raise ValueError(f"{table}: ORDERBY is not allowed; the sync sets the order")
        return value


# A condition's field: everything before the first operator (a dot-walk's first segment is
# the table's own column).
_OPERATORS = (
    "ISNOTEMPTY", "ISEMPTY", "NOT IN", "NOTIN", "NOT LIKE", "NOTLIKE", "STARTSWITH", "ENDSWITH",
    "LIKE", "IN", "BETWEEN", "ANYTHING", "SAMEAS", "NSAMEAS", "ON", "NOTON", "DATEPART",
    "RELATIVE", "EMPTYSTRING", "VALCHANGES", "CHANGESFROM", "CHANGESTO", "!=", ">=", "<=", "=",
    ">", "<",
)  # fmt: skip
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*?)(?:" + "|".join(map(re.escape, _OPERATORS)) + ")")


def query_fields(query: str) -> list[str]:
    """The columns an encoded query's conditions name (``^``, ``^OR``, ``^NQ`` joined)."""
    found: list[str] = []
    for group in query.split("^NQ"):
        for term in group.split("^"):
            term = term.strip()
            if not term or term == "EQ" or term.startswith("ORDERBY"):
                continue
            if term.startswith("OR") and _FIELD.match(term[2:]):
                term = term[2:]
            match = _FIELD.match(term)
            if match:
                found.append(match.group(1).split(".")[0])
    return found


def _format(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


class KeysetPaginator:
    """Keyset paging on ``sys_updated_on`` that needs nothing beyond AND, ``=``, ``>``, ``>=``,
    ``ORDERBY`` and ``sysparm_offset``.

    Tokens are ``{"mode", "t", "seen", "id", "offset"}``:

    - ``start``: the whole window, oldest first;
    - ``ge``: rows with ``sys_updated_on >= t``; the rows at ``t`` already read (``seen``) are
      dropped on the client, so a closed lower bound doubles nothing and ties are never cut;
    - ``tie``: when one timestamp holds more rows than a page, the rows at ``t`` after sys_id
      ``id``, in sys_id order;
    - ``gt``: after a tie group, the rows with ``sys_updated_on > t``.

    An empty page while ``X-Total-Count`` says more rows match means every row of it was
    hidden by ACLs: the same query is asked again past them (``offset``).
    """

    def first(self, window: Window) -> Any:
        return {"mode": "start", "t": None, "seen": [], "id": None, "offset": 0}

    def next(self, token: Any, page: Page) -> Any | None:
        asked = page.requested or len(page.records)
        hint = page.next_hint or {}
        raw_count = hint.get("raw", len(page.records))
        if page.total is not None:
            exhausted = token["offset"] + asked >= page.total
        else:
            exhausted = raw_count < asked
        if token["mode"] == "tie":
            if exhausted:
                return {"mode": "gt", "t": token["t"], "seen": [], "id": None, "offset": 0}
            if raw_count == 0:
                return {**token, "offset": token["offset"] + asked}
            return {**token, "id": hint["last_id"], "offset": 0}
        if exhausted:
            return None
        if raw_count == 0:
            return {**token, "offset": token["offset"] + asked}
        last_t = hint["last_t"]
        seen = list(hint["at_last"])
        if token["mode"] == "ge" and last_t == token["t"]:
            seen = sorted(set(token["seen"]) | set(seen))
        if not page.records or len(seen) >= max(1, asked // 2):
            # One timestamp fills the page: finish it in sys_id order, then go past it.
            return {"mode": "tie", "t": last_t, "seen": seen, "id": None, "offset": 0}
        return {"mode": "ge", "t": last_t, "seen": seen, "id": None, "offset": 0}


# The HTTP plumbing, as data: the auth choices, what to check when credentials are refused,
# and how the Table API's refusals read.
SPEC = PlatformSpec(
    title="ServiceNow",
    url_example="https://NAME.service-now.com",
    https_only=True,  # instances (and PySNC) speak HTTPS only
    auth={
        "basic": basic,
        "oauth_password": oauth("/oauth_token.do"),
        "oauth_client_credentials": oauth("/oauth_token.do"),
        "bearer": bearer,
    },
    hints={
        "basic": "check the password that `{password}` points to",
        "bearer": "check the token that `{token}` points to",
        "oauth_password": "check the client secret that `{client_secret}` points to",
        "oauth_client_credentials": "check the client secret that `{client_secret}` points to",
    },
    errors=(
        ErrorRule(
            403,
            AccessDenied,
            "source {source} refused to create records in {what} (HTTP 403: {message}); a "
            "data policy, business rule or ACL stopped it: fix what the message names, or "
            "grant the account the role",
            writes=True,
        ),
        ErrorRule(
            (400, 404, 409, 422),
            PlatformError,
            "source {source} refused to create a record in {what} (HTTP {status}: {message})",
            writes=True,
        ),
        *(
            ErrorRule(
                400,
                NotFound,
                "{what} does not exist on source {source} (plugin not active or not licensed?)",
                contains=("table", words),
            )
            for words in ("invalid", "not exist")
        ),
        ErrorRule(
            403,
            AccessDenied,
            "source {source} may not read {what} (HTTP 403: {message}): grant the account "
            "{roles}, or the read ACL on {what}",
        ),
    ),
)


# Tables few enough to list every sync: the Table API reports no deletions, so their ids are
# read each time and what vanished is tombstoned (the others wait for a full sweep).
LISTED = {"pm_portfolio", "pm_program", "pm_project"}


class TableStream(Stream):
    """One Table API table, read in keyset order."""

    key = "sys_id"
    cursor_field = "sys_updated_on"

    def __init__(self, adapter: ServiceNowAdapter, table: str) -> None:
        self.adapter = adapter
        self.table = table
        self.name = table  # type: ignore[misc]
        self.entity = TABLES[table][0]  # type: ignore[misc]
        self.id_sweep = table in LISTED  # type: ignore[misc]
        self.paginator = KeysetPaginator()
        self._mapper: Callable[[Mapping[str, Any]], Record] | None = None

    def live_ids(self) -> tuple[list[str], int | None]:
        """Every sys_id the configured query matches, in sys_id order, ``sys_id`` only. A
        full page always asks for the next (a count can lie low); a short one ends the list
        only when the count agrees (the limit applies before ACLs)."""
        self.adapter.validate_options(self.table)
        extra = self.adapter.options.query.get(self.table, "")
        query = f"{extra}^ORDERBYsys_id" if extra else "ORDERBYsys_id"
        size = self.adapter.page_size
        ids: list[str] = []
        offset = 0
        while True:
            raw, headers = self.adapter.list(
                self.table, query=query, limit=size, offset=offset, fields=["sys_id"]
            )
            page = [str(mapping.value(r, "sys_id")) for r in raw if mapping.value(r, "sys_id")]
            if page and ids and page[0] <= ids[-1]:
                raise PlatformError(
                    f"source {self.adapter.source.name}: the ids of table {self.table} came back "
                    "out of sys_id order or repeated (is the instance ignoring sysparm_offset?)"
                )
            ids.extend(page)
            total = headers.get("X-Total-Count")
            offset += size
            more = total is not None and total.isdigit() and offset < int(total)
            if len(raw) < size and not more:
                # X-Total-Count counts rows before ACLs: hidden rows are not the account's to
                # tombstone (nor in the store), so the listing is not held against it.
                return ids, None

    def query(self, window: Window, token: Mapping[str, Any]) -> str:
        """The encoded query of one page: the window, the anchor, the order.

        A configured query with ``^NQ`` (OR-ed groups) gets the window and the anchor in each
        of its groups: appended once, they would bound its last group only, and the others
        would come back whole on every page.
        """
        terms: list[str] = []
        extra = self.adapter.options.query.get(self.table)
        if window.since is not None:
            terms.append(f"sys_updated_on>={_format(window.since)}")
        mode, anchor = token["mode"], token.get("t")
        if mode == "ge":
            terms.append(f"sys_updated_on>={anchor}")
        elif mode == "gt":
            terms.append(f"sys_updated_on>{anchor}")
        elif mode == "tie":
            terms.append(f"sys_updated_on={anchor}")
            if token.get("id"):
                terms.append(f"sys_id>{token['id']}")
        order = ["ORDERBYsys_id"] if mode == "tie" else ["ORDERBYsys_updated_on", "ORDERBYsys_id"]
        groups = extra.split("^NQ") if extra else [""]
        where = "^NQ".join("^".join(t for t in (group, *terms) if t) for group in groups)
        return "^".join(t for t in (where, *order) if t)

    def fetch(self, token: Any, window: Window) -> Page:
        return self.decode(self.transport(token, window), token, window)

    def transport(self, token: Any, window: Window) -> Any:
        self.adapter.validate_options(self.table)
        response = self.adapter.list_response(
            self.table,
            query=self.query(window, token),
            limit=self.adapter.page_size,
            offset=token["offset"],
        )
        # The response (its body, megabytes at display_value=all) is kept for error reports
        # until the next request; this one succeeded, so it lives on in the page's hands only.
        self.adapter._local.last = None
        return response

    def decode(self, fetched: Any, token: Any, window: Window) -> Page:
        size = self.adapter.page_size
        raw, headers = self.adapter.list_decode(self.table, fetched)
        stamps = [mapping.value(r, "sys_updated_on") for r in raw]
        self._check_order(token, stamps)
        seen = set(token.get("seen") or ())
        anchor = token.get("t")
        records = [
            r
            for r, t in zip(raw, stamps, strict=True)
            if not (t == anchor and mapping.value(r, "sys_id") in seen)
        ]
        hint: dict[str, Any] = {"raw": len(raw)}
        if raw:
            hint["last_t"] = stamps[-1]
            hint["last_id"] = mapping.value(raw[-1], "sys_id")
            hint["at_last"] = [
                mapping.value(r, "sys_id")
                for r, t in zip(raw, stamps, strict=True)
                if t == stamps[-1]
            ]
        total = headers.get("X-Total-Count")
        return Page(
            records=records,
            total=int(total) if total and total.isdigit() else None,
            requested=size,
            next_hint=hint,
        )

    def _check_order(self, token: Mapping[str, Any], stamps: list[str]) -> None:
        if token["mode"] == "tie":
            ordered = all(t == token["t"] for t in stamps)
        else:
            ordered = stamps == sorted(stamps)
        if not ordered:
            raise PlatformError(
                f"source {self.adapter.source.name}: table {self.table} came back out of order; keyset paging "
                "needs the instance to honour ORDERBYsys_updated_on (is a business rule or query ACL rewriting the query?)"
            )

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        # The base class's, without its ABC check per record (JSON objects are plain dicts).
        item = raw.get("sys_id")
        if type(item) is dict:
            item = item.get("value")
        return None if item is None or item == "" else str(item)

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        return mapping.parse_datetime(mapping.value(raw, "sys_updated_on"))

    def version(self, raw: Mapping[str, Any]) -> str:
        # Every update bumps sys_mod_count, even one in the same second as the last; a table
        # without it (a custom one) falls back to the content hash.
        count = mapping.value(raw, "sys_mod_count")
        if count in (None, ""):
            return super().version(raw)
        return f"sys_mod_count:{count}@{mapping.value(raw, 'sys_updated_on')}"

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        if self.table == "cmdb_ci_computer":
            self.adapter.load_assets([mapping.value(raw, "sys_id") for raw in raws])

    def map(self, raw: Mapping[str, Any]) -> Record:
        bound = self._mapper
        if bound is None:
            # What the mapper is called with is the same for every record of the read.
            kwargs: dict[str, Any] = {
                "source": self.adapter.source.name,
                "table": self.table,
                "base": self.adapter.base,
            }
            if self.table.startswith("pm_") or self.table == "dmn_demand":
                kwargs["columns"] = self.adapter.options.columns.get(self.table)
            bound = self._mapper = functools.partial(mapping.MAPPERS[self.table], **kwargs)
        record = bound(raw)
        if self.table == "cmdb_ci_computer":
            asset = self.adapter.asset_for(record.source_id)
            if asset is not None:
                mapping.apply_asset(record, asset)
        return record

    def links(self, record: Record) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        extra = record.extra
        if self.entity == "ticket":
            ci = extra.get("cmdb_ci")
            if ci:
                ref = ci.get("value") if type(ci) is dict or isinstance(ci, Mapping) else ci
                if ref:
                    out.append(("concerns", "device", str(ref)))
        elif self.entity == "sla_record":
            ticket_id = getattr(record, "ticket_id", None)
            if ticket_id:
                out.append(("measures", "ticket", ticket_id))
        elif self.entity in ("work_item", "demand"):
            parent = getattr(record, "parent_id", None) or getattr(record, "project_id", None)
            if parent:
                out.append(
                    ("parent" if self.entity == "work_item" else "became", "work_item", parent)
                )
            ref = getattr(record, "external_ref", None)
            if ref:
                out.append(("external", "work_item", ref))
        return out


class ServiceNowAdapter(Adapter, platform="servicenow", options=ServiceNowOptions, spec=SPEC):
    """A ServiceNow instance, read through the Table API."""

    def __init__(self, source: SourceConfig, secrets: Any, **kwargs: Any) -> None:
        super().__init__(source, secrets, **kwargs)
        self.page_size = source.page_size or DEFAULT_PAGE_SIZE
        self._client: Any = None
        self._lock = threading.Lock()
        self._local = threading.local()  # the last response, per thread (pages are prefetched)
        self._assets: dict[str, dict[str, Any] | None] = {}
        self._assets_denied = False
        self._validated: dict[str, str | None] = {}  # table -> the problem found, or None
        self._dictionaries: dict[str, set[str] | None] = {}

    # -- the client -------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                # deferred: `crosswalk --help` must not import it
                from pysnc import ServiceNowClient

                session = self.http.adopt(requests.Session())
                session.hooks["response"].append(self._remember)
                self._client = ServiceNowClient(self.base, session, auto_retry=False)
            return self._client

    def _remember(self, response: requests.Response, **_: Any) -> None:
        self._local.last = response

    @property
    def _last(self) -> requests.Response | None:
        return getattr(self._local, "last", None)

    # -- one request ------------------------------------------------------------------------

    def list(
        self,
        table: str,
        *,
        query: str,
        limit: int,
        offset: int = 0,
        fields: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], Mapping[str, str]]:
        """One Table API list request: the records and the response headers."""
        response = self.list_response(table, query=query, limit=limit, offset=offset, fields=fields)
        return self.list_decode(table, response)

    def list_response(
        self,
        table: str,
        *,
        query: str,
        limit: int,
        offset: int = 0,
        fields: list[str] | None = None,
    ) -> requests.Response | None:
        """The response of one Table API list request, its body not decoded yet (see
        :meth:`list_decode`); None for an empty match."""
        from pysnc.exceptions import NotFoundException

        client = self.client
        record = _PageRecord(client, table, limit=limit, offset=offset, query=query, fields=fields)
        self._local.last = None
        try:
            response = client.table_api.list(record)
        except requests.RequestException as exc:
            raise self.http.connection_error(exc) from None
        except NotFoundException:
            # v1 answers an empty match with 404 "No Record found"; a missing table is a 400.
            if self._last is not None and "no record" in platform_message(self._last).lower():
                return None
            self._raise(table)
        except Exception as exc:
            if self._last is None:
                raise PlatformError(
                    f"source {self.source.name}: request for table {table} failed: {exc}"
                ) from None
            self._raise(table)
        return response  # type: ignore[no-any-return]

    def list_decode(
        self, table: str, response: requests.Response | None
    ) -> tuple[list[dict[str, Any]], Mapping[str, str]]:
        """The records and the response headers of a :meth:`list_response`."""
        if response is None:
            return [], {"X-Total-Count": "0"}
        try:
            payload = json_body(response)
            records = payload["result"]
            if not isinstance(records, list):
                raise TypeError("result is not a list")
        except (ValueError, KeyError, TypeError) as exc:
            if is_html(response):  # a sign-in page where the Table API was due
                self.http.raise_for(response, f"table {table}")
            raise MalformedResponse(
                f"source {self.source.name}: table {table} answered with a body that is not a Table API result ({type(exc).__name__})"
            ) from None
        return records, response.headers

    def _raise(self, table: str) -> None:
        response = self._last
        assert response is not None
        roles = TABLES.get(table, ("", "a role that can read it"))[1]
        self.http.raise_for(response, f"table {table}", roles=roles)
        raise PlatformError(
            f"source {self.source.name}: table {table}: HTTP {response.status_code} "
            f"{platform_message(response)}"
        )

    # -- assets ------------------------------------------------------------------------------

    def load_assets(self, ci_ids: list[str]) -> None:
        """Fetch the ``alm_hardware`` assets of these CIs: one request per 100 CIs."""
        if not self.options.assets or self._assets_denied:
            return
        wanted = [ci for ci in ci_ids if ci not in self._assets]
        for start in range(0, len(wanted), 100):
            chunk = wanted[start : start + 100]
            for ci in chunk:
                self._assets[ci] = None
            try:
                records, _headers = self.list(
                    "alm_hardware",
                    query=f"ciIN{','.join(chunk)}^ORDERBYsys_id",
                    limit=len(chunk) * 2,
                )
            except (AccessDenied, NotFound) as exc:
                self._assets_denied = True
                log.warning("source %s: no purchase or warranty dates: %s", self.source.name, exc)
                return
            for asset in records:
                ci = mapping.value(asset, "ci")
                if ci in self._assets:
                    self._assets[ci] = asset

    def asset_for(self, ci_sys_id: str) -> dict[str, Any] | None:
        return self._assets.get(ci_sys_id)

    # -- the adapter contract ------------------------------------------------------------------

    def streams(self) -> list[Stream]:
        from . import knowledge  # knowledge base, problem state model, hardware assets
        from .finance import streams as finance_streams
        from .resources import resource_streams

        tables = [TableStream(self, table) for table in TABLES]
        return knowledge.streams(self, tables) + finance_streams(self) + resource_streams(self)

    # -- the configured query and columns, against the table's dictionary ----------------------

    def dictionary(self, table: str) -> set[str] | None:
        """Every column of ``table``, its parents' included (``sys_db_object`` gives what it
        extends, ``sys_dictionary`` the columns each defines); None when the account may not
        read them (nothing can be checked then)."""
        if table in self._dictionaries:
            return self._dictionaries[table]
        columns: set[str] | None = None
        try:
            chain: list[str] = []
            query = f"name={table}"
            while query and len(chain) < 10:
                rows, _h = self.list(
                    "sys_db_object", query=query, limit=1, fields=["name", "super_class"]
                )
                if not rows:
                    break
                chain.append(str(mapping.value(rows[0], "name")))
                parent = mapping.value(rows[0], "super_class")
                query = f"sys_id={parent}" if parent else ""
            if chain:
                names = ",".join(chain)
                found: set[str] = set()
                offset = 0
                while True:
                    rows, headers = self.list(
                        "sys_dictionary",
                        query=f"nameIN{names}^ORDERBYsys_id",
                        limit=1000,
                        offset=offset,
                        fields=["element"],
                    )
                    found.update(str(mapping.value(r, "element")) for r in rows)
                    total = headers.get("X-Total-Count")
                    offset += 1000
                    if not (total and total.isdigit() and offset < int(total)):
                        break
                columns = {c for c in found if c}
        except (AccessDenied, NotFound) as exc:
            log.info(
                "source %s: cannot read the dictionary of %s: %s", self.source.name, table, exc
            )
            columns = None
        self._dictionaries[table] = columns
        return columns

    def options_problem(self, table: str) -> str | None:
        """What is wrong with this table's configured ``query`` and ``columns`` (a column the
        table lacks, which the platform would silently ignore), or None."""
        if table in self._validated:
            return self._validated[table]
        query = self.options.query.get(table, "")
        custom = self.options.columns.get(table, {})
        problem = None
        if query or custom:
            known = self.dictionary(table)
            if known is not None:
                key = f"sources.{self.source.name}"
                for column in query_fields(query):
                    if column not in known:
                        problem = (
                            f"{key}.query.{table}: the table has no field {column!r} (ServiceNow "
                            "ignores a condition on an unknown field, which widens the read)"
                        )
                        break
                for field, column in custom.items():
                    if problem is None and column not in known:
                        problem = (
                            f"{key}.columns.{table}.{field}: the table has no field {column!r}"
                        )
        self._validated[table] = problem
        return problem

    def validate_options(self, table: str) -> None:
        problem = self.options_problem(table)
        if problem:
            raise ConfigError(problem)

    def probes(self) -> list[Probe]:
        # Every table a sync reads, the knowledge and asset streams' included.
        tables = [stream.name for stream in self.streams()]
        return [Probe(table, lambda table=table: self._probe(table)) for table in tables]

    def _probe(self, table: str) -> CheckItem | tuple[str, int | None]:
        problem = self.options_problem(table)
        if problem:
            return CheckItem(table, False, problem, status="config")
        _records, headers = self.list(table, query="", limit=1, fields=["sys_id"])
        total = headers.get("X-Total-Count")
        count = int(total) if total and total.isdigit() else None
        estimate = max(1, math.ceil(count / self.page_size)) if count is not None else None
        return (f"{count} rows" if count is not None else "readable"), estimate

    def capabilities(self) -> Capabilities:
        fields = {
            "ticket": (
                "number title priority state opened_at resolved_at closed_at assignment_group "
                "assignee requester category device_name reassignment_count reopen_count"
            ).split(),
            "sla_record": (
                "ticket_id sla_name stage has_breached start_at end_at planned_end_at "
                "elapsed_seconds business_elapsed_seconds elapsed_percent "
                "business_elapsed_percent"
            ).split(),
            "work_item": (
                "name parent_id state phase health manager department planned_start "
                "planned_finish actual_start actual_finish percent_complete budget actual_cost"
            ).split(),
            "demand": "name state requester department priority score submitted_at".split(),
            "device": (
                "name serial asset_tag os os_version owner department last_seen_at manufacturer "
                "model install_status purchase_date warranty_expiration"
            ).split(),
            "person": ["upn", "email", "name", "department", "office", "manager", "active"],
        }
        from .finance import PLAN_LINE_FIELDS

        fields["plan_line"] = list(PLAN_LINE_FIELDS)  # SPM cost and benefit plan breakdowns
        from .knowledge import FIELDS as KNOWLEDGE_FIELDS
        from .resources import RESOURCE_FIELDS

        fields.update(RESOURCE_FIELDS)
        return Capabilities(
            entities={**fields, **KNOWLEDGE_FIELDS},
            writes=sorted(mapping.WRITE_TABLES),
            auth_types=["basic", "oauth_password", "oauth_client_credentials", "bearer"],
            permissions=sorted({f"{t}: {roles}" for t, (_e, roles) in TABLES.items()}),
        )

    @property
    def writers(self) -> dict[str, Writer]:
        return {key: TableWriter(self, key) for key in mapping.WRITE_TABLES}

    @property
    def approvers(self) -> dict[str, Any]:
        from .finance import approvers

        return approvers(self)

    @property
    def resolvers(self) -> dict[str, Resolver]:
        return {
            key: TicketResolver(self, key)
            for key, (table, _entity) in mapping.WRITE_TABLES.items()
            if table in mapping.RESOLVE
        }

    def _write_columns(self, key: str) -> dict[str, str]:
        """Model field -> native column for what writer ``key`` creates, the source's
        ``columns`` option applied as on reads, so a write lands where a read looks."""
        table, entity = mapping.WRITE_TABLES[key]
        if entity == "ticket":
            return dict(mapping.TICKET_WRITE_COLUMNS[table])
        base = mapping.DEMAND_COLUMNS if entity == "demand" else mapping.WORK_COLUMNS
        col = {**base, **self.options.columns.get(table, {})}
        col["description"] = "description"
        col.pop("project", None)
        col.pop("parent", None)
        if entity == "work_item":
            col["parent_id"] = "primary_program"  # a project belongs to a program
        if entity == "demand":
            # Demand states are read by label; their stored values differ between releases,
            # so a new demand takes the instance's default (Draft) and moves on in ServiceNow.
            col.pop("state", None)
        if "goals" in col:  # a list of references to the goal table: not settable from names
            col.pop("goals")
        return col


class TableWriter:
    """Creates one record in a Table API table from common-model fields, idempotently.

    The correlation id goes into the task's ``correlation_id`` (``correlation_display`` names
    itcrosswalk), and a record carrying it is looked for before anything is created. Reference
    fields (department, people, groups, CIs) are resolved to sys_ids by name first, so a typo
    fails with its name instead of creating a record with an empty reference.
    """

    CORRELATION_DISPLAY = "itcrosswalk"

    def __init__(self, adapter: ServiceNowAdapter, key: str) -> None:
        self.adapter = adapter
        self.key = key
        self.table, self.entity = mapping.WRITE_TABLES[key]

    def __repr__(self) -> str:
        return f"<servicenow writer {self.key} -> {self.table}>"

    # -- requests ----------------------------------------------------------------------------

    def _url(self, table: str, sys_id: str | None = None) -> str:
        path = f"{self.adapter.base}/api/now/table/{table}"
        return f"{path}/{sys_id}" if sys_id else path

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> requests.Response:
        self.adapter.client  # noqa: B018 - builds PySNC's session with the source's auth
        return self.adapter.http.send(
            method,
            url,
            params=params,
            json=body,
            headers={"Content-Type": "application/json"} if body is not None else None,
        )

    def _rows(self, table: str, query: str, fields: list[str]) -> list[dict[str, Any]]:
        params = {
            "sysparm_query": query,
            "sysparm_fields": ",".join(fields),
            # enough to tell a match from an ambiguity, and to re-check on the client a
            # condition the instance ignored (a column it lacks widens the result)
            "sysparm_limit": "10",
            "sysparm_exclude_reference_link": "true",
        }
        response = self._send("GET", self._url(table), params=params)
        if response.status_code == 404 and "no record" in platform_message(response).lower():
            return []  # v1 answers an empty match with 404
        self.adapter.http.raise_for(response, f"table {table}", roles="the role that reads it")
        try:
            rows = response.json()["result"]
        except (ValueError, KeyError):
            raise MalformedResponse(
                f"source {self.adapter.source.name}: table {table} answered with a body that is not a Table API result"
            ) from None
        return rows if isinstance(rows, list) else []

    # -- the payload -------------------------------------------------------------------------

    def _resolve(self, column: str, value: str) -> str:
        table, keys = mapping.REFERENCE_LOOKUPS[column]
        text = value.strip()
        if len(text) == 32 and all(c in "0123456789abcdef" for c in text):
            return text
        if "^" in text:
            raise PlatformError(
                f"{column}: {value!r} holds '^', which an encoded query cannot match"
            )
        query = "^OR".join(f"{key}={text}" for key in keys)
        rows = self._rows(table, query, ["sys_id", *keys])
        # A condition on a column the instance lacks is ignored by the platform: check here.
        rows = [r for r in rows if any(mapping.value(r, k).lower() == text.lower() for k in keys)]
        if not rows:
            raise PlatformError(
                f"source {self.adapter.source.name}: no {table} record matches {value!r} "
                f"(by {', '.join(keys)}) for {column}; check the spelling"
            )
        if len(rows) > 1:
            raise PlatformError(
                f"source {self.adapter.source.name}: {value!r} matches more than one {table} record "
                f"for {column}; give its sys_id instead"
            )
        return mapping.value(rows[0], "sys_id")

    def payload(self, fields: Mapping[str, Any]) -> dict[str, str]:
        """The native body for ``fields``; references resolved (which reads the platform)."""
        columns = self.adapter._write_columns(self.key)
        allowed = set(columns) | ({"priority"} if self.entity == "ticket" else set())
        if self.entity == "work_item":
            allowed |= {"state", "phase", "health"}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            raise PlatformError(
                f"the ServiceNow {self.key} writer cannot set {', '.join(unknown)} "
                f"(it sets: {', '.join(sorted(allowed))})"
            )
        body: dict[str, str] = {}
        for name, raw in fields.items():
            if raw is None or raw == "" or raw == []:
                continue
            if name == "priority":
                priority = parse_priority(raw)
                if priority is None:
                    raise PlatformError(f"priority: {raw!r} is not a priority from 1 to 5")
                if self.entity == "ticket":
                    body["impact"], body["urgency"] = mapping.PRIORITY_TO_IMPACT_URGENCY[priority]
                else:
                    body[columns["priority"]] = str(priority)
                continue
            if name in ("state", "phase", "health") and self.entity == "work_item":
                table_ = {
                    "state": mapping.WORK_STATE_VALUES,
                    "phase": mapping.PHASE_VALUES,
                    "health": mapping.HEALTH_VALUES,
                }[name]
                if str(raw) not in table_:
                    raise PlatformError(
                        f"{name}: {raw!r} is not one of {', '.join(sorted(table_))}"
                    )
                body[columns[name]] = table_[str(raw)]
                continue
            column = columns[name]
            if column in mapping.REFERENCE_LOOKUPS:
                body[column] = self._resolve(column, str(raw))
            else:
                body[column] = _native(raw)
        return body

    # -- the contract ------------------------------------------------------------------------

    def __call__(
        self, fields: Mapping[str, Any], *, correlation_id: str, dry_run: bool = False
    ) -> WriteResult:
        if not correlation_id or "^" in correlation_id or len(correlation_id) > 100:
            raise PlatformError(
                "correlation id: give 1-100 characters without '^' (ServiceNow's correlation_id is a string(100))"
            )
        with self.adapter.http.recording() as made:
            return self._create(fields, correlation_id, dry_run, made)

    def _create(
        self,
        fields: Mapping[str, Any],
        correlation_id: str,
        dry_run: bool,
        made: list[dict[str, Any]],
    ) -> WriteResult:
        found = [
            r
            for r in self._rows(
                self.table,
                f"correlation_id={correlation_id}",
                ["sys_id", "number", "correlation_id"],
            )
            if mapping.value(r, "correlation_id") == correlation_id
        ]
        if found:
            sys_id = mapping.value(found[0], "sys_id")
            return WriteResult(
                action="exists",
                entity=self.entity,
                source_id=sys_id,
                url=mapping.record_url(self.adapter.base, self.table, sys_id),
                requests=made,
            )
        body = self.payload(fields)
        body["correlation_id"] = correlation_id
        body["correlation_display"] = self.CORRELATION_DISPLAY
        if dry_run:
            made.append({"method": "POST", "url": self._url(self.table), "body": body})
            return WriteResult(action="dry_run", entity=self.entity, requests=made)
        response = self._send(
            "POST",
            self._url(self.table),
            params={"sysparm_exclude_reference_link": "true"},
            body=body,
        )
        self.adapter.http.raise_for(response, f"table {self.table}")
        try:
            created = response.json()["result"]
            sys_id = mapping.value(created, "sys_id")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise MalformedResponse(
                f"source {self.adapter.source.name}: the create in {self.table} answered HTTP "
                f"{response.status_code} without the record; look for it by correlation id {correlation_id}"
            ) from None
        ignored = sorted(c for c in body if c not in created)
        if ignored:
            # The Table API drops columns the table lacks without an error.
            log.warning(
                "source %s: %s has no column %s; those values were not stored (map them with "
                "[sources.%s.columns.%s])",
                self.adapter.source.name,
                self.table,
                ", ".join(ignored),
                self.adapter.source.name,
                self.table,
            )
        return WriteResult(
            action="created",
            entity=self.entity,
            source_id=sys_id,
            url=mapping.record_url(self.adapter.base, self.table, sys_id),
            requests=made,
        )


class TicketResolver(TableWriter):
    """Resolves a ticket a writer created: found by its correlation id, set to the table's
    resolved state with the note as close notes and work notes; a ticket already resolved,
    closed or cancelled is left as it is."""

    def __call__(  # type: ignore[override]
        self, correlation_id: str, *, note: str, dry_run: bool = False
    ) -> WriteResult:
        with self.adapter.http.recording() as made:
            return self._resolve_ticket(correlation_id, note, dry_run, made)

    def _resolve_ticket(
        self, correlation_id: str, note: str, dry_run: bool, made: list[dict[str, Any]]
    ) -> WriteResult:
        found = [
            r
            for r in self._rows(
                self.table,
                f"correlation_id={correlation_id}",
                ["sys_id", "number", "state", "correlation_id"],
            )
            if mapping.value(r, "correlation_id") == correlation_id
        ]
        if not found:
            return WriteResult(action="missing", entity=self.entity, requests=made)
        sys_id = mapping.value(found[0], "sys_id")
        url = mapping.record_url(self.adapter.base, self.table, sys_id)
        if mapping.value(found[0], "state") in mapping.DONE_STATES[self.table]:
            return WriteResult("already_resolved", self.entity, sys_id, url, made)
        body = {**mapping.RESOLVE[self.table], "close_notes": note, "work_notes": note}
        if self.table == "incident" and self.adapter.options.close_code:
            body["close_code"] = self.adapter.options.close_code
        if dry_run:
            made.append({"method": "PATCH", "url": self._url(self.table, sys_id), "body": body})
            return WriteResult("dry_run", self.entity, sys_id, url, made)
        response = self._send("PATCH", self._url(self.table, sys_id), body=body)
        self.adapter.http.raise_for(response, f"{self.table} {mapping.value(found[0], 'number')}")
        return WriteResult("resolved", self.entity, sys_id, url, made)


def _native(value: Any) -> str:
    """A stored Table API value: every value a string; date-times in UTC."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return _format(moment)
    if isinstance(value, date):
        return f"{value.isoformat()} 00:00:00"
    if isinstance(value, float):
        return f"{value:.2f}" if value != int(value) else str(int(value))
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def _page_record_class() -> type:
    from pysnc import GlideRecord

    class PageRecord(GlideRecord):  # type: ignore[misc]
        """A GlideRecord that asks for one page at a given offset (GlideRecord derives the
        offset from its iteration position, which a keyset read does not have)."""

        def __init__(
            self,
            client: Any,
            table: str,
            *,
            limit: int,
            offset: int,
            query: str,
            fields: list[str] | None,
        ) -> None:
            super().__init__(client, table, batch_size=limit)
            self._page_offset = offset
            if query:
                self.add_encoded_query(query)
            if fields:
                self.fields = fields

        def _parameters(self) -> dict[str, Any]:
            params = super()._parameters()
            params["sysparm_offset"] = self._page_offset
            # GlideRecord appends its default ORDERBYsys_id; the keyset query already ends with it.
            query = params.get("sysparm_query", "")
            if query.endswith("^ORDERBYsys_id^ORDERBYsys_id"):
                params["sysparm_query"] = query[: -len("^ORDERBYsys_id")]
            return params

    return PageRecord


_PAGE_RECORD: type | None = None


def _PageRecord(client: Any, table: str, **kwargs: Any) -> Any:
    global _PAGE_RECORD
    if _PAGE_RECORD is None:
        _PAGE_RECORD = _page_record_class()
    return _PAGE_RECORD(client, table, **kwargs)
