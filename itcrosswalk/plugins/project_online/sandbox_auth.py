"""How the emulated Project Web App authenticates a request: NTLM (a challenge/response, then a
``FedAuth`` session cookie, as SharePoint's Windows claims do), basic, a bearer token (a user's
secret, or one the Entra ID emulator issued; app-only tokens refused), and, for a bad or missing
credential, a 401 or SharePoint's HTML sign-in page (``signin_trap``)."""

from __future__ import annotations

import base64
import json
import secrets
import threading
from typing import Any
from urllib.parse import quote

from ...sandbox.emulator import Emulator
from ...sandbox.entra import Entra
from .sandbox_ntlm import NtlmAcceptor

Response = tuple[str, list[tuple[str, str]], bytes]


class PwaAuthentication:
    """Mixed into the emulator."""

    users: dict[str, str]
    entra: Entra
    ntlm: NtlmAcceptor | None
    sessions: dict[str, str]
    signin_trap: str | None
    lock: threading.RLock

    # -- auth --------------------------------------------------------------------------------------

    def _authenticate(
        self, environ: dict[str, Any], base: str
    ) -> tuple[str | None, list[tuple[str, str]], tuple[str, list[tuple[str, str]], bytes] | None]:
        cookies = dict(
            part.strip().split("=", 1)
            for part in environ.get("HTTP_COOKIE", "").split(";")
            if "=" in part
        )
        with self.lock:
            session_user = self.sessions.get(cookies.get("FedAuth", ""))
        given = Emulator.credentials(environ)
        scheme, credential, password = given.scheme, given.secret, given.secret
        if scheme == "basic":
            short = given.user.split("\\")[-1].lower()
            if {k.split("\\")[-1].lower(): v for k, v in self.users.items()}.get(
                short
            ) == password and password:
                return short, [], None
        elif scheme == "bearer":
            issued = self.entra.grant(credential)
            if issued is not None:
                if issued.app_only:
                    return (
                        None,
                        [],
                        (
                            "401 Unauthorized",
                            [
                                ("Content-Type", "application/json"),
                                (
                                    "x-ms-diagnostics",
                                    '3000003;reason="Unsupported app only token.";category="invalid_client"',
                                ),
                                (
                                    "WWW-Authenticate",
                                    'Bearer realm="city", client_id="00000003-0000-0ff1-ce00-000000000000"',
                                ),
                            ],
                            json.dumps(
                                {"error_description": "Unsupported app only token."}
                            ).encode(),
                        ),
                    )
                if not issued.expired:
                    return issued.subject, [], None
                return (
                    None,
                    [],
                    (
                        "401 Unauthorized",
                        [
                            ("Content-Type", "application/json"),
                            (
                                "x-ms-diagnostics",
                                '3000006;reason="Token contains invalid signature; expired.";category="invalid_client"',
                            ),
                            ("WWW-Authenticate", 'Bearer realm="city"'),
                        ],
                        json.dumps(
                            {"error_description": "Invalid JWT token. The token is expired."}
                        ).encode(),
                    ),
                )
            for name, secret in self.users.items():
                if credential and credential == secret:
                    return name.split("\\")[-1].lower(), [], None
        elif scheme in ("ntlm", "negotiate") and self.ntlm is not None:
            try:
                token = base64.b64decode(credential)
            except ValueError:
                token = b""
            if token[8:12] == b"\x01\x00\x00\x00":
                challenge, key = self.ntlm.challenge(token)
                return (
                    None,
                    [],
                    (
                        "401 Unauthorized",
                        [
                            ("WWW-Authenticate", challenge),
                            ("Set-Cookie", f"NtlmChallenge={key}; path=/; secure; HttpOnly"),
                            ("Content-Type", "text/plain"),
                        ],
                        b"401 UNAUTHORIZED",
                    ),
                )
            if token[8:12] == b"\x03\x00\x00\x00":
                proven = self.ntlm.authenticate(token, cookies.get("NtlmChallenge"))
                if proven is not None:
                    session = secrets.token_urlsafe(24)
                    with self.lock:
                        self.sessions[session] = proven
                    return (
                        proven,
                        [("Set-Cookie", f"FedAuth={session}; path=/; secure; HttpOnly")],
                        None,
                    )
        elif session_user is not None:
            return session_user, [], None
        if self.signin_trap == "302":
            location = (
                f"{base}/_layouts/15/Authenticate.aspx?Source={quote(environ.get('PATH_INFO', ''))}"
            )
            return (
                None,
                [],
                (
                    "302 Found",
                    [("Location", location), ("Content-Type", "text/html; charset=utf-8")],
                    b'<html><head><title>Object moved</title></head><body><h2>Object moved to <a href="/_layouts/15/Authenticate.aspx">here</a>.</h2></body></html>',
                ),
            )
        if self.signin_trap == "200":
            return (
                None,
                [],
                (
                    "200 OK",
                    [("Content-Type", "text/html; charset=utf-8")],
                    b"<!DOCTYPE html><html><head><title>Sign In</title></head><body><form method='post' action='/_forms/default.aspx'><input name='ctl00$PlaceHolderMain$signInControl$UserName'/></form></body></html>",
                ),
            )
        headers = [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="city"')]
        if self.ntlm is not None:
            headers += [("WWW-Authenticate", "NTLM"), ("WWW-Authenticate", "Negotiate")]
        return None, [], ("401 Unauthorized", headers, b"401 UNAUTHORIZED")
