"""The paging loop's two halves: a stream that splits its fetch into a transport (the request,
on the prefetch thread) and a decode (on the caller's thread, when it takes the page) holds one
decoded page at a time, and keeps every guarantee of the loop: pages in order, a body that does
not parse asked for again, a paging cycle refused; a stream that does not split works as before."""

from __future__ import annotations

import gc
import json
import threading
import weakref
from typing import Any

import pytest

from itcrosswalk.core.adapter import Page, Stream, Window, paginate
from itcrosswalk.core.errors import MalformedResponse, PagingLoopError
from itcrosswalk.core.paging import OffsetPaginator

WINDOW = Window(since=None, until=None)


class Records(list[dict[str, Any]]):
    """A page's records that a weak reference can follow (to see when a page is let go)."""


class SplitStream(Stream):
    """Pages of ``size`` rows as JSON bytes; ``bad`` maps an offset to how many of its bodies
    come back unparsable before a good one."""

    name = "things"
    entity = "work_item"

    def __init__(self, rows: int, size: int, bad: dict[int, int] | None = None) -> None:
        self.rows, self.size = rows, size
        self.paginator = OffsetPaginator(size)
        self.bad = dict(bad or {})
        self.sent: list[tuple[int, str]] = []  # (offset, thread) of each transport
        self.decoded: list[tuple[int, str]] = []
        self.alive: list[weakref.ref[Records]] = []  # every decoded page's records

    def transport(self, token: Any, window: Window) -> Any:
        self.sent.append((token, threading.current_thread().name))
        if self.bad.get(token):
            self.bad[token] -= 1
            return b"<html>not JSON"
        ids = range(token, min(token + self.size, self.rows))
        return json.dumps([{"id": i} for i in ids]).encode()

    def decode(self, fetched: Any, token: Any, window: Window) -> Page:
        self.decoded.append((token, threading.current_thread().name))
        # Every page decoded before this one has been let go by then.
        assert [ref() for ref in self.alive if ref() is not None] == []
        try:
            records = Records(json.loads(fetched))
        except ValueError:
            raise MalformedResponse("not a page") from None
        self.alive.append(weakref.ref(records))
        return Page(records=records, requested=self.size)

    def fetch(self, token: Any, window: Window) -> Page:
        return self.decode(self.transport(token, window), token, window)


def read(stream: Stream, **kwargs: Any) -> list[int]:
    ids: list[int] = []
    for page, _used, _after in paginate(stream, WINDOW, **kwargs):
        ids.extend(r["id"] for r in page.records)
        del page  # the caller lets go of the page before asking for the next
        gc.collect()
    return ids


def test_prefetched_pages_are_requested_on_the_worker_and_decoded_one_at_a_time() -> None:
    stream = SplitStream(rows=45, size=10)
    assert read(stream) == list(range(45))
    caller = threading.current_thread().name
    assert [t for t, _ in stream.sent] == [0, 10, 20, 30, 40]
    assert all(name != caller for _, name in stream.sent), "requests go on the prefetch thread"
    assert stream.decoded == [(t, caller) for t in (0, 10, 20, 30, 40)], "decoded in order"


def test_a_body_that_does_not_parse_when_decoded_is_requested_again() -> None:
    stream = SplitStream(rows=25, size=10, bad={10: 2})
    assert read(stream, malformed_retries=2) == list(range(25))
    assert [t for t, _ in stream.sent] == [0, 10, 10, 10, 20], "the page itself, twice more"


def test_a_body_that_never_parses_fails_the_read_after_the_retries() -> None:
    stream = SplitStream(rows=25, size=10, bad={10: 3})
    with pytest.raises(MalformedResponse):
        read(stream, malformed_retries=2)
    assert [t for t, _ in stream.sent].count(10) == 3


@pytest.mark.parametrize("prefetch", [True, False])
def test_a_stream_that_does_not_split_still_fetches_and_retries(prefetch: bool) -> None:
    class Whole(Stream):
        name = "things"
        entity = "work_item"
        paginator = OffsetPaginator(10)

        def __init__(self) -> None:
            self.asked: list[int] = []

        def fetch(self, token: Any, window: Window) -> Page:
            self.asked.append(token)
            if self.asked.count(token) == 1 and token == 10:
                raise MalformedResponse("not a page")
            ids = range(token, min(token + 10, 25))
            return Page(records=[{"id": i} for i in ids], requested=10)

    stream = Whole()
    assert read(stream, prefetch=prefetch) == list(range(25))
    assert stream.asked == [0, 10, 10, 20]


def test_a_split_stream_that_pages_in_a_cycle_is_refused() -> None:
    class Back:
        def first(self, window: Window) -> Any:
            return 0

        def next(self, token: Any, page: Page) -> Any:
            return 10 if token == 0 else 0  # the page after the second is the first again

    stream = SplitStream(rows=30, size=10)
    stream.paginator = Back()
    with pytest.raises(PagingLoopError, match="paged in a cycle"):
        read(stream)
    assert [t for t, _ in stream.sent] == [0, 10]
