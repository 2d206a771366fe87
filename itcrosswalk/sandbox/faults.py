"""Switchable faults every emulator honours: latency, throttling (with or without
``Retry-After``), 5xx bursts, malformed bodies, and records that change between two pages of
one read; the data faults a platform's records and counts can carry (a count that lies low,
edits within one second, text a store cannot hold); and, on the way out, answers cut off
mid-body and answers that trickle in."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field


@dataclass
class Faults:
    """The faults an emulator injects. Tests flip them on a live emulator; all are thread-safe.

    Attributes:
        latency: seconds added to every response.
        throttle_every: every Nth request answers 429 (0: never).
        throttle_next: the next N requests answer 429.
        retry_after: the ``Retry-After`` seconds sent with a 429.
        server_errors_next: the next N requests answer 503.
        malformed_next: the next N list responses carry a truncated JSON body.
        mutate_between_pages: after each list page served, this many rows that the read
            has not reached yet are updated (their update time becomes now).
        omit_retry_after: 429 answers carry no ``Retry-After`` (the client must back off on
            its own).
        reset_mid_body_next: the next N successful GET answers of the API (the requests
            :meth:`take` counted) are cut off halfway through the body: the full
            ``Content-Length`` is announced, half is sent, the connection closes.
        trickle_next: the next N successful GET answers of the API trickle out at
            ``trickle_rate``.
        trickle_rate: bytes per second of a trickling answer.
        trickled: bytes sent by trickling answers so far (a client that gives up early leaves
            most of the body unsent).
    """

    latency: float = 0.0
    throttle_every: int = 0
    throttle_next: int = 0
    retry_after: float = 1.0
    server_errors_next: int = 0
    malformed_next: int = 0
    mutate_between_pages: int = 0
    omit_retry_after: bool = False
    reset_mid_body_next: int = 0
    trickle_next: int = 0
    trickle_rate: float = 1.0
    trickled: int = 0
    requests: int = 0
    understate_total: int = 0
    """From the ``understate_total_from``-th list answer on, the platform's count of matching
    rows (``X-Total-Count``, ``@odata.count``) says this many fewer than really match."""
    understate_total_from: int = 2
    same_second_edits: bool = False
    """An emulator's ``touch`` leaves the update time as it was: the edit lands in the same
    second as the one before (the platform stores update times to the second)."""
    listings: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _request: threading.local = field(default_factory=threading.local, repr=False, compare=False)

    def take(self, *, listing: bool = False) -> str | None:
        """Count one request and decide its fault: ``throttle``, ``error``, ``malformed`` or None."""
        self._request.counted = True  # the faults on the way out apply to this request too
        with self._lock:
            self.requests += 1
            if self.latency:
                time.sleep(self.latency)
            if self.throttle_next > 0:
                self.throttle_next -= 1
                return "throttle"
            if self.throttle_every and self.requests % self.throttle_every == 0:
                return "throttle"
            if self.server_errors_next > 0:
                self.server_errors_next -= 1
                return "error"
            if listing and self.malformed_next > 0:
                self.malformed_next -= 1
                return "malformed"
            return None

    def count(self, matching: int) -> int:
        """The count a list answer reports for ``matching`` rows (lowered by
        ``understate_total`` from the ``understate_total_from``-th list answer on)."""
        with self._lock:
            self.listings += 1
            if self.understate_total and self.listings >= self.understate_total_from:
                return max(0, matching - self.understate_total)
            return matching

    def reset(self) -> None:
        with self._lock:
            self.latency = 0.0
            self.throttle_every = self.throttle_next = 0
            self.server_errors_next = self.malformed_next = self.mutate_between_pages = 0
            self.retry_after = 1.0
            self.understate_total = 0
            self.understate_total_from = 2
            self.same_second_edits = False
        self._reset_transport_faults()

    # -- faults on the way out, applied by every emulator's WSGI entry ---------------------------

    def _reset_transport_faults(self) -> None:
        with self._lock:
            self.omit_retry_after = False
            self.reset_mid_body_next = self.trickle_next = 0
            self.trickle_rate = 1.0

    def _take_body_fault(self, method: str, status: str) -> str | None:
        # Only requests the emulator counted (its API, not e.g. a login page it also serves);
        # each request is served on its own thread.
        counted = getattr(self._request, "counted", False)
        self._request.counted = False
        if not counted or method != "GET" or not status.startswith("2"):
            return None
        with self._lock:
            if self.reset_mid_body_next > 0:
                self.reset_mid_body_next -= 1
                return "reset"
            if self.trickle_next > 0:
                self.trickle_next -= 1
                return "trickle"
        return None

    def respond(
        self,
        method: str,
        status: str,
        headers: list[tuple[str, str]],
        body: bytes,
        start_response: Callable[..., object],
    ) -> Iterable[bytes]:
        """Start the answer an emulator computed, with the transport faults that are on."""
        if status.startswith("429") and self.omit_retry_after:
            headers = [(k, v) for k, v in headers if k.lower() != "retry-after"]
        if not any(k.lower() == "content-length" for k, _ in headers):
            headers = [("Content-Length", str(len(body))), *headers]
        fault = self._take_body_fault(method, status)
        start_response(status, headers)
        if fault == "reset":
            return self._cut(body)
        if fault == "trickle":
            return self._trickle(body)
        return [body]

    @staticmethod
    def _cut(body: bytes) -> Iterator[bytes]:
        # Ending the iterable short of Content-Length closes the connection mid-body.
        yield body[: len(body) // 2]

    def _trickle(self, body: bytes) -> Iterator[bytes]:
        pause = 1.0 / max(self.trickle_rate, 0.001)
        for i in range(len(body)):
            yield body[i : i + 1]  # a write to a client that left ends this generator
            with self._lock:
                self.trickled += 1
            time.sleep(pause)


LONE_SURROGATE = "\ud83d"
"""Half of an emoji's UTF-16 pair: valid in JSON (``"\\ud83d"``), unencodable as UTF-8."""
NUL = "\x00"
"""Valid in JSON (``"\\u0000"``) and in SQLite text; PostgreSQL text refuses it."""


def unstorable(text: str, kind: str = "surrogate") -> str:
    """``text`` carrying what a store cannot hold as such: a lone surrogate or a NUL."""
    return f"{text} {LONE_SURROGATE if kind == 'surrogate' else NUL}tail"
