"""The Helpdesk adapter: one stream of tickets over the Helpdesk REST API.

The core's client (``itcrosswalk.core.client``) does the plumbing from what ``SPEC`` declares:
the session under the HTTP policy (retries with ``Retry-After``, timeouts, TLS, request counts),
the auth, the credential hint and the error table; ``Adapter.check()`` runs the probes with the
same statuses as every platform's. The core's sync engine owns the paging loop, the watermark,
the quarantine and the store. What is left here is what only this platform knows: its URL
shape, its filter and its page.
"""

from __future__ import annotations

import math
from typing import Any

from itcrosswalk.core.adapter import (
    Adapter,
    Capabilities,
    Page,
    PlatformOptions,
    Probe,
    Stream,
    Window,
)
from itcrosswalk.core.client import PlatformSpec, bearer
from itcrosswalk.core.config import SourceConfig
from itcrosswalk.core.errors import MalformedResponse
from itcrosswalk.core.model import Record
from itcrosswalk.core.paging import OffsetPaginator

from . import mapping

API = "/api/v1"
MAX_PAGE = 100

SPEC = PlatformSpec(
    title="Helpdesk",
    url_example="https://helpdesk.city.gov",
    auth={"bearer": bearer},
    auth_example='auth = { type = "bearer", token = "env:HELPDESK_TOKEN" }',
    hints={"bearer": "check the API token that `{token}` points to"},
)


class HelpdeskOptions(PlatformOptions):
    """Keys of a ``[sources.NAME]`` table with ``platform = "helpdesk"`` beyond the common ones."""

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


class HelpdeskAdapter(Adapter, platform="helpdesk", options=HelpdeskOptions, spec=SPEC):
    """A Helpdesk site, read with an API token."""

    def __init__(self, source: SourceConfig, secrets: Any, **kwargs: Any) -> None:
        super().__init__(source, secrets, **kwargs)
        self.page_size = min(source.page_size or MAX_PAGE, MAX_PAGE)

    def get(self, path: str, params: dict[str, Any], *, what: str) -> dict[str, Any]:
        """One GET of the API, its JSON body, or the core's error for what went wrong."""
        body = self.http.get(f"{self.base}{API}{path}", params, what=what)
        if not isinstance(body, dict):
            raise MalformedResponse(f"source {self.source.name}: {what} is not a JSON object")
        return body

    def preflight(self) -> None:
        self.get("/me", {}, what="the signed-in user")  # the token, before any stream

    def probes(self) -> list[Probe]:
        return [Probe("tickets", self._tickets)]

    def _tickets(self) -> tuple[str, int]:
        total = self.get("/tickets", {"limit": 1}, what="tickets").get("total") or 0
        return f"{total} tickets", max(1, math.ceil(total / self.page_size))

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
