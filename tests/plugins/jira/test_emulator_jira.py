"""The Jira Cloud emulator behaves as the platform notes say, checked with plain requests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import requests

from .conftest import TOKEN, USER, Site

REMOVED = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"
)


def call(site: Site, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(
        method, f"{site.url}{path}", auth=(USER, TOKEN), verify=str(site.ca), timeout=10, **kwargs
    )


def search(site: Site, **body: Any) -> requests.Response:
    return call(site, "POST", "/rest/api/3/search/jql", json=body)


def test_the_old_search_is_gone_with_the_recorded_410(site: Site) -> None:
    for version in ("2", "3"):
        response = call(site, "GET", f"/rest/api/{version}/search", params={"jql": "project = CSD"})
        assert response.status_code == 410
        assert response.json() == {"errorMessages": [REMOVED], "errors": {}}


def test_search_jql_needs_a_bound_ignores_startat_and_gives_ids_by_default(site: Site) -> None:
    unbounded = search(site, jql="ORDER BY updated ASC")
    assert unbounded.status_code == 400
    assert "Unbounded JQL queries are not allowed here" in unbounded.json()["errorMessages"][0]
    first = search(site, jql="project = CSD ORDER BY key ASC", maxResults=5).json()
    skipped = search(site, jql="project = CSD ORDER BY key ASC", maxResults=5, startAt=10).json()
    assert first["issues"] == skipped["issues"], "startAt is silently ignored"
    assert set(first["issues"][0]) == {"id"} and "total" not in first
    assert first["isLast"] is False and first["nextPageToken"]


def test_pages_follow_tokens_bound_to_their_query_and_the_last_has_none(site: Site) -> None:
    seen: list[str] = []
    body: dict[str, Any] = {"jql": "project = CSD", "fields": ["summary"], "maxResults": 500}
    token = None
    while True:
        page = search(site, **body, **({"nextPageToken": token} if token else {})).json()
        assert len(page["issues"]) <= 100, "fewer than asked once fields are asked for"
        seen += [i["id"] for i in page["issues"]]
        if page["isLast"]:
            assert "nextPageToken" not in page
            break
        token = page["nextPageToken"]
        other = search(site, jql="project = CSD AND labels = x", nextPageToken=token)
        assert other.status_code == 400, "a token is bound to its JQL"
    assert len(seen) == len(set(seen)) == sum(1 for t in site.world.tickets if t.platform == "jira")


def test_sla_fields_keep_the_recorded_shapes(site: Site) -> None:
    fields = ["issuetype", "customfield_10020", "customfield_10021"]
    issues = search(site, jql="project = CSD", fields=fields, maxResults=100).json()["issues"]
    shapes: dict[str, Any] = {}
    for issue in issues:
        kind = issue["fields"]["issuetype"]["name"]
        resolution = issue["fields"]["customfield_10020"]
        if resolution is None:
            shapes["null"] = kind
        elif not resolution["completedCycles"] and "ongoingCycle" not in resolution:
            shapes["not started"] = kind
        elif resolution["completedCycles"]:
            shapes["completed"] = resolution["completedCycles"][0]
        else:
            shapes["ongoing"] = resolution["ongoingCycle"]
    assert shapes["null"] == "[System] Problem" and shapes["not started"] == "[System] Change"
    assert list(shapes["completed"]) == [
        "startTime", "stopTime", "breachTime", "breached", "goalDuration", "elapsedTime", "remainingTime",
    ]  # fmt: skip
    assert set(shapes["ongoing"]) >= {"paused", "withinCalendarHours", "breachTime"}
    assert set(shapes["ongoing"]["startTime"]) == {"iso8601", "jira", "friendly", "epochMillis"}
    assert shapes["ongoing"]["startTime"]["jira"][-5] in "+-", "an offset, never Z"


def test_the_search_expand_keeps_40_histories_the_changelog_endpoint_all(
    site_factory: Callable[..., Site],
) -> None:
    site = site_factory(changelog_padding=45)
    issue = search(site, jql="project = CSD", fields=["summary"], expand="changelog", maxResults=1)
    changelog = issue.json()["issues"][0]["changelog"]
    assert len(changelog["histories"]) == 40 < changelog["total"]
    key = issue.json()["issues"][0]["key"]
    first = call(
        site, "GET", f"/rest/api/3/issue/{key}/changelog", params={"maxResults": 100}
    ).json()
    assert first["total"] == changelog["total"] and first["isLast"] is True


def test_coming_back_before_retry_after_earns_a_longer_wait(site: Site) -> None:
    site.faults.retry_after = 2
    site.faults.throttle_next = 1
    first = call(site, "GET", "/rest/api/3/myself")
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    assert (
        first.headers["RateLimit-Reason"] == "jira-burst-based"
        and first.headers["X-RateLimit-Reset"]
    )
    early = call(site, "GET", "/rest/api/3/myself")
    assert early.status_code == 429 and int(early.headers["Retry-After"]) > 2
    time.sleep(int(early.headers["Retry-After"]))
    assert call(site, "GET", "/rest/api/3/myself").status_code == 200


def test_a_bad_token_gets_atlassians_401(site: Site) -> None:
    response = requests.get(
        f"{site.url}/rest/api/3/myself", auth=(USER, "wrong"), verify=str(site.ca), timeout=10
    )
    assert response.status_code == 401
    assert response.headers["X-Seraph-LoginReason"] == "AUTHENTICATED_FAILED"
    assert response.json()["errorMessages"] == [
        "Client must be authenticated to access this resource."
    ]
