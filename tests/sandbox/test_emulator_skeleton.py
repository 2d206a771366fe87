"""The emulator skeleton's plumbing, on a minimal emulator: fault answers in the platform's
words, parsed credentials and bodies, edits between pages and the after-page switch, the
forget/has switches' defaults, and the shared filter comparison."""

from __future__ import annotations

import base64
import io
import json
import threading
from typing import Any

import pytest

from itcrosswalk.sandbox.emulator import Emulator, Response
from itcrosswalk.sandbox.faults import Faults
from itcrosswalk.sandbox.filters import compare


class Tiny(Emulator):
    content_type = "application/json; charset=utf-8"

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        self.faults = Faults()
        self.rows = [{"id": n, "updated": 0} for n in range(10)]

    def throttled(self, wait: int) -> Response:
        return self.json(429, {"message": "slow down"}, [("Retry-After", str(wait))])

    def dispatch(self, environ: dict[str, Any], method: str, path: str, query: str) -> Response:
        fault, answer = self.fault(listing=True)
        if answer:
            return answer
        params = self.params(query)
        offset, limit = int(params.get("offset", "0")), int(params.get("limit", "3"))
        page = self.rows[offset : offset + limit]
        self.page_served(self.rows[offset + limit :], lambda row: row.update(updated=1))
        answer = self.json(200, {"rows": page, "host": "https://{host}/x"})
        return self.cut(answer) if fault == "malformed" else answer


def call(app: Tiny, query: str = "", **environ: Any) -> tuple[str, dict[str, str], bytes]:
    seen: dict[str, Any] = {}

    def start(status: str, headers: list[tuple[str, str]]) -> None:
        seen.update(status=status, headers=dict(headers))

    body = b"".join(
        app(
            {"REQUEST_METHOD": "GET", "PATH_INFO": "/rows", "QUERY_STRING": query, **environ},
            start,
        )
    )
    return seen["status"], seen["headers"], body


def test_a_throttle_is_answered_in_the_platforms_words_and_a_503_by_default() -> None:
    app = Tiny()
    app.faults.throttle_next, app.faults.retry_after = 1, 4
    status, headers, body = call(app)
    assert status == "429 Too Many Requests" and headers["Retry-After"] == "4"
    assert json.loads(body) == {"message": "slow down"}
    app.faults.server_errors_next = 1
    status, headers, _ = call(app)
    assert status == "503 Service Unavailable" and headers["Content-Type"] == app.content_type
    assert call(app)[0] == "200 OK" and len(app.requests) == 3


def test_a_malformed_body_is_cut_and_links_name_the_host_only_when_it_is_known() -> None:
    app = Tiny()
    app.faults.malformed_next = 1
    _, headers, body = call(app)
    assert int(headers["Content-Length"]) == len(body)
    with pytest.raises(ValueError):
        json.loads(body)
    assert json.loads(call(app)[2])["host"] == "https://{host}/x"
    app.host = "city.example"
    assert json.loads(call(app)[2])["host"] == "https://city.example/x"


def test_rows_ahead_of_the_read_are_edited_and_after_page_hooks_run() -> None:
    app = Tiny()
    pages: list[int] = []
    app.after_page(lambda: pages.append(1))
    app.faults.mutate_between_pages = 2
    call(app, "offset=0&limit=3")
    assert [r["updated"] for r in app.rows] == [0, 0, 0, 1, 1, 0, 0, 0, 0, 0]
    assert pages == [1]


def test_credentials_bodies_and_params_are_parsed_once_for_every_emulator() -> None:
    basic = "Basic " + base64.b64encode(b"svc:pa:ss").decode()
    given = Emulator.credentials({"HTTP_AUTHORIZATION": basic})
    assert (given.scheme, given.user, given.secret) == ("basic", "svc", "pa:ss")
    assert Emulator.credentials({"HTTP_AUTHORIZATION": "Basic !!!"}).user == ""
    assert Emulator.credentials({"HTTP_AUTHORIZATION": "Bearer  tok "}).secret == "tok"
    assert Emulator.basic_user({"HTTP_AUTHORIZATION": basic}, {"svc": "pa:ss"}) == "svc"
    assert Emulator.basic_user({"HTTP_AUTHORIZATION": basic}, {"svc": "other"}) is None
    form = {"CONTENT_LENGTH": "13", "wsgi.input": io.BytesIO(b"a=1&b=2&b=3xx")}
    assert Emulator.form(form) == {"a": "1", "b": "3xx"}
    bad = {"CONTENT_LENGTH": "x", "wsgi.input": io.BytesIO(b"{}")}
    assert Emulator.body(bad) == b"" and Emulator.json_body(bad, {}) == {}
    with pytest.raises(ValueError):
        Emulator.json_body({"CONTENT_LENGTH": "3", "wsgi.input": io.BytesIO(b"{x}")})
    assert Emulator.params("q=&x=1&x=2") == {"q": "", "x": "2"}
    assert Emulator.status(418) == "418 I'm a Teapot" and Emulator.status(799) == "799 Error"


def test_the_deletion_switches_say_when_an_emulator_lacks_them() -> None:
    with pytest.raises(NotImplementedError, match="Tiny has no forget"):
        Tiny().forget("1")
    with pytest.raises(NotImplementedError, match="Tiny has no has"):
        Tiny().has("1")


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        ("eq", None, None, True),
        ("ne", None, 3, True),
        ("gt", None, 3, False),
        ("=", "5", 5, True),
        (">", "abc", 5, False),
        ("le", True, 1, True),
        ("lt", "2026-01-01", "2026-02-01", True),
        ("gt", {"a": 1}, "x", True),
        ("gt", [1], 2.0, False),
    ],
)
def test_one_comparison_for_every_filter_language(
    op: str, left: Any, right: Any, expected: bool
) -> None:
    assert compare(op, left, right) is expected
