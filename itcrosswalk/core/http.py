"""One HTTP policy for every adapter: timeouts, bounded retries, TLS, and errors in plain words.

Every adapter's ``requests`` session comes from :func:`build_session`. Its transport,
:class:`PolicyAdapter`, applies the policy on each send, so it holds whatever path the
request took (``Session.request``, or ``Session.send`` as PySNC does):

- the configured CA bundle, even when ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` are set
  (requests lets them override ``Session.verify``, psf/requests#3829);
- connect and read timeouts when the caller gave none;
- retries on 429/502/503/504 and dropped connections, honouring ``Retry-After``, with the
  total time slept for one request bounded by ``max_wait``;
- plain ``http://`` only to loopback addresses.

:func:`check_response` and :func:`connection_error` turn what went wrong into the error
tree, with the platform's own message and what to do next, secrets redacted.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import re
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    InvalidHeader,
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
        max_retries: retries of one request (throttling, 5xx, dropped connections).
        backoff_factor: the first backoff in seconds; doubles on each retry, with jitter.
        max_wait: the total seconds one request may sleep between retries; a ``Retry-After``
            beyond what remains ends the retries at once.
        retry_statuses: the statuses that are retried.
    """

    connect_timeout: float = 10
    read_timeout: float = 60
    max_retries: int = 5
    backoff_factor: float = 0.5
    max_wait: float = 300
    retry_statuses: frozenset[int] = frozenset({429, 502, 503, 504})

    @classmethod
    def from_source(cls, source: SourceConfig) -> HttpPolicy:
        """The policy a ``[sources.NAME]`` table asks for."""
        return cls(
            connect_timeout=source.connect_timeout,
            read_timeout=source.timeout,
            max_retries=source.max_retries,
            max_wait=source.max_wait,
        )


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
    each retry is ``Retry-After`` when the server sent one, else an exponential backoff with
    jitter; the sum of sleeps stays within ``max_wait``. Each retry is logged and counted.
    """

    def __init__(
        self,
        *args: Any,
        source: str = "",
        max_wait: float = 300,
        waited: float = 0.0,
        planned: float | None = None,
        on_retry: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.source = source
        self.max_wait = max_wait
        self.waited = waited
        """Seconds already slept for this request."""
        self.planned = planned
        """Seconds to sleep before the retry this object was made for."""
        self.on_retry = on_retry

    def new(self, **kw: Any) -> BoundedRetry:
        kw.setdefault("source", self.source)
        kw.setdefault("max_wait", self.max_wait)
        kw.setdefault("waited", self.waited)
        kw.setdefault("on_retry", self.on_retry)
        return super().new(**kw)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code not in self.status_forcelist:
            return False
        return status_code in REFUSED_STATUSES or method.upper() in IDEMPOTENT_METHODS

    def get_backoff_time(self) -> float:
        failures = len(
            list(takewhile(lambda h: h.redirect_location is None, reversed(self.history)))
        )
        if failures == 0 or self.backoff_factor <= 0:
            return 0.0
        ceiling = min(self.backoff_max, self.backoff_factor * 2 ** (failures - 1))
        # Clients that failed together should not all come back at the same instant.
        return ceiling * random.uniform(0.5, 1.0)

    def _wait_before(self, response: Any) -> tuple[float, str]:
        if response is not None and self.respect_retry_after_header:
            try:
                after = self.get_retry_after(response)
            except InvalidHeader:
                after = None
            if after is not None:
                return float(after), "Retry-After"
        return self.get_backoff_time(), "backoff"

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
        if self.planned is None:
            super().sleep(response)
        elif self.planned > 0:
            time.sleep(self.planned)


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


class PolicyAdapter(HTTPAdapter):
    """The transport that applies an :class:`HttpPolicy` to every request it sends.

    Attributes:
        policy: the policy applied.
        source: the configured source's name, for logs and errors.
        ca_bundle: the CA bundle every request verifies against (None: the default store).
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
            backoff_max=min(120.0, policy.max_wait),
            raise_on_status=False,
            respect_retry_after_header=True,
            source=source,
            max_wait=policy.max_wait,
            on_retry=self._retried,
        )
        super().__init__(max_retries=retry, **kwargs)

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
        if self.ca_bundle:
            verify = self.ca_bundle
        elif not isinstance(verify, str):
            # Never False; a bundle path that requests took from the environment is kept.
            verify = True
        if timeout is None:
            timeout = (self.policy.connect_timeout, self.policy.read_timeout)
        self._count()
        started = time.monotonic()
        status: int | None = None
        try:
            response = super().send(
                request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies
            )
            status = response.status_code
            return response
        finally:
            self.telemetry.sent(time.monotonic() - started, status)


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
