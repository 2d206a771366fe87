"""The Helpdesk adapter: one stream of tickets over the Helpdesk REST API.

Every request goes through the core's HTTP policy (``build_session``: retries with
``Retry-After``, timeouts, TLS, request counts); every failed response becomes the core's error
tree (``check_response``); the core's sync engine owns the paging loop, the watermark, the
quarantine and the store. What is left here is what only this platform knows: its URL shape,
its filter and its page.
"""

from __future__ import annotations

import math
from typing import Any

import requests
from pydantic import BaseModel, ConfigDict

from itcrosswalk.core.adapter import Adapter, Capabilities, CheckItem, Page, Stream, Window
from itcrosswalk.core.config import SourceConfig
from itcrosswalk.core.errors import (
    AccessDenied,
    AuthError,
    ConfigError,
    ConnectError,
    CrosswalkError,
    MalformedResponse,
    NotFound,
)
from itcrosswalk.core.http import (
    BearerToken,
    HttpPolicy,
    build_session,
    check_response,
    connection_error,
)
from itcrosswalk.core.model import Record
from itcrosswalk.core.paging import OffsetPaginator

from . import mapping

API = "/api/v1"
MAX_PAGE = 100


class HelpdeskOptions(BaseModel):
    """Keys of a ``[sources.NAME]`` table with ``platform = "helpdesk"`` beyond the common ones."""

    model_config = ConfigDict(extra="forbid")

    group: str | None = None
    """Read only this group's tickets (the whole desk when unset)."""


class Tickets(Stream):
    """``GET /api/v1/tickets``: sorted by update time, filtered by ``updated_since``, paged
    with ``offset``/``limit``; each page says the ``total`` matching."""

    name = "tickets"
    entity = "ticket"
    key = "id"
    cursor_field = "updated"

    def __init__(self, adapter: HelpdeskAdapter) -> None:
        self.adapter = adapter
        self.paginator = OffsetPaginator(adapter.page_size)

    def fetch(self, token: Any, window: Window) -> Page:
        size = self.adapter.page_size
        params: dict[str, Any] = {"limit": size, "offset": int(token), "sort": "updated"}
        if window.since is not None and not window.full:
            params["updated_since"] = window.since.isoformat()
        if self.adapter.options.group:
            params["group"] = self.adapter.options.group
        body = self.adapter.get("/tickets", params, what="tickets")
        tickets = body.get("tickets")
        if not isinstance(tickets, list):
            raise MalformedResponse(f"source {self.adapter.source.name}: tickets has no list")
        return Page(records=tickets, total=body.get("total"), requested=size)

    def cursor_value(self, raw: Any) -> Any:
        return mapping.parse_time(raw.get("updated"))

    def map(self, raw: Any) -> Record:
        return mapping.map_ticket(raw, source=self.adapter.source.name, base=self.adapter.base)


STATUS_OF: list[tuple[type[CrosswalkError], str]] = [
    (AuthError, "auth"),
    (AccessDenied, "no_access"),
    (NotFound, "missing"),
    (ConnectError, "unreachable"),
]


class HelpdeskAdapter(Adapter):
    """A Helpdesk site, read with an API token."""

    platform = "helpdesk"

    def __init__(self, source: SourceConfig, secrets: Any) -> None:
        super().__init__(source, secrets)
        if not source.url:
            raise ConfigError(f"sources.{source.name}.url: the Helpdesk site URL is required")
        if source.auth is None or source.auth.type != "bearer":
            raise ConfigError(
                f'sources.{source.name}.auth: Helpdesk takes an API token: auth = {{ type = "bearer", token = "env:HELPDESK_TOKEN" }}'
            )
        self.base = source.url.rstrip("/")
        self.options = HelpdeskOptions.model_validate(source.platform_options())
        self.page_size = min(source.page_size or MAX_PAGE, MAX_PAGE)
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            assert self.source.auth is not None and self.source.auth.type == "bearer"
            self._session = build_session(
                self.source.name,
                base_url=self.base,
                policy=HttpPolicy.from_source(self.source),
                ca_bundle=self.source.ca_bundle,
                auth=BearerToken(self.secrets(self.source.auth.token, "auth.token")),
            )
        return self._session

    @property
    def http_session(self) -> Any:
        return self._session

    def get(self, path: str, params: dict[str, Any], *, what: str) -> dict[str, Any]:
        """One GET of the API, its JSON body, or the core's error for what went wrong."""
        url = f"{self.base}{API}{path}"
        try:
            response = self.session.get(url, params=params)
        except requests.RequestException as exc:
            raise connection_error(
                exc, source=self.source.name, url=url, ca_bundle=self.source.ca_bundle
            ) from None
        check_response(
            response,
            source=self.source.name,
            what=what,
            credential_hint="check the API token that the source's auth.token points to",
        )
        try:
            body = response.json()
        except ValueError:
            raise MalformedResponse(
                f"source {self.source.name}: {what} answered with a body that is not JSON"
            ) from None
        if not isinstance(body, dict):
            raise MalformedResponse(f"source {self.source.name}: {what} is not a JSON object")
        return body

    def check(self) -> list[CheckItem]:
        try:
            self.get("/me", {}, what="the signed-in user")
            total = self.get("/tickets", {"limit": 1}, what="tickets").get("total") or 0
        except CrosswalkError as exc:
            status = next((s for kind, s in STATUS_OF if isinstance(exc, kind)), "error")
            return [CheckItem("tickets", False, str(exc), status=status)]
        pages = max(1, math.ceil(total / self.page_size))
        return [
            CheckItem("tickets", True, f"{total} tickets", estimate_requests=pages, status="ok")
        ]

    def streams(self) -> list[Stream]:
        return [Tickets(self)]

    def capabilities(self) -> Capabilities:
        return Capabilities(
            entities={
                "ticket": [
                    "number",
                    "title",
                    "priority",
                    "state",
                    "opened_at",
                    "resolved_at",
                    "assignment_group",
                    "requester",
                    "department",
                ]
            },
            auth_types=["bearer"],
            permissions=["tickets: read"],
        )

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
