"""The Project Server emulator on its own: OData v3 shapes, paging, query errors, digests, auth."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import requests

from .conftest import PASSWORD, USER, Instance

VERBOSE = {"Accept": "application/json;odata=verbose"}
LIGHT = {"Accept": "application/json;odata=minimalmetadata"}


def get(instance: Instance, path: str, headers: dict[str, str] | None = None, **params: str) -> Any:
    return requests.get(
        f"{instance.url}/_api/{path}",
        params=params or None,
        headers={**(headers or VERBOSE)},
        auth=(USER, PASSWORD),
        verify=str(instance.ca),
        timeout=10,
    )


def test_verbose_and_light_json_are_chosen_by_the_accept_header(instance: Instance) -> None:
    verbose = get(instance, "ProjectData/Projects").json()
    (row,) = verbose["d"]["results"]
    assert row["__metadata"]["type"] == "ReportingData.Project"
    assert row["Tasks"]["__deferred"]["uri"].endswith("/Tasks")  # navigation links, not data
    assert row["ProjectStartDate"].startswith("/Date(") and row["ProjectStartDate"].endswith(")/")
    assert (
        isinstance(row["ProjectCost"], str) and row["ProjectCost"].endswith(".000000") is not None
    )
    assert float(row["ProjectCost"]) > 0 and isinstance(row["ProjectPercentCompleted"], int)
    light = get(instance, "ProjectData/Projects", LIGHT).json()
    assert light["odata.metadata"].endswith("/_api/ProjectData/$metadata#Projects")
    (row,) = light["value"]
    assert "__metadata" not in row and "T" in row["ProjectStartDate"]
    nometa = get(instance, "ProjectData/Projects", {"Accept": "application/json;odata=nometadata"})
    assert "odata.metadata" not in nometa.json()
    atom = get(instance, "ProjectData/Projects", {"Accept": "application/atom+xml"})
    assert atom.headers["Content-Type"].startswith("application/atom+xml")


def test_each_set_pages_at_its_own_limit_through_skiptoken_links(
    instance_factory: Any,
) -> None:
    instance = instance_factory(page_limits={"Resources": 7, "Tasks": 2})
    url: str | None = f"{instance.url}/_api/ProjectData/Resources"
    seen: list[str] = []
    pages = 0
    while url:
        body = requests.get(
            url, headers=VERBOSE, auth=(USER, PASSWORD), verify=str(instance.ca), timeout=10
        ).json()["d"]
        pages += 1
        assert len(body["results"]) <= 7
        seen += [r["ResourceId"] for r in body["results"]]
        url = body.get("__next")
        if url:
            assert "$skiptoken=guid'" in url
    assert len(seen) == len(set(seen)) == len(instance.world.people) + 2
    assert pages == -(-len(seen) // 7)
    tasks = get(instance, "ProjectData/Tasks").json()["d"]
    assert len(tasks["results"]) == 2 and "__next" in tasks
    # $top caps the whole result, not the page: it is no way to page.
    capped = get(instance, "ProjectData/Resources", **{"$top": "3"}).json()["d"]
    assert len(capped["results"]) == 3 and "__next" not in capped


def test_filter_select_and_count_follow_odata_v3(instance: Instance) -> None:
    project = get(instance, "ProjectData/Projects").json()["d"]["results"][0]
    pid = project["ProjectId"]
    tasks = get(
        instance,
        "ProjectData/Tasks",
        **{
            "$filter": f"ProjectId eq guid'{pid}' and (TaskIsMilestone eq true or TaskIsSummary eq true)",
            "$select": "TaskId,TaskName,TaskIsMilestone",
        },
    ).json()["d"]["results"]
    assert tasks and set(tasks[0]) == {"__metadata", "TaskId", "TaskName", "TaskIsMilestone"}
    count = get(instance, "ProjectData/Tasks/$count", {"Accept": "text/plain"})
    assert int(count.text) > len(tasks)
    later = get(
        instance,
        "ProjectData/Projects",
        **{"$filter": "ProjectModifiedDate ge datetime'2099-01-01T00:00:00'"},
    ).json()["d"]["results"]
    assert later == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"$filter": "Nonsense eq 1"},
            "No property 'Nonsense' exists in type 'ReportingData.Project'",
        ),
        ({"$filter": "ProjectModifiedDate ge '2026-01-01'"}, "incompatible with operand types"),
        ({"$filter": "ProjectId eq 'not-a-guid'"}, "incompatible with operand types"),
        ({"$select": "ProjectId,Bogus"}, "Could not find a property named 'Bogus'"),
    ],
)
def test_a_bad_query_is_a_400_with_the_odata_error_body(
    instance: Instance, params: dict[str, str], message: str
) -> None:
    answer = get(instance, "ProjectData/Projects", **params)
    assert answer.status_code == 400
    assert message in answer.json()["error"]["message"]["value"]
    light = get(instance, "ProjectData/Projects", LIGHT, **params)
    assert message in light.json()["odata.error"]["message"]["value"]


def test_an_unknown_set_is_a_404_and_the_feed_is_read_only(instance: Instance) -> None:
    assert get(instance, "ProjectData/Timesheetz").status_code == 404
    posted = requests.post(
        f"{instance.url}/_api/ProjectData/Projects",
        auth=(USER, PASSWORD),
        verify=str(instance.ca),
        timeout=10,
    )
    assert posted.status_code == 405


def test_writes_need_the_form_digest(instance: Instance) -> None:
    session = requests.Session()
    session.auth = (USER, PASSWORD)
    session.verify = str(instance.ca)
    session.trust_env = (
        False  # REQUESTS_CA_BUNDLE would override session.verify (psf/requests#3829)
    )
    refused = session.post(
        f"{instance.url}/_api/ProjectServer/Projects/Add", headers=VERBOSE, json={}
    )
    assert refused.status_code == 403
    assert "security validation" in refused.json()["error"]["message"]["value"]
    info = session.post(f"{instance.url}/_api/contextinfo", headers=VERBOSE).json()
    digest = info["d"]["GetContextWebInformation"]["FormDigestValue"]
    added = session.post(
        f"{instance.url}/_api/ProjectServer/Projects/Add",
        headers={**VERBOSE, "X-RequestDigest": digest},
        json={"parameters": {"Name": "Emulator direct", "EnterpriseProjectTypeId": None}},
    )
    assert added.status_code == 200 and added.json()["d"]["Name"] == "Emulator direct"
    again = session.post(
        f"{instance.url}/_api/ProjectServer/Projects/Add",
        headers={**VERBOSE, "X-RequestDigest": digest},
        json={"parameters": {"Name": "Emulator direct"}},
    )
    assert again.status_code == 500 and "ProjectNameAlreadyExists" in again.text


def test_without_credentials_the_server_offers_ntlm_and_an_ntlm_type1_gets_a_challenge(
    instance: Instance,
) -> None:
    anonymous = requests.get(
        f"{instance.url}/_api/ProjectData/Projects", verify=str(instance.ca), timeout=10
    )
    assert anonymous.status_code == 401
    assert "NTLM" in anonymous.headers["WWW-Authenticate"]
    import spnego

    type1 = spnego.client("svc_crosswalk", "any", protocol="ntlm").step()
    assert type1 is not None
    challenged = requests.get(
        f"{instance.url}/_api/ProjectData/Projects",
        headers={"Authorization": "NTLM " + base64.b64encode(type1).decode()},
        verify=str(instance.ca),
        timeout=10,
    )
    assert challenged.status_code == 401
    assert challenged.headers["WWW-Authenticate"].startswith("NTLM ")


def test_throttling_answers_429_with_retry_after(instance: Instance) -> None:
    instance.faults.throttle_next = 1
    instance.faults.retry_after = 7
    answer = get(instance, "ProjectData/Projects")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    assert get(instance, "ProjectData/Projects").status_code == 200


def test_metadata_lists_the_sets_and_the_custom_field_properties(instance_factory: Any) -> None:
    instance = instance_factory(missing_sets={"Risks"})
    xml = get(instance, "ProjectData/$metadata", {"Accept": "application/xml"}).text
    assert '<EntitySet Name="Projects" EntityType="ReportingData.Project"/>' in xml
    assert 'Name="Annéefiscale" Type="Edm.String"' in xml
    assert 'Name="ProjectCost" Type="Edm.Decimal"' in xml
    assert 'EntitySet Name="Risks"' not in xml


def test_the_ntlm_acceptor_proves_a_password_through_pyspnegos_public_client() -> None:
    import spnego

    from itcrosswalk.plugins.project_online.sandbox_ntlm import NtlmAcceptor, md4

    assert md4(b"abc").hex() == "a448017aaf21d8525fc10ae87aa6729d"  # RFC 1320's test suite
    acceptor = NtlmAcceptor({"CITY\\svc_crosswalk": "right-password"})
    for password, proven in (("right-password", "svc_crosswalk"), ("wrong", None)):
        client = spnego.client("CITY\\svc_crosswalk", password, protocol="ntlm")
        header, key = acceptor.challenge(client.step() or b"")
        answer = client.step(base64.b64decode(header.split()[1]))
        assert acceptor.authenticate(answer or b"", key) == proven
