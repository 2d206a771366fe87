"""Switchable faults every emulator honours: latency, throttling, 5xx bursts, malformed bodies,
and records that change between two pages of one read; and the data faults a platform's
records and counts can carry (a count that lies low, edits within one second, text a store
cannot hold)."""

from __future__ import annotations

import threading
import time
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
    """

    latency: float = 0.0
    throttle_every: int = 0
    throttle_next: int = 0
    retry_after: float = 1.0
    server_errors_next: int = 0
    malformed_next: int = 0
    mutate_between_pages: int = 0
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

    def take(self, *, listing: bool = False) -> str | None:
        """Count one request and decide its fault: ``throttle``, ``error``, ``malformed`` or None."""
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


LONE_SURROGATE = "\ud83d"
"""Half of an emoji's UTF-16 pair: valid in JSON (``"\\ud83d"``), unencodable as UTF-8."""
NUL = "\x00"
"""Valid in JSON (``"\\u0000"``) and in SQLite text; PostgreSQL text refuses it."""


def unstorable(text: str, kind: str = "surrogate") -> str:
    """``text`` carrying what a store cannot hold as such: a lone surrogate or a NUL."""
    return f"{text} {LONE_SURROGATE if kind == 'surrogate' else NUL}tail"
