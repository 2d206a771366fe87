"""One HTTP policy for every adapter: timeouts, bounded retries, TLS, and errors in plain words.

Every adapter's ``requests`` session comes from :func:`build_session`. Its transport,
:class:`PolicyAdapter`, applies the policy on each send, so it holds whatever path the
request took (``Session.request``, or ``Session.send`` as PySNC does):

- the configured CA bundle, even when ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` are set
  (requests lets them override ``Session.verify``, psf/requests#3829); without one, the CA
  variables every adapter honours (:data:`CA_ENVIRONMENT`);
- connect and read timeouts when the caller gave none, and a deadline for the whole request,
  body included, that an answer trickling in byte by byte cannot stretch;
- retries on 429/502/503/504, dropped connections and answers cut off mid-body, honouring
  ``Retry-After`` (else the policy's backoff, from the platform's own guidance after a 429),
  with the total time slept for one request bounded by ``max_wait``;
- plain ``http://`` only to loopback addresses.

:func:`check_response` and :func:`connection_error` turn what went wrong into the error
tree, with the platform's own message and what to do next, secrets redacted.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import logging
import os
import random
import re
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import takewhile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pydantic_core
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.exceptions import SSLError as Urllib3SSLError
from urllib3.exceptions import TimeoutError as Urllib3TimeoutError
from urllib3.util.retry import Retry

from .. import __version__
from .collector import collector_paused
from .errors import (
    AccessDenied,
    AuthError,
    ConfigError,
    ConnectError,
    CrosswalkError,
    NotFound,
    PlatformError,
    RetriableError,
)
from .secrets import redact

if TYPE_CHECKING:
    from .config import SourceConfig

log = logging.getLogger("itcrosswalk.http")

USER_AGENT = f"itcrosswalk/{__version__}"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# The server refused these before doing anything, so even a POST may be sent again.
REFUSED_STATUSES = frozenset({429, 503})
MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class HttpPolicy:
    """Timeouts and retry budget for one source's requests.

    Attributes:
        connect_timeout: seconds to establish a connection.
        read_timeout: seconds to wait for each read of the answer.
        deadline: seconds one request may take from sending to the last byte of the answer,
            over all its attempts, however steadily the bytes trickle in; the waits between
            attempts are ``max_wait``'s, not counted here (None: five read timeouts, at least
            30 s).
        max_retries: retries of one request (throttling, 5xx, dropped connections, answers
            cut off mid-body).
        backoff_factor: the first backoff in seconds; doubles on each retry, with jitter.
        throttle_backoff: the first wait after a 429 that says no ``Retry-After``, doubling
            on each further 429; a platform sets its own guidance (Microsoft Graph: 3 s).
            None: ``backoff_factor``.
        max_wait: the total seconds one request may sleep between retries; a ``Retry-After``
            beyond what remains ends the retries at once.
        retry_statuses: the statuses that are retried.
        sleep: how the policy waits between retries (tests pass one that records the waits).
    """

    connect_timeout: float = 10
    read_timeout: float = 60
    deadline: float | None = None
    max_retries: int = 5
    backoff_factor: float = 0.5
    throttle_backoff: float | None = None
    max_wait: float = 300
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    @classmethod
    def from_source(cls, source: SourceConfig, **platform: Any) -> HttpPolicy:
        """The policy a ``[sources.NAME]`` table asks for; ``platform`` holds the settings the
        platform's adapter brings (its ``throttle_backoff``)."""
        return cls(
            connect_timeout=source.connect_timeout,
            read_timeout=source.timeout,
            deadline=source.deadline,
            max_retries=source.max_retries,
            max_wait=source.max_wait,
            **platform,
        )

    @property
    def total_deadline(self) -> float:
        """The seconds one request may take, connection to last byte, waits excluded."""
        if self.deadline is not None:
            return self.deadline
        return max(30.0, 5 * self.read_timeout)

    @property
    def backoff_max(self) -> float:
        """The longest single backoff (a ``Retry-After`` may ask for more, within max_wait)."""
        return min(120.0, self.max_wait)

    def backoff(self, failures: int, *, throttled: int = 0) -> tuple[float, str]:
        """The wait before retry number ``failures`` (1 for the first) that no ``Retry-After``
        fixed, and why; ``throttled`` counts the 429s among those failures when the last one
        was a 429."""
        if throttled and self.throttle_backoff is not None:
            ceiling = min(self.backoff_max, self.throttle_backoff * 2 ** (throttled - 1))
            # Never below the platform's guidance: jitter only adds.
            return min(self.backoff_max, ceiling * random.uniform(1.0, 1.25)), "backoff after 429"
        if failures <= 0 or self.backoff_factor <= 0:
            return 0.0, "backoff"
        ceiling = min(self.backoff_max, self.backoff_factor * 2 ** (failures - 1))
        # Clients that failed together should not all come back at the same instant.
        return ceiling * random.uniform(0.5, 1.0), "backoff"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (a number or an HTTP date); None if absent or
    unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def is_loopback(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1."""
    if not host:
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _path_of(url: str | None) -> str:
    # Only the path is logged: query strings may carry tokens.
    return redact((url or "").split("?", 1)[0].split("#", 1)[0]) or "/"


def _seconds(value: float) -> str:
    return f"{value:.3g}s"


class BoundedRetry(Retry):
    """urllib3 ``Retry`` with the itcrosswalk rules.

    429 and 503 are retried for every method (the request was refused, not processed); 502,
    504 and connections dropped after sending only for idempotent methods. The sleep before
    each retry is ``Retry-After`` when the server sent one, else the policy's backoff (for a
    429, the platform's own guidance); the sum of sleeps stays within ``max_wait``. Each retry
    is logged and counted, and slept through the policy's ``sleep``.
    """

    def __init__(
        self,
        *args: Any,
        source: str = "",
        policy: HttpPolicy | None = None,
        waited: float = 0.0,
        planned: float | None = None,
        on_retry: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.source = source
        self.policy = policy or HttpPolicy()
        self.max_wait = self.policy.max_wait
        self.waited = waited
        """Seconds already slept for this request."""
        self.planned = planned
        """Seconds to sleep before the retry this object was made for."""
        self.on_retry = on_retry

    def new(self, **kw: Any) -> BoundedRetry:
        kw.setdefault("source", self.source)
        kw.setdefault("policy", self.policy)
        kw.setdefault("waited", self.waited)
        kw.setdefault("on_retry", self.on_retry)
        return super().new(**kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code not in self.status_forcelist:
            return False
        return status_code in REFUSED_STATUSES or method.upper() in IDEMPOTENT_METHODS

    def _failures(self) -> int:
        return len(list(takewhile(lambda h: h.redirect_location is None, reversed(self.history))))

    def get_backoff_time(self) -> float:
        return self.policy.backoff(self._failures())[0]

    def _wait_before(self, response: Any) -> tuple[float, str]:
        if response is not None and self.respect_retry_after_header:
            after = parse_retry_after(response.headers.get("Retry-After"))
            if after is not None:
                return after, "Retry-After"
        throttled = (
            sum(1 for h in self.history if h.status == 429)
            if getattr(response, "status", None) == 429
            else 0
        )
        return self.policy.backoff(self._failures(), throttled=throttled)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> BoundedRetry:
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        wait, why = new._wait_before(response)
        remaining = max(0.0, self.max_wait - self.waited)
        what = (
            f"HTTP {response.status} from {method} {_path_of(url)}"
            if response is not None
            else f"{_error_words(error)} on {method} {_path_of(url)}"
        )
        if wait > remaining:
            note = (
                f"the platform asked to wait {_seconds(wait)} ({why}), more than the "
                f"{_seconds(remaining)} left of max_wait = {_seconds(self.max_wait)}"
            )
            if response is not None:
                response._crosswalk_gave_up = note  # read by check_response
            log.warning("source %s: %s; %s; giving up", self.source, what, note)
            reason = error or ResponseError(
                ResponseError.SPECIFIC_ERROR.format(status_code=getattr(response, "status", 0))
            )
            raise MaxRetryError(_pool, url, reason) from reason
        new.waited = self.waited + wait
        new.planned = wait
        if self.on_retry is not None:
            self.on_retry(getattr(response, "status", None))
        log.info("source %s: %s, waiting %s (%s)", self.source, what, _seconds(wait), why)
        return new

    def sleep(self, response: Any = None) -> None:
        wait = self.get_backoff_time() if self.planned is None else self.planned
        if wait > 0:
            self.policy.sleep(wait)


def _error_words(error: Exception | None) -> str:
    if isinstance(error, ReadTimeoutError):
        return "no answer in time"
    if isinstance(error, ProtocolError):
        return "connection dropped"
    if isinstance(error, NewConnectionError):
        return "cannot connect"
    return type(error).__name__ if error is not None else "error"


class Telemetry:
    """What one source's requests met: how many, how long they took, throttling and errors.

    Latencies are kept for the most recent requests only (a bounded window), which is what
    percentiles of "recent syncs" need and keeps memory flat on long reads.
    """

    WINDOW = 20000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.throttled = 0
        self.server_errors = 0
        self.failures = 0
        self.latencies: deque[float] = deque(maxlen=self.WINDOW)

    def sent(self, seconds: float, status: int | None) -> None:
        """One request answered (``status``) or failed (None) after ``seconds``."""
        with self._lock:
            self.requests += 1
            self.latencies.append(seconds)
            self._status(status)

    def retried(self, status: int | None) -> None:
        """An attempt the transport retried: a 429, a 5xx, or a dropped connection."""
        with self._lock:
            self.retries += 1
            self._status(status)

    def _status(self, status: int | None) -> None:
        if status is None:
            self.failures += 1
        elif status == 429:
            self.throttled += 1
        elif status >= 500:
            self.server_errors += 1

    def summary(self) -> dict[str, Any]:
        with self._lock:
            ordered = sorted(self.latencies)

        def percentile(share: float) -> float | None:
            if not ordered:
                return None
            return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 1)

        return {
            "requests": self.requests + self.retries,
            "retries": self.retries,
            "throttled": self.throttled,
            "server_errors": self.server_errors,
            "failures": self.failures,
            "latency_p50_ms": percentile(0.50),
            "latency_p95_ms": percentile(0.95),
        }


# -- trust --------------------------------------------------------------------------------------

CA_ENVIRONMENT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")
"""The variables that name a CA bundle (or directory), in the order they are honoured: requests'
own two, then OpenSSL's, so every adapter trusts the same store whatever its HTTP library."""


def trusted_cas(ca_bundle: str | Path | None = None) -> str | None:
    """The CA file or directory requests are verified against: the source's ``ca_bundle``,
    which wins, else the first of :data:`CA_ENVIRONMENT` that is set, else None (the default
    store)."""
    if ca_bundle:
        return str(Path(ca_bundle).expanduser())
    for name in CA_ENVIRONMENT:
        value = os.environ.get(name)
        if value:
            return value
    return None


def ssl_context(ca_bundle: str | Path | None = None) -> ssl.SSLContext:
    """A verifying TLS context over :func:`trusted_cas` (certifi's store when none is named),
    for clients with their own transport (httpx)."""
    cas = trusted_cas(ca_bundle)
    if cas is None:
        import certifi  # requests' own default store, so both libraries trust the same CAs

        cas = certifi.where()
    if Path(cas).is_dir():
        return ssl.create_default_context(capath=cas)
    return ssl.create_default_context(cafile=cas)


# -- failures the transport names itself ---------------------------------------------------------


class UnsendableHeader(requests.exceptions.InvalidHeader):
    """A header value holds a line break or a NUL (a secret read with its trailing newline)."""


class DeadlineExceeded(requests.exceptions.Timeout):
    """A request outlasted the policy's deadline (an answer trickling in)."""


class BodyInterrupted(requests.exceptions.ChunkedEncodingError):
    """The connection was cut while the answer's body was read, on every retry."""


_ILLEGAL_IN_HEADER = re.compile(r"[\r\n\0]")


def unsendable_header(source: str, headers: Any) -> str | None:
    """Why ``headers`` cannot be sent (naming the header, never its value), or None."""
    for name, value in headers.items():
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if _ILLEGAL_IN_HEADER.search(text):
            name = "-".join(part.capitalize() for part in str(name).split("-"))  # httpx lowers
            return (
                f"source {source}: the {name} header holds a line break or NUL and cannot be "
                "sent; check that the secret it carries (token or password) has no trailing "
                "newline, e.g. a variable or a file written with `echo`"
            )
    return None


def _socket_of(response: requests.Response) -> Any:
    """The socket a response's body is read from: its pooled connection's, or, when the server
    said it would close (http.client then hands the socket to the response), the response's."""
    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is None:
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock


class _Watchdog:
    """Cuts an attempt's connection when its deadline passes: a read that gets a byte now and
    then never hits the read timeout, so the socket is shut down under it instead."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sock: Any = None
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(max(0.0, seconds), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, response: requests.Response) -> None:
        with self._lock:
            self._sock = _socket_of(response)
            if self.expired:
                self._cut()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            self._cut()

    def _cut(self) -> None:
        if self._sock is None:
            return
        try:
            # socket.socket's own shutdown: SSLSocket's would tear down the TLS state under
            # the reading thread; this one only makes its blocked read return.
            socket.socket.shutdown(self._sock, socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self) -> bool:
        """Stop watching; True if the deadline had already passed."""
        with self._lock:
            self._done = True
        self._timer.cancel()
        return self.expired


BODY_CHUNK = 1 << 20
"""The chunk a body is read in (:func:`read_body`)."""


def read_body(response: requests.Response) -> bytes:
    """The whole body of a response sent with ``stream=True``, as ``response.content`` gives it
    and kept there, read in chunks of :data:`BODY_CHUNK` rather than ``requests``' 10 KB.

    ``.content`` reads through ``iter_content(10240)``: 550 reads, each through urllib3's and
    requests' generators, and a join of as many pieces for a page of a thousand ServiceNow
    records (5.6 MB), which cost 35 ms of CPU where reading it by the mebibyte costs 12. The
    same ``iter_content`` reads it, so its errors (a connection cut mid-body is
    ``ChunkedEncodingError``) and its decoding (gzip, deflate) are the same; the body is kept
    where ``.content`` looks for it (``_content``, as ``requests`` itself keeps it)."""
    if response._content is False and response.raw is not None and response.status_code:
        response._content = b"".join(response.iter_content(BODY_CHUNK)) or b""
    return response.content


class PolicyAdapter(HTTPAdapter):
    """The transport that applies an :class:`HttpPolicy` to every request it sends.

    Unless the caller streams, the answer's body is read here, within the request's deadline:
    a connection cut mid-body is retried like a dropped connection, within the same retry
    budget (the urllib3 retry state carries over); an answer trickling past the deadline is
    cut there and the request ends with :class:`DeadlineExceeded`.

    Attributes:
        policy: the policy applied.
        source: the configured source's name, for logs and errors.
        ca_bundle: the CA bundle every request verifies against (None: the CA environment
            variables, else the default store).
        sent: requests sent so far, retries included (thread-safe).
    """

    def __init__(
        self,
        policy: HttpPolicy,
        *,
        source: str = "",
        ca_bundle: str | Path | None = None,
        **kwargs: Any,
    ) -> None:
        self.policy = policy
        self.source = source
        self.ca_bundle = str(Path(ca_bundle).expanduser()) if ca_bundle else None
        self.sent = 0
        self.telemetry = Telemetry()
        self._lock = threading.Lock()
        self._attempt = threading.local()
        retries = policy.max_retries
        retry = BoundedRetry(
            total=retries,
            # A refused or unresolvable host rarely comes back within seconds.
            connect=min(retries, 2),
            read=retries,
            status=retries,
            other=0,  # TLS failures and the like do not heal by retrying
            allowed_methods=IDEMPOTENT_METHODS,
            status_forcelist=policy.retry_statuses,
            backoff_factor=policy.backoff_factor,
            backoff_max=policy.backoff_max,
            raise_on_status=False,
            respect_retry_after_header=True,
            source=source,
            policy=policy,
            on_retry=self._retried,
        )
        super().__init__(max_retries=retry, **kwargs)

    # HTTPAdapter.send hands ``self.max_retries`` to urllib3; an attempt after a body failure
    # hands it the retry state so far instead (per thread: pages are prefetched).
    @property  # type: ignore[override]
    def max_retries(self) -> Retry:
        return getattr(self._attempt, "retry", None) or self._retry

    @max_retries.setter
    def max_retries(self, value: Retry) -> None:
        self._retry = value

    def _count(self) -> None:
        with self._lock:
            self.sent += 1

    def _retried(self, status: int | None) -> None:
        self._count()
        self.telemetry.retried(status)

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        parts = urlsplit(request.url or "")
        if parts.scheme == "http" and not is_loopback(parts.hostname):
            raise ConfigError(
                f"source {self.source}: refused plain http:// to {parts.hostname}; "
                "only loopback addresses may use http://, use https://"
            )
        problem = unsendable_header(self.source, request.headers)
        if problem:
            raise UnsendableHeader(problem)
        # The source's bundle wins over the environment (psf/requests#3829); without one, the
        # same CA variables as every other adapter; never False.
        cas = trusted_cas(self.ca_bundle)
        verify = cas or (verify if isinstance(verify, str) else True)
        if timeout is None:
            timeout = (self.policy.connect_timeout, self.policy.read_timeout)
        retry: Retry = self._retry
        self._count()
        started = time.monotonic()
        status: int | None = None
        try:
            while True:
                self._attempt.retry = retry
                try:
                    response = super().send(
                        request,
                        stream=True,
                        timeout=timeout,
                        verify=verify,
                        cert=cert,
                        proxies=proxies,
                    )
                finally:
                    self._attempt.retry = None
                # An authentication challenge is left unread: its handler (NTLM) may read the
                # certificate off the very connection it came on.
                if stream or response.status_code in (401, 407):
                    status = response.status_code
                    return response
                state = getattr(response.raw, "retries", None)
                slept = float(getattr(state if isinstance(state, Retry) else retry, "waited", 0.0))
                # The deadline holds for the whole request, every attempt, but not the waits
                # between attempts (those are max_wait's).
                spent = time.monotonic() - started - slept
                watchdog = _Watchdog(self.policy.total_deadline - spent)
                try:
                    watchdog.watch(response)
                    read_body(response)  # here, under the deadline
                    if watchdog.cancel():
                        # Cut at the deadline: a body without a length would end "normally".
                        raise requests.exceptions.ChunkedEncodingError("cut at the deadline")
                    status = response.status_code
                    return response
                except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
                    retry = self._after_body_failure(request, response, retry, exc, watchdog)
                finally:
                    watchdog.cancel()
                retry.sleep()
        finally:
            self.telemetry.sent(time.monotonic() - started, status)

    def _after_body_failure(
        self,
        request: requests.PreparedRequest,
        response: requests.Response,
        retry: Retry,
        exc: Exception,
        watchdog: _Watchdog,
    ) -> Retry:
        """The retry state for another attempt after the body could not be read, or the
        error that ends the request."""
        response.close()
        state = getattr(response.raw, "retries", None)
        state = state if isinstance(state, Retry) else retry
        path = redact(urlsplit(request.url or "").path) or "/"
        deadline = self.policy.total_deadline
        tries = len(state.history) + 1
        if watchdog.expired:
            # The request's deadline is spent: another attempt could only take longer.
            raise DeadlineExceeded(
                f"{request.method} {path} took longer than the deadline of {deadline:g}s "
                f"for one request{_attempts(tries)}: the answer arrives too slowly",
                request=request,
            ) from None
        error = ProtocolError(f"connection cut while reading the body: {_innermost(exc)!r}")
        try:
            return state.increment(request.method, request.url, error=error)
        except (MaxRetryError, ProtocolError):
            pass
        raise BodyInterrupted(
            f"the connection was cut while reading the answer to {request.method} {path}"
            f"{_attempts(tries)}",
            request=request,
        ) from None


def _attempts(tries: int) -> str:
    return f" ({tries} attempts)" if tries > 1 else ""


class BearerToken(requests.auth.AuthBase):
    """A fixed bearer token (an API token, a token obtained elsewhere)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


class RenewingBearer(requests.auth.AuthBase):
    """A bearer token that is renewed as it expires, and once more when the platform answers
    401 to a token it still considered valid (revoked, or shorter-lived than advertised).

    Subclasses implement :meth:`token`; a platform whose session token travels in a header of
    its own sets ``header`` and ``scheme`` (``authToken``, no scheme), and one whose expired
    session answers otherwise than 401 extends :meth:`stale`.
    """

    header = "Authorization"
    scheme = "Bearer"

    def token(self, *, renew: bool = False) -> str:
        """The current access token; a fresh one with ``renew``."""
        raise NotImplementedError

    def _value(self, token: str) -> str:
        return f"{self.scheme} {token}" if self.scheme else token

    def stale(self, response: requests.Response) -> bool:
        """Whether the answer says the token is no longer good (a 401)."""
        return response.status_code == 401

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers[self.header] = self._value(self.token())
        request.register_hook("response", self._retry_on_401)
        return request

    def _retry_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        if not self.stale(response) or getattr(response.request, "_crosswalk_retried", False):
            return response
        response.content  # noqa: B018 - release the connection before resending
        response.close()
        retry = response.request.copy()
        retry._crosswalk_retried = True  # type: ignore[attr-defined]
        retry.headers[self.header] = self._value(self.token(renew=True))
        new = response.connection.send(retry, **kwargs)
        new.history.append(response)
        new.request = retry
        return new


def telemetry_of(session: requests.Session | None) -> dict[str, Any]:
    """The telemetry summary of a session made by :func:`build_session` (empty for others)."""
    adapter = getattr(session, "policy_adapter", None)
    return adapter.telemetry.summary() if isinstance(adapter, PolicyAdapter) else {}


def build_session(
    source_name: str,
    *,
    base_url: str,
    policy: HttpPolicy,
    ca_bundle: str | Path | None = None,
    auth: requests.auth.AuthBase | tuple[str, str] | None = None,
    session: requests.Session | None = None,
) -> requests.Session:
    """A session (``session`` or a new one) that sends everything through the policy.

    ``session.policy_adapter`` is the :class:`PolicyAdapter`, whose ``sent`` counts requests.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"sources.{source_name}.url: must be an https:// URL")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"sources.{source_name}.url: plain http:// is only allowed to loopback; use https://"
        )
    session = session if session is not None else requests.Session()
    adapter = PolicyAdapter(policy, source=source_name, ca_bundle=ca_bundle)
    # Replace every mount, including longer prefixes a client library may have added.
    for old in session.adapters.values():
        old.close()
    session.adapters.clear()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    session.headers["Accept"] = "application/json"
    session.verify = adapter.ca_bundle or True
    if auth is not None:
        session.auth = auth
    session.policy_adapter = adapter  # type: ignore[attr-defined]
    return session


# -- responses ---------------------------------------------------------------------------------


def json_body(response: requests.Response) -> Any:
    """A response's JSON body, decoded with the cyclic garbage collector paused.

    A page of a thousand records is some hundred thousand containers; the collections their
    allocation sets off find no garbage (freshly decoded JSON holds no cycle) and cost a third
    of the decode (see :mod:`.collector`). A body in a declared charset other than UTF-8 is
    decoded as ``requests`` does it.
    Raises ``ValueError`` (a ``json.JSONDecodeError`` or a ``UnicodeDecodeError``) for a body
    that is not JSON.
    """
    charset = (response.encoding or "utf-8").lower().replace("-", "").replace("_", "")
    if charset != "utf8":
        return response.json()
    content = response.content
    # Counted across threads: prefetched pages and syncs side by side decode at once.
    with collector_paused():
        return json_loads(content)


def json_loads(content: bytes) -> Any:
    """``json.loads(content)`` for a UTF-8 body, by pydantic-core's parser where it can (a
    fifth of the decode's time less on a page of ServiceNow records). Whatever that parser
    refuses (a lone surrogate escape ``"\\ud83d"``, which JSON allows and Rust's strings
    cannot hold; a byte order mark; nesting past its limit; anything that is not JSON) goes to
    ``json.loads``, which decides: the value, or the error, is the standard library's."""
    try:
        return pydantic_core.from_json(content)
    except ValueError:
        return json.loads(content)


def is_html(response: requests.Response) -> bool:
    """Whether a response is an HTML page (a sign-in page where an API answer was expected)."""
    return _is_html(response)


def _is_html(response: requests.Response) -> bool:
    content_type = response.headers.get("Content-Type", "").lower()
    if content_type:
        return "html" in content_type
    head = response.content[:256].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _text(value: Any) -> str:
    if isinstance(value, str):
        if value.lstrip().startswith("{"):
            # A service's own error serialized into the message (Intune behind Graph,
            # graph-explorer-v4#3157): its message is the one to show.
            try:
                inner = json.loads(value)
            except ValueError:
                return value
            if isinstance(inner, dict):
                return _text(inner.get("Message") or inner.get("message")) or value
        return value
    if isinstance(value, dict):  # OData: {"lang": "en-US", "value": "..."}
        return _text(value.get("value") or value.get("message"))
    return ""


def _from_json(body: dict[str, Any]) -> str:
    error = body.get("error")
    if isinstance(error, dict):  # ServiceNow {message, detail}; Graph and OData v2 {code, message}
        message = _text(error.get("message"))
        code = error.get("code")
        detail = _text(error.get("detail"))
        if isinstance(code, str) and code and code not in message:
            message = f"{code}: {message}" if message else code
        if detail and detail != message:
            message = f"{message}: {detail}" if message else detail
        return message
    if isinstance(error, str):  # OAuth 2 token endpoints (RFC 6749)
        description = _text(body.get("error_description"))
        return f"{error}: {description}" if description else error
    odata = body.get("odata.error")
    if isinstance(odata, dict):
        return _text(odata.get("message")) or _text(odata.get("code"))
    title, detail = _text(body.get("title")), _text(body.get("detail"))
    if title or detail:  # RFC 7807 problem details (Jira Align)
        return f"{title}: {detail}" if title and detail and detail != title else title or detail
    for key in ("message", "Message", "errorMessage"):
        if _text(body.get(key)):
            return _text(body[key])
    for key in ("errorMessages", "errors"):
        items = body.get(key)
        if isinstance(items, list):
            texts = [
                _text(item) if not isinstance(item, dict) else _from_json(item) for item in items
            ]
            return "; ".join(t for t in texts if t)
    return ""


def platform_message(response: requests.Response) -> str:
    """The platform's own error message from a response body, at most 300 characters, redacted.

    Understands ServiceNow, Microsoft Graph, RFC 7807, OData and OAuth error bodies; an HTML
    page gives its title; any other text its first line.
    """
    message = ""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        message = _from_json(body)
    elif body is None:
        text = response.text or ""
        if _is_html(response):
            found = re.search(r"<title[^>]*>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
            message = found.group(1) if found else ""
        else:
            message = next((line for line in text.splitlines() if line.strip()), "")
    message = " ".join(message.split())
    if len(message) > MESSAGE_LIMIT:
        message = message[: MESSAGE_LIMIT - 3] + "..."
    return redact(message)


def check_response(
    response: requests.Response, *, source: str, what: str, credential_hint: str = ""
) -> None:
    """Raise the error a failed response means; return for a usable one.

    Args:
        response: the (last) response, after the policy's retries.
        source: the configured source's name.
        what: what was asked for, in words (``table incident``).
        credential_hint: what to check when the credentials are refused.
    """
    status = response.status_code
    if status < 400:
        if _is_html(response):
            raise AuthError(
                redact(
                    f"authentication failed for source {source}: the server answered with an HTML "
                    f"page, probably a sign-in page, instead of {what}; check the url and the credentials"
                )
            )
        return None
    message = platform_message(response)
    detail = f": {message}" if message else ""
    if status == 401:
        hint = f": {credential_hint}" if credential_hint else ""
        raise AuthError(redact(f"authentication failed for source {source} (HTTP 401){hint}"))
    if status == 403:
        raise AccessDenied(
            redact(
                f"source {source} may not read {what} (HTTP 403){detail}; "
                f"grant the account read access to {what}"
            )
        )
    if status == 404:
        raise NotFound(
            redact(
                f"source {source}: {what} was not found (HTTP 404){detail}; "
                "check the url and that the platform offers it"
            )
        )
    if status == 429 or status >= 500:
        raise RetriableError(redact(_retriable_message(response, source, what, message)))
    raise PlatformError(redact(f"source {source}: {what} failed with HTTP {status}{detail}"))


def _retriable_message(response: requests.Response, source: str, what: str, message: str) -> str:
    raw = getattr(response, "raw", None)
    retries = getattr(raw, "retries", None)
    count = len(retries.history) if isinstance(retries, Retry) else 0
    waited = float(getattr(retries, "waited", 0.0))
    gave_up = getattr(raw, "_crosswalk_gave_up", None)
    said = f" ({message})" if message else ""
    status = response.status_code
    if gave_up:
        return (
            f"source {source}: {what} failed with HTTP {status}{said}; {gave_up}; try again later"
        )
    if count:
        return (
            f"source {source}: {what} still failed with HTTP {status} after {count} retries over "
            f"{waited:.0f}s{said}; the platform may be down or throttling; try again later"
        )
    return (
        f"source {source}: {what} failed with HTTP {status}{said}; "
        "the platform may be down or throttling; try again later"
    )


# -- exceptions --------------------------------------------------------------------------------


def _innermost(exc: BaseException) -> BaseException:
    current = exc
    for _ in range(8):
        if isinstance(current, MaxRetryError) and current.reason is not None:
            current = current.reason
        elif isinstance(current, ProxyError) and isinstance(current.original_error, BaseException):
            current = current.original_error
        elif current.args and isinstance(current.args[0], BaseException):
            current = current.args[0]
        else:
            break
    return current


def _short_reason(reason: BaseException) -> str:
    if isinstance(reason, NameResolutionError):
        return "the host name does not resolve (DNS)"
    if isinstance(reason, ProtocolError):
        return "the server closed the connection"
    text = str(reason)
    errno = re.search(r"\[Errno -?\d+\] ([^)'\"]+)", text)
    if errno:
        words = errno.group(1).strip()
        return words[:1].lower() + words[1:]
    text = re.sub(r"^<?[\w.]*Connection[^:]*>?: ", "", text)
    return text[:150] or type(reason).__name__


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    source: Any,
    recording: list[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> requests.Response:
    """One request on ``session`` for the configured ``source``: logged into ``recording``
    first when a write records what it sends (a dry run reports exactly these), and a failure
    to get an answer read as the error tree reads it (:func:`connection_error`)."""
    if recording is not None:
        prepared = requests.Request(method, url, params=kwargs.get("params")).prepare()
        recording.append({"method": method, "url": prepared.url, "body": kwargs.get("json")})
    try:
        return session.request(method, url, **kwargs)
    except requests.RequestException as exc:
        raise connection_error(
            exc, source=source.name, url=url, ca_bundle=source.ca_bundle
        ) from None


def connection_error(
    exc: Exception, *, source: str, url: str, ca_bundle: str | Path | None
) -> CrosswalkError:
    """The error tree's reading of a failed request (TLS, unreachable, timeout)."""
    if isinstance(exc, CrosswalkError):
        return exc
    reason = _innermost(exc)
    parts = urlsplit(url)
    host = parts.hostname or "?"
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        port = 443
    text = str(reason)
    if isinstance(exc, UnsendableHeader):
        return ConfigError(str(exc))
    if isinstance(exc, DeadlineExceeded):
        return RetriableError(
            f"source {source}: {exc}; the platform or a proxy on the way may be overloaded; "
            f"try again later, or raise deadline in [sources.{source}]"
        )
    if isinstance(exc, BodyInterrupted):
        return RetriableError(
            f"source {source}: {exc}; the network or the platform is unsteady; try again later"
        )
    if isinstance(exc, requests.exceptions.SSLError) or isinstance(
        reason, ssl.SSLError | ssl.CertificateError | Urllib3SSLError
    ):
        if "mismatch" in text or "doesn't match" in text:
            return ConnectError(
                f"TLS verification failed for source {source} ({host}): the server's certificate "
                f"is not issued for {host}; check the url against the name on the certificate"
            )
        if "expired" in text:
            return ConnectError(
                f"TLS verification failed for source {source} ({host}): the server's certificate "
                "has expired; ask the platform's administrators to renew it"
            )
        store = str(ca_bundle) if ca_bundle else "the default CA store"
        return ConnectError(
            f"TLS verification failed for source {source} ({host}): the server's certificate is "
            f"not trusted by {store}; if the City uses an internal CA or a TLS-inspecting proxy, "
            f'set ca_bundle = "/path/ca.pem" in [sources.{source}]'
        )
    timed_out = isinstance(exc, requests.Timeout) or (
        isinstance(reason, Urllib3TimeoutError | TimeoutError)
        and not isinstance(reason, NewConnectionError)
    )
    if timed_out:
        limit = re.search(r"timeout=([\d.]+)", text)
        within = f"within {float(limit.group(1)):g}s" if limit else "in time"
        return RetriableError(
            f"source {source} did not answer {within}; the platform may be slow or overloaded; "
            f"try again later, or raise timeout in [sources.{source}]"
        )
    if isinstance(exc, requests.exceptions.RetryError):
        return RetriableError(
            f"source {source}: the platform kept failing after retries; try again later"
        )
    if isinstance(exc, requests.exceptions.ProxyError):
        return ConnectError(
            redact(
                f"cannot reach source {source} at {host}:{port} through the proxy: "
                f"{_short_reason(reason)}; check HTTPS_PROXY and the network"
            )
        )
    if isinstance(exc, requests.ConnectionError | OSError):
        return ConnectError(
            redact(
                f"cannot reach source {source} at {host}:{port}: {_short_reason(reason)}; "
                "check the url and the network"
            )
        )
    return ConnectError(redact(f"source {source}: the request failed: {type(exc).__name__}"))
