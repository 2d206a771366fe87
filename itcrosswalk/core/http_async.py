"""The one HTTP policy for clients that bring their own httpx transport (msgraph-sdk's kiota).

:class:`PolicyTransport` is the innermost httpx transport of such a client. It applies the
same :class:`~itcrosswalk.core.http.HttpPolicy` as the requests adapters' ``PolicyAdapter``:

- the same trust: the source's ``ca_bundle``, else the CA environment variables every adapter
  honours (``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``, ``SSL_CERT_FILE``, ``SSL_CERT_DIR``);
- plain ``http://`` only to loopback; header values with line breaks refused, unsent;
- retries on the policy's statuses and on dropped connections, honouring ``Retry-After``,
  else the policy's backoff (a platform's own guidance after a 429), the sleeps bounded by
  ``max_wait`` and slept through the policy's ``sleep``;
- the policy's deadline for the whole request, body included: the body is read here, so an
  answer cut off mid-body is retried like any transient failure, and one trickling past the
  deadline ends the request there.

Only the adapters whose SDK needs httpx import this module (httpx comes with their extra).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from .errors import ConfigError, ConnectError, CrosswalkError, RetriableError
from .http import (
    IDEMPOTENT_METHODS,
    REFUSED_STATUSES,
    HttpPolicy,
    Telemetry,
    is_loopback,
    parse_retry_after,
    ssl_context,
    unsendable_header,
)
from .secrets import redact

log = logging.getLogger("itcrosswalk.http")

_CUT_MID_BODY = (httpx.RemoteProtocolError, httpx.ReadError)
_READ_FAILURES = (httpx.ReadTimeout, httpx.WriteError, httpx.WriteTimeout, *_CUT_MID_BODY)
_CONNECT_FAILURES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class _Deadline(Exception):
    """An attempt outlasted the policy's deadline."""


def _is_tls_failure(exc: BaseException) -> bool:
    cause: BaseException | None = exc
    for _ in range(8):
        if cause is None:
            return False
        if isinstance(cause, ssl.SSLError):
            return True
        cause = cause.__cause__ or cause.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


class PolicyTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends every request under an :class:`HttpPolicy`.

    Attributes:
        policy: the policy applied.
        source: the configured source's name, for logs and errors.
        sent: attempts sent so far, retries included.
        telemetry: what the requests met, as the requests adapters keep it.
    """

    def __init__(
        self,
        policy: HttpPolicy,
        *,
        source: str,
        ca_bundle: str | Path | None = None,
        proxy: str | None = None,
    ) -> None:
        self.policy = policy
        self.source = source
        self.ca_bundle = ca_bundle
        self.sent = 0
        self.telemetry = Telemetry()
        self.inner = httpx.AsyncHTTPTransport(verify=ssl_context(ca_bundle), proxy=proxy)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme == "http" and not is_loopback(request.url.host):
            raise ConfigError(
                f"source {self.source}: refused plain http:// to {request.url.host}; "
                "only loopback addresses may use http://, use https://"
            )
        problem = unsendable_header(self.source, request.headers)
        if problem:
            raise ConfigError(problem)
        started = time.monotonic()
        status: int | None = None
        try:
            response = await self._with_retries(request)
            status = response.status_code
            return response
        finally:
            self.telemetry.sent(time.monotonic() - started, status)

    async def _attempt(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        try:
            raw = b"".join([chunk async for chunk in response.stream])  # type: ignore[union-attr]
        finally:
            await response.aclose()
        # The body as it came (still encoded); the client decodes it as usual.
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            content=raw,
            extensions=response.extensions,
            request=request,
        )

    async def _with_retries(self, request: httpx.Request) -> httpx.Response:
        policy = self.policy
        method = request.method.upper()
        idempotent = method in IDEMPOTENT_METHODS
        path = urlsplit(str(request.url)).path or "/"
        failures = connect_failures = throttles = throttled = 0
        waited = spent = 0.0
        while True:
            self.sent += 1
            response: httpx.Response | None = None
            error: BaseException | None = None
            began = time.monotonic()
            try:
                # The deadline holds for every attempt together, not the waits between them.
                response = await asyncio.wait_for(
                    self._attempt(request), max(0.0, policy.total_deadline - spent)
                )
            except TimeoutError:
                error = _Deadline()
            except httpx.TransportError as exc:
                error = exc
            spent += time.monotonic() - began
            if response is not None:
                status = response.status_code
                if status not in policy.retry_statuses or not (
                    status in REFUSED_STATUSES or idempotent
                ):
                    return response
                after = parse_retry_after(response.headers.get("Retry-After"))
                # As the requests adapters count: every 429 of this request so far.
                throttles += status == 429
                throttled = throttles if status == 429 else 0
                what = f"HTTP {status} from {method} {path}"
            else:
                assert error is not None
                if isinstance(error, _CONNECT_FAILURES) and not _is_tls_failure(error):
                    connect_failures += 1
                    if connect_failures > min(policy.max_retries, 2):
                        raise error
                elif isinstance(error, _Deadline):
                    # Spent: another attempt could only take longer.
                    return self._give_up(None, error, method, path, failures + 1)
                elif not (isinstance(error, _READ_FAILURES) and idempotent):
                    raise error
                after, status, throttled = None, None, 0
                what = f"{_words(error)} on {method} {path}"
            failures += 1
            if failures > policy.max_retries:
                log.warning("source %s: %s; no retries left", self.source, what)
                return self._give_up(response, error, method, path, failures)
            wait, why = (
                (after, "Retry-After")
                if after is not None
                else policy.backoff(failures, throttled=throttled)
            )
            remaining = max(0.0, policy.max_wait - waited)
            if wait > remaining:
                log.warning(
                    "source %s: %s; the platform asked to wait %.3gs (%s), more than the %.3gs "
                    "left of max_wait = %.3gs; giving up",
                    self.source,
                    what,
                    wait,
                    why,
                    remaining,
                    policy.max_wait,
                )
                return self._give_up(response, error, method, path, failures)
            self.telemetry.retried(status)
            log.info("source %s: %s, waiting %.3gs (%s)", self.source, what, wait, why)
            if wait > 0:
                await asyncio.get_running_loop().run_in_executor(None, policy.sleep, wait)
            waited += wait

    def _give_up(
        self,
        response: httpx.Response | None,
        error: BaseException | None,
        method: str,
        path: str,
        attempts: int,
    ) -> httpx.Response:
        """The last answer (the adapter reads its status), or the error that ends the request."""
        if response is not None:
            return response
        tries = f" ({attempts} attempts)" if attempts > 1 else ""
        if isinstance(error, _Deadline):
            raise RetriableError(
                f"source {self.source}: {method} {path} took longer than the deadline of "
                f"{self.policy.total_deadline:g}s for one request{tries}: the answer arrives "
                "too slowly; the platform or a proxy on the way may be overloaded; try again "
                f"later, or raise deadline in [sources.{self.source}]"
            )
        if isinstance(error, _CUT_MID_BODY):
            raise RetriableError(
                f"source {self.source}: the connection was cut while reading the answer to "
                f"{method} {path}{tries}; the network or the platform is unsteady; try again later"
            )
        assert error is not None
        raise error

    async def aclose(self) -> None:
        await self.inner.aclose()


def _words(error: BaseException) -> str:
    if isinstance(error, _Deadline):
        return "past the deadline"
    if isinstance(error, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(error, _CUT_MID_BODY):
        return "connection cut mid-answer"
    if isinstance(error, httpx.ConnectError):
        return "cannot connect"
    return type(error).__name__


def transport_error(
    exc: httpx.HTTPError, *, source: str, url: str, ca_bundle: str | Path | None
) -> CrosswalkError:
    """The error tree's reading of an httpx request that got no answer, in the words
    :func:`~itcrosswalk.core.http.connection_error` gives a requests one: a timeout first (its
    chain may hold a TLS want-read), then TLS trust, then an unreachable host."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if isinstance(exc, httpx.TimeoutException):
        return RetriableError(
            f"source {source} did not answer in time; the platform may be slow or overloaded; "
            f"try again later, or raise timeout in [sources.{source}]"
        )
    if _is_tls_failure(exc):
        store = str(ca_bundle) if ca_bundle else "the default CA store"
        return ConnectError(
            f"TLS verification failed for source {source} ({host}): the server's certificate is "
            f"not trusted by {store}; if the City uses an internal CA or a TLS-inspecting proxy, "
            f'set ca_bundle = "/path/ca.pem" in [sources.{source}]'
        )
    return ConnectError(
        redact(
            f"cannot reach source {source} at {host}:{parts.port or 443}: "
            f"{type(exc).__name__} {exc}"[:300]
            + "; check the url and the network"
        )
    )
