"""Switchable faults every emulator honours: latency, throttling, 5xx bursts, malformed bodies,
and records that change between two pages of one read."""

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

    def reset(self) -> None:
        with self._lock:
            self.latency = 0.0
            self.throttle_every = self.throttle_next = 0
            self.server_errors_next = self.malformed_next = self.mutate_between_pages = 0
            self.retry_after = 1.0
