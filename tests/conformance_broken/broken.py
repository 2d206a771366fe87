"""Helpdesk plugins broken on purpose, one fault each, for the conformance suite to catch.

Each is the guide's Helpdesk plugin with one thing wrong, registered under the ``helpdesk``
platform with the plugin's own emulator. Import this module only with the Helpdesk plugin on
``sys.path`` (``tests.example_plugin.install_project``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from crosswalk_helpdesk import mapping
from crosswalk_helpdesk.adapter import MAX_PAGE, HelpdeskAdapter, Tickets
from crosswalk_helpdesk.sandbox import create_app, sandbox_source

from itcrosswalk.core.adapter import Page, Stream, Window
from itcrosswalk.core.model import Record
from itcrosswalk.hookspecs import hookimpl


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        assert self.http is not None
        # The session is built on first use, from this policy: one that never sleeps.
        self.http.policy = dataclasses.replace(self.http.policy, sleep=lambda seconds: None)


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
