"""The shared paginators, driven by the core loop over a stream that serves canned pages."""

from __future__ import annotations

from typing import Any

import pytest

from itcrosswalk.core.adapter import Page, Stream, Window, paginate
from itcrosswalk.core.errors import PagingLoopError
from itcrosswalk.core.paging import ChildOffsetPaginator, NextLinkPaginator, OffsetPaginator

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


class ChildStream(Stream):
    """Children of parents ``a``, ``b``, ``c`` in two parts each, served at ``size`` a page."""

    name = "children"
    entity = "work_item"

    def __init__(self, children: dict[str, int], size: int) -> None:
        self.children = children
        self.size = size
        self.paginator = ChildOffsetPaginator(size, parts=2)
        self.asked: list[tuple[Any, ...]] = []

    def fetch(self, token: Any, window: Window) -> Page:
        parents = sorted(self.children)
        parent = token["parent"]
        following = parents[parents.index(parent) + 1] if parent in parents[:-1] else None
        if parent is None:
            return Page(records=[], total=0, next_hint=parents[0] if parents else None)
        self.asked.append((parent, token["part"], token["offset"]))
        count = self.children[parent]
        rows = [{"id": i} for i in range(count)][token["offset"] : token["offset"] + self.size]
        return Page(records=rows, total=count, requested=self.size, next_hint=following)


def test_child_paging_walks_every_parent_and_part_with_computed_offsets() -> None:
    stream = ChildStream({"a": 5, "b": 0, "c": 2}, size=2)
    read = sum(len(page.records) for page, _t, _a in paginate(stream, WINDOW, prefetch=False))
    assert read == 2 * (5 + 0 + 2)
    assert stream.asked[:4] == [("a", 0, 0), ("a", 0, 2), ("a", 0, 4), ("a", 1, 0)]
    assert ("b", 1, 0) in stream.asked and stream.asked[-1] == ("c", 1, 0)


def test_child_paging_with_no_parents_is_one_empty_page() -> None:
    stream = ChildStream({}, size=2)
    pages = list(paginate(stream, WINDOW, prefetch=False))
    assert len(pages) == 1 and pages[0][2] is None and stream.asked == []
