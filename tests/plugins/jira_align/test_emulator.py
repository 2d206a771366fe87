"""The Jira Align emulator against the platform's documented behaviour (called in-process)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from itcrosswalk.plugins.jira_align.sandbox import (
    FilterError,
    JiraAlignEmulator,
    create_app,
    parse_filter,
)
from itcrosswalk.sandbox.world import World

API = "/rest/align/api/2"
TOKEN = "emulator-token"


def call(
    app: JiraAlignEmulator,
    path: str,
    params: dict[str, Any] | None = None,
    *,
    method: str = "GET",
    body: Any = None,
    auth: str = f"bearer {TOKEN}",
) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": urlencode(params or {}),
        "HTTP_HOST": "city.jiraalign.example",
        "HTTP_AUTHORIZATION": auth,
        "CONTENT_LENGTH": str(len(data)),
        "wsgi.input": io.BytesIO(data),
    }
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(headers)

    raw = b"".join(app(environ, start_response))
    try:
        payload = json.loads(raw)
    except ValueError:
        payload = raw
    return seen["status"], seen["headers"], payload


@pytest.fixture
def app(world: World) -> JiraAlignEmulator:
    return create_app(world, users={"svc": TOKEN})


def test_lists_are_bare_arrays_paged_by_top_and_skip(app: JiraAlignEmulator) -> None:
    status, headers, first = call(app, f"{API}/Features", {"$top": 5, "$skip": 0})
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    assert isinstance(first, list) and len(first) == 5
    _, _, rest = call(app, f"{API}/features", {"$top": 100, "$skip": 15})  # routes ignore case
    assert len(rest) == len(app.data["features"]) - 15
    assert [f["id"] for f in first] == sorted(f["id"] for f in first)
    assert first[0]["self"] == f"https://city.jiraalign.example{API}/features/{first[0]['id']}"
    assert "Link" not in headers and "X-Total-Count" not in headers


def test_top_above_100_is_refused_with_problem_details(app: JiraAlignEmulator) -> None:
    status, headers, body = call(app, f"{API}/Epics", {"$top": 101})
    assert status == 400 and headers["Content-Type"].startswith("application/problem+json")
    assert body["status"] == 400 and "limit of '100'" in body["detail"]
    assert set(body) >= {"type", "title", "status", "detail", "instance"}


def test_date_filters_compare_the_date_only(app: JiraAlignEmulator) -> None:
    row = app.touch("Epics", 1200)
    day = row["lastUpdatedDate"][:10]
    later_same_day = f"{day}T23:59:59.999Z"
    _, _, body = call(app, f"{API}/Epics", {"$filter": f"lastUpdatedDate ge '{later_same_day}'"})
    assert 1200 in [e["id"] for e in body]  # the time part is ignored
    _, _, none_null = call(app, f"{API}/Features", {"$filter": "lastUpdatedDate ge '2000-01-01'"})
    assert all(f["lastUpdatedDate"] is not None for f in none_null)
    assert len(none_null) < len(app.data["features"])  # never-edited items escape the filter


def test_filters_combine_with_and_or_and_unknown_fields_are_refused(app: JiraAlignEmulator) -> None:
    _, _, body = call(app, f"{API}/Epics", {"$filter": "id eq 1200 or id eq 1202 and state eq 2"})
    assert {e["id"] for e in body} <= {1200, 1202} and 1200 in {e["id"] for e in body}
    status, _, problem = call(app, f"{API}/Epics", {"$filter": "colour eq 'red'"})
    assert status == 400 and "colour" in problem["detail"]
    status, _, problem = call(app, f"{API}/Epics", {"$filter": "contains(title, 'x')"})
    assert status == 400


def test_a_site_may_refuse_filters_on_a_resource(world: World) -> None:
    app = create_app(world, users={"svc": TOKEN}, unfilterable={"Themes"})
    status, _, problem = call(app, f"{API}/Themes", {"$filter": "lastUpdatedDate ge '2026-01-01'"})
    assert status == 400 and "not supported" in problem["detail"]
    assert call(app, f"{API}/Epics", {"$filter": "lastUpdatedDate ge '2026-01-01'"})[0] == 200


def test_select_keeps_payloads_small(app: JiraAlignEmulator) -> None:
    _, _, body = call(app, f"{API}/Users", {"$select": "id,email", "$top": 2})
    assert [set(u) for u in body] == [{"id", "email"}, {"id", "email"}]
    assert call(app, f"{API}/Users", {"$select": "id,shoeSize"})[0] == 400


def test_without_a_valid_token_the_answer_is_401(app: JiraAlignEmulator) -> None:
    status, headers, body = call(app, f"{API}/Epics", auth="bearer wrong")
    assert (
        status == 401
        and body["title"] == "Unauthorized"
        and headers["WWW-Authenticate"] == "Bearer"
    )
    basic = "Basic " + base64.b64encode(f"svc:{TOKEN}".encode()).decode()
    assert call(app, f"{API}/Epics", auth=basic)[0] == 200
    assert call(app, f"{API}/Epics", auth=f"Bearer {TOKEN}")[0] == 200


def test_throttling_answers_429_with_retry_after(app: JiraAlignEmulator) -> None:
    app.faults.throttle_next = 1
    app.faults.retry_after = 7
    status, headers, body = call(app, f"{API}/Epics")
    assert status == 429 and headers["Retry-After"] == "7" and body["status"] == 429
    assert call(app, f"{API}/Epics")[0] == 200


def test_items_by_id_and_a_missing_one(app: JiraAlignEmulator) -> None:
    status, _, body = call(app, f"{API}/Epics/1201")
    assert status == 200 and body["id"] == 1201 and isinstance(body["featureIds"], list)
    status, _, problem = call(app, f"{API}/Epics/99999")
    assert status == 404 and problem["status"] == 404
    assert call(app, f"{API}/Widgets")[0] == 404


def test_post_creates_an_epic_or_answers_a_validation_problem(app: JiraAlignEmulator) -> None:
    status, headers, problem = call(
        app, f"{API}/Epics", method="POST", body={"title": "", "primaryProgramId": 999}
    )
    assert status == 400 and problem["title"] == "One or more validation errors occurred."
    assert set(problem["errors"]) == {"Title", "PrimaryProgramId"}
    count = len(app.data["epics"])
    status, headers, created = call(
        app,
        f"{API}/Epics",
        method="POST",
        body={"title": "New", "primaryProgramId": 11, "externalId": "x-1"},
    )
    assert status == 201 and created["id"] > 1200 and created["externalId"] == "x-1"
    assert headers["Location"].endswith(f"/epics/{created['id']}")
    assert created["createDate"] and created["lastUpdatedDate"]
    assert len(app.data["epics"]) == count + 1
    assert call(app, f"{API}/Programs", method="POST", body={"title": "x"})[0] == 405


def test_the_filter_grammar() -> None:
    fields = {"id", "title", "lastUpdatedDate"}
    predicate = parse_filter("title eq 'O''Brien' and id gt 3", fields)
    assert predicate({"id": 4, "title": "O'Brien"}) and not predicate({"id": 3, "title": "O'Brien"})
    assert parse_filter("lastUpdatedDate eq null", fields)({"lastUpdatedDate": None})
    for bad in ("", "id eq", "id like 3", "(id eq 3)", "id eq 3 xor id eq 4", "id eq 3 and"):
        with pytest.raises(FilterError):
            parse_filter(bad, fields)


def test_a_never_edited_item_is_found_by_its_create_date_not_its_update_date(
    app: JiraAlignEmulator,
) -> None:
    filed = app.file_unedited("Features", title="Imported")
    day = filed["createDate"][:10]
    _, _, updated = call(app, f"{API}/Features", {"$filter": f"lastUpdatedDate ge '{day}'"})
    assert filed["id"] not in [f["id"] for f in updated]
    either = f"lastUpdatedDate ge '{day}' or createDate ge '{day}'"
    _, _, body = call(app, f"{API}/Features", {"$filter": either})
    assert filed["id"] in [f["id"] for f in body]
    grouped = f"(lastUpdatedDate ge '{day}' or createDate ge '{day}')"
    assert call(app, f"{API}/Features", {"$filter": grouped})[0] == 400  # no grouping
