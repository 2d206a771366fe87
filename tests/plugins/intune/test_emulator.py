"""The Graph emulator speaks Graph: shapes, paging, the filter traps, errors, $batch and the
Entra ID token endpoint, checked with a plain HTTP client (not the adapter)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests

from itcrosswalk.plugins.intune.sandbox import SANDBOX_TENANT
from itcrosswalk.sandbox.world import generate

from .conftest import CLIENT_ID, SECRET, Tenant


def _token(
    tenant: Tenant, secret: str = SECRET, scope: str = "https://graph.microsoft.com/.default"
) -> requests.Response:
    return requests.post(
        f"{tenant.url}/{SANDBOX_TENANT}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": secret,
            "scope": scope,
        },
        verify=str(tenant.ca),
        timeout=10,
    )


def _get(tenant: Tenant, path: str, token: str | None = None, **params: Any) -> requests.Response:
    token = token or _token(tenant).json()["access_token"]
    url = path if path.startswith("https://") else f"{tenant.url}/v1.0{path}"
    return requests.get(
        url,
        params=params or None,
        headers={"Authorization": f"Bearer {token}"},
        verify=str(tenant.ca),
        timeout=10,
    )


def _assert_graph_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code and isinstance(error["message"], str)
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    return error


def test_the_token_endpoint_runs_client_credentials(tenant: Tenant) -> None:
    config = requests.get(
        f"{tenant.url}/{SANDBOX_TENANT}/v2.0/.well-known/openid-configuration",
        verify=str(tenant.ca),
        timeout=10,
    ).json()
    assert config["token_endpoint"] == f"{tenant.url}/{SANDBOX_TENANT}/oauth2/v2.0/token"
    good = _token(tenant).json()
    assert good["token_type"] == "Bearer" and good["expires_in"] > 0
    bad = _token(tenant, secret="wrong")
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    assert bad.json()["error_codes"] == [7000215] and CLIENT_ID in bad.json()["error_description"]
    scope = _token(tenant, scope="https://graph.microsoft.com/User.Read")
    assert scope.status_code == 400 and scope.json()["error"] == "invalid_scope"


def test_no_token_is_graphs_401(tenant: Tenant) -> None:
    response = requests.get(f"{tenant.url}/v1.0/users", verify=str(tenant.ca), timeout=10)
    _assert_graph_error(response, 401, "InvalidAuthenticationToken")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_devices_page_by_absolute_next_links_at_most_1000(
    tenant_factory: Callable[..., Tenant],
) -> None:
    tenant = tenant_factory(world=generate(3, "tiny", devices=1300))
    managed = len(tenant.app.devices)
    assert managed > 1000
    first = _get(tenant, "/deviceManagement/managedDevices", **{"$top": "5000"}).json()
    assert len(first["value"]) == 1000
    link = first["@odata.nextLink"]
    assert (
        link.startswith(f"{tenant.url}/v1.0/deviceManagement/managedDevices?")
        and "$skiptoken=" in link
    )
    second = _get(tenant, link).json()
    assert len(second["value"]) == managed - 1000 and "@odata.nextLink" not in second


def test_select_returns_only_what_was_named(tenant: Tenant) -> None:
    body = _get(
        tenant, "/deviceManagement/managedDevices", **{"$select": "id,serialNumber", "$top": "3"}
    ).json()
    assert all(set(d) == {"id", "serialNumber"} for d in body["value"])
    full = _get(tenant, "/deviceManagement/managedDevices", **{"$top": "1"}).json()["value"][0]
    assert full["easActivationDateTime"] == "0001-01-01T00:00:00Z"
    assert {"complianceState", "isEncrypted", "userPrincipalName", "managedDeviceOwnerType"} <= set(
        full
    )


def test_an_unsupported_filter_is_silently_ignored(tenant: Tenant) -> None:
    everything = len(tenant.app.devices)
    body = _get(
        tenant,
        "/deviceManagement/managedDevices",
        **{"$filter": "operatingSystem eq 'iOS'", "$top": "999"},
    ).json()
    assert len(body["value"]) == everything
    cutoff = sorted(d["lastSyncDateTime"] for d in tenant.app.devices)[everything // 2]
    honoured = _get(
        tenant,
        "/deviceManagement/managedDevices",
        **{"$filter": f"lastSyncDateTime gt {cutoff}", "$top": "999"},
    ).json()
    assert 0 < len(honoured["value"]) < everything


def test_a_device_name_filter_is_intunes_500_with_json_in_a_string(tenant: Tenant) -> None:
    response = _get(
        tenant, "/deviceManagement/managedDevices", **{"$filter": "deviceName eq 'COLAS17328'"}
    )
    error = _assert_graph_error(response, 500, "InternalServerError")
    inner = json.loads(error["message"])
    assert inner["_version"] == 3 and "internal server error" in inner["Message"]


def test_throttling_is_429_with_retry_after(tenant: Tenant) -> None:
    token = _token(tenant).json()["access_token"]
    tenant.faults.retry_after = 7
    tenant.faults.throttle_next = 1
    response = _get(tenant, "/users", token=token)
    _assert_graph_error(response, 429, "TooManyRequests")
    assert response.headers["Retry-After"] == "7"


def test_users_return_department_only_when_selected_and_expand_manager(tenant: Tenant) -> None:
    plain = _get(tenant, "/users").json()
    assert len(plain["value"]) == 40 and "department" not in plain["value"][0]
    selected = _get(
        tenant,
        "/users",
        **{
            "$select": "id,department,accountEnabled",
            "$expand": "manager($select=id,userPrincipalName)",
        },
    ).json()
    assert {"id", "department", "accountEnabled"} <= set(selected["value"][0])
    managed = [u for u in selected["value"] if "manager" in u]
    assert managed and set(managed[0]["manager"]) == {"@odata.type", "id", "userPrincipalName"}


def test_device_status_ids_name_user_policy_and_device(tenant: Tenant) -> None:
    policies = _get(tenant, "/deviceManagement/deviceCompliancePolicies").json()["value"]
    assert len(policies) == 12
    policy = policies[0]["id"]
    statuses = _get(
        tenant, f"/deviceManagement/deviceCompliancePolicies/{policy}/deviceStatuses"
    ).json()["value"]
    devices = {d["id"] for d in tenant.app.devices}
    assert statuses
    for row in statuses:
        _user, middle, device = row["id"].split("_")
        assert middle == policy and device in devices
        assert (
            row["lastReportedDateTime"].endswith("Z")
            and len(row["lastReportedDateTime"].split(".")[1]) == 8
        )


def test_batch_embeds_json_bodies_as_objects_and_caps_at_20(
    tenant_factory: Callable[..., Tenant],
) -> None:
    tenant = tenant_factory(permissions={CLIENT_ID: {"DeviceManagementManagedDevices.Read.All"}})
    token = _token(tenant).json()["access_token"]
    app = tenant.app.apps[0]["id"]
    body = {
        "requests": [
            {
                "id": "1",
                "method": "GET",
                "url": f"/deviceManagement/detectedApps/{app}/managedDevices?$select=id",
            },
            {"id": "2", "method": "GET", "url": "/users?$top=1"},
        ]
    }
    answer = requests.post(
        f"{tenant.url}/v1.0/$batch",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        verify=str(tenant.ca),
        timeout=10,
    ).json()
    by_id = {r["id"]: r for r in answer["responses"]}
    assert by_id["1"]["status"] == 200 and isinstance(by_id["1"]["body"], dict)
    assert all(set(d) == {"id"} for d in by_id["1"]["body"]["value"])
    assert (
        by_id["2"]["status"] == 403
        and by_id["2"]["body"]["error"]["code"] == "Authorization_RequestDenied"
    )
    too_many = {"requests": [{"id": str(i), "method": "GET", "url": "/users"} for i in range(21)]}
    response = requests.post(
        f"{tenant.url}/v1.0/$batch",
        json=too_many,
        headers={"Authorization": f"Bearer {token}"},
        verify=str(tenant.ca),
        timeout=10,
    )
    _assert_graph_error(response, 400, "BadRequest")


@pytest.mark.parametrize(
    "path", ["/deviceManagement/managedDevices", "/deviceManagement/deviceCompliancePolicies"]
)
def test_a_missing_intune_permission_is_a_403_naming_it(
    tenant_factory: Callable[..., Tenant], path: str
) -> None:
    tenant = tenant_factory(permissions={CLIENT_ID: {"User.Read.All"}})
    error = _assert_graph_error(_get(tenant, path), 403, "Forbidden")
    assert ".Read.All" in json.loads(error["message"])["Message"]
