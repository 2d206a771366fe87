"""Signing in to Microsoft Entra ID, once for every Microsoft platform.

Two ways in, both with their token requests under the core HTTP policy (the source's CA
bundle, timeouts and retries):

- :func:`app_credential` -- an app-only credential from azure-identity, with a client secret
  or a certificate (``oauth_client_credentials`` / ``client_certificate``): Intune and
  Planner premium read this way.
- :class:`DeviceCodeUser` -- a delegated, licensed user signed in once by device code
  (MSAL's public client), the refresh token kept in the OS keyring and renewed from it:
  Project Online's sign-in and Planner premium's Schedule API writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests

from .errors import AuthError, ConfigError
from .http import RenewingBearer
from .secrets import REDACTOR, redact

# The authorities MSAL's instance discovery knows; any other (ADFS, a proxy, an emulator) is
# reached through its OpenID configuration.
KNOWN_AUTHORITY_HOSTS = (
    "login.microsoftonline.com",
    "login.microsoftonline.us",
    "login.chinacloudapi.cn",
)


def _first_line(reason: Any) -> str:
    return str(reason).splitlines()[0][:200] if str(reason) else ""


def _known(authority: str) -> bool:
    return (urlsplit(authority).hostname or "").lower().endswith(KNOWN_AUTHORITY_HOSTS)


def app_credential(
    auth: Any,
    secrets: Callable[[Any, str], str],
    *,
    source: str,
    tenant: str,
    authority: str,
    transport: Any,
) -> Any:
    """The azure-identity credential an ``auth`` block of type ``oauth_client_credentials`` or
    ``client_certificate`` asks for. ``secrets`` resolves a config reference; ``transport`` is
    an azure-core transport over a session under the core policy. A certificate that cannot
    sign is a config error naming the key (and never the password)."""
    common: dict[str, Any] = {
        "authority": authority,
        "transport": transport,
        # The transport already retries under the core policy; azure-core's own retry policy on
        # top would multiply the attempts (and wait on TLS failures that never heal).
        "retry_total": 0,
    }
    if not _known(authority):
        common["disable_instance_discovery"] = True
    if auth.type == "oauth_client_credentials":
        from azure.identity import ClientSecretCredential

        secret = secrets(auth.client_secret, "auth.client_secret")
        return ClientSecretCredential(tenant, auth.client_id, secret, **common)
    from azure.identity import CertificateCredential

    password = (
        secrets(auth.certificate_password, "auth.certificate_password")
        if auth.certificate_password
        else None
    )
    try:
        return CertificateCredential(
            tenant,
            auth.client_id,
            certificate_path=str(auth.certificate_path),
            password=password,
            **common,
        )
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigError(
            redact(
                f"sources.{source}.auth.certificate_path: cannot sign with "
                f"{auth.certificate_path}: {exc}"
            )
        ) from None


class DeviceCodeUser(RenewingBearer):
    """A delegated user's access token, from the refresh token kept in the keyring and renewed
    as it expires; :meth:`device_login` signs the user in once.

    ``session_for(authority)`` gives MSAL a session under the core policy; ``login_command`` is
    what the user runs to sign in again (said in every refusal); ``config_key`` is the config key
    a keyring or setup problem is reported against.
    """

    def __init__(
        self,
        *,
        source: str,
        client_id: str,
        authority: str,
        scopes: list[str],
        keyring_service: str,
        session_for: Callable[[str], requests.Session],
        login_command: str,
        config_key: str,
        refused: str = "the sign-in service refused",
        keyring_user: str | None = None,
    ) -> None:
        self.source = source
        self.client_id = client_id
        self.authority = authority.rstrip("/")
        self.scopes = scopes
        self.keyring_service = keyring_service
        self.keyring_user = keyring_user or source
        self.session_for = session_for
        self.login_command = login_command
        self.config_key = config_key
        self.refused = refused
        self.access: str | None = None
        self.expires_at = 0.0
        self.lock = threading.Lock()
        self._app: Any = None

    def app(self) -> Any:
        if self._app is None:
            try:
                import msal  # deferred: only delegated sign-ins need it
            except ImportError:
                raise ConfigError(
                    f"{self.config_key}: the delegated sign-in needs MSAL; "
                    "run `pip install 'itcrosswalk[all]'`"
                ) from None
            session = self.session_for(self.authority)
            try:
                if _known(self.authority):
                    self._app = msal.PublicClientApplication(
                        self.client_id, authority=self.authority, http_client=session
                    )
                else:
                    self._app = msal.PublicClientApplication(
                        self.client_id,
                        oidc_authority=f"{self.authority}/v2.0",
                        http_client=session,
                    )
            except (ValueError, requests.RequestException) as exc:
                raise AuthError(
                    f"authentication failed for source {self.source}: the sign-in authority "
                    f"{self.authority} could not be used ({_first_line(exc)})"
                ) from None
        return self._app

    def _keyring(self) -> Any:
        import keyring  # deferred: backend discovery is slow

        return keyring

    @property
    def keyring_entry(self) -> str:
        return f"{self.keyring_service}/{self.keyring_user}"

    def stored_refresh_token(self) -> str | None:
        try:
            value = self._keyring().get_password(self.keyring_service, self.keyring_user)
        except Exception as exc:  # a locked or missing backend is a setup problem
            raise ConfigError(
                f"{self.config_key}: the keyring could not be read: {_first_line(exc)}"
            ) from None
        if value:
            REDACTOR.register(value)
        return value

    def store_refresh_token(self, token: str) -> None:
        REDACTOR.register(token)
        try:
            self._keyring().set_password(self.keyring_service, self.keyring_user, token)
        except Exception as exc:
            raise ConfigError(
                f"{self.config_key}: the keyring could not store the refresh token: "
                f"{_first_line(exc)}"
            ) from None

    def _accept(self, result: Mapping[str, Any]) -> str:
        if "access_token" not in result:
            reason = result.get("error_description") or result.get("error") or "no token"
            raise AuthError(
                f"authentication failed for source {self.source}: {self.refused} "
                f"({_first_line(reason)}); run `{self.login_command}` to sign in again"
            )
        access = str(result["access_token"])
        REDACTOR.register(access)
        refresh = result.get("refresh_token")
        if refresh:
            self.store_refresh_token(str(refresh))
        self.access = access
        self.expires_at = time.monotonic() + float(result.get("expires_in", 3600)) - 60
        return access

    def device_login(self, prompt: Callable[[str], None]) -> dict[str, Any]:
        """The device-code sign-in: show ``prompt`` the code, wait for it, keep the refresh token."""
        app = self.app()
        flow = app.initiate_device_flow(scopes=self.scopes)
        if "user_code" not in flow:
            reason = flow.get("error_description") or flow.get("error") or "no device code"
            raise AuthError(
                f"authentication failed for source {self.source}: the device-code sign-in could "
                f"not start ({_first_line(reason)})"
            )
        prompt(str(flow.get("message") or f"{flow['verification_uri']} {flow['user_code']}"))
        result = app.acquire_token_by_device_flow(flow)
        self._accept(result)
        if not result.get("refresh_token"):
            raise AuthError(
                f"authentication failed for source {self.source}: the sign-in returned no refresh "
                "token; ask for the offline_access permission"
            )
        return {
            "source": self.source,
            "scopes": self.scopes,
            "keyring": self.keyring_service,
            "keyring_entry": self.keyring_entry,
        }

    def token(self, *, renew: bool = False) -> str:
        with self.lock:
            if not renew and self.access is not None and time.monotonic() < self.expires_at:
                return self.access
            refresh = self.stored_refresh_token()
            if not refresh:
                raise AuthError(
                    f"authentication failed for source {self.source}: no refresh token in the "
                    f"keyring ({self.keyring_entry}); run `{self.login_command}` once"
                )
            return self._accept(self.app().acquire_token_by_refresh_token(refresh, self.scopes))
