"""Intune and Entra ID through Microsoft Graph v1.0, with msgraph-sdk and azure-identity.

The SDK does what it is good at: request builders, authentication (azure-identity credentials
behind kiota's Azure provider, continuous-access-evaluation challenges included), national
clouds, and its middleware. The core HTTP policy does the rest, as for every adapter: its httpx
transport (:class:`~itcrosswalk.core.http_async.PolicyTransport`) sits under the middleware
and retries, backs off (from Graph's own 3 s after a 429 without ``Retry-After``), keeps the
deadline and the CA trust; token requests go through the policy's requests session. Bodies
are read as raw JSON through kiota's native response handler:
the SDK's typed models cost about 11 ms per managed device (msgraph-sdk-python#584), raw JSON
a few microseconds.

The SDK is asynchronous; the core's streams are not. Each adapter runs one event loop on its
own thread and submits every request to it, so the core's prefetch thread and the caller can
both send.

What Graph makes us do (``shared/platforms/intune.md``):

- managed devices have no delta query: every sync reads them in full and tombstones the ones
  that vanished (retired, wiped); every Intune stream is declared non-incremental;
- ``$filter`` on most device properties is silently ignored (or answered with a 500 carrying
  Intune's own JSON as a string), so any filter is re-checked on the client;
- ``$batch`` bundles up to 20 requests; its bodies are read raw because current kiota releases
  drop JSON-object bodies of batch responses (kiota-python#737).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import threading
import urllib.request
import warnings
from collections.abc import Coroutine, Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
from pydantic import Field, field_validator

from ...core.adapter import Adapter, Capabilities, Page, PlatformOptions, Probe, Stream, Window
from ...core.client import ErrorRule, HttpClient, PlatformSpec
from ...core.config import SourceConfig
from ...core.entra import app_credential
from ...core.errors import (
    AccessDenied,
    AuthError,
    ConfigError,
    ConnectError,
    CrosswalkError,
    MalformedResponse,
    NotFound,
    PlatformError,
    RetriableError,
)
from ...core.http import is_loopback, json_loads, parse_retry_after
from ...core.http_async import PolicyTransport, transport_error
from ...core.model import Record, normalize_serial
from ...core.paging import NextLinkPaginator
from ...core.secrets import redact
from . import mapping

log = logging.getLogger("itcrosswalk.intune")

# cloud -> (login authority, Graph root, Intune admin center)
CLOUDS: dict[str, tuple[str, str, str]] = {
    "global": (
        "https://login.microsoftonline.com",
        "https://graph.microsoft.com",
        "https://intune.microsoft.com",
    ),
    "usgov": (
        "https://login.microsoftonline.us",
        "https://graph.microsoft.us",
        "https://intune.microsoft.us",
    ),
    "dod": (
        "https://login.microsoftonline.us",
        "https://dod-graph.microsoft.us",
        "https://intune.microsoft.us",
    ),
}

DEVICES_READ = "DeviceManagementManagedDevices.Read.All"
CONFIG_READ = "DeviceManagementConfiguration.Read.All"
USERS_READ = "User.Read.All"

AUTH_TYPES = ("oauth_client_credentials", "client_certificate", "bearer")
DEVICE_PAGE = 1000  # Graph's most per page for managed devices
USER_PAGE = 999  # and for users
BATCH_SIZE = 20  # Graph's most requests per $batch
# Graph's throttling guidance after a 429 without Retry-After is an exponential backoff; its
# own SDKs start at 3 s (kiota's RetryHandlerOption.DEFAULT_DELAY).
GRAPH_THROTTLE_BACKOFF = 3.0

DEVICE_SELECT = [
    *mapping.DEVICE_FIELDS,
    "azureADDeviceId",
    "userId",
    "userDisplayName",
    "emailAddress",
    "deviceEnrollmentType",
    "jailBroken",
    "complianceGracePeriodExpirationDateTime",
]
USER_SELECT = [
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "department",
    "officeLocation",
    "accountEnabled",
    "createdDateTime",
    "jobTitle",
]


class IntuneOptions(PlatformOptions):
    """An Intune source's keys: the tenant, the cloud and its login host, the systems read, app
    devices."""

    tenant_id: str = Field(min_length=1)
    """The Entra ID tenant (directory) id or its primary domain."""
    cloud: Literal["global", "usgov", "dod"] = "global"
    """``global`` (also GCC), ``usgov`` (GCC High) or ``dod``: sets login and Graph hosts."""
    authority: str | None = None
    """The login host (``https://login.microsoftonline.us``); overrides the cloud's."""
    operating_systems: list[str] | None = None
    """Read only managed devices with these ``operatingSystem`` values (checked on the client)."""
    app_devices: bool = True
    """List the devices each detected app was found on ($batch, 20 apps per request)."""

    @field_validator("authority")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be an https:// URL (e.g. https://login.microsoftonline.us)")
        return value.rstrip("/") if value else value


_BUILDERS = (
    "device_management.device_management_request_builder",
    "device_management.managed_devices.managed_devices_request_builder",
    "device_management.device_compliance_policies.device_compliance_policies_request_builder",
    "device_management.device_compliance_policies.item.device_compliance_policy_item_request_builder",
    "device_management.device_compliance_policies.item.device_statuses.device_statuses_request_builder",
    "device_management.detected_apps.detected_apps_request_builder",
    "device_management.detected_apps.item.detected_app_item_request_builder",
    "device_management.detected_apps.item.managed_devices.managed_devices_request_builder",
    "users.users_request_builder",
)


def _import_sdk() -> dict[str, Any]:
    """The SDK's classes. Its generated request builders warn about their own deprecated
    classes when their modules are first imported; those warnings are the SDK's business."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
        from azure.core.pipeline.transport import RequestsTransport
        from kiota_abstractions.authentication import (
            AllowedHostsValidator,
            BaseBearerTokenAuthenticationProvider,
        )
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from kiota_abstractions.method import Method
        from kiota_abstractions.native_response_handler import NativeResponseHandler
        from kiota_abstractions.request_information import RequestInformation
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from kiota_http.kiota_client_factory import KiotaClientFactory
        from kiota_http.middleware import RetryHandler
        from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption
        from msgraph import GraphServiceClient
        from msgraph.graph_request_adapter import GraphRequestAdapter
        from msgraph.graph_request_adapter import options as graph_options
        from msgraph_core import GraphClientFactory
        from msgraph_core.middleware import GraphTelemetryHandler
        from msgraph_core.middleware.options import GraphTelemetryHandlerOption

        # Import every request builder this adapter navigates, once, under the filter.
        for module in _BUILDERS:
            importlib.import_module(f"msgraph.generated.{module}")
    return {
        "ClientAuthenticationError": ClientAuthenticationError,
        "ServiceRequestError": ServiceRequestError,
        "RequestsTransport": RequestsTransport,
        "AllowedHostsValidator": AllowedHostsValidator,
        "BaseBearerTokenAuthenticationProvider": BaseBearerTokenAuthenticationProvider,
        "RequestConfiguration": RequestConfiguration,
        "Method": Method,
        "NativeResponseHandler": NativeResponseHandler,
        "RequestInformation": RequestInformation,
        "AzureIdentityAuthenticationProvider": AzureIdentityAuthenticationProvider,
        "ResponseHandlerOption": ResponseHandlerOption,
        "RetryHandlerOption": RetryHandlerOption,
        "GraphServiceClient": GraphServiceClient,
        "GraphRequestAdapter": GraphRequestAdapter,
        "graph_options": graph_options,
        "GraphClientFactory": GraphClientFactory,
        "KiotaClientFactory": KiotaClientFactory,
        "RetryHandler": RetryHandler,
        "GraphTelemetryHandler": GraphTelemetryHandler,
        "GraphTelemetryHandlerOption": GraphTelemetryHandlerOption,
    }


class _StaticToken:
    """A kiota access-token provider for a bearer token obtained elsewhere."""

    def __init__(self, token: str, hosts: list[str], sdk: dict[str, Any]) -> None:
        self.token = token
        self.validator = sdk["AllowedHostsValidator"](hosts)

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: Any = None
    ) -> str:
        return self.token if self.validator.is_url_host_valid(uri) else ""

    def get_allowed_hosts_validator(self) -> Any:
        return self.validator


# The plumbing, as data: what to check when Entra ID or Graph refuse the app, and how Graph's
# refusals read (the auth itself is azure-identity's, behind kiota's provider).
SPEC = PlatformSpec(
    title="Intune",
    throttle_backoff=GRAPH_THROTTLE_BACKOFF,
    hints={
        "bearer": "the bearer token that `{token}` points to was refused (expired, or for "
        "another tenant than {tenant}?)",
        "oauth_client_credentials": "check the client secret that `{client_secret}` points to "
        "(app {client_id} in tenant {tenant}; secrets expire)",
        "client_certificate": "check the certificate {certificate_path} registered for app "
        "{client_id} in tenant {tenant}",
    },
    errors=(
        ErrorRule(
            401,
            AuthError,
            "authentication failed for source {source} (HTTP 401 from Graph{said}); {hint}",
        ),
        ErrorRule(
            403,
            AccessDenied,
            "source {source} may not read {what} (HTTP 403{said}): missing Microsoft Graph "
            "application permission {permission}: grant it to the app registration and have an "
            "admin consent",
        ),
        ErrorRule(
            404,
            NotFound,
            "source {source}: {what} was not found (HTTP 404{said}); is Intune licensed in "
            "this tenant?",
        ),
        ErrorRule(
            (429, *range(500, 600)),
            RetriableError,
            "source {source}: {what} still failed with HTTP {status}{retry_after} after the "
            "SDK's retries{said}; Graph may be throttling or down; try again later",
        ),
    ),
)


class IntuneAdapter(Adapter, platform="intune", options=IntuneOptions):
    """One Entra ID tenant's Intune and directory, read through Microsoft Graph."""

    def __init__(self, source: SourceConfig, secrets: Any, **kwargs: Any) -> None:
        super().__init__(source, secrets, **kwargs)
        login, graph_root, self.portal = CLOUDS[self.options.cloud]
        base = (source.url or f"{graph_root}/v1.0").rstrip("/")
        parts = urlsplit(base)
        if parts.scheme != "https" and not is_loopback(parts.hostname):
            raise ConfigError(
                f"sources.{source.name}.url: Microsoft Graph is HTTPS only; use https://"
            )
        if parts.path in ("", "/"):
            base += "/v1.0"  # a bare host means Graph's v1.0 endpoint
        self.base = base
        self.host = parts.hostname or ""
        if self.options.authority:
            self.authority = self.options.authority
        elif source.url and is_loopback(parts.hostname):
            # An emulator on this machine serves its own token endpoint (the sandbox).
            self.authority = f"{parts.scheme}://{parts.netloc}"
        else:
            self.authority = login
        self.scope = f"{graph_root}/.default"
        auth = source.auth
        if auth is None or auth.type not in AUTH_TYPES:
            # Said at once, not by every stream in turn.
            raise ConfigError(
                f"sources.{source.name}.auth: Intune takes type {', '.join(AUTH_TYPES)}"
                + (f", not {auth.type!r}" if auth is not None else "")
            )
        self.http = HttpClient(
            source, secrets, SPEC, base=base, hint_values=lambda: {"tenant": self.options.tenant_id}
        )
        self.policy = self.http.policy
        self._sdk: dict[str, Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._request_adapter: Any = None
        self._http: httpx.AsyncClient | None = None
        self._counter: PolicyTransport | None = None
        self._credential: Any = None
        self._token_session: Any = None
        self._lock = threading.Lock()

    # -- the client ---------------------------------------------------------------------------

    @property
    def sdk(self) -> dict[str, Any]:
        if self._sdk is None:
            self._sdk = _import_sdk()
        return self._sdk

    def _auth_provider(self) -> Any:
        sdk = self.sdk
        auth = self.source.auth
        name = self.source.name
        hosts = [self.host]
        if auth is None:
            raise ConfigError(
                f"sources.{name}.auth: Intune needs credentials (type oauth_client_credentials, client_certificate or bearer)"
            )
        if auth.type == "bearer":
            token = self.secrets(auth.token, "auth.token")
            return sdk["BaseBearerTokenAuthenticationProvider"](_StaticToken(token, hosts, sdk))
        if auth.type not in ("oauth_client_credentials", "client_certificate"):
            raise ConfigError(
                f"sources.{name}.auth.type: {auth.type!r} is not supported by Intune "
                "(use oauth_client_credentials, client_certificate or bearer)"
            )
        if auth.type == "oauth_client_credentials" and auth.token_url:
            raise ConfigError(
                f"sources.{name}.auth.token_url: not used by Intune; set `cloud` or `authority` instead"
            )
        credential = app_credential(
            auth,
            self.secrets,
            source=name,
            tenant=self.options.tenant_id,
            authority=self.authority,
            transport=self._token_transport(),
        )
        self._credential = credential
        return sdk["AzureIdentityAuthenticationProvider"](
            credential, scopes=[self.scope], allowed_hosts=hosts
        )

    def _token_transport(self) -> Any:
        # Token requests go through the core HTTP policy: the CA bundle, timeouts, retries.
        session = self.http.new_session(self.authority)
        self._token_session = session
        return self.sdk["RequestsTransport"](session=session, session_owner=False)

    def _http_client(self) -> httpx.AsyncClient:
        sdk = self.sdk
        # The environment's proxy is applied here, on the one transport, so the CA trust and
        # the request count hold for proxied requests too (httpx's own env proxies would not).
        proxy = (
            None
            if urllib.request.proxy_bypass(self.host)
            else urllib.request.getproxies().get("https")
        )
        self._counter = PolicyTransport(
            self.policy, source=self.source.name, ca_bundle=self.source.ca_bundle, proxy=proxy
        )
        client = httpx.AsyncClient(
            transport=self._counter,
            timeout=httpx.Timeout(self.policy.read_timeout, connect=self.policy.connect_timeout),
            trust_env=False,
        )
        options = dict(sdk["graph_options"])
        # The core transport retries under the source's policy; the SDK's retry handler on top
        # would multiply the attempts and wait its own way.
        middleware = [
            handler
            for handler in sdk["KiotaClientFactory"].get_default_middleware(options)
            if not isinstance(handler, sdk["RetryHandler"])
        ]
        telemetry = options[sdk["GraphTelemetryHandlerOption"].get_key()]
        middleware.append(sdk["GraphTelemetryHandler"](options=telemetry))
        return sdk["GraphClientFactory"].create_with_custom_middleware(middleware, client=client)

    @property
    def client(self) -> Any:
        """The ``GraphServiceClient``, built on first use."""
        with self._lock:
            if self._client is None:
                sdk = self.sdk
                provider = self._auth_provider()
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, daemon=True, name=f"graph-{self.source.name}"
                )
                self._thread.start()
                self._http = self._http_client()
                adapter = sdk["GraphRequestAdapter"](provider, self._http)
                adapter.base_url = self.base
                self._request_adapter = adapter
                self._client = sdk["GraphServiceClient"](request_adapter=adapter)
            return self._client

    @property
    def requests_made(self) -> int:
        graph = self._counter.sent if self._counter else 0
        tokens = getattr(getattr(self._token_session, "policy_adapter", None), "sent", 0)
        return graph + int(tokens)

    def telemetry(self) -> dict[str, Any]:
        if self._counter is None:
            return super().telemetry()
        summary = self._counter.telemetry.summary()
        summary["requests"] = self.requests_made  # token requests included
        return summary

    def close(self) -> None:
        with self._lock:
            loop, http = self._loop, self._http
            if loop is not None and http is not None:
                try:
                    asyncio.run_coroutine_threadsafe(http.aclose(), loop).result(timeout=10)
                except Exception:  # closing is best effort
                    pass
            if loop is not None:
                loop.call_soon_threadsafe(loop.stop)
                if self._thread is not None:
                    self._thread.join(timeout=10)
                loop.close()
            if self._credential is not None:
                self._credential.close()
            if self._token_session is not None:
                self._token_session.close()
            self._loop = self._thread = self._http = self._client = self._credential = None

    # -- one request ------------------------------------------------------------------------

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def request_for(self, url: str, method: str = "GET", body: Any = None) -> Any:
        """A kiota request for an absolute URL (a next link) or the ``$batch`` endpoint."""
        sdk = self.sdk
        info = sdk["RequestInformation"](getattr(sdk["Method"], method))
        info.url = url
        info.headers.try_add("Accept", "application/json")
        if body is not None:
            info.content = json.dumps(body).encode()
            info.headers.try_add("Content-Type", "application/json")
        return info

    def send(self, info: Any, *, what: str, permission: str) -> dict[str, Any]:
        """Send one request through the SDK's pipeline and return its JSON body, or raise the
        error the response means."""
        sdk = self.sdk
        adapter = self._request_adapter
        info.add_request_options([sdk["ResponseHandlerOption"](sdk["NativeResponseHandler"]())])
        try:
            response = self._run(adapter.send_primitive_async(info, "bytes", None))
        except CrosswalkError:
            raise
        except (sdk["ClientAuthenticationError"], sdk["ServiceRequestError"]) as exc:
            raise self._login_error(exc) from None
        except httpx.HTTPError as exc:
            raise transport_error(
                exc, source=self.source.name, url=self.base, ca_bundle=self.source.ca_bundle
            ) from None
        self.http.raise_for(response, what, permission=permission)
        try:
            body = json_loads(response.content)
        except ValueError:
            raise MalformedResponse(
                f"source {self.source.name}: {what} answered with a body that is not JSON"
            ) from None
        if not isinstance(body, dict):
            raise MalformedResponse(
                f"source {self.source.name}: {what} answered with JSON that is not an object"
            )
        return body

    def list_page(
        self, info: Any, *, what: str, permission: str
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of a Graph collection: its records and the absolute next link."""
        body = self.send(info, what=what, permission=permission)
        records = body.get("value")
        if not isinstance(records, list):
            raise MalformedResponse(
                f"source {self.source.name}: {what} answered without a `value` list"
            )
        link = body.get("@odata.nextLink")
        if link is not None:
            if not isinstance(link, str) or urlsplit(link).hostname != self.host:
                # The token is only ever sent to the configured Graph host.
                raise PlatformError(
                    f"source {self.source.name}: {what} gave a next link to another host; refusing to follow it"
                )
        return [r for r in records if isinstance(r, dict)], link

    def _login_error(self, exc: Exception) -> CrosswalkError:
        """What a failed token request means: the login endpoint unreachable (azure-identity
        reports that as an authentication failure too), or Entra ID refusing the app."""
        text = str(getattr(exc, "message", None) or exc)
        name = self.source.name
        if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text:
            store = str(self.source.ca_bundle) if self.source.ca_bundle else "the default CA store"
            return ConnectError(
                f"TLS verification failed for source {name} (login endpoint {self.authority}): the "
                f"certificate is not trusted by {store}; for an internal CA or a TLS-inspecting proxy "
                f'set ca_bundle = "/path/ca.pem" in [sources.{name}]'
            )
        if "AADSTS" not in text and any(
            sign in text
            for sign in (
                "Max retries exceeded",
                "Connection refused",
                "NameResolution",
                "timed out",
            )
        ):
            return ConnectError(
                redact(
                    f"cannot reach the Entra ID login endpoint {self.authority} for source {name}: "
                    f"{text.splitlines()[0][:160]}; check the network, `cloud` and `authority`"
                )
            )
        return self._auth_error(text)

    def _auth_error(self, text: str) -> AuthError:
        lines = [line.strip() for line in str(text).splitlines() if line.strip()]
        said = next((line for line in lines if "AADSTS" in line), lines[0] if lines else "refused")
        said = said.split("Trace ID")[0].strip()
        if len(said) > 240:
            said = said[:237] + "..."
        auth = self.source.auth
        app = getattr(auth, "client_id", "?")
        return AuthError(
            redact(
                f"authentication failed for source {self.source.name}: Entra ID tenant {self.options.tenant_id} "
                f"refused app {app} ({said}); {self.http.credential_hint()}"
            )
        )

    # -- $batch -------------------------------------------------------------------------------

    def batch_get(
        self, paths: list[str], *, what: str, permission: str
    ) -> dict[str, dict[str, Any] | CrosswalkError]:
        """GET up to 20 relative paths in one ``$batch`` request; each answer is its JSON body,
        or the error it means. Items throttled inside the batch are sent again after their
        ``Retry-After``, else the core policy's backoff (the transport only sees the batch's own
        status)."""
        if len(paths) > BATCH_SIZE:
            raise ValueError(f"a $batch takes at most {BATCH_SIZE} requests")
        pending = {str(i): path for i, path in enumerate(paths)}
        results: dict[str, dict[str, Any] | CrosswalkError] = {}
        waited = 0.0
        for attempt in range(self.policy.max_retries + 1):
            body = {
                "requests": [
                    {"id": key, "method": "GET", "url": path} for key, path in pending.items()
                ]
            }
            answer = self.send(
                self.request_for(f"{self.base}/$batch", "POST", body),
                what=what,
                permission=permission,
            )
            responses = answer.get("responses")
            if not isinstance(responses, list):
                raise MalformedResponse(
                    f"source {self.source.name}: $batch for {what} answered without `responses`"
                )
            retry_after = 0.0
            why = "Retry-After"
            for item in responses:
                key = str(item.get("id")) if isinstance(item, dict) else None
                if key not in pending:
                    continue
                status = int(item.get("status") or 0)
                headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
                content = _batch_body(item.get("body"))
                if status in (429, 503, 504) and attempt < self.policy.max_retries:
                    after = parse_retry_after(headers.get("retry-after"))
                    if after is None:
                        # Each batch round that met a 429 is one more throttled attempt.
                        throttled = attempt + 1 if status == 429 else 0
                        after, why = self.policy.backoff(attempt + 1, throttled=throttled)
                    retry_after = max(retry_after, after)
                    continue
                path = pending.pop(key)
                if status < 400 and isinstance(content, dict):
                    results[path] = content
                    continue
                fake = httpx.Response(
                    status or 500,
                    headers=headers,
                    content=json.dumps(content).encode() if content is not None else b"",
                )
                try:
                    self.http.raise_for(fake, what, permission=permission)
                    raise MalformedResponse(
                        f"source {self.source.name}: $batch item for {what} has no JSON body"
                    )
                except CrosswalkError as exc:
                    results[path] = exc
            if not pending:
                break
            if waited + retry_after > self.policy.max_wait:
                break
            log.info(
                "source %s: %d $batch items throttled, waiting %.3gs (%s)",
                self.source.name,
                len(pending),
                retry_after,
                why,
            )
            if retry_after > 0:
                self.policy.sleep(retry_after)
            waited += retry_after
        for path in pending.values():
            results[path] = RetriableError(
                f"source {self.source.name}: {what}: a $batch item stayed throttled; try again later"
            )
        return results

    # -- the adapter contract -----------------------------------------------------------------

    def streams(self) -> list[Stream]:
        return [ManagedDevices(self), DeviceStatuses(self), DetectedApps(self), Users(self)]

    def probes(self) -> list[Probe]:
        checks = [
            ("managedDevices", DEVICES_READ, lambda: ManagedDevices(self).first_request(top=1)),
            (
                "deviceStatuses",  # the stream's name, though it asks for the policies first
                CONFIG_READ,
                lambda: DeviceStatuses(self).policies_request(),
            ),
            ("detectedApps", DEVICES_READ, lambda: DetectedApps(self).first_request()),
            ("users", USERS_READ, lambda: Users(self).first_request(top=1)),
        ]
        return [
            Probe(name, lambda n=name, p=permission, b=build: self._probe(n, p, b))
            for name, permission, build in checks
        ]

    def _probe(self, name: str, permission: str, build: Any) -> str:
        self.client  # noqa: B018 - builds the credential, so config errors surface here
        _records, link = self.list_page(build(), what=name, permission=permission)
        return f"readable with {permission}" + (" (more pages)" if link else "")

    def capabilities(self) -> Capabilities:
        return Capabilities(
            entities={
                "device": (
                    "name serial os os_version owner enrolled_at last_seen_at compliance "
                    "encrypted manufacturer model management_agent ownership"
                ).split(),
                "device_compliance": "device_id policy_id policy_name state last_reported_at".split(),
                "installed_app": ["name", "version", "publisher", "device_count", "device_ids"],
                "person": ["upn", "email", "name", "department", "office", "manager", "active"],
            },
            writes=[],
            auth_types=list(AUTH_TYPES),
            permissions=[DEVICES_READ, CONFIG_READ, USERS_READ],
        )


def _batch_body(body: Any) -> Any:
    """A $batch item's body: a JSON object, or a base64 string when Graph thought it binary."""
    if isinstance(body, str):
        import base64

        try:
            return json.loads(base64.b64decode(body, validate=True))
        except ValueError:
            try:
                return json.loads(body)
            except ValueError:
                return None
    return body


# -- streams -------------------------------------------------------------------------------------


class GraphStream(Stream):
    """A Graph collection read in full by following ``@odata.nextLink``."""

    key = "id"
    incremental = False  # no delta query on Intune resources: full reads, tombstones
    permission = DEVICES_READ
    what = ""

    def __init__(self, adapter: IntuneAdapter) -> None:
        self.adapter = adapter
        self.paginator = NextLinkPaginator()

    def first_request(self) -> Any:
        raise NotImplementedError

    def keep(self, raw: Mapping[str, Any]) -> bool:
        """Whether a record belongs to the read (filters Graph may have ignored)."""
        return True

    def fetch(self, token: Any, window: Window) -> Page:
        adapter = self.adapter
        adapter.client  # noqa: B018 - builds the client on first use
        url = token.get("url") if isinstance(token, Mapping) else None
        info = adapter.request_for(url) if url else self.first_request()
        records, link = adapter.list_page(info, what=self.what, permission=self.permission)
        return Page(records=[r for r in records if self.keep(r)], next_hint=link)


class ManagedDevices(GraphStream):
    """``/deviceManagement/managedDevices`` as devices."""

    name = "managedDevices"
    entity = "device"
    what = "managed devices (/deviceManagement/managedDevices)"

    def __init__(self, adapter: IntuneAdapter) -> None:
        super().__init__(adapter)
        self.serials: dict[str, str] = {}
        self.duplicates: dict[str, str] = {}
        wanted = adapter.options.operating_systems
        self.systems = {s.casefold() for s in wanted} if wanted else None

    def first_request(self, top: int | None = None) -> Any:
        builder = self.adapter.client.device_management.managed_devices
        params = builder.ManagedDevicesRequestBuilderGetQueryParameters(
            select=DEVICE_SELECT,
            top=top or min(self.adapter.source.page_size or DEVICE_PAGE, DEVICE_PAGE),
        )
        if self.systems:
            params.filter = " or ".join(
                f"operatingSystem eq '{s}'" for s in self.adapter.options.operating_systems or []
            )
        return builder.to_get_request_information(
            self.adapter.sdk["RequestConfiguration"](query_parameters=params)
        )

    def keep(self, raw: Mapping[str, Any]) -> bool:
        if self.systems is None:
            return True
        system = raw.get("operatingSystem")
        return isinstance(system, str) and system.casefold() in self.systems

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        return mapping.parse_datetime(raw.get("lastSyncDateTime"))

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        for raw in raws:
            device_id = raw.get("id")
            key = normalize_serial(mapping.clean_serial(raw.get("serialNumber")))
            if not key or not isinstance(device_id, str):
                continue
            first = self.serials.setdefault(key, device_id)
            if first != device_id and device_id not in self.duplicates:
                self.duplicates[device_id] = first
                log.warning(
                    "source %s: managed devices %s and %s report the same serial number %s; "
                    "both are kept (a re-enrolment or a cloned image?)",
                    self.adapter.source.name,
                    first,
                    device_id,
                    key,
                )

    def map(self, raw: Mapping[str, Any]) -> Record:
        record = mapping.map_device(
            raw, source=self.adapter.source.name, portal=self.adapter.portal
        )
        twin = self.duplicates.get(record.source_id)
        if twin is not None:
            record.extra["duplicate_serial_of"] = twin
        return record


class PolicyPaginator:
    """Walks every compliance policy, then each policy's ``deviceStatuses`` by next link.

    Tokens: ``{"phase": "policies" | "statuses", "policies": [[id, name], ...], "i", "url"}``;
    the policy list travels in the token, so a resumed read knows where it was.
    """

    def first(self, window: Window) -> Any:
        return {"phase": "policies", "policies": [], "i": 0, "url": None}

    def next(self, token: Any, page: Page) -> Any | None:
        hint = page.next_hint or {}
        link = hint.get("link")
        policies = hint.get("policies", token["policies"])
        if link:
            return {**token, "policies": policies, "url": link}
        if token["phase"] == "policies":
            if not policies:
                return None
            return {"phase": "statuses", "policies": policies, "i": 0, "url": None}
        if token["i"] + 1 < len(policies):
            return {**token, "i": token["i"] + 1, "url": None}
        return None


class DeviceStatuses(Stream):
    """Every compliance policy's per-device verdicts: one list per policy, ~1000 rows a page,
    so requests grow with policies and pages, never one per device."""

    name = "deviceStatuses"
    entity = "device_compliance"
    key = "id"
    incremental = False
    what = "compliance policies (/deviceManagement/deviceCompliancePolicies)"
    linked = (("evaluates", "device", "device_id"),)

    def __init__(self, adapter: IntuneAdapter) -> None:
        self.adapter = adapter
        self.paginator = PolicyPaginator()

    def policies_request(self) -> Any:
        builder = self.adapter.client.device_management.device_compliance_policies
        params = builder.DeviceCompliancePoliciesRequestBuilderGetQueryParameters(
            select=["id", "displayName"]
        )
        return builder.to_get_request_information(
            self.adapter.sdk["RequestConfiguration"](query_parameters=params)
        )

    def fetch(self, token: Any, window: Window) -> Page:
        adapter = self.adapter
        adapter.client  # noqa: B018
        url = token.get("url")
        if token["phase"] == "policies":
            info = adapter.request_for(url) if url else self.policies_request()
            raws, link = adapter.list_page(info, what=self.what, permission=CONFIG_READ)
            found = [[p["id"], p.get("displayName")] for p in raws if isinstance(p.get("id"), str)]
            return Page(records=[], next_hint={"policies": token["policies"] + found, "link": link})
        policy_id, policy_name = token["policies"][token["i"]]
        if url:
            info = adapter.request_for(url)
        else:
            info = adapter.client.device_management.device_compliance_policies.by_device_compliance_policy_id(
                policy_id
            ).device_statuses.to_get_request_information()
        raws, link = adapter.list_page(
            info,
            what=f"device statuses of compliance policy {policy_name or policy_id}",
            permission=CONFIG_READ,
        )
        for raw in raws:
            raw[mapping.POLICY_ID] = policy_id
            raw[mapping.POLICY_NAME] = policy_name
        return Page(records=raws, next_hint={"link": link})

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        return mapping.parse_datetime(raw.get("lastReportedDateTime"))

    def map(self, raw: Mapping[str, Any]) -> Record:
        return mapping.map_device_status(
            raw, source=self.adapter.source.name, portal=self.adapter.portal
        )


class DetectedApps(GraphStream):
    """``/deviceManagement/detectedApps``, with the devices of 20 apps per ``$batch``."""

    name = "detectedApps"
    entity = "installed_app"
    what = "detected apps (/deviceManagement/detectedApps)"

    def __init__(self, adapter: IntuneAdapter) -> None:
        super().__init__(adapter)
        self.devices: dict[str, list[str] | None] = {}

    def first_request(self) -> Any:
        return self.adapter.client.device_management.detected_apps.to_get_request_information()

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        if not self.adapter.options.app_devices:
            return
        ids = [r["id"] for r in raws if isinstance(r.get("id"), str)]
        for start in range(0, len(ids), BATCH_SIZE):
            chunk = ids[start : start + BATCH_SIZE]
            paths = {
                f"/deviceManagement/detectedApps/{i}/managedDevices?$select=id": i for i in chunk
            }
            answers = self.adapter.batch_get(
                list(paths), what="devices of detected apps", permission=DEVICES_READ
            )
            for path, app_id in paths.items():
                answer = answers.get(path)
                if isinstance(answer, CrosswalkError):
                    log.warning(
                        "source %s: devices of detected app %s not listed: %s",
                        self.adapter.source.name,
                        app_id,
                        answer,
                    )
                    self.devices[app_id] = None
                    continue
                assert answer is not None
                self.devices[app_id] = self._device_ids(answer)

    def _device_ids(self, body: dict[str, Any]) -> list[str]:
        found = [d["id"] for d in body.get("value") or [] if isinstance(d, dict) and "id" in d]
        link = body.get("@odata.nextLink")
        while isinstance(link, str) and link:
            more, link = self.adapter.list_page(
                self.adapter.request_for(link),
                what="devices of a detected app",
                permission=DEVICES_READ,
            )
            found += [d["id"] for d in more if "id" in d]
        return found

    def map(self, raw: Mapping[str, Any]) -> Record:
        devices = self.devices.get(str(raw.get("id")))
        if devices is not None:
            raw = {**raw, mapping.APP_DEVICES: devices}
        return mapping.map_detected_app(
            raw, source=self.adapter.source.name, portal=self.adapter.portal
        )


class Users(GraphStream):
    """Entra ID ``/users`` as people, each with its manager through ``$expand``."""

    name = "users"
    entity = "person"
    permission = USERS_READ
    what = "users (/users)"

    def first_request(self, top: int | None = None) -> Any:
        builder = self.adapter.client.users
        params = builder.UsersRequestBuilderGetQueryParameters(
            # department and accountEnabled only come when asked for by name.
            select=USER_SELECT,
            expand=["manager($select=id,userPrincipalName,mail)"],
            top=top or min(self.adapter.source.page_size or USER_PAGE, USER_PAGE),
        )
        return builder.to_get_request_information(
            self.adapter.sdk["RequestConfiguration"](query_parameters=params)
        )

    def map(self, raw: Mapping[str, Any]) -> Record:
        return mapping.map_user(raw, source=self.adapter.source.name, portal=self.adapter.portal)

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        return None
