"""The skeleton every platform emulator stands on: a WSGI entry that logs each request (tests
read the log to see what a client really sent) and answers from the emulator's own dispatch,
and the plumbing each emulator would otherwise write again.

An emulator subclasses :class:`Emulator`, sets ``requests``, ``lock`` and ``faults`` and
implements :meth:`Emulator.dispatch`, in the order every platform answers::

    def dispatch(self, environ, method, path, query):
        if self.entra.handles(path):                      # a sign-in served before faults
            return self.entra.serve(environ, method, path)
        fault, answer = self.fault(listing=<is this a list read?>)
        if answer:                                        # 429 / 503 in the platform's words
            return answer                                 # (override throttled / unavailable)
        who = <check credentials(environ) against the platform's users>
        ...route...
        return self.cut(answer) if fault == "malformed" else answer

What it offers:

- answers: :meth:`json` (with the class's ``content_type``), :meth:`status` (``"429 Too Many
  Requests"`` from ``429``);
- requests: :meth:`body`, :meth:`json_body`, :meth:`form`, :meth:`params`, :meth:`credentials`
  (the ``Authorization`` header parsed: scheme, user, secret), :meth:`basic_user`;
- faults: :meth:`fault` (takes this request's fault from :class:`~.faults.Faults` and answers a
  throttle or an outage with :meth:`throttled` / :meth:`unavailable`, which a platform
  overrides with its own body), :meth:`cut` (a malformed, half-sent body);
- paging: :meth:`page_served`, which every list read calls after a page: it edits the rows the
  read has not reached yet (``faults.mutate_between_pages``) and runs the hooks tests add with
  :meth:`after_page` (a public switch, so no test patches an emulator's private paging code);
- deletions: :meth:`forget`, the switch the conformance suite uses to delete a record by the id
  the platform gives it (each emulator implements it with its own ``delete``), and :meth:`has`,
  whether a record is still there.

The faults on the way out (cut bodies, trickles, no ``Retry-After``) are applied by the WSGI
entry itself.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

from .faults import Faults

Response = tuple[str, list[tuple[str, str]], bytes]
"""A status line, headers, and the body."""
Environ = dict[str, Any]
"""A WSGI request's environ."""


@dataclass(frozen=True)
class Credentials:
    """What a request's ``Authorization`` header carries: ``scheme`` (lower case), and for
    ``basic`` the ``user`` and ``secret``; for any other scheme ``secret`` is the credential."""

    scheme: str = ""
    user: str = ""
    secret: str = ""


