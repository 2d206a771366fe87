"""One requests client for every REST adapter: the session under the HTTP policy, the auth
choices, the platform's error table, the credential hints and dry-run request recording.

A platform declares what differs as data, in a :class:`PlatformSpec`; :class:`HttpClient` does
the rest the same way for all. How a new adapter uses it::

    SPEC = PlatformSpec(
        title="Helpdesk",
        url_example="https://helpdesk.city.gov",
        auth={"bearer": bearer, "basic": basic},          # auth.type -> how to build it
        auth_example='auth = { type = "bearer", token = "env:HELPDESK_TOKEN" }',
        hints={"bearer": "check the API token that `{token}` points to"},
        errors=(                                          # matched before the core's reading
            ErrorRule(400, PlatformError, "source {source}: {what} was refused (HTTP 400){said}"),
        ),
    )

    class HelpdeskAdapter(Adapter, platform="helpdesk", options=HelpdeskOptions, spec=SPEC):
        # options: a PlatformOptions model, validated once, as self.options;
        # spec: self.http is this source's HttpClient, self.base its checked url.

        def probes(self):                                 # Adapter.check() runs them
            return [Probe("tickets", lambda: f"{self.count('tickets')} rows")]

        def count(self, what):
            return self.http.get(f"{self.base}/api/{what}", {"limit": 1}, what=what)["total"]

Requests go through :meth:`HttpClient.send` (the connection failure read into the error tree,
the request logged while :meth:`HttpClient.recording` is on) and :meth:`HttpClient.raise_for`
(the platform's rules, then :func:`~itcrosswalk.core.http.check_response`); :meth:`get` does
both and parses the JSON. A writer records what it sends with ``with adapter.http.recording()
as made:``, never through the adapter's private members.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests

from .errors import AuthError, ConfigError, CrosswalkError, MalformedResponse
from .http import (
    BearerToken,
    HttpPolicy,
    RenewingBearer,
    build_session,
    check_response,
    connection_error,
    json_body,
    platform_message,
)
from .secrets import REDACTOR, redact

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE", "MERGE"})


# -- the error table -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ErrorRule:
    """One row of a platform's error table: a failed answer that matches raises ``error``.

    Attributes:
        status: the HTTP status (or statuses) the rule is for.
        error: the exception class raised (one of the error tree's).
        message: a template over the failure: ``{source}``, ``{what}``, ``{status}``,
            ``{message}`` (the platform's own words), ``{said}`` (``": " + message`` when there
            is one), ``{code}`` (the body's error code; ``{code_note}`` is `` (code)`` when there
            is one), ``{hint}`` (the credential hint),
            ``{errors}`` (the message with per-field errors spelt out), ``{retry_after}``, the
            source's auth fields (``{user}``, ``{token}``, ...) and what the caller adds.
        code: the body's error code (the spec's ``code_field``) must be this.
        contains: every one of these must be in the platform's message (case-insensitive; the
            ``x-ms-diagnostics`` header counts as message).
        url: the response's URL must contain this.
        writes: True: only for writing methods (POST, PUT, PATCH, DELETE); False: only reads.
        needs_message: only when the platform said something (a message or a code).
    """

    status: int | tuple[int, ...] | range
    error: type[CrosswalkError]
    message: str
    code: str | None = None
    contains: tuple[str, ...] = ()
    url: str | None = None
    writes: bool | None = None
    needs_message: bool = False

    def matches(self, failure: Failure) -> bool:
        statuses = (self.status,) if isinstance(self.status, int) else self.status
        if failure.status not in statuses:
            return False
        if self.code is not None and failure.code != self.code:
            return False
        said = f"{failure.message} {failure.diagnostics}".lower()
        if any(word.lower() not in said for word in self.contains):
            return False
        if self.url is not None and self.url not in failure.url:
            return False
        if self.writes is not None and (failure.method in WRITE_METHODS) != self.writes:
            return False
        return not (self.needs_message and not (failure.message or failure.code))


@dataclass
class Failure:
    """What a failed answer said, as the error table reads it."""

    status: int
    message: str
    code: str
    url: str
    method: str
    diagnostics: str = ""


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def spelt_out(response: Any) -> str:
    """The platform's message with a validation body's per-field ``errors`` spelt out
    (``field: what is wrong``), for a refused write."""
    message = platform_message(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    parts = []
    if isinstance(errors, Mapping):
        for key, texts in errors.items():
            joined = "; ".join(str(t) for t in texts) if isinstance(texts, list) else str(texts)
            parts.append(f"{key}: {joined}")
    return redact("; ".join(p for p in (message, *parts) if p)) or f"HTTP {response.status_code}"


def error_code(response: Any, field_name: str | None) -> str:
    """The error code a JSON error body names in ``field_name`` (empty when none)."""
    if not field_name:
        return ""
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get(field_name) or "") if isinstance(body, dict) else ""


# -- auth choices --------------------------------------------------------------------------------

AuthBuilder = Callable[["HttpClient"], Any]
"""How one ``auth.type`` becomes a requests auth (or None): given the client, which holds the
source, the secret resolver and the policy."""


def basic(client: HttpClient) -> requests.auth.AuthBase:
    """HTTP Basic with the user and the password the source names."""
    auth = client.source.auth
    password = client.secrets(auth.password, "auth.password")
    REDACTOR.register_basic(auth.user, password)
    return requests.auth.HTTPBasicAuth(auth.user, password)


def bearer(client: HttpClient) -> requests.auth.AuthBase:
    """A ready-made bearer token (an API token, a personal access token)."""
    return BearerToken(client.secrets(client.source.auth.token, "auth.token"))


def oauth(default_token_path: str) -> AuthBuilder:
    """OAuth 2 (password or client-credentials grant) against ``token_url``, else the
    platform's ``default_token_path`` under the source's url, renewed as tokens expire."""

    def build(client: HttpClient) -> requests.auth.AuthBase:
        auth = client.source.auth
        form = {
            "client_id": auth.client_id,
            "client_secret": client.secrets(auth.client_secret, "auth.client_secret"),
        }
        if auth.type == "oauth_password":
            form.update(
                grant_type="password",
                username=auth.user,
                password=client.secrets(auth.password, "auth.password"),
            )
        else:
            form["grant_type"] = "client_credentials"
        url = auth.token_url or f"{client.base}{default_token_path}"
        return OAuthToken(url, client.new_session(), form, client.source.name)

    return build


class OAuthToken(RenewingBearer):
    """An OAuth 2 access token from a token endpoint, refreshed (refresh token first) as it
    expires or is revoked; the token requests go through the source's policy and CA bundle."""

    def __init__(
        self, token_url: str, session: requests.Session, form: dict[str, str], source: str
    ) -> None:
        self.token_url = token_url
        self.session = session
        self.form = form
        self.source = source
        self.access: str | None = None
        self.refresh: str | None = None
        self.expires_at = 0.0
        self.lock = threading.Lock()

    def _grant(self, form: dict[str, str]) -> None:
        try:
            response = self.session.post(
                self.token_url, data=form, headers={"Accept": "application/json"}
            )
        except requests.RequestException as exc:
            raise connection_error(
                exc, source=self.source, url=self.token_url, ca_bundle=None
            ) from None
        if response.status_code in (400, 401):
            raise AuthError(
                f"authentication failed for source {self.source} (OAuth token request, HTTP "
                f"{response.status_code}: {platform_message(response) or 'refused'}): check the "
                "client id, client secret and user credentials"
            )
        check_response(response, source=self.source, what="the OAuth token endpoint")
        try:
            body = response.json()
            self.access = body["access_token"]
        except (ValueError, KeyError):
            raise AuthError(
                f"authentication failed for source {self.source}: the OAuth token endpoint "
                "answered without an access token"
            ) from None
        self.refresh = body.get("refresh_token") or self.refresh
        self.expires_at = time.monotonic() + float(body.get("expires_in", 1800)) - 60
        REDACTOR.register(self.access)
        if self.refresh:
            REDACTOR.register(self.refresh)

    def token(self, *, renew: bool = False) -> str:
        with self.lock:
            if renew or self.access is None or time.monotonic() >= self.expires_at:
                if self.refresh and self.access is not None:
                    try:
                        self._grant(
                            {
                                "grant_type": "refresh_token",
                                "refresh_token": self.refresh,
                                "client_id": self.form["client_id"],
                                "client_secret": self.form["client_secret"],
                            }
                        )
                    except AuthError:
                        self.refresh = None
                        self._grant(self.form)
                else:
                    self._grant(self.form)
            assert self.access is not None
            return self.access


