"""The HTTP policy against real loopback servers: retries, Retry-After, timeouts, TLS, errors."""

from __future__ import annotations

import json
import logging
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import trustme

from itcrosswalk import __version__
from itcrosswalk.core.config import SourceConfig
from itcrosswalk.core.errors import (
    AccessDenied,
    AuthError,
    ConfigError,
    ConnectError,
    NotFound,
    PlatformError,
    RetriableError,
)
from itcrosswalk.core.http import (
    BearerToken,
    HttpPolicy,
    build_session,
    check_response,
    connection_error,
    is_loopback,
    platform_message,
    telemetry_of,
)
from itcrosswalk.core.secrets import REDACTOR

FAST = HttpPolicy(backoff_factor=0.01, max_retries=5)


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: {"result": []})
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    cut: bool = False
    """Announce the whole body, send half, close the connection."""
    trickle: float = 0.0
    """Seconds between the body's bytes (0: all at once)."""
    chunked: int = 0
    """Send the body in chunks of this many bytes (``Transfer-Encoding: chunked``), no length."""


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that timed out leave broken pipes behind; that is the point of those tests.
        pass


class ScriptedServer:
    """A loopback server answering each request with the next scripted reply (the last repeats)."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.replies: list[Reply] = [Reply()]
        self.seen: list[Seen] = []
        self.release = threading.Event()
        self.body_bytes = 0
        self._lock = threading.Lock()
        self.httpd = _Server(("127.0.0.1", 0), self._handler())
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def script(self, *replies: Reply) -> None:
        self.replies = list(replies)

    def _next(self) -> Reply:
        with self._lock:
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with server._lock:
                    server.seen.append(Seen(self.command, self.path, dict(self.headers)))
                reply = server._next()
                if reply.delay:
                    server.release.wait(reply.delay)
                body = reply.body
                if isinstance(body, dict | list):
                    body = json.dumps(body)
                data = body.encode() if isinstance(body, str) else body
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                if reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(data), reply.chunked):
                        piece = data[start : start + reply.chunked]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if reply.cut:
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True
                    return
                if reply.trickle:
                    for i in range(len(data)):
                        if server.release.is_set():
                            return
                        try:
                            self.wfile.write(data[i : i + 1])
                        except OSError:
                            return  # the client gave up: the point of those tests
                        with server._lock:
                            server.body_bytes += 1
                        server.release.wait(reply.trickle)
                    return
                self.wfile.write(data)
                with server._lock:
                    server.body_bytes += len(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    running = ScriptedServer()
    yield running
    running.close()


@dataclass
class Tls:
    server: ScriptedServer
    good_ca: Path
    wrong_ca: Path


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[Tls]:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    good = tmp_path / "city-ca.pem"
    ca.cert_pem.write_to_path(str(good))
    wrong = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong))
    running = ScriptedServer(tls=context)
    yield Tls(running, good, wrong)
    running.close()


def session_for(
    server: ScriptedServer, policy: HttpPolicy = FAST, **kwargs: Any
) -> requests.Session:
    return build_session("snow-prod", base_url=server.url, policy=policy, **kwargs)


# -- retries ------------------------------------------------------------------------------------


def test_retry_after_is_honoured_and_logged_without_query(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="itcrosswalk.http")
    server.script(Reply(429, headers={"Retry-After": "1"}), Reply(200))
    with session_for(server) as session:
        started = time.monotonic()
        response = session.get(
            f"{server.url}/api/now/table/incident?sysparm_query=token%3Dtopsecret"
        )
        elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert elapsed >= 0.9
    assert len(server.seen) == 2
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert (
        "source snow-prod: HTTP 429 from GET /api/now/table/incident, waiting 1s (Retry-After)"
        in logged
    )
    assert "topsecret" not in logged and "sysparm_query" not in logged


def test_retry_after_beyond_max_wait_gives_up_at_once(server: ScriptedServer) -> None:
    server.script(Reply(429, headers={"Retry-After": "100"}))
    policy = HttpPolicy(max_wait=5)
    with session_for(server, policy) as session:
        response = session.get(f"{server.url}/api/now/table/incident")
        assert response.status_code == 429
        assert len(server.seen) == 1
        with pytest.raises(RetriableError) as caught:
            check_response(response, source="snow-prod", what="table incident")
    assert "Retry-After" in str(caught.value) and "max_wait" in str(caught.value)


def test_a_burst_of_503_is_ridden_out_and_every_request_counted(server: ScriptedServer) -> None:
    server.script(Reply(503), Reply(503), Reply(503), Reply(200))
    with session_for(server) as session:
        response = session.get(f"{server.url}/x")
        assert response.status_code == 200
        assert len(server.seen) == 4
        assert session.policy_adapter.sent == 4  # type: ignore[attr-defined]


def test_telemetry_counts_throttling_errors_and_latency(server: ScriptedServer) -> None:
    server.script(
        Reply(429, headers={"Retry-After": "0"}),
        Reply(503),
        Reply(200, delay=0.05),
        Reply(200),
        Reply(404),
    )
    with session_for(server) as session:
        assert session.get(f"{server.url}/a").status_code == 200
        assert session.get(f"{server.url}/b").status_code == 200
        assert session.get(f"{server.url}/c").status_code == 404
        summary = telemetry_of(session)
    assert summary["requests"] == len(server.seen) == 5
    assert (summary["retries"], summary["throttled"], summary["server_errors"]) == (2, 1, 1)
    assert summary["failures"] == 0
    assert summary["latency_p95_ms"] >= summary["latency_p50_ms"] > 0
    assert summary["latency_p95_ms"] >= 50, "the slow answer is the 95th percentile"
    assert telemetry_of(requests.Session()) == {}


def test_503_forever_ends_in_a_retriable_error(server: ScriptedServer) -> None:
    body = {"error": {"message": "Service unavailable", "detail": None}, "status": "failure"}
    server.script(Reply(503, body=body))
    policy = HttpPolicy(max_retries=2, backoff_factor=0.01)
    with session_for(server, policy) as session:
        response = session.get(f"{server.url}/api/now/table/problem")
        assert response.status_code == 503
        assert len(server.seen) == 3
        with pytest.raises(RetriableError) as caught:
            check_response(response, source="snow-prod", what="table problem")
    message = str(caught.value)
    assert "table problem still failed with HTTP 503 after 2 retries" in message
    assert "Service unavailable" in message


def test_post_is_not_retried_on_502(server: ScriptedServer) -> None:
    server.script(Reply(502))
    with session_for(server) as session:
        response = session.post(
            f"{server.url}/api/now/table/incident", json={"short_description": "x"}
        )
    assert response.status_code == 502
    assert [seen.method for seen in server.seen] == ["POST"]


def test_post_is_retried_on_429_because_it_was_refused(server: ScriptedServer) -> None:
    server.script(Reply(429, headers={"Retry-After": "0"}), Reply(201))
    with session_for(server) as session:
        response = session.post(
            f"{server.url}/api/now/table/incident", json={"short_description": "x"}
        )
    assert response.status_code == 201
    assert [seen.method for seen in server.seen] == ["POST", "POST"]


def test_get_is_retried_on_502(server: ScriptedServer) -> None:
    server.script(Reply(502), Reply(200))
    with session_for(server) as session:
        assert session.get(f"{server.url}/x").status_code == 200
    assert len(server.seen) == 2


# -- timeouts and unreachable hosts --------------------------------------------------------------


def test_read_timeout_applies_when_the_caller_gives_none(server: ScriptedServer) -> None:
    server.script(Reply(200, delay=10))
    policy = HttpPolicy(read_timeout=0.5, max_retries=0)
    with session_for(server, policy) as session:
        with pytest.raises(requests.RequestException) as caught:
            session.get(f"{server.url}/slow")
    error = connection_error(caught.value, source="snow-prod", url=server.url, ca_bundle=None)
    assert isinstance(error, RetriableError)
    assert "source snow-prod did not answer within 0.5s" in str(error)


def test_refused_connection_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    policy = HttpPolicy(max_retries=0)
    with build_session("snow-prod", base_url=url, policy=policy) as session:
        with pytest.raises(requests.ConnectionError) as caught:
            session.get(f"{url}/x")
    error = connection_error(caught.value, source="snow-prod", url=url, ca_bundle=None)
    assert isinstance(error, ConnectError)
    assert f"cannot reach source snow-prod at 127.0.0.1:{port}: connection refused" in str(error)


# -- TLS -----------------------------------------------------------------------------------------


def test_ca_bundle_wins_over_requests_environment_variables(
    tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.wrong_ca))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(tls.wrong_ca))
    with session_for(tls.server, ca_bundle=tls.good_ca) as session:
        assert session.get(f"{tls.server.url}/x").status_code == 200
        # PySNC's path: environment settings merged in, then Session.send.
        url = f"{tls.server.url}/api/now/table/incident"
        prepared = session.prepare_request(requests.Request("GET", url))
        settings = session.merge_environment_settings(url, {}, None, None, None)
        assert settings["verify"] == str(tls.wrong_ca)  # what requests alone would have used
        assert session.send(prepared, **settings).status_code == 200
    assert len(tls.server.seen) == 2


def test_without_the_ca_tls_fails_and_the_error_suggests_ca_bundle(
    tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with session_for(tls.server) as session:
        with pytest.raises(requests.exceptions.SSLError) as caught:
            session.get(f"{tls.server.url}/x")
    error = connection_error(caught.value, source="snow-prod", url=tls.server.url, ca_bundle=None)
    assert isinstance(error, ConnectError)
    message = str(error)
    assert "TLS verification failed for source snow-prod (127.0.0.1)" in message
    assert 'ca_bundle = "/path/ca.pem" in [sources.snow-prod]' in message


def test_a_wrong_ca_bundle_is_named_in_the_error(tls: Tls) -> None:
    with session_for(tls.server, ca_bundle=tls.wrong_ca) as session:
        with pytest.raises(requests.exceptions.SSLError) as caught:
            session.get(f"{tls.server.url}/x")
    error = connection_error(
        caught.value, source="snow-prod", url=tls.server.url, ca_bundle=tls.wrong_ca
    )
    assert f"not trusted by {tls.wrong_ca}" in str(error)


def test_without_ca_bundle_a_bundle_from_the_environment_still_counts(
    tls: Tls, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls.good_ca))
    with session_for(tls.server) as session:
        assert session.get(f"{tls.server.url}/x").status_code == 200


# -- plain http and headers ----------------------------------------------------------------------


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        build_session("snow-prod", base_url="http://city.service-now.com", policy=FAST)
    assert str(caught.value) == (
        "sources.snow-prod.url: plain http:// is only allowed to loopback; use https://"
    )


def test_plain_http_is_refused_at_send_time_and_on_redirects(server: ScriptedServer) -> None:
    server.script(Reply(302, headers={"Location": "http://192.0.2.10/elsewhere"}, body=""))
    with session_for(server) as session:
        with pytest.raises(ConfigError, match="refused plain http:// to 192.0.2.10"):
            session.get("http://192.0.2.10/direct")
        assert server.seen == []
        with pytest.raises(ConfigError, match="refused plain http:// to 192.0.2.10"):
            session.get(f"{server.url}/moved")
    assert [seen.path for seen in server.seen] == ["/moved"]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("localhost", True),
        ("10.0.0.1", False),
        ("example.org", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_user_agent_and_accept_are_sent(server: ScriptedServer) -> None:
    with session_for(server) as session:
        session.get(f"{server.url}/x")
    headers = server.seen[0].headers
    assert headers["User-Agent"] == f"itcrosswalk/{__version__}"
    assert headers["Accept"] == "application/json"


def test_policy_from_source() -> None:
    source = SourceConfig(
        name="snow-prod",
        platform="servicenow",
        timeout=30,
        connect_timeout=3,
        max_retries=2,
        max_wait=40,
    )
    assert HttpPolicy.from_source(source) == HttpPolicy(
        connect_timeout=3, read_timeout=30, max_retries=2, max_wait=40
    )


# -- check_response --------------------------------------------------------------------------------


ERROR_SHAPES = [
    pytest.param(
        400,
        {"error": {"message": "Invalid table", "detail": "table bogus"}, "status": "failure"},
        PlatformError,
        "Invalid table: table bogus",
        id="servicenow",
    ),
    pytest.param(
        400,
        {"error": {"code": "BadRequest", "message": "Invalid filter clause"}},
        PlatformError,
        "BadRequest: Invalid filter clause",
        id="graph",
    ),
    pytest.param(
        422,
        {"type": "about:blank", "title": "Unprocessable", "status": 422, "detail": "bad date"},
        PlatformError,
        "Unprocessable: bad date",
        id="rfc7807",
    ),
    pytest.param(
        400,
        {
            "odata.error": {
                "code": "-1",
                "message": {"lang": "en-US", "value": "The query is invalid"},
            }
        },
        PlatformError,
        "The query is invalid",
        id="odata",
    ),
    pytest.param(
        403,
        {"error": {"message": "User Not Authorized", "detail": "ACL"}, "status": "failure"},
        AccessDenied,
        "source snow-prod may not read table incident (HTTP 403): User Not Authorized: ACL; grant",
        id="forbidden",
    ),
    pytest.param(
        404, {"error": {"message": "No such path"}}, NotFound, "(HTTP 404): No such path", id="404"
    ),
    pytest.param(
        500, "Internal error\nat line 2", RetriableError, "HTTP 500 (Internal error)", id="text-500"
    ),
]


@pytest.mark.parametrize(("status", "body", "kind", "expected"), ERROR_SHAPES)
def test_check_response_reads_each_error_shape(
    server: ScriptedServer, status: int, body: Any, kind: type[Exception], expected: str
) -> None:
    server.script(Reply(status, body=body))
    with session_for(server, HttpPolicy(max_retries=0)) as session:
        response = session.get(f"{server.url}/api")
    with pytest.raises(kind) as caught:
        check_response(response, source="snow-prod", what="table incident")
    assert expected in str(caught.value)


def test_401_names_the_credential_to_check(server: ScriptedServer) -> None:
    server.script(Reply(401, body={"error": {"message": "User Not Authenticated"}}))
    with session_for(server) as session:
        response = session.get(f"{server.url}/api")
    with pytest.raises(AuthError) as caught:
        check_response(
            response,
            source="snow-prod",
            what="table incident",
            credential_hint="check the password that `env:SNOW_PASSWORD` points to",
        )
    assert str(caught.value) == (
        "authentication failed for source snow-prod (HTTP 401): "
        "check the password that `env:SNOW_PASSWORD` points to"
    )


def test_an_html_sign_in_page_is_an_auth_error(server: ScriptedServer) -> None:
    page = "<!DOCTYPE html><html><head><title>Sign in to your account</title></head></html>"
    server.script(Reply(200, body=page, headers={"Content-Type": "text/html; charset=utf-8"}))
    with session_for(server) as session:
        response = session.get(f"{server.url}/sites/pwa/_api/ProjectData/Projects")
    with pytest.raises(
        AuthError,
        match="source pwa: the server answered with an HTML page, probably a sign-in page",
    ):
        check_response(response, source="pwa", what="ProjectData")
    assert platform_message(response) == "Sign in to your account"


def test_success_passes(server: ScriptedServer) -> None:
    with session_for(server) as session:
        response = session.get(f"{server.url}/api")
    assert check_response(response, source="snow-prod", what="table incident") is None


def test_secrets_never_appear_in_messages(server: ScriptedServer) -> None:
    secret = "Tr0ub4dor&3-horse"
    REDACTOR.register(secret)
    body = {"error": {"message": f"password {secret} rejected", "detail": "x" * 1000}}
    server.script(Reply(400, body=body))
    with session_for(server) as session:
        response = session.get(f"{server.url}/api")
    with pytest.raises(PlatformError) as caught:
        check_response(response, source="snow-prod", what="table incident")
    message = str(caught.value)
    assert secret not in message
    assert "password *** rejected" in message
    assert len(platform_message(response)) <= 300


# -- backoff after a 429 without Retry-After ----------------------------------------------------


def test_a_429_without_retry_after_backs_off_from_the_platforms_guidance(
    server: ScriptedServer,
) -> None:
    waits: list[float] = []
    policy = HttpPolicy(throttle_backoff=3.0, max_retries=5, sleep=waits.append)
    server.script(Reply(429), Reply(429), Reply(429), Reply(200))
    with session_for(server, policy) as session:
        response = session.get(f"{server.url}/v1.0/users")
    assert response.status_code == 200 and len(server.seen) == 4
    # Exponential from the guidance, jitter only upwards: never sooner than the platform asks.
    assert 3.0 <= waits[0] <= 3.75
    assert 6.0 <= waits[1] <= 7.5
    assert 12.0 <= waits[2] <= 15.0


def test_retry_after_still_wins_over_the_throttle_backoff(server: ScriptedServer) -> None:
    waits: list[float] = []
    policy = HttpPolicy(throttle_backoff=3.0, sleep=waits.append)
    server.script(Reply(429, headers={"Retry-After": "1"}), Reply(503), Reply(200))
    with session_for(server, policy) as session:
        assert session.get(f"{server.url}/v1.0/users").status_code == 200
    # A 503 without Retry-After keeps the ordinary backoff.
    assert waits[0] == 1.0 and waits[1] < 1.0


def test_the_policys_waits_stay_within_max_wait(server: ScriptedServer) -> None:
    waits: list[float] = []
    policy = HttpPolicy(throttle_backoff=3.0, max_wait=8.5, sleep=waits.append)
    server.script(Reply(429))
    with session_for(server, policy) as session:
        response = session.get(f"{server.url}/v1.0/users")
    assert response.status_code == 429
    # 3-3.75 s, then 6-7.5 s would pass max_wait: the policy gives up instead of sleeping.
    assert len(waits) == 1 and len(server.seen) == 2


# -- answers cut off mid-body ---------------------------------------------------------------------


BODY = {"result": [{"sys_id": f"{i:032x}", "short_description": "x" * 40} for i in range(200)]}


def test_a_connection_cut_mid_body_is_retried(server: ScriptedServer) -> None:
    waits: list[float] = []
    server.script(Reply(200, body=BODY, cut=True), Reply(200, body=BODY))
    with session_for(server, HttpPolicy(sleep=waits.append)) as session:
        response = session.get(f"{server.url}/api/now/table/incident")
        assert response.json() == BODY
        assert session.policy_adapter.sent == 2  # type: ignore[attr-defined]
    assert len(server.seen) == 2 and len(waits) == 1


# Several mebibytes: the body is read in more than one chunk (read_body's BODY_CHUNK).
LARGE = {"result": [{"sys_id": f"{i:032x}", "description": "é" * 200} for i in range(8000)]}


@pytest.mark.parametrize(
    "shape", ["length", "chunked", "gzip", "cut once"], ids=lambda shape: shape.replace(" ", "-")
)
def test_a_body_of_several_chunks_is_read_whole_whatever_its_framing(
    server: ScriptedServer, shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gzip

    from itcrosswalk.core.http import BODY_CHUNK

    chunks: list[int] = []  # the chunk size of every read of a body
    iter_content = requests.Response.iter_content

    def reading(self: requests.Response, chunk_size: int = 1, decode_unicode: bool = False) -> Any:
        chunks.append(chunk_size)
        return iter_content(self, chunk_size, decode_unicode)

    monkeypatch.setattr(requests.Response, "iter_content", reading)

    data = json.dumps(LARGE).encode()
    assert len(data) > 3 * BODY_CHUNK
    reply = {
        "length": [Reply(200, body=data)],
        "chunked": [Reply(200, body=data, chunked=100_000)],
        "gzip": [Reply(200, body=gzip.compress(data), headers={"Content-Encoding": "gzip"})],
        "cut once": [Reply(200, body=data, cut=True), Reply(200, body=data)],
    }[shape]
    server.script(*reply)
    with session_for(server, HttpPolicy(sleep=lambda _: None)) as session:
        response = session.get(f"{server.url}/api/now/table/incident")
        assert response.content == data and response.json() == LARGE
        assert session.policy_adapter.sent == len(reply)  # type: ignore[attr-defined]
        again = session.get(f"{server.url}/api/now/table/incident")  # the connection is free
        assert again.content == data
    # Every attempt read its body by the mebibyte, none in requests' own 10 KB chunks.
    assert chunks == [BODY_CHUNK] * (len(reply) + 1)


def test_a_cut_that_persists_ends_in_a_retriable_error_within_the_budget(
    server: ScriptedServer,
) -> None:
    server.script(Reply(200, body=BODY, cut=True))
    with session_for(server, HttpPolicy(max_retries=2, sleep=lambda _: None)) as session:
        with pytest.raises(requests.RequestException) as caught:
            session.get(f"{server.url}/api/now/table/incident")
    assert len(server.seen) == 3  # the first attempt and max_retries = 2
    error = connection_error(caught.value, source="snow-prod", url=server.url, ca_bundle=None)
    assert isinstance(error, RetriableError)
    assert str(error) == (
        "source snow-prod: the connection was cut while reading the answer to GET "
        "/api/now/table/incident (3 attempts); the network or the platform is unsteady; "
        "try again later"
    )


def test_cuts_and_503s_share_one_retry_budget(server: ScriptedServer) -> None:
    server.script(
        Reply(503), Reply(200, body=BODY, cut=True), Reply(503), Reply(200, body=BODY, cut=True)
    )
    with session_for(server, HttpPolicy(max_retries=3, sleep=lambda _: None)) as session:
        with pytest.raises(requests.RequestException):
            session.get(f"{server.url}/api/now/table/incident")
    assert len(server.seen) == 4  # not 4 attempts per kind of failure


def test_a_post_cut_mid_body_is_not_sent_again(server: ScriptedServer) -> None:
    server.script(Reply(201, body=BODY, cut=True), Reply(201, body=BODY))
    with session_for(server, HttpPolicy(sleep=lambda _: None)) as session:
        with pytest.raises(requests.RequestException):
            session.post(f"{server.url}/api/now/table/incident", json={"a": 1})
    assert len(server.seen) == 1  # the platform may have created the record


# -- a total deadline per attempt -----------------------------------------------------------------


def test_an_answer_trickling_past_the_deadline_is_cut_there_with_a_clear_error(
    server: ScriptedServer,
) -> None:
    body = {"result": "y" * 400}
    server.script(Reply(200, body=body, trickle=0.05), Reply(200, body=body))
    policy = HttpPolicy(read_timeout=5, deadline=0.3, sleep=lambda _: None)
    with session_for(server, policy) as session:
        with pytest.raises(requests.Timeout) as caught:
            session.get(f"{server.url}/api/now/table/incident")
    # Not sent again: the deadline is the whole request's, and it is spent.
    assert len(server.seen) == 1
    # Left after about 0.3 s of the 21 s the trickle would have taken.
    assert server.body_bytes < len(json.dumps(body)) // 2
    error = connection_error(caught.value, source="snow-prod", url=server.url, ca_bundle=None)
    assert isinstance(error, RetriableError)
    assert str(error) == (
        "source snow-prod: GET /api/now/table/incident took longer than the deadline of 0.3s "
        "for one request: the answer arrives too slowly; the platform or a proxy on the way "
        "may be overloaded; try again later, or raise deadline in [sources.snow-prod]"
    )


def test_the_deadline_spans_every_attempt_of_a_request(server: ScriptedServer) -> None:
    body = {"result": "y" * 400}
    server.script(Reply(200, body=BODY, cut=True), Reply(200, body=body, trickle=0.05))
    policy = HttpPolicy(read_timeout=5, deadline=0.5, sleep=lambda _: None)
    with session_for(server, policy) as session:
        with pytest.raises(requests.Timeout, match=r"0\.5s for one request \(2 attempts\)"):
            session.get(f"{server.url}/api/now/table/incident")
    assert len(server.seen) == 2


def test_the_waits_between_attempts_do_not_count_against_the_deadline(
    server: ScriptedServer,
) -> None:
    # The backoff (0.5-1 s, really slept) is longer than the deadline; the transfer is not.
    server.script(Reply(503), Reply(200, body=BODY))
    policy = HttpPolicy(deadline=0.4, backoff_factor=1.0)
    with session_for(server, policy) as session:
        assert session.get(f"{server.url}/api/now/table/incident").json() == BODY
    assert len(server.seen) == 2


def test_the_deadline_comes_from_the_source_or_five_timeouts() -> None:
    source = SourceConfig(name="s", platform="servicenow", timeout=3)
    assert HttpPolicy.from_source(source).total_deadline == 30
    assert HttpPolicy(read_timeout=60).total_deadline == 300
    source = SourceConfig(name="s", platform="servicenow", timeout=3, deadline=12)
    assert HttpPolicy.from_source(source).total_deadline == 12


# -- CA trust from the environment ----------------------------------------------------------------


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_every_ca_environment_variable_is_honoured(
    tls: Tls, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, str(tls.good_ca))
    with session_for(tls.server) as session:
        # PreparedRequest through Session.send, as PySNC sends, skips requests' own env merge.
        prepared = session.prepare_request(requests.Request("GET", f"{tls.server.url}/api"))
        assert session.send(prepared).status_code == 200


def test_the_ca_bundle_wins_over_ssl_cert_file(tls: Tls, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.wrong_ca))
    with session_for(tls.server, ca_bundle=tls.good_ca) as session:
        assert session.get(f"{tls.server.url}/api").status_code == 200


# -- header values that cannot be sent ------------------------------------------------------------


def test_a_token_with_a_trailing_newline_is_a_config_error_without_the_token(
    server: ScriptedServer,
) -> None:
    token = "tok-with-newline-0123456789\n"
    REDACTOR.register(token)
    with session_for(server, auth=BearerToken(token)) as session:
        with pytest.raises(requests.RequestException) as caught:
            session.get(f"{server.url}/api")
    assert server.seen == []
    error = connection_error(caught.value, source="snow-prod", url=server.url, ca_bundle=None)
    assert isinstance(error, ConfigError)
    assert "the Authorization header holds a line break" in str(error)
    assert "tok-with-newline" not in str(error) and "tok-with-newline" not in str(caught.value)
