"""The shared Entra ID emulator, mounted in a minimal host emulator as a third Microsoft platform
would mount it (a Dataverse-like resource), driven by plain HTTP and by MSAL itself."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msal
import pytest
import requests

from itcrosswalk.sandbox.emulator import Emulator, Response
from itcrosswalk.sandbox.entra import Entra
from itcrosswalk.sandbox.faults import Faults
from itcrosswalk.sandbox.server import SandboxServer

TENANT = "5f0c7a8e-1d2b-4c3d-9e8f-0a1b2c3d4e5f"
APP, SECRET = "11111111-2222-3333-4444-555555555555", "app-secret-never-logged"
PUBLIC = "22222222-3333-4444-5555-666666666666"
USER, PASSWORD = "pm@city.example", "user-password"
DATAVERSE = "https://org.crm.dynamics.com"


class Host(Emulator):
    """A resource that answers with who the bearer token stands for."""

    def __init__(self, entra: Entra) -> None:
        self.entra = entra
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self.faults = Faults()

    def dispatch(self, environ: dict[str, Any], method: str, path: str, query: str) -> Response:
        if self.entra.handles(path):
            return self.entra.serve(environ, method, path)
        grant = self.entra.bearer(environ)
        if grant is None or grant.expired:
            return "401 Unauthorized", [("WWW-Authenticate", "Bearer")], b""
        body = {"subject": grant.subject, "app_only": grant.app_only, "aud": grant.audience}
        return "200 OK", [("Content-Type", "application/json")], json.dumps(body).encode()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Host, str, str]]:
    entra = Entra(
        tenant=TENANT, apps={APP: SECRET}, users={USER: PASSWORD}, public_clients={PUBLIC}
    )
    host = Host(entra)
    server = SandboxServer({"host": host})
    url = server.start()["host"]
    ca = str(server.write_ca(tmp_path / "ca.pem"))
    yield host, url, ca
    server.stop()


def token(url: str, ca: str, tenant: str = TENANT, **form: str) -> requests.Response:
    return requests.post(f"{url}/{tenant}/oauth2/v2.0/token", data=form, verify=ca, timeout=10)


def whoami(url: str, ca: str, access: str) -> requests.Response:
    return requests.get(
        f"{url}/api/data/v9.2/WhoAmI",
        headers={"Authorization": f"Bearer {access}"},
        verify=ca,
        timeout=10,
    )


def test_client_credentials_with_a_secret_in_the_form_or_in_basic(
    site: tuple[Host, str, str],
) -> None:
    host, url, ca = site
    posted = token(
        url,
        ca,
        grant_type="client_credentials",
        client_id=APP,
        client_secret=SECRET,
        scope=f"{DATAVERSE}/.default",
    )
    assert posted.status_code == 200, posted.text
    answer = posted.json()
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 3599
    assert "refresh_token" not in answer  # app-only tokens never come with one
    claims = json.loads(base64.urlsafe_b64decode(answer["access_token"].split(".")[1] + "=="))
    assert claims["aud"] == DATAVERSE and claims["tid"] == TENANT and claims["idtyp"] == "app"
    assert whoami(url, ca, answer["access_token"]).json() == {
        "subject": APP,
        "app_only": True,
        "aud": DATAVERSE,
    }
    basic = requests.post(
        f"{url}/{TENANT}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": f"{DATAVERSE}/.default"},
        auth=(APP, SECRET),
        verify=ca,
        timeout=10,
    )
    assert basic.status_code == 200, basic.text


@pytest.mark.parametrize(
    ("tenant", "form", "status", "error", "code"),
    [
        ("not-my-tenant", {"client_secret": SECRET}, 400, "invalid_tenant", 90002),
        ("common", {"client_secret": SECRET}, 400, "invalid_request", 50059),
        (TENANT, {"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        (TENANT, {}, 401, "invalid_client", 7000218),
        (TENANT, {"client_id": "unknown-app", "client_secret": SECRET}, 400, "unauthorized_client", 700016),
        (TENANT, {"client_secret": SECRET, "scope": f"{DATAVERSE}/user_impersonation"}, 400, "invalid_scope", 1002012),
        (TENANT, {"client_secret": SECRET, "scope": "https://graph.microsoft.us/.default"}, 400, "invalid_resource", 500011),
        (TENANT, {"client_secret": SECRET, "grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        (TENANT, {"client_secret": SECRET, "scope": ""}, 400, "invalid_request", 900144),
    ],
)  # fmt: skip
def test_each_refusal_is_the_real_aadsts_body(
    site: tuple[Host, str, str],
    tenant: str,
    form: dict[str, str],
    status: int,
    error: str,
    code: int,
) -> None:
    _host, url, ca = site
    sent = {
        "grant_type": "client_credentials",
        "client_id": APP,
        "scope": f"{DATAVERSE}/.default",
        **form,
    }
    answer = token(url, ca, tenant, **sent)
    assert answer.status_code == status
    body = answer.json()
    assert body["error"] == error and body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "\r\nTrace ID: " in body["error_description"]
    assert set(body) >= {"timestamp", "trace_id", "correlation_id", "error_uri"}
    assert SECRET not in answer.text


def test_an_expired_secret_and_a_revoked_token(site: tuple[Host, str, str]) -> None:
    host, url, ca = site
    form = {
        "grant_type": "client_credentials",
        "client_id": APP,
        "client_secret": SECRET,
        "scope": f"{DATAVERSE}/.default",
    }
    access = token(url, ca, **form).json()["access_token"]
    host.entra.revoke_tokens()
    assert whoami(url, ca, access).status_code == 401 and host.entra.revoked(access)
    host.entra.expired_secrets.add(APP)
    assert token(url, ca, **form).json()["error_codes"] == [7000222]


def test_a_token_dies_at_its_real_lifetime_not_the_advertised_one(
    site: tuple[Host, str, str],
) -> None:
    host, url, ca = site
    host.entra.token_lifetime = -1
    answer = token(
        url,
        ca,
        grant_type="client_credentials",
        client_id=APP,
        client_secret=SECRET,
        scope=f"{DATAVERSE}/.default",
    ).json()
    assert answer["expires_in"] == 3599
    assert whoami(url, ca, answer["access_token"]).status_code == 401


def _device_code(url: str, ca: str, scope: str) -> dict[str, Any]:
    answer = requests.post(
        f"{url}/organizations/oauth2/v2.0/devicecode",
        data={"client_id": PUBLIC, "scope": scope},
        verify=ca,
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_device_code_pending_then_approved_then_refreshed(site: tuple[Host, str, str]) -> None:
    host, url, ca = site
    flow = _device_code(url, ca, f"{DATAVERSE}/user_impersonation offline_access")
    assert flow["verification_uri"] in flow["message"] and flow["user_code"] in flow["message"]
    poll = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": PUBLIC}
    pending = token(url, ca, "organizations", **poll, device_code=flow["device_code"]).json()
    assert pending["error"] == "authorization_pending" and pending["error_codes"] == [70016]
    assert [d.user_code for d in host.entra.pending()] == [flow["user_code"]]
    refused = requests.post(
        flow["verification_uri"],
        data={"user_code": flow["user_code"], "user": USER, "password": "wrong"},
        verify=ca,
        timeout=10,
    )
    assert refused.status_code == 400
    signed_in = requests.post(
        flow["verification_uri"],
        data={"user_code": flow["user_code"], "user": USER, "password": PASSWORD},
        verify=ca,
        timeout=10,
    )
    assert signed_in.status_code == 200
    answer = token(url, ca, "organizations", **poll, device_code=flow["device_code"]).json()
    assert answer["scope"] == f"{DATAVERSE}/user_impersonation"
    assert whoami(url, ca, answer["access_token"]).json() == {
        "subject": USER,
        "app_only": False,
        "aud": DATAVERSE,
    }
    again = token(url, ca, "organizations", **poll, device_code=flow["device_code"]).json()
    assert again["error"] == "invalid_grant"  # a device code is redeemed once
    renewed = token(
        url,
        ca,
        grant_type="refresh_token",
        client_id=PUBLIC,
        refresh_token=answer["refresh_token"],
        scope=f"{DATAVERSE}/.default offline_access",
    ).json()
    assert renewed["refresh_token"] != answer["refresh_token"]
    assert whoami(url, ca, renewed["access_token"]).json()["subject"] == USER
    other = token(
        url,
        ca,
        grant_type="refresh_token",
        client_id=APP,
        refresh_token=renewed["refresh_token"],
    ).json()
    assert other["error"] == "invalid_grant"  # bound to the client it was issued to
    host.entra.revoke_refresh_tokens()
    revoked = token(
        url,
        ca,
        grant_type="refresh_token",
        client_id=PUBLIC,
        refresh_token=renewed["refresh_token"],
    ).json()
    assert revoked["error"] == "invalid_grant" and revoked["error_codes"] == [70008]


def test_device_code_declined_expired_and_unknown_client(site: tuple[Host, str, str]) -> None:
    host, url, ca = site
    poll = {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": PUBLIC}
    declined = _device_code(url, ca, f"{DATAVERSE}/.default")
    host.entra.decline(declined["user_code"])
    answer = token(url, ca, **poll, device_code=declined["device_code"]).json()
    assert answer["error"] == "authorization_declined"
    host.entra.device_code_lifetime = -1
    late = _device_code(url, ca, f"{DATAVERSE}/.default")
    host.entra.approve(late["user_code"], USER)
    assert (
        token(url, ca, **poll, device_code=late["device_code"]).json()["error"] == "expired_token"
    )
    stranger = requests.post(
        f"{url}/{TENANT}/oauth2/v2.0/devicecode",
        data={"client_id": "not-registered", "scope": "openid"},
        verify=ca,
        timeout=10,
    ).json()
    assert stranger["error_codes"] == [700016]


def test_msal_runs_the_device_code_flow_and_the_refresh(site: tuple[Host, str, str]) -> None:
    host, url, ca = site
    session = requests.Session()
    session.verify = ca
    session.trust_env = False  # a CA bundle named in the environment would win over ours
    app = msal.PublicClientApplication(
        PUBLIC, oidc_authority=f"{url}/{TENANT}/v2.0", http_client=session
    )
    flow = app.initiate_device_flow(scopes=[f"{DATAVERSE}/.default"])
    assert "user_code" in flow, flow
    host.entra.approve(flow["user_code"], USER)
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    assert whoami(url, ca, result["access_token"]).json()["aud"] == DATAVERSE
    renewed = app.acquire_token_by_refresh_token(
        result["refresh_token"], scopes=[f"{DATAVERSE}/.default"]
    )
    assert "access_token" in renewed, renewed


def test_an_unknown_cloud_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown cloud 'mars'.*usgov"):
        Entra(cloud="mars")


def test_the_openid_configuration_names_the_national_cloud(tmp_path: Path) -> None:
    host = Host(Entra(tenant=TENANT, cloud="usgov"))
    with SandboxServer({"host": host}) as server:
        ca = str(server.write_ca(tmp_path / "ca.pem"))
        url = server.urls["host"]
        config = requests.get(
            f"{url}/{TENANT}/v2.0/.well-known/openid-configuration", verify=ca, timeout=10
        ).json()
    assert config["issuer"] == f"{url}/{TENANT}/v2.0"
    assert config["cloud_instance_name"] == "microsoftonline.us"
    assert config["msgraph_host"] == "graph.microsoft.us"
