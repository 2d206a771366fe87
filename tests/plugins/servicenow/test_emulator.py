"""The ServiceNow emulator against the platform's documented behaviour (called in-process)."""

from __future__ import annotations

import base64
import io
import json
from typing import Any
from urllib.parse import urlencode

import pytest

from itcrosswalk.plugins.servicenow.sandbox import ServiceNowEmulator, create_app, parse_query
from itcrosswalk.sandbox.world import World

AUTH = "Basic " + base64.b64encode(b"admin:admin").decode()


def call(
    app: ServiceNowEmulator, path: str, params: dict[str, Any] | None = None, **headers: str
) -> tuple[int, dict[str, str], Any]:
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": urlencode(params or {}),
        "HTTP_HOST": "snow.example",
        "HTTP_AUTHORIZATION": headers.get("auth", AUTH),
        "wsgi.input": io.BytesIO(b""),
    }
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]]) -> None:
        seen["status"] = int(status.split()[0])
        seen["headers"] = dict(response_headers)

    body = b"".join(app(environ, start_response))
    try:
        payload = json.loads(body)
    except ValueError:
        payload = body
    return seen["status"], seen["headers"], payload


@pytest.fixture(scope="module")
def app(world: World) -> ServiceNowEmulator:
    return create_app(world)


def test_every_value_is_a_string_and_references_carry_links(app: ServiceNowEmulator) -> None:
    status, headers, body = call(app, "/api/now/table/incident", {"sysparm_limit": 2})
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    row = body["result"][0]
    for value in row.values():
        assert isinstance(value, str) or set(value) == {"link", "value"}
    group = row["assignment_group"]
    assert group["link"] == f"https://snow.example/api/now/table/sys_user_group/{group['value']}"


def test_display_value_all_gives_pairs_in_the_users_time_zone(app: ServiceNowEmulator) -> None:
    _, _, body = call(
        app,
        "/api/now/table/incident",
        {
            "sysparm_limit": 1,
            "sysparm_display_value": "all",
            "sysparm_exclude_reference_link": "true",
        },
    )
    row = body["result"][0]
    assert set(row["state"]) == {"display_value", "value"}
    opened = row["opened_at"]
    assert opened["display_value"] != opened["value"]  # US/Pacific shown, UTC stored
    assert row["priority"]["display_value"].startswith(row["priority"]["value"] + " - ")


def test_paging_headers_count_and_link(app: ServiceNowEmulator) -> None:
    total = len(app.tables["incident"])
    _, headers, body = call(
        app, "/api/now/table/incident", {"sysparm_limit": 5, "sysparm_offset": 5}
    )
    assert headers["X-Total-Count"] == str(total)
    assert 'rel="next"' in headers["Link"] and 'rel="prev"' in headers["Link"]
    assert len(body["result"]) == 5


def test_an_unknown_field_in_a_query_is_ignored_and_widens_the_result(
    app: ServiceNowEmulator,
) -> None:
    total = len(app.tables["incident"])
    _, headers, _ = call(
        app, "/api/now/table/incident", {"sysparm_query": "priorty=1", "sysparm_limit": 1}
    )
    assert headers["X-Total-Count"] == str(total)


def test_or_and_new_query_groups(app: ServiceNowEmulator) -> None:
    fields = set().union(*app.tables["incident"])
    match, order = parse_query(
        "priority=1^ORpriority=2^state=7^NQnumber=INC0010001^ORDERBYDESCnumber", fields
    )
    assert order == [("number", True)]
    assert match({"priority": "2", "state": "7", "number": "x"})
    assert not match({"priority": "2", "state": "6", "number": "x"})
    assert match({"priority": "5", "state": "1", "number": "INC0010001"})


def test_a_range_query_answered_by_index_matches_a_scan(app: ServiceNowEmulator) -> None:
    rows = app.tables["incident"]
    stamps = sorted(r["sys_updated_on"] for r in rows)
    low, high = stamps[len(stamps) // 4], stamps[3 * len(stamps) // 4]
    for query in (
        f"sys_updated_on>={low}",
        f"sys_updated_on>{low}^sys_updated_on<={high}",
        f"sys_updated_on={low}",
    ):
        indexed = app._matching("incident", query + "^ORDERBYsys_updated_on^ORDERBYsys_id")
        match, _ = parse_query(query, set(rows[0]))
        scanned = sorted(
            (r for r in rows if match(r)), key=lambda r: (r["sys_updated_on"], r["sys_id"])
        )
        assert [r["sys_id"] for r in indexed] == [r["sys_id"] for r in scanned]


def test_v1_answers_an_empty_match_with_404_and_v2_with_an_empty_list(
    app: ServiceNowEmulator,
) -> None:
    status, _, body = call(app, "/api/now/table/incident", {"sysparm_query": "number=NOPE"})
    assert (
        status == 404
        and body["error"]["message"] == "No Record found"
        and body["status"] == "failure"
    )
    status, _, body = call(app, "/api/now/v2/table/incident", {"sysparm_query": "number=NOPE"})
    assert status == 200 and body == {"result": []}


def test_errors_have_the_platform_shape(world: World) -> None:
    app = create_app(world, forbidden_tables={"sys_user"})
    status, _, body = call(app, "/api/now/table/u_nonexistent")
    assert status == 400 and body["error"]["message"] == "Invalid table u_nonexistent"
    status, _, body = call(app, "/api/now/table/sys_user")
    assert status == 403 and body["status"] == "failure"
    status, headers, body = call(
        app, "/api/now/table/incident", auth="Basic " + base64.b64encode(b"admin:no").decode()
    )
    assert status == 401 and body["error"]["message"] == "User Not Authenticated"


def test_a_single_record_is_an_object(app: ServiceNowEmulator) -> None:
    sys_id = app.tables["problem"][0]["sys_id"]
    status, _, body = call(app, f"/api/now/table/problem/{sys_id}")
    assert status == 200 and isinstance(body["result"], dict) and body["result"]["sys_id"] == sys_id