class Emulator:
    """Base of the emulators. Subclasses set ``requests``, ``lock`` and ``faults`` and implement
    :meth:`dispatch`; ``requests`` records ``(method, path?query)`` of everything served."""

    requests: list[tuple[str, str]]
    lock: threading.RLock
    faults: Faults
    content_type = "application/json;charset=UTF-8"
    """The ``Content-Type`` of :meth:`json` answers."""
    host: str | None = None
    """The host the last request came to, for emulators whose answers name it: in a
    :meth:`json` answer, ``https://{host}`` becomes ``https://<host>``."""

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

    # -- answers ------------------------------------------------------------------------------

    @staticmethod
    def status(code: int) -> str:
        """The status line for ``code``: ``"404 Not Found"``."""
        try:
            return f"{code} {HTTPStatus(code).phrase}"
        except ValueError:
            return f"{code} Error"

    def json(
        self, status: str | int, payload: Any, extra: list[tuple[str, str]] | None = None
    ) -> Response:
        """A JSON answer with the emulator's ``content_type`` and ``extra`` headers."""
        line = self.status(status) if isinstance(status, int) else status
        body = json.dumps(payload).encode()
        if self.host:
            body = body.replace(b"https://{host}", f"https://{self.host}".encode())
        return line, [("Content-Type", self.content_type), *(extra or [])], body

    # -- requests -----------------------------------------------------------------------------

    @staticmethod
    def body(environ: dict[str, Any]) -> bytes:
        """The request body (``Content-Length`` bytes; none when it is absent or not a number)."""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        return bytes(environ["wsgi.input"].read(length)) if length > 0 else b""

    @classmethod
    def json_body(cls, environ: dict[str, Any], empty: Any = None) -> Any:
        """The request body as JSON, ``empty`` when there is none; raises ``ValueError`` when it
        is not JSON."""
        raw = cls.body(environ)
        return json.loads(raw) if raw else empty

    @classmethod
    def form(cls, environ: dict[str, Any]) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body (the last value of each key)."""
        return cls.params(cls.body(environ).decode(errors="replace"))

    @staticmethod
    def params(query: str) -> dict[str, str]:
        """The query string's parameters, the last value of each (blank values kept)."""
        return {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}

    @staticmethod
    def credentials(environ: dict[str, Any]) -> Credentials:
        """The ``Authorization`` header, parsed (an undecodable basic one gives no user)."""
        scheme, _, credential = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        scheme, credential = scheme.lower(), credential.strip()
        if scheme != "basic":
            return Credentials(scheme, "", credential)
        try:
            user, _, secret = base64.b64decode(credential).decode().partition(":")
        except ValueError:
            return Credentials(scheme)
        return Credentials(scheme, user, secret)

    @classmethod
    def basic_user(cls, environ: dict[str, Any], users: dict[str, str]) -> str | None:
        """The user whose basic credentials the request carries, if ``users`` knows them."""
        given = cls.credentials(environ)
        if given.scheme != "basic" or not given.secret:
            return None
        return given.user if users.get(given.user) == given.secret else None

    # -- faults -------------------------------------------------------------------------------

    def fault(self, *, listing: bool) -> tuple[str | None, Response | None]:
        """Count this request and take its fault; a throttle or an outage is answered at once
        (:meth:`throttled`, :meth:`unavailable`). ``listing``: a list read (malformed bodies
        are served only to those)."""
        taken = self.faults.take(listing=listing)
        if taken == "throttle":
            return taken, self.throttled(int(self.faults.retry_after))
        if taken == "error":
            return taken, self.unavailable()
        return taken, None

    def throttled(self, wait: int) -> Response:
        """The platform's 429, carrying ``Retry-After: wait``."""
        return self.json(429, {"error": "Too many requests"}, [("Retry-After", str(wait))])

    def unavailable(self) -> Response:
        """The platform's 503."""
        return self.json(503, {"error": "Service unavailable"})

    @staticmethod
    def cut(answer: Response) -> Response:
        """The answer with its body cut in half (a malformed body)."""
        status, headers, body = answer
        return status, headers, body[: max(1, len(body) // 2)]

    # -- paging -------------------------------------------------------------------------------

    def after_page(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` after every list page served (e.g. revoke tokens mid-read)."""
        with self.lock:
            self.__dict__.setdefault("_page_hooks", []).append(hook)

    def page_served(self, ahead: Iterable[Any], edit: Callable[[Any], None]) -> int:
        """Call after serving a list page: ``edit`` (give a new update time) the first
        ``faults.mutate_between_pages`` rows of ``ahead`` (the rows the read has not reached
        yet), then run the :meth:`after_page` hooks. Returns how many rows were edited."""
        edited = 0
        wanted = self.faults.mutate_between_pages
        if wanted:
            for row in ahead:
                if edited >= wanted:
                    break
                edit(row)
                edited += 1
        for hook in list(self.__dict__.get("_page_hooks", ())):
            hook()
        return edited

    # -- deletions ----------------------------------------------------------------------------

    def forget(self, native_id: str) -> bool:
        """Delete the record the platform knows by ``native_id`` (as the platform's own
        deletion would); False when no record has that id. Emulators implement it with their
        ``delete``; the conformance suite deletes through it."""
        raise NotImplementedError(f"{type(self).__name__} has no forget() switch")

    def has(self, native_id: str) -> bool:
        """Whether the platform still holds a record it knows by ``native_id`` (the truth a
        check compares a store with, whatever the adapter reads)."""
        raise NotImplementedError(f"{type(self).__name__} has no has() switch")
