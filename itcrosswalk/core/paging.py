"""The paginators every platform's streams share: offset, next-link and their stop rules.

A paginator owns its token's shape and decides from a response whether there is a next
page; ``core.adapter.paginate`` drives it, detects cycles and caps runaway reads. ServiceNow's
keyset paginator lives with its adapter because its query language is the platform's own.
"""

from __future__ import annotations

from typing import Any

from .adapter import Page, Window


class OffsetPaginator:
    """``$skip``/``$top`` style paging where the platform returns no link and no count.

    The token is the offset of the page to ask for. A page shorter than the one asked for is
    the end (Jira Align's bare arrays); where a page carries ``total``, the end is the count
    instead, since some platforms apply the limit before access checks and return short pages
    mid-way.
    """

    def __init__(self, page_size: int) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.page_size = page_size

    def first(self, window: Window) -> Any:
        return 0

    def next(self, token: Any, page: Page) -> Any | None:
        asked = page.requested or self.page_size
        offset = int(token) + asked
        if page.total is not None:
            return offset if offset < page.total else None
        return offset if len(page.records) >= asked else None


class NextLinkPaginator:
    """Server-driven paging that follows the link a response names (OData ``@odata.nextLink``
    and ``__next``, an HTTP ``Link: rel="next"``); offsets are never computed.

    The first token is ``{"url": None}`` (the stream builds its first request); each next one
    is ``{"url": <the link>}`` taken from ``page.next_hint``, which the stream fills from the
    response. No link is the end.
    """

    def first(self, window: Window) -> Any:
        return {"url": None}

    def next(self, token: Any, page: Page) -> Any | None:
        link = page.next_hint
        if not link:
            return None
        if not isinstance(link, str):
            raise TypeError("NextLinkPaginator expects page.next_hint to be the next URL")
        return {"url": link}


class ChildOffsetPaginator:
    """Offset paging through a child collection of each parent in turn (``projects/{id}/tasks``),
    and, per parent, through each of its ``parts`` (a plan type, a sub-collection).

    The token is ``{"parent", "part", "offset"}``. The stream knows which parents this read
    covers (the changed ones, or all on a sweep) and names the parent after the current one in
    ``page.next_hint``; the first token has no parent, and its page (no request) names the first.
    Within one parent and part the end is the page's ``total`` (else a short page), as for
    :class:`OffsetPaginator`; the offset is always computed, never taken from a link.
    """

    def __init__(self, page_size: int, parts: int = 1) -> None:
        if page_size < 1 or parts < 1:
            raise ValueError("page_size and parts must be at least 1")
        self.page_size = page_size
        self.parts = parts

    def first(self, window: Window) -> Any:
        return {"parent": None, "part": 0, "offset": 0}

    def next(self, token: Any, page: Page) -> Any | None:
        if token.get("parent") is not None:
            asked = page.requested or self.page_size
            offset = int(token["offset"]) + asked
            more = offset < page.total if page.total is not None else len(page.records) >= asked
            if more:
                return {**token, "offset": offset}
            if int(token["part"]) + 1 < self.parts:
                return {**token, "part": int(token["part"]) + 1, "offset": 0}
        following = page.next_hint
        return None if following is None else {"parent": following, "part": 0, "offset": 0}


class NextTokenPaginator:
    """Server-driven paging on an opaque token the response carries (Jira's
    ``nextPageToken``, Graph's ``$skiptoken`` when read alone): the first token is
    ``{"token": None}``, each next one ``{"token": <page.next_hint>}``; no token is the end.

    Such tokens are bound to one query and expire, so they are not kept to resume a killed
    read (``resumable = False``): the read starts its window again and the watermark holds.
    """

    resumable = False

    def first(self, window: Window) -> Any:
        return {"token": None}

    def next(self, token: Any, page: Page) -> Any | None:
        hint = page.next_hint
        if not hint:
            return None
        if not isinstance(hint, str):
            raise TypeError("NextTokenPaginator expects page.next_hint to be the next token")
        return {"token": hint}
