"""The shared paginators, driven by the core loop over a stream that serves canned pages."""

from __future__ import annotations

from typing import Any

import pytest

from itcrosswalk.core.adapter import Page, Stream, Window, paginate
from itcrosswalk.core.errors import PagingLoopError
from itcrosswalk.core.paging import NextLinkPaginator, OffsetPaginator

WINDOW = Window(since=None, until=None)


class OffsetStream(Stream):
    name = "things"
    entity = "work_item"

    def __init__(self, rows: int, page_size: int, *, total: bool = False) -> None:
        self.rows = [{"id": i} for i in range(rows)]
        self.page_size = page_size
        self.with_total = total
        self.paginator = OffsetPaginator(page_size)
        self.asked: list[int] = []

    def fetch(self, token: Any, window: Window) -> Page:
        self.asked.append(token)
        records = self.rows[token : token + self.page_size]
        return Page(
            records=records,
            requested=self.page_size,
            total=len(self.rows) if self.with_total else None,
        )


@pytest.mark.parametrize(
    ("rows", "size", "requests"), [(0, 10, 1), (7, 10, 1), (10, 10, 2), (25, 10, 3), (30, 10, 4)]
)
def test_offset_paging_ends_on_a_short_page(rows: int, size: int, requests: int) -> None:
    stream = OffsetStream(rows, size)
    read = [
        r["id"] for page, _, _ in paginate(stream, WINDOW, prefetch=False) for r in page.records
    ]
    assert read == list(range(rows))
    assert stream.asked == [i * size for i in range(requests)]


def test_offset_paging_with_a_count_does_not_stop_on_a_short_page() -> None:
    stream = OffsetStream(25, 10, total=True)
    original = stream.fetch

    def fetch(token: Any, window: Window) -> Page:
        page = original(token, window)
        if token == 0:  # rows hidden by access rules: a short page mid-way
            page.records = page.records[:3]
        return page

    stream.fetch = fetch  # type: ignore[method-assign]
    pages = list(paginate(stream, WINDOW, prefetch=False))
    assert [token for _, token, _ in pages] == [0, 10, 20]
    assert pages[-1][2] is None


def test_offset_paginator_refuses_a_zero_page_size() -> None:
    with pytest.raises(ValueError):
        OffsetPaginator(0)


class LinkStream(Stream):
    name = "links"
    entity = "device"

    def __init__(self, links: dict[str | None, str | None]) -> None:
        self.links = links
        self.paginator = NextLinkPaginator()
        self.asked: list[str | None] = []

    def fetch(self, token: Any, window: Window) -> Page:
        self.asked.append(token["url"])
        return Page(records=[{"id": token["url"]}], next_hint=self.links[token["url"]])


def test_next_link_paging_follows_links_until_none() -> None:
    stream = LinkStream({None: "https://x/p2", "https://x/p2": "https://x/p3", "https://x/p3": ""})
    list(paginate(stream, WINDOW))
    assert stream.asked == [None, "https://x/p2", "https://x/p3"]


def test_next_link_that_comes_back_is_a_cycle_not_a_loop() -> None:
    stream = LinkStream(
        {None: "https://x/a", "https://x/a": "https://x/b", "https://x/b": "https://x/a"}
    )
    with pytest.raises(PagingLoopError, match="cycle"):
        list(paginate(stream, WINDOW, prefetch=False))
