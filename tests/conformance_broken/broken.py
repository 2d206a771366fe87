"""Helpdesk plugins broken on purpose, one fault each, for the conformance suite to catch.

Each is the guide's Helpdesk plugin with one thing wrong, registered under the ``helpdesk``
platform with the plugin's own emulator. Import this module only with the Helpdesk plugin on
``sys.path`` (``tests.example_plugin.install_project``).
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any, ClassVar

import requests
from crosswalk_helpdesk import mapping
from crosswalk_helpdesk.adapter import MAX_PAGE, HelpdeskAdapter, Tickets
from crosswalk_helpdesk.sandbox import HelpdeskEmulator, sandbox_source

from itcrosswalk.core.adapter import Page, Stream, Window
from itcrosswalk.core.http import BearerToken, HttpPolicy, build_session
from itcrosswalk.core.model import Record
from itcrosswalk.hookspecs import hookimpl
from itcrosswalk.sandbox.emulator import Response
from itcrosswalk.sandbox.faults import Faults
from itcrosswalk.sandbox.world import World


class Helpdesk(HelpdeskEmulator):
    """The Helpdesk emulator with two more of the platform's features the broken plugins need:
    ``sort=-updated`` (newest first, as the API offers it) and a deleted ticket (``forget``)."""

    def forget(self, native_id: str) -> bool:
        with self.lock:
            kept = [t for t in self.tickets if str(t["id"]) != native_id]
            found, self.tickets = len(kept) < len(self.tickets), kept
        return found

    def has(self, native_id: str) -> bool:
        with self.lock:
            return any(str(t["id"]) == native_id for t in self.tickets)

    def _list(self, params: dict[str, str]) -> Response:
        if params.get("sort") != "-updated":
            return super()._list(params)
        limit, offset = min(int(params.get("limit", "25")), 100), int(params.get("offset", "0"))
        with self.lock:
            rows = sorted(self.tickets, key=lambda row: (row["updated"], row["id"]), reverse=True)
            body = {"tickets": [dict(r) for r in rows[offset : offset + limit]], "total": len(rows)}
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.page_served(rows[offset + limit :], lambda row: row.update(updated=now))
        return self._json("200 OK", body)


def create_app(world: World, faults: Faults | None = None, **kwargs: Any) -> Helpdesk:
    return Helpdesk(world, faults, **kwargs)


class IgnoresTheWatermark(HelpdeskAdapter):
    """Never sends ``updated_since``: every sync re-reads the whole desk. It exposes no
    ``http_session``, so it reports no request counts of its own."""

    class Stream(Tickets):
        def fetch(self, token: Any, window: Window) -> Page:
            return super().fetch(token, dataclasses.replace(window, since=None))

    @property
    def http_session(self) -> Any:
        return None

    def streams(self) -> list[Stream]:
        return [self.Stream(self)]


class StopsOnAShortPage(HelpdeskAdapter):
    """Drops the page's ``total`` and takes any page shorter than the platform's largest page
    for the last one."""

    class Stream(Tickets):
        def fetch(self, token: Any, window: Window) -> Page:
            page = super().fetch(token, window)
            return Page(records=page.records, total=None, requested=MAX_PAGE)

    def streams(self) -> list[Stream]:
        return [self.Stream(self)]


class SkipsRetryAfter(HelpdeskAdapter):
    """Retries a 429 at once, whatever its ``Retry-After`` says."""

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            assert self.source.auth is not None and self.source.auth.type == "bearer"
            policy = dataclasses.replace(
                HttpPolicy.from_source(self.source), sleep=lambda seconds: None
            )
            self._session = build_session(
                self.source.name,
                base_url=self.base,
                policy=policy,
                ca_bundle=self.source.ca_bundle,
                auth=BearerToken(self.secrets(self.source.auth.token, "auth.token")),
            )
        return self._session


class WritesTheSecretIntoExtra(HelpdeskAdapter):
    """Keeps the API token in each ticket's ``extra`` "for debugging"."""

    class Stream(Tickets):
        def map(self, raw: Any) -> Record:
            record = mapping.map_ticket(
                raw, source=self.adapter.source.name, base=self.adapter.base
            )
            assert self.adapter.source.auth is not None
            record.extra["token"] = self.adapter.secrets(self.adapter.source.auth.token, "token")
            return record

    def streams(self) -> list[Stream]:
        return [self.Stream(self)]


class ReadsNewestFirst(HelpdeskAdapter):
    """Pages the desk newest first by offset: a ticket edited while the read is under way
    jumps to the front, behind the offset, and the one at the page boundary is read twice."""

    class Stream(Tickets):
        def fetch(self, token: Any, window: Window) -> Page:
            size = self.adapter.page_size
            params = {"limit": size, "offset": int(token), "sort": "-updated"}
            body = self.adapter.get("/tickets", params, what="tickets")
            return Page(records=body["tickets"], total=body.get("total"), requested=size)

    def streams(self) -> list[Stream]:
        return [self.Stream(self)]


class KeepsItsOwnWatermark(HelpdeskAdapter):
    """Remembers the newest update it has read (its own state, beside the engine's) and asks
    only for what is newer, full sync or not: a "full" read sees almost nothing, and the full
    sync tombstones every ticket it did not re-read."""

    newest: ClassVar[dict[str, Any]] = {}

    class Stream(Tickets):
        def fetch(self, token: Any, window: Window) -> Page:
            remembered = KeepsItsOwnWatermark.newest.get("kept")
            if remembered is not None:
                window = dataclasses.replace(window, since=remembered, full=False)
            page = super().fetch(token, window)
            stamps = [self.cursor_value(raw) for raw in page.records]
            reading = KeepsItsOwnWatermark.newest
            reading["read"] = max([s for s in [reading.get("read"), *stamps] if s], default=None)
            if int(token) + len(page.records) >= (page.total or 0):  # the read's last page
                reading["kept"] = reading["read"]
            return page

    def streams(self) -> list[Stream]:
        return [self.Stream(self)]


def plugin(adapter: type[HelpdeskAdapter]) -> object:
    """A plugin registering ``adapter`` as the ``helpdesk`` platform, with its emulator."""

    class Plugin:
        @staticmethod
        @hookimpl
        def register_platforms(register: Any) -> None:
            register("helpdesk", adapter, mapping=mapping.describe())

        @staticmethod
        @hookimpl
        def register_sandboxes(register: Any) -> None:
            register("helpdesk", create_app, source=sandbox_source)

    return Plugin()
