"""The Clarity emulator itself, over HTTPS with plain requests: what the notes say a tenant does."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import requests

from itcrosswalk.plugins.clarity.sandbox import CLIENT_ID, PARENT_CAP

from .conftest import KEY, PASSWORD, Tenant


def client(tenant: Tenant, **headers: str) -> Callable[..., requests.Response]:
    session = requests.Session()
    session.headers.update({"x-api-ppm-client": CLIENT_ID, "Authorization": f"Bearer {KEY}"})
    session.headers.update(headers)

    def call(path: str, method: str = "GET", **kwargs: Any) -> requests.Response:
        # verify per request: REQUESTS_CA_BUNDLE would override the session's (psf/requests#3829)
        return session.request(
            method, f"{tenant.url}/ppm/rest/v1/{path}", verify=str(tenant.ca), **kwargs
        )

    return call


def test_collections_come_in_the_documented_envelope_at_the_hard_caps(tenant: Tenant) -> None:
    get = client(tenant)
    body = get("resources", params={"limit": 1000, "offset": 0}).json()
    assert body["_pageSize"] == PARENT_CAP  # the cap is served, silently
    assert body["_totalCount"] == len(tenant.world.people) == body["_recordsReturned"]
    assert "_next" not in body  # only when more records exist than fit on the page
    small = get("resources", params={"limit": 10, "offset": 20}).json()
    assert small["_recordsReturned"] == 10 and "_next" in small and "_previous" in small
    project = next(p for p in tenant.app.data["projects"] if not p["isTemplate"] | p["isProgram"])
    tasks = get(f"projects/{project['_internalId']}/tasks", params={"limit": 1000}).json()
    assert tasks["_pageSize"] == 200
    record = tasks["_results"][0]
    assert record["_parent"].endswith(f"/projects/{project['_internalId']}")
    assert isinstance(record["_internalId"], int) and isinstance(record["status"]["id"], str)


def test_filters_compare_naive_local_time_and_lookups_by_id(tenant_factory: Any) -> None:
    tenant = tenant_factory(timezone="America/Phoenix")
    get = client(tenant)
    stamps = sorted(p["lastUpdatedDate"] for p in tenant.app.data["projects"])
    middle = stamps[len(stamps) // 2]
    body = get("projects", params={"filter": f"(lastUpdatedDate >= '{middle}')"}).json()
    assert {r["lastUpdatedDate"] for r in body["_results"]} == {s for s in stamps if s >= middle}
    approved = get(
        "projects", params={"filter": "((status = '1') and (isTemplate = false))"}
    ).json()
    assert all(r["status"]["id"] == "1" for r in approved["_results"])
    refused = get("projects", params={"filter": "(nonsense >= 3)"})
    assert refused.status_code == 400 and refused.json()["errorCode"] == "api.invalidFilter"


def test_plans_need_their_mandatory_filters_and_sum_a_curve_without_tsv_params(
    tenant: Tenant,
) -> None:
    get = client(tenant)
    refused = get("costplandetails", params={"filter": "(investmentId = 5000003)"})
    assert refused.status_code == 400
    assert set(refused.json()) == {"resourceId", "httpStatus", "errorMessage", "errorCode"}
    investment = tenant.app.data["costplandetails"][0]["investmentId"]
    wanted = f"((investmentId = {investment}) and (planType = 'BUDGET'))"
    total = get("costplandetails", params={"filter": wanted}).json()["_results"][0]["cost"]
    assert "segmentList" not in total and total["total"] > 0
    periods = "(periods=(cost,months,360,2015-01-01T00:00:00,fiscal))"
    curve = get("costplandetails", params={"filter": wanted, "tsvParams": periods}).json()
    segments = curve["_results"][0]["cost"]["segmentList"]["segments"]
    assert round(sum(s["value"] for s in segments), 2) == total["total"]


def test_credentials_keys_sessions_and_the_sign_in_page(tenant_factory: Any) -> None:
    tenant = tenant_factory(expired_sessions=True)
    bad = client(tenant, Authorization="Bearer wrong")("projects")
    assert bad.status_code == 401 and bad.json()["errorCode"] == "api.invalidCredentials"
    ca = str(tenant.ca)
    login = requests.post(
        f"{tenant.url}/ppm/rest/v1/auth/login", auth=("svc_basic", PASSWORD), verify=ca
    )
    token = login.json()["authToken"]
    page = requests.get(
        f"{tenant.url}/ppm/rest/v1/projects", headers={"authToken": token}, verify=ca
    )
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    basic_on_sso = requests.get(
        f"{tenant.url}/tokens/rest/v1/projects", auth=("svc_basic", PASSWORD), verify=ca
    )
    assert basic_on_sso.status_code == 401


def test_bulk_create_answers_200_with_errors_per_record(tenant: Tenant) -> None:
    post = client(tenant)
    body = {"d": [{"code": "NEW-1", "name": "A new project"}, {"code": "NEW-2"}]}
    answer = post("projects", "POST", json=body)
    assert answer.status_code == 200
    result = answer.json()
    assert [r["_internalId"] for r in result["_results"]] and isinstance(
        result["_results"][0]["_internalId"], str
    )
    assert result["_errors"] == [
        {
            "resourceId": "NEW-2",
            "errorMessage": "CMN-0007: Attribute 'name' is required.",
            "errorCode": "validation.requiredFieldMissing",
        }
    ]


def test_describe_lists_only_api_enabled_custom_attributes(tenant: Tenant) -> None:
    get = client(tenant)
    names = {a["name"] for a in get("describe/projects").json()["attributes"]}
    assert "c_department" in names and "c_businessOwner" not in names
    refused = get("projects", params={"fields": "code,c_businessOwner"})
    assert refused.status_code == 400 and "c_businessOwner" in refused.json()["errorMessage"]
    assert "c_businessOwner" not in get("projects").json()["_results"][0]
    resources = {r["resourceName"] for r in get("describe").json()["_results"]}
    assert {"projects", "ideas", "resources", "costplandetails"} <= resources


def test_a_broken_next_link_is_mangled_as_kb_427298_describes(tenant_factory: Any) -> None:
    tenant = tenant_factory(broken_next=True)
    get = client(tenant)
    link = get("resources", params={"limit": 10}).json()["_next"]
    assert "instSecObjCodes" in requests.utils.unquote(link)
    followed = requests.get(
        link, headers={"x-api-ppm-client": CLIENT_ID, "Authorization": f"Bearer {KEY}"},
        verify=str(tenant.ca),
    )  # fmt: skip
    assert followed.status_code == 400