# -- the platform's declaration ------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformSpec:
    """What one platform's HTTP plumbing is, as data.

    Attributes:
        title: the platform's name in messages (``Jira Align``).
        url_example: the url a source gives, for the message when it is missing.
        https_only: refuse ``http://`` even to loopback (PySNC speaks HTTPS only).
        api_suffixes: API roots a user may paste as the url; cut off to get the site's.
        auth: ``auth.type`` -> how to build it (:func:`basic`, :func:`bearer`, :func:`oauth`,
            or the platform's own); the keys are the types the platform takes, and ``""`` the
            sign-in of a source without an ``auth`` key (its hint is ``hints[""]``).
        auth_example: the ``auth = {...}`` line the message for a missing auth shows.
        hints: ``auth.type`` -> what to check when the credentials are refused, a template
            over the auth fields (``{user}``, ``{password}``, ``{token}``, ...) and the
            client's ``hint_values``.
        errors: the platform's error table, matched in order before the core's reading.
        code_field: the key of a JSON error body that holds the platform's error code.
        throttle_backoff: the platform's wait after a 429 without Retry-After.
    """

    title: str
    url_example: str = "https://..."
    https_only: bool = False
    api_suffixes: tuple[str, ...] = ()
    auth: Mapping[str, AuthBuilder] = field(default_factory=dict)
    auth_example: str = ""
    hints: Mapping[str, str] = field(default_factory=dict)
    errors: tuple[ErrorRule, ...] = ()
    code_field: str | None = None
    throttle_backoff: float | None = None

    def base_url(self, source: Any) -> str:
        """The source's url, required, without a trailing slash or a pasted API root."""
        name = source.name
        if not source.url:
            raise ConfigError(
                f"sources.{name}.url: the {self.title} address is required ({self.url_example})"
            )
        if self.https_only and not source.url.startswith("https://"):
            raise ConfigError(f"sources.{name}.url: {self.title} speaks HTTPS only; use https://")
        base = str(source.url).rstrip("/")
        for suffix in self.api_suffixes:
            if base.lower().endswith(suffix.lower()):
                base = base[: -len(suffix)]
        return base


