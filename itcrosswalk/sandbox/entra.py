"""Entra ID (the Microsoft identity platform, v2.0 endpoints) on loopback: the sign-in every
Microsoft platform emulator shares (Intune's Graph, Project Online, Dataverse / Planner premium).

It runs, as ``login.microsoftonline.com`` answers them:

- ``GET /{tenant}/v2.0/.well-known/openid-configuration`` (what MSAL and azure-identity read
  first), with the cloud's ``cloud_instance_name`` and ``msgraph_host``;
- ``POST /{tenant}/oauth2/v2.0/token`` with the grants
  ``client_credentials`` (a client secret in the form or in HTTP basic, or a certificate
  assertion, RFC 7523, verified against the app's registered certificate),
  ``urn:ietf:params:oauth:grant-type:device_code`` (RFC 8628: ``authorization_pending`` until
  the user approves, ``authorization_declined``, ``expired_token``) and ``refresh_token``
  (a new refresh token with every answer; an unknown, revoked or expired one is ``AADSTS70008``);
- ``POST /{tenant}/oauth2/v2.0/devicecode`` and the page a person approves a code on,
  ``POST /common/oauth2/deviceauth`` (form ``user_code``, ``user``, ``password``);
- the real error bodies (``error``, ``error_description`` with ``AADSTS<code>: ...`` and the
  trace lines, ``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``, ``error_uri``)
  for an unknown tenant (90002), unknown app (700016), wrong secret (7000215), expired secret
  (7000222), bad assertion (700027), client credentials without ``/.default`` (1002012), a
  resource of another national cloud (500011), ``/common`` for an app-only token (50059), a
  missing parameter (900144) and an unsupported grant (70003).

Access tokens are unsigned JWTs (``alg: none``) whose claims say ``aud``, ``tid``, ``appid``,
``scp`` or ``idtyp: app`` and ``exp``; the emulator keeps each one's :class:`Grant`, and that
record, not the claims, is what counts.

**Mounting it in an emulator** (all it takes; the lock and the request log stay the host's)::

    class MyEmulator(Emulator):
        def __init__(self, world, faults, *, users, apps=None, tenant=None, cloud="global"):
            self.entra = Entra(tenant=tenant, apps=apps, users=users, cloud=cloud)
            ...

        def dispatch(self, environ, method, path, query):
            if self.entra.handles(path):
                return self.entra.serve(environ, method, path)   # before faults and auth
            grant = self.entra.bearer(environ)   # Grant | None (None: no bearer, or unknown)
            if grant is None or grant.expired:
                return <the platform's own 401>
            if grant.app_only and <the platform refuses app-only tokens>: ...
            if grant.audience != "https://org.crm.dynamics.com": ...  # the resource asked for

Tests drive it through the same object: ``entra.issue_token(...)`` for a bearer-auth source,
``expire_tokens()``, ``revoke_tokens()`` (continuous access evaluation: ``entra.revoked(token)``),
``expired_secrets``, ``token_lifetime``, ``pending()`` / ``approve(user_code, user)`` /
``decline(user_code)`` to play the person at the browser, ``revoke_refresh_tokens()``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, unquote

Response = tuple[str, list[tuple[str, str]], bytes]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OIDC_SCOPES = frozenset({"openid", "profile", "email", "offline_access"})
TENANT_ALIASES = frozenset({"common", "organizations", "consumers"})
USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class Cloud:
    """A national cloud as its sign-in service describes itself."""

    login: str
    instance: str
    graph: str


CLOUDS: dict[str, Cloud] = {
    "global": Cloud("login.microsoftonline.com", "microsoftonline.com", "graph.microsoft.com"),
    "usgov": Cloud("login.microsoftonline.us", "microsoftonline.us", "graph.microsoft.us"),
    "dod": Cloud("login.microsoftonline.us", "microsoftonline.us", "dod-graph.microsoft.us"),
    "china": Cloud(
        "login.chinacloudapi.cn", "partner.microsoftonline.cn", "microsoftgraph.chinacloudapi.cn"
    ),
}
"""Each cloud's login host, ``cloud_instance_name`` and Graph host (a token for another cloud's
Graph is refused with AADSTS500011)."""


@dataclass
class Grant:
    """What an access token stands for."""

    subject: str
    """The app's client id (app-only) or the signed-in user's name (delegated)."""
    client_id: str
    scope: str
    expires: float
    app_only: bool

    @property
    def audience(self) -> str:
        """The resource the token is for: the scope without its last path segment
        (``https://org.crm.dynamics.com/.default`` -> ``https://org.crm.dynamics.com``)."""
        first = next((s for s in self.scope.split() if s not in OIDC_SCOPES), "")
        return first.rsplit("/", 1)[0] if "/" in first.split("://", 1)[-1] else first

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires


@dataclass
class DeviceCode:
    """A device code handed out, waiting for the person to approve it."""

    device_code: str
    user_code: str
    client_id: str
    scope: str
    expires: float
    user: str | None = None
    declined: bool = False


@dataclass
class _Refresh:
    user: str
    client_id: str
    scope: str
    expires: float


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Entra:
    """One Entra ID tenant (or, with ``tenant=None``, any tenant name) and its app registrations.

    Args:
        tenant: the tenant id served; another answers AADSTS90002. None accepts any name.
        apps: client id -> client secret of confidential apps (client credentials).
        certificates: client id -> PEM certificate whose key signs that app's assertions.
        users: user name -> password of the people who may approve a device code
            (``DOMAIN\\name`` keys match ``name``, case-insensitively).
        public_clients: client ids allowed the device-code flow; None allows any client id.
        cloud: a key of :data:`CLOUDS`.
        token_lifetime: seconds an access token really lives (may be less than advertised).
        advertised_lifetime: the ``expires_in`` the token answer states.
        refresh_lifetime: seconds a refresh token stays usable.
        device_code_lifetime: seconds a device code waits for approval.
        poll_interval: the ``interval`` a device-code answer asks the client to poll at.
    """

    tenant: str | None = None
    apps: dict[str, str] = field(default_factory=dict)
    certificates: dict[str, bytes] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)
    public_clients: set[str] | None = None
    cloud: str = "global"
    token_lifetime: float = 3600
    advertised_lifetime: int = 3599
    refresh_lifetime: float = 90 * 86400
    device_code_lifetime: int = 900
    poll_interval: int = 1
    expired_secrets: set[str] = field(default_factory=set)
    """Client ids whose secret has expired (AADSTS7000222)."""
    tokens: dict[str, Grant] = field(default_factory=dict)
    device_codes: dict[str, DeviceCode] = field(default_factory=dict)
    refresh_tokens: dict[str, _Refresh] = field(default_factory=dict)
    revoked_tokens: set[str] = field(default_factory=set)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def __post_init__(self) -> None:
        if self.cloud not in CLOUDS:
            raise ValueError(f"unknown cloud {self.cloud!r}; one of {', '.join(CLOUDS)}")
        self.apps = dict(self.apps)
        self.certificates = dict(self.certificates)
        self.users = dict(self.users)

    # -- mounting ---------------------------------------------------------------------------------

    _PATH = re.compile(r"^/([^/]+)/(oauth2/|v2\.0/|discovery/)")

    def handles(self, path: str) -> bool:
        """Whether ``path`` is one of the sign-in endpoints (``/{tenant}/oauth2/...``,
        ``/{tenant}/v2.0/...``, ``/{tenant}/discovery/...``)."""
        return bool(self._PATH.match(path)) or (
            self.tenant is not None and path.startswith(f"/{self.tenant}/")
        )

    def serve(self, environ: dict[str, Any], method: str, path: str) -> Response:
        """Answer a request :meth:`handles` accepted."""
        origin = f"https://{environ.get('HTTP_HOST') or environ.get('SERVER_NAME', '127.0.0.1')}"
        tenant, _, rest = path.strip("/").partition("/")
        known = self.tenant is None or tenant == self.tenant or tenant in TENANT_ALIASES
        if not known:
            return self.error(
                "400 Bad Request",
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID "
                "and are signing into the correct cloud. Check with your subscription "
                "administrator, this may happen if there are no active subscriptions for the tenant.",
            )
        if method == "GET" and rest == "v2.0/.well-known/openid-configuration":
            return self._json("200 OK", self.openid_configuration(origin, tenant))
        if method == "GET" and rest == "discovery/v2.0/keys":
            return self._json("200 OK", {"keys": []})
        if method != "POST":
            return self.error(
                "405 Method Not Allowed",
                "invalid_request",
                900561,
                "The endpoint only accepts POST requests. Received a GET request.",
            )
        form = _form(environ)
        if rest == "oauth2/v2.0/token":
            return self._token(environ, form, tenant)
        if rest == "oauth2/v2.0/devicecode":
            return self._device_code(form, origin)
        if rest == "oauth2/deviceauth":
            return self._device_auth(form)
        return self.error(
            "404 Not Found", "invalid_request", 900561, f"The endpoint /{rest} does not exist."
        )

    def bearer(self, environ: dict[str, Any]) -> Grant | None:
        """The grant behind the request's ``Authorization: Bearer`` token; None when there is
        none or the token is unknown (check ``.expired`` and ``.app_only`` yourself)."""
        header = environ.get("HTTP_AUTHORIZATION", "")
        if header[:7].lower() != "bearer ":
            return None
        return self.grant(header[7:].strip())

    def grant(self, token: str) -> Grant | None:
        with self.lock:
            return self.tokens.get(token)

    def revoked(self, environ_or_token: dict[str, Any] | str) -> bool:
        """Whether a request's bearer token (or a token) was revoked by :meth:`revoke_tokens`."""
        token = environ_or_token
        if isinstance(token, dict):
            token = token.get("HTTP_AUTHORIZATION", "")[7:].strip()
        with self.lock:
            return token in self.revoked_tokens

    # -- switches for tests -----------------------------------------------------------------------

    def issue_token(
        self,
        subject: str,
        lifetime: float | None = None,
        *,
        app_only: bool = True,
        scope: str = "",
        client_id: str | None = None,
    ) -> str:
        """An access token for ``subject``, as if obtained elsewhere (a bearer-auth source)."""
        expires = time.time() + (self.token_lifetime if lifetime is None else lifetime)
        grant = Grant(subject, client_id or subject, scope, expires, app_only)
        claims: dict[str, Any] = {
            "aud": grant.audience,
            "iss": f"https://sts.windows.net/{self.tenant or 'common'}/",
            "tid": self.tenant or "common",
            "appid": grant.client_id,
            "exp": int(expires),
            "iat": int(time.time()),
            "uti": secrets.token_urlsafe(16),
        }
        if app_only:
            claims["idtyp"] = "app"
        else:
            claims["upn"] = subject
            claims["scp"] = " ".join(s.rsplit("/", 1)[-1] for s in scope.split())
        head = _b64(json.dumps({"typ": "JWT", "alg": "none"}).encode())
        token = f"{head}.{_b64(json.dumps(claims).encode())}.{secrets.token_urlsafe(24)}"
        with self.lock:
            self.tokens[token] = grant
        return token

    def expire_tokens(self) -> None:
        """Every access token issued so far is forgotten (as after its lifetime)."""
        with self.lock:
            self.tokens.clear()

    def revoke_tokens(self) -> None:
        """Continuous access evaluation revokes every token before its lifetime ends (a password
        reset, a disabled app); the resource answers with a claims challenge."""
        with self.lock:
            self.revoked_tokens.update(self.tokens)
            self.tokens.clear()

    def revoke_refresh_tokens(self) -> None:
        """An admin's "revoke sessions": every refresh token now answers AADSTS70008."""
        with self.lock:
            self.refresh_tokens.clear()

    def pending(self) -> list[DeviceCode]:
        """The device codes still waiting for the person."""
        with self.lock:
            return [d for d in self.device_codes.values() if d.user is None and not d.declined]

    def approve(self, user_code: str, user: str) -> None:
        """The person signs in as ``user`` and approves ``user_code``."""
        with self.lock:
            self._by_user_code(user_code).user = user

    def decline(self, user_code: str) -> None:
        with self.lock:
            self._by_user_code(user_code).declined = True

    def _by_user_code(self, user_code: str) -> DeviceCode:
        found = next((d for d in self.device_codes.values() if d.user_code == user_code), None)
        if found is None:
            raise KeyError(f"no device code with user code {user_code!r}")
        return found

    # -- answers ----------------------------------------------------------------------------------

    def openid_configuration(self, origin: str, tenant: str) -> dict[str, Any]:
        base = f"{origin}/{tenant}"
        cloud = CLOUDS[self.cloud]
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": [
                "client_secret_post",
                "private_key_jwt",
                "client_secret_basic",
            ],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"https://{cloud.graph}/oidc/userinfo",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid", "oid"],
            "kerberos_endpoint": f"{base}/kerberos",
            "tenant_region_scope": "NA",
            "cloud_instance_name": cloud.instance,
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": cloud.graph,
            "rbac_url": "https://pas.windows.net",
        }

    def error(self, status: str, error: str, code: int, description: str) -> Response:
        """Entra's error body for ``AADSTS<code>``."""
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}"
        return self._json(
            status,
            {
                "error": error,
                "error_description": f"AADSTS{code}: {description}\r\nTrace ID: {trace}\r\n"
                f"Correlation ID: {correlation}\r\nTimestamp: {stamp}",
                "error_codes": [code],
                "timestamp": stamp,
                "trace_id": trace,
                "correlation_id": correlation,
                "error_uri": f"https://{CLOUDS[self.cloud].login}/error?code={code}",
            },
        )

    @staticmethod
    def _json(status: str, payload: Any) -> Response:
        return (
            status,
            [
                ("Content-Type", "application/json; charset=utf-8"),
                ("Cache-Control", "no-store, no-cache"),
                ("Pragma", "no-cache"),
                ("x-ms-request-id", str(uuid.uuid4())),
            ],
            json.dumps(payload).encode(),
        )

    def _missing(self, name: str) -> Response:
        return self.error(
            "400 Bad Request",
            "invalid_request",
            900144,
            f"The request body must contain the following parameter: '{name}'.",
        )

    def _unknown_client(self, client: str) -> Response:
        return self.error(
            "400 Bad Request",
            "unauthorized_client",
            700016,
            f"Application with identifier '{client}' was not found in the directory "
            f"'{self.tenant or 'common'}'. This can happen if the application has not been "
            "installed by the administrator of the tenant or consented to by any user in the "
            "tenant. You may have sent your authentication request to the wrong tenant.",
        )

    def _scope_problem(self, scope: str) -> Response | None:
        """Another national cloud's Graph is not a resource of this tenant."""
        for name, cloud in CLOUDS.items():
            resource = f"https://{cloud.graph}"
            if cloud.graph != CLOUDS[self.cloud].graph and scope.startswith(resource + "/"):
                return self.error(
                    "400 Bad Request",
                    "invalid_resource",
                    500011,
                    f"The resource principal named {resource} was not found in the tenant named "
                    f"{self.tenant or 'common'}. This can happen if the application has not been "
                    "installed by the administrator of the tenant or consented to by any user in "
                    f"the tenant. You might have sent your authentication request to the wrong "
                    f"tenant (this tenant is in the {self.cloud} cloud, that resource in {name}).",
                )
        return None

    def _granted(self, subject: str, client: str, scope: str, *, app_only: bool) -> Response:
        asked = [s for s in scope.split() if s not in OIDC_SCOPES]
        token = self.issue_token(
            subject, app_only=app_only, scope=" ".join(asked), client_id=client
        )
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(asked),
            "expires_in": self.advertised_lifetime,
            "ext_expires_in": self.advertised_lifetime,
            "access_token": token,
        }
        if app_only:
            del body["scope"]  # client-credential answers name no scope
        elif "offline_access" in scope.split():
            refresh = "0.AAAA" + secrets.token_urlsafe(48)
            with self.lock:
                self.refresh_tokens[refresh] = _Refresh(
                    subject, client, " ".join(asked), time.time() + self.refresh_lifetime
                )
            body["refresh_token"] = refresh
        return self._json("200 OK", body)

    # -- the token endpoint -----------------------------------------------------------------------

    def _token(self, environ: dict[str, Any], form: dict[str, str], tenant: str) -> Response:
        grant = form.get("grant_type")
        if not grant:
            return self._missing("grant_type")
        if grant == "client_credentials":
            return self._client_credentials(environ, form, tenant)
        if grant == DEVICE_CODE_GRANT:
            return self._redeem_device_code(form)
        if grant == "refresh_token":
            return self._refresh(form)
        return self.error(
            "400 Bad Request",
            "unsupported_grant_type",
            70003,
            f"The app requested an unsupported grant type '{grant}'.",
        )

    def _client_credentials(
        self, environ: dict[str, Any], form: dict[str, str], tenant: str
    ) -> Response:
        client, secret = form.get("client_id", ""), form.get("client_secret")
        basic = environ.get("HTTP_AUTHORIZATION", "")
        if basic[:6].lower() == "basic ":  # client_secret_basic: url-encoded id and secret
            try:
                user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            except ValueError:
                user, password = "", ""
            client, secret = client or unquote(user), unquote(password)
        if not client:
            return self._missing("client_id")
        if tenant in TENANT_ALIASES:
            return self.error(
                "400 Bad Request",
                "invalid_request",
                50059,
                "No tenant-identifying information found in either the request or implied by "
                "any provided credentials.",
            )
        if client not in self.apps and client not in self.certificates:
            return self._unknown_client(client)
        if "client_assertion" in form:
            problem = self._check_assertion(client, form)
            if problem:
                return self.error("401 Unauthorized", "invalid_client", 700027, problem)
        elif client in self.expired_secrets:
            return self.error(
                "401 Unauthorized",
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{client}' are expired. Visit the "
                "Azure portal to create new keys for your app.",
            )
        elif secret is None:
            return self.error(
                "401 Unauthorized",
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
            )
        elif not secrets.compare_digest(secret, self.apps.get(client, "\0")):
            return self.error(
                "401 Unauthorized",
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                f"the client secret value, not the client secret ID, for a secret added to app '{client}'.",
            )
        scope = form.get("scope", "")
        if not scope:
            return self._missing("scope")
        if not scope.endswith("/.default") or len(scope.split()) != 1:
            return self.error(
                "400 Bad Request",
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
            )
        return self._scope_problem(scope) or self._granted(client, client, scope, app_only=True)

    def _check_assertion(self, client: str, form: dict[str, str]) -> str | None:
        """Verify a certificate assertion (RFC 7523) against the certificate registered for the app."""
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        if form.get("client_assertion_type") != JWT_BEARER:
            return "client_assertion_type is not jwt-bearer."
        pem = self.certificates.get(client)
        if pem is None:
            return f"Client assertion contains an invalid signature. No certificate is registered for app '{client}'."
        try:
            head, claims, signature = form["client_assertion"].split(".")
            header = json.loads(_unb64(head))
            body = json.loads(_unb64(claims))
            sig = _unb64(signature)
        except (ValueError, KeyError):
            return "Client assertion is not a valid JWT."
        key = x509.load_pem_x509_certificate(pem).public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            return "The certificate registered for the app has no RSA key."
        data = f"{head}.{claims}".encode()
        alg = header.get("alg")
        try:
            if alg == "RS256":
                key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
            elif alg == "PS256":
                pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
                key.verify(sig, data, pss, hashes.SHA256())
            else:
                return f"Unsupported assertion algorithm {alg}."
        except InvalidSignature:
            return f"Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '{header.get('x5t', '')}']"
        if body.get("iss") != client or body.get("sub") != client:
            return "Client assertion iss and sub must be the client id."
        if float(body.get("exp", 0)) < time.time():
            return "Client assertion has expired."
        return None

    # -- device code (RFC 8628) and refresh tokens ------------------------------------------------

    def _public_client(self, client: str) -> bool:
        return self.public_clients is None or client in self.public_clients or client in self.apps

    def _device_code(self, form: dict[str, str], origin: str) -> Response:
        client, scope = form.get("client_id", ""), form.get("scope", "")
        if not client:
            return self._missing("client_id")
        if not self._public_client(client):
            return self._unknown_client(client)
        if not scope:
            return self._missing("scope")
        code = secrets.token_urlsafe(48)
        user_code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(9))
        with self.lock:
            self.device_codes[code] = DeviceCode(
                code, user_code, client, scope, time.time() + self.device_code_lifetime
            )
        page = f"{origin}/common/oauth2/deviceauth"
        return self._json(
            "200 OK",
            {
                "user_code": user_code,
                "device_code": code,
                "verification_uri": page,
                "expires_in": self.device_code_lifetime,
                "interval": self.poll_interval,
                "message": f"To sign in, use a web browser to open the page {page} and enter the code {user_code} to authenticate.",
            },
        )

    def _device_auth(self, form: dict[str, str]) -> Response:
        """The page where the person enters the code and signs in (HTML, as a browser sees it)."""
        name = form.get("user", "").split("\\")[-1].lower()
        password = {k.split("\\")[-1].lower(): v for k, v in self.users.items()}.get(name)
        with self.lock:
            match = next(
                (d for d in self.device_codes.values() if d.user_code == form.get("user_code")),
                None,
            )
            if match is None or password is None or password != form.get("password"):
                return (
                    "400 Bad Request",
                    [("Content-Type", "text/html; charset=utf-8")],
                    b"<html><head><title>Sign in failed</title></head></html>",
                )
            match.user = name
        return (
            "200 OK",
            [("Content-Type", "text/html; charset=utf-8")],
            b"<html><head><title>You have signed in</title></head></html>",
        )

    def _redeem_device_code(self, form: dict[str, str]) -> Response:
        if not form.get("device_code"):
            return self._missing("device_code")
        with self.lock:
            entry = self.device_codes.get(form["device_code"])
            if entry is None or entry.client_id != form.get("client_id", entry.client_id):
                return self.error(
                    "400 Bad Request",
                    "invalid_grant",
                    70000,
                    "The provided value for the 'device_code' is not valid.",
                )
            if time.time() > entry.expires:
                return self.error(
                    "400 Bad Request",
                    "expired_token",
                    70020,
                    "The provided value for the input parameter 'device_code' is not valid. This device code has expired.",
                )
            if entry.declined:
                return self.error(
                    "400 Bad Request",
                    "authorization_declined",
                    70000,
                    "The user declined the sign-in request.",
                )
            if entry.user is None:
                return self.error(
                    "400 Bad Request",
                    "authorization_pending",
                    70016,
                    "The provided request has not yet been authorized by the user. The user must input their code.",
                )
            del self.device_codes[entry.device_code]
        return self._granted(entry.user, entry.client_id, entry.scope, app_only=False)

    def _refresh(self, form: dict[str, str]) -> Response:
        if not form.get("refresh_token"):
            return self._missing("refresh_token")
        with self.lock:
            entry = self.refresh_tokens.get(form["refresh_token"])
        if entry is None or time.time() > entry.expires:
            return self.error(
                "400 Bad Request",
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            )
        client = form.get("client_id", "")
        if client and client != entry.client_id:
            return self.error(
                "400 Bad Request",
                "invalid_grant",
                70000,
                "Provided grant is invalid or malformed: the refresh token was issued to another client.",
            )
        scope = form.get("scope") or f"{entry.scope} offline_access"
        if "offline_access" not in scope.split():
            scope += " offline_access"  # a refresh answer always carries the next refresh token
        return self._scope_problem(scope) or self._granted(
            entry.user, entry.client_id, scope, app_only=False
        )


def _form(environ: dict[str, Any]) -> dict[str, str]:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    return {
        k: v[-1] for k, v in parse_qs(raw.decode(errors="replace"), keep_blank_values=True).items()
    }
