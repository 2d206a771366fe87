"""The Dataverse emulator keeps the platform's traps (it is written from the notes, not from
the adapter): paging only by its own links, change tracking's restrictions, real error codes."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import requests

from .conftest import APP, Env, token_for


def auth(env: Env) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(env, APP)}", "Accept": "application/json"}


def get(env: Env, path: str, **headers: str) -> requests.Response:
    url = path if path.startswith("https://") else f"{env.url}/api/data/v9.2/{path}"
    return requests.get(url, headers={**auth(env), **headers}, verify=str(env.ca), timeout=10)


def code(response: requests.Response) -> Any:
    return response.json()["error"]["code"]


def test_paging_is_by_maxpagesize_and_the_link_as_given(env: Env) -> None:
    first = get(env, "msdyn_projecttasks?$select=msdyn_subject", Prefer="odata.maxpagesize=4")
    assert first.headers["Preference-Applied"] == "odata.maxpagesize=4"
    link = first.json()["@odata.nextLink"]
    assert "%253c" in link.lower()  # the paging cookie inside the skiptoken is encoded twice
    assert get(env, link, Prefer="odata.maxpagesize=4").status_code == 200
    # A client that decodes the link before sending it corrupts the cookie.
    mangled = get(env, link.replace("%25", "%"), Prefer="odata.maxpagesize=4")
    assert mangled.status_code == 400
    skip = get(env, "msdyn_projecttasks?$select=msdyn_subject&$skip=4")
    assert skip.status_code == 400 and "$skip" in skip.json()["error"]["message"]


def test_change_tracking_refuses_filters_and_hands_out_a_delta_link(env: Env) -> None:
    refused = get(env, "msdyn_projects?$select=msdyn_subject&$filter=statecode eq 0",
                  Prefer="odata.track-changes")  # fmt: skip
    assert refused.status_code == 400 and "Change Tracking" in refused.json()["error"]["message"]
    full = get(env, "msdyn_projects?$select=msdyn_subject", Prefer="odata.track-changes")
    delta = full.json()["@odata.deltaLink"]
    plan = next(iter(env.app.tables["msdyn_project"].rows))
    env.app.delete("msdyn_project", plan)
    changes = get(env, delta).json()["value"]
    assert {
        "@odata.context": changes[-1]["@odata.context"],
        "id": plan,
        "reason": "deleted",
    } in changes
    assert changes[-1]["@odata.context"].endswith("$deletedEntity")
    env.app.expire_change_tokens()
    expired = get(env, delta)
    assert (
        expired.status_code == 400
        and "Version stamp associated with the client has expired" in unquote(expired.text)
    )


def test_errors_are_dataverses_own(env: Env) -> None:
    unsigned = requests.get(
        f"{env.url}/api/data/v9.2/msdyn_projects", verify=str(env.ca), timeout=10
    )
    assert unsigned.status_code == 401 and "WWW-Authenticate" in unsigned.headers
    unknown = get(env, "msdyn_projects?$select=msdyn_subject,msdyn_totalplannedcost")
    assert unknown.status_code == 400 and code(unknown) == "0x80060888"
    assert "msdyn_totalplannedcost" in unknown.json()["error"]["message"]
    plan = next(iter(env.app.tables["msdyn_project"].rows))
    patched = requests.patch(f"{env.url}/api/data/v9.2/msdyn_projects({plan})", json={"msdyn_subject": "x"},
                             headers=auth(env), verify=str(env.ca), timeout=10)  # fmt: skip
    assert patched.status_code == 400 and code(patched) == "0x80040265"
    env.faults.throttle_next = 1
    throttled = get(env, "msdyn_projects?$select=msdyn_subject")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "1"
    assert code(throttled) == "0x80072322"
    annotated = get(env, "msdyn_projecttasks?$select=msdyn_priority,msdyn_progress",
                    Prefer='odata.maxpagesize=1,odata.include-annotations="*"').text  # fmt: skip
    assert "msdyn_priority@OData.Community.Display.V1.FormattedValue" in annotated
    assert ".0000000000" in annotated  # decimals as Dataverse writes them