# -- the client ----------------------------------------------------------------------------------


class HttpClient:
    """One source's requests session under the core policy, with its platform's auth and
    error table.

    Attributes:
        source: the configured source.
        spec: the platform's declaration.
        base: the site's address (:meth:`PlatformSpec.base_url`, unless given).
        policy: the HTTP policy (from the source, with the platform's throttle backoff).
        options: the adapter's validated options (auth builders read them).
        auth: the requests auth the session sends with, once the session is built.
        hint_values: more names the credential hints and error templates may use.
    """

    def __init__(
        self,
        source: Any,
        secrets: Callable[..., str],
        spec: PlatformSpec,
        *,
        base: str | None = None,
        options: Any = None,
        hint_values: Callable[[], Mapping[str, Any]] | None = None,
    ) -> None:
        self.source = source
        self.secrets = secrets
        self.spec = spec
        self.options = options
        self.base = base if base is not None else spec.base_url(source)
        platform = (
            {} if spec.throttle_backoff is None else {"throttle_backoff": spec.throttle_backoff}
        )
        self.policy = HttpPolicy.from_source(source, **platform)
        self.hint_values = hint_values
        self.auth: Any = None
        self._session: requests.Session | None = None
        self._lock = threading.RLock()
        self._recording = threading.local()
        self._answers = threading.local()

    # -- auth ----------------------------------------------------------------------------------

    def build_auth(self) -> Any:
        """The requests auth of the source's ``auth`` (ConfigError when missing or not one
        the platform takes)."""
        auth = self.source.auth
        name = self.source.name
        kinds = ", ".join(k for k in self.spec.auth if k)
        if auth is None and "" in self.spec.auth:
            return self.spec.auth[""](self)  # the platform's own sign-in, without an `auth` key
        if auth is None:
            example = f": {self.spec.auth_example}" if self.spec.auth_example else f" ({kinds})"
            raise ConfigError(f"sources.{name}.auth: {self.spec.title} needs credentials{example}")
        builder = self.spec.auth.get(auth.type)
        if builder is None:
            raise ConfigError(
                f"sources.{name}.auth.type: {auth.type!r} is not supported by {self.spec.title} "
                f"({kinds})"
            )
        return builder(self)

    def values(self, **extra: Any) -> dict[str, Any]:
        """What hint and error templates may name: the auth fields, the client's
        ``hint_values``, and ``extra``."""
        out: dict[str, Any] = {"source": self.source.name}
        auth = self.source.auth
        if auth is not None:
            fields = auth.model_dump() if hasattr(auth, "model_dump") else vars(auth)
            out.update({k: v for k, v in fields.items() if v is not None})
        if self.hint_values is not None:
            out.update(self.hint_values())
        out.update(extra)
        return out

    def credential_hint(self, **extra: Any) -> str:
        """What to check when the platform refuses the credentials, in the platform's words."""
        auth = self.source.auth
        if auth is None:
            return self.spec.hints.get("", "the source has no auth configured")
        template = self.spec.hints.get(auth.type, "")
        return template.format_map(_Blank(self.values(**extra))) if template else ""

    # -- the session ---------------------------------------------------------------------------

    def new_session(self, base_url: str | None = None) -> requests.Session:
        """A bare session under the source's policy and CA bundle (token endpoints)."""
        return build_session(
            self.source.name,
            base_url=base_url or self.base,
            policy=self.policy,
            ca_bundle=self.source.ca_bundle,
        )

    def adopt(self, session: requests.Session) -> requests.Session:
        """Put a client library's own session under the policy, with the source's auth, and
        send through it from now on (the ``jira`` package's, PySNC's)."""
        with self._lock:
            self.auth = self.build_auth()
            self._session = build_session(
                self.source.name,
                base_url=self.base,
                policy=self.policy,
                ca_bundle=self.source.ca_bundle,
                auth=self.auth,
                session=session,
            )
            self._session.hooks["response"].append(self._remember)
            return self._session

    def _remember(self, response: requests.Response, **_: Any) -> None:
        self._answers.last = response

    @property
    def last(self) -> requests.Response | None:
        """The last answer this thread received (a client library may keep it from its caller)."""
        return getattr(self._answers, "last", None)

    def not_json(self, what: str) -> CrosswalkError:
        """What an answer a client library could not parse means: the last answer read as the
        error table reads it (an HTML sign-in page is an AuthError), else a malformed body."""
        last = self.last
        if last is not None:
            try:
                self.raise_for(last, what)
            except CrosswalkError as exc:
                return exc
        return MalformedResponse(
            f"source {self.source.name}: {what} answered with a body that is not JSON"
        )

    @property
    def session(self) -> requests.Session:
        """The source's session, built on first use with its auth."""
        with self._lock:
            if self._session is None:
                self.adopt(requests.Session())
            assert self._session is not None
            return self._session

    @property
    def http_session(self) -> requests.Session | None:
        """The session once built (None before: counting requests builds nothing)."""
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    # -- recording -----------------------------------------------------------------------------

    @contextmanager
    def recording(self) -> Iterator[list[dict[str, Any]]]:
        """Log every request this thread sends inside the block into the list it yields, as
        ``{"method", "url", "body"}``: what a write reports (a dry run plans with it too)."""
        made: list[dict[str, Any]] = []
        outer = getattr(self._recording, "log", None)
        self._recording.log = made
        try:
            yield made
        finally:
            self._recording.log = outer

    @property
    def recorded(self) -> list[dict[str, Any]] | None:
        """The list :meth:`recording` is filling on this thread, if any."""
        return getattr(self._recording, "log", None)

    def plan(self, method: str, url: str, body: Any = None) -> None:
        """Record a request a dry run would send (and does not)."""
        made = self.recorded
        if made is not None:
            made.append({"method": method, "url": url, "body": body})

    # -- requests ------------------------------------------------------------------------------

    def url(self, path: str) -> str:
        return path if "://" in path else f"{self.base}/{path.lstrip('/')}"

    def send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        """One request (logged first while :meth:`recording`); a failure to get an answer is
        read into the error tree. The answer is returned as it is: see :meth:`raise_for`."""
        made = self.recorded
        if made is not None:
            prepared = requests.Request(method, url, params=kwargs.get("params")).prepare()
            made.append({"method": method, "url": prepared.url, "body": kwargs.get("json")})
        try:
            return self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise self.connection_error(exc, url) from None

    def send_dropping(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any],
        drop: tuple[str, ...],
        refused: Callable[[str, Any, requests.Response], None],
        **kwargs: Any,
    ) -> requests.Response:
        """:meth:`send`, for a query whose keys in ``drop`` (``$filter``, ``$select``) the
        platform may refuse with HTTP 400 (a property this instance lacks): each refused key is
        told to ``refused(key, value, response)`` and the request sent again without it. The
        caller re-checks on the client what the server no longer filters."""
        query = dict(params)
        response = self.send(method, url, params=query, **kwargs)
        for key in drop:
            if response.status_code == 400 and key in query:
                refused(key, query.pop(key), response)
                response = self.send(method, url, params=query, **kwargs)
        return response

    def connection_error(self, exc: Exception, url: str | None = None) -> CrosswalkError:
        """The error tree's reading of a request that got no answer."""
        return connection_error(
            exc, source=self.source.name, url=url or self.base, ca_bundle=self.source.ca_bundle
        )

    def failure(self, response: Any) -> Failure:
        """What a failed answer said, for the error table."""
        try:
            request = response.request
            url = str(response.url or "")
        except (AttributeError, RuntimeError):  # an httpx answer made up, not received
            request, url = None, ""
        return Failure(
            status=response.status_code,
            message=platform_message(response),
            code=error_code(response, self.spec.code_field),
            url=url,
            method=str(getattr(request, "method", "") or "").upper(),
            diagnostics=response.headers.get("x-ms-diagnostics", ""),
        )

    def raise_for(self, response: Any, what: str, **extra: Any) -> None:
        """Raise what a failed answer means (the platform's rules first, then the core's);
        return for a usable one (an HTML page where JSON was due is an AuthError)."""
        if response.status_code >= 300:
            failure = self.failure(response)
            rule = next((r for r in self.spec.errors if r.matches(failure)), None)
            if rule is not None:
                hint = self.credential_hint(**extra)
                said = f": {failure.message}" if failure.message else ""
                after = response.headers.get("Retry-After")
                context = self.values(
                    what=what,
                    status=failure.status,
                    message=failure.message or "no message",
                    said=said,
                    code=failure.code,
                    code_note=f" ({failure.code})" if failure.code else "",
                    hint=hint,
                    retry_after=f" (Retry-After {after}s)" if after else "",
                    **extra,
                )
                if "{errors}" in rule.message:
                    context["errors"] = spelt_out(response)
                raise rule.error(redact(rule.message.format_map(_Blank(context))))
        check_response(
            response,
            source=self.source.name,
            what=what,
            credential_hint=self.credential_hint(**extra),
        )

    def json(self, response: Any, what: str) -> Any:
        """The answer's JSON body (:func:`.http.json_body`); one that is not JSON is a malformed
        response."""
        try:
            return json_body(response)
        except ValueError:
            raise MalformedResponse(
                f"source {self.source.name}: {what} answered with a body that is not JSON"
            ) from None

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        context: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """:meth:`send` and :meth:`raise_for` (``context`` for its templates): a usable
        answer, or the error it means."""
        response = self.send(method, self.url(url), **kwargs)
        self.raise_for(response, what, **(context or {}))
        return response

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        *,
        what: str,
        context: Mapping[str, Any] | None = None,
    ) -> Any:
        """GET ``url`` (absolute, or relative to the base) and return its JSON body."""
        response = self.request("GET", url, what=what, context=context, params=dict(params or {}))
        return self.json(response, what)
