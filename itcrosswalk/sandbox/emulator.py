"""What every platform emulator shares: a WSGI entry that logs each request (tests read the
log to see what a client really sent) and answers from the emulator's own dispatch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from .faults import Faults

Response = tuple[str, list[tuple[str, str]], bytes]
"""A status line, headers, and the body."""


class Emulator:
    """Base of the emulators. Subclasses set ``requests``, ``lock`` and ``faults`` and implement
    :meth:`dispatch`; ``requests`` records ``(method, path?query)`` of everything served. The
    faults on the way out (cut bodies, trickles, no ``Retry-After``) are applied here."""

    requests: list[tuple[str, str]]
    lock: threading.RLock
    faults: Faults

    def dispatch(self, environ: dict[str, Any], method: str, path: str, query: str) -> Response:
        raise NotImplementedError

    def logged_query(self, query: str) -> str:
        """The query string as the request log keeps it."""
        return query

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query = environ.get("QUERY_STRING", "")
        with self.lock:
            self.requests.append((method, path + ("?" + self.logged_query(query) if query else "")))
        status, headers, body = self.dispatch(environ, method, path, query)
        headers = [("Content-Length", str(len(body))), *headers]
        faults = getattr(self, "faults", None)
        if isinstance(faults, Faults):
            return faults.respond(method, status, headers, body, start_response)
        start_response(status, headers)
        return [body]
