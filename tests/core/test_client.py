"""The shared adapter client: the error table as data, recording, refused query keys, auth
choices, and options validated once; against a real server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import field_validator

from itcrosswalk.core.adapter import Adapter, PlatformOptions, Probe
from itcrosswalk.core.client import ErrorRule, HttpClient, PlatformSpec, basic, bearer
from itcrosswalk.core.config import SourceConfig
from itcrosswalk.core.errors import AuthError, ConfigError, PlatformError
from itcrosswalk.core.sync import secret_resolver

TOKEN = "tok-3c1f9a"


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str]]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.seen.append((self.command, self.path))
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        status, body = 200, {"ok": True}
        if parts.path == "/refuse":
            status = 422
            body = {"message": "validation failed", "errors": {"name": ["is required"]}}
        elif parts.path == "/expired":
            status, body = 401, {"errorMessage": f"key {TOKEN} expired", "errorCode": "key.expired"}
        elif parts.path == "/list" and "$filter" in query:
            status, body = 400, {"message": "Filtering is not supported"}
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DESK_TOKEN", TOKEN)


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.seen = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


SPEC = PlatformSpec(
    title="Testdesk",
    url_example="https://desk.city.gov",
    auth={"bearer": bearer, "basic": basic},
    auth_example='auth = { type = "bearer", token = "env:DESK_TOKEN" }',
    hints={"bearer": "check the token that `{token}` points to"},
    code_field="errorCode",
    errors=(
        ErrorRule(
            422, PlatformError, "source {source}: Testdesk refused {what}: {errors}", writes=True
        ),
        ErrorRule(
            401,
            AuthError,
            "authentication failed for source {source} ({code}): {message}; renew `{token}`",
            code="key.expired",
        ),
    ),
)


def _source(url: str, auth: dict[str, Any] | None = None, **extra: Any) -> SourceConfig:
    auth = {"type": "bearer", "token": "env:DESK_TOKEN"} if auth is None else auth
    return SourceConfig.model_validate(
        {"name": "desk", "platform": "testdesk", "url": url, "auth": auth or None, **extra}
    )


def _client(url: str, **kwargs: Any) -> HttpClient:
    return HttpClient(_source(url, **kwargs), secret_resolver("desk"), SPEC)


def test_a_rule_for_writes_spells_out_the_fields_and_a_read_falls_to_the_core(site: str) -> None:
    client = _client(site)
    with pytest.raises(PlatformError) as caught:
        client.request("POST", "/refuse", what="the ticket", json={})
    assert str(caught.value) == (
        "source desk: Testdesk refused the ticket: validation failed; name: is required"
    )
    with pytest.raises(PlatformError) as read:
        client.request("GET", "/refuse", what="the tickets")
    assert "Testdesk refused" not in str(read.value) and "HTTP 422" in str(read.value)


def test_a_coded_rule_names_the_secret_reference_and_never_the_secret(site: str) -> None:
    with pytest.raises(AuthError) as caught:
        _client(site).get("/expired", what="the profile")
    message = str(caught.value)
    assert "(key.expired)" in message and "renew `env:DESK_TOKEN`" in message
    assert TOKEN not in message


def test_recording_logs_this_threads_requests_inside_the_block_only(site: str) -> None:
    client = _client(site)
    other: list[Any] = []
    with client.recording() as made:
        client.get("/a", {"q": "x y"}, what="a")
        worker = threading.Thread(target=lambda: other.append(client.get("/b", what="b")))
        worker.start()
        worker.join()
        client.send("POST", f"{site}/c", json={"name": "n"})
        client.plan("POST", f"{site}/d", {"planned": True})
    client.get("/e", what="e")
    assert made == [
        {"method": "GET", "url": f"{site}/a?q=x+y", "body": None},
        {"method": "POST", "url": f"{site}/c", "body": {"name": "n"}},
        {"method": "POST", "url": f"{site}/d", "body": {"planned": True}},
    ]
    assert ("GET", "/b") in _Handler.seen and other == [{"ok": True}]


def test_a_refused_query_key_is_said_once_and_dropped(site: str) -> None:
    client = _client(site)
    said: list[tuple[str, Any, int]] = []
    response = client.send_dropping(
        "GET",
        f"{site}/list",
        params={"$filter": "a ge 1", "$top": 5},
        drop=("$filter",),
        refused=lambda key, value, answer: said.append((key, value, answer.status_code)),
    )
    assert response.status_code == 200 and said == [("$filter", "a ge 1", 400)]
    assert [p for _m, p in _Handler.seen] == ["/list?%24filter=a+ge+1&%24top=5", "/list?%24top=5"]


OAUTH = {"type": "oauth_client_credentials", "client_id": "c", "client_secret": "env:X"}


def test_auth_choices_say_what_is_missing_or_not_taken(site: str) -> None:
    with pytest.raises(ConfigError, match=r"Testdesk needs credentials: auth = \{ type"):
        _client(site, auth={}).build_auth()
    with pytest.raises(ConfigError, match=r"'oauth_client_credentials' is not supported.*bearer"):
        _client(site, auth=OAUTH).build_auth()


def test_the_base_url_is_required_and_a_pasted_api_root_is_cut() -> None:
    spec = PlatformSpec(
        title="Testdesk", url_example="https://desk.city.gov", api_suffixes=("/api/v2",)
    )
    source = _source("https://desk.city.gov/api/v2/")
    assert spec.base_url(source) == "https://desk.city.gov"
    with pytest.raises(
        ConfigError, match=r"Testdesk address is required \(https://desk.city.gov\)"
    ):
        spec.base_url(_source(None))  # type: ignore[arg-type]


class CountingOptions(PlatformOptions):
    validated: ClassVar[int] = 0
    group: str | None = None

    @field_validator("group")
    @classmethod
    def _count(cls, value: str | None) -> str | None:
        CountingOptions.validated += 1
        return value


class DeskAdapter(Adapter, platform="testdesk", options=CountingOptions, spec=SPEC):
    def probes(self) -> list[Probe]:
        return [Probe("tickets", lambda: "readable")]


def test_options_are_validated_once_and_an_unknown_key_is_named(site: str) -> None:
    from itcrosswalk.core.adapter import takes_options

    CountingOptions.validated = 0
    source = _source(site, group="it")
    adapter = DeskAdapter(source, secret_resolver("desk"))
    assert CountingOptions.validated == 1 and adapter.options.group == "it"
    given = CountingOptions.model_validate({"group": "hr"})
    assert takes_options(DeskAdapter)
    assert DeskAdapter(source, secret_resolver("desk"), options=given).options.group == "hr"
    assert CountingOptions.validated == 2  # the one above, not again in the adapter
    with pytest.raises(ConfigError, match="sources.desk.grop"):
        DeskAdapter(_source(site, grop="it"), secret_resolver("desk"))
    assert adapter.base == site and adapter.check()[0].status == "ok"
