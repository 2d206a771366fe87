"""The same failure gives the same ``check()`` status on every built-in platform.

Each adapter is pointed at one loopback HTTPS server that fails every request the same way
(or at nothing at all), through its real client library; the first line of its preflight must
name the failure with the status every other platform gives it.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from itcrosswalk.core.adapter import STOPPING
from itcrosswalk.core.config import parse_config
from itcrosswalk.core.sync import build_adapter
from itcrosswalk.registry import make_registry

SECRET = "s3cret-check-token"

# platform -> the lines of [sources.x] beyond url and ca_bundle
SOURCES = {
    "servicenow": 'auth = { type = "basic", user = "svc", password = "env:CHECK_SECRET" }',
    "jira": 'auth = { type = "basic", user = "svc@city.gov", password = "env:CHECK_SECRET" }',
    "jira_align": 'auth = { type = "bearer", token = "env:CHECK_SECRET" }',
    "project_online": 'auth = { type = "bearer", token = "env:CHECK_SECRET" }',
    "clarity": 'client_id = "crosswalk"\nauth = { type = "bearer", token = "env:CHECK_SECRET" }',
    "intune": 'tenant_id = "city.gov"\nauth = { type = "bearer", token = "env:CHECK_SECRET" }',
}

# failure -> (status, content type, body) every request is answered with; None: no answer
FAILURES: dict[str, tuple[int, str, bytes] | None] = {
    "401": (401, "application/json", b'{"error": {"message": "not authenticated"}}'),
    "403": (403, "application/json", b'{"error": {"message": "forbidden"}}'),
    "404 path": (404, "application/json", b'{"error": {"message": "no such path"}}'),
    "HTML with 200": (200, "text/html", b"<html><title>Sign in</title></html>"),
    "timeout": None,
}

EXPECTED = {
    "connection refused": "unreachable",
    "TLS error": "unreachable",
    "401": "auth",
    "403": "no_access",
    "404 path": "missing",
    "HTML with 200": "auth",
    "timeout": "error",
}


@dataclass
class Failing:
    url: str
    ca: Path


class _Handler(BaseHTTPRequestHandler):
    answer: tuple[int, str, bytes] | None = None

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.answer is None:
            time.sleep(3)  # longer than the sources' timeout
            return
        status, kind, body = self.answer
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _reply

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(folder / "other.pem"))
    return ca, folder / "ca.pem", folder / "other.pem"


@pytest.fixture
def serve(certificates: tuple[trustme.CA, Path, Path]) -> Iterator[Any]:
    servers: list[ThreadingHTTPServer] = []

    def start(answer: tuple[int, str, bytes] | None, *, trusted: bool = True) -> Failing:
        ca, good, other = certificates
        handler = type("Handler", (_Handler,), {"answer": answer})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Failing(f"https://127.0.0.1:{server.server_address[1]}", good if trusted else other)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _check(platform: str, target: Failing, tmp_path: Path) -> list[Any]:
    text = f"""
[store]
url = "sqlite:///{tmp_path / "store.db"}"

[sources.x]
platform = "{platform}"
url = "{target.url}"
ca_bundle = "{target.ca}"
timeout = 0.5
connect_timeout = 0.5
max_retries = 0
{SOURCES[platform]}
"""
    config = parse_config(text, tmp_path / "crosswalk.toml")
    adapter = build_adapter(config, "x", make_registry(entry_points_group=None))
    try:
        return adapter.check()
    finally:
        adapter.close()


@pytest.mark.parametrize("platform", sorted(SOURCES))
@pytest.mark.parametrize("failure", list(EXPECTED))
def test_the_same_failure_has_the_same_check_status_on_every_platform(
    platform: str,
    failure: str,
    serve: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHECK_SECRET", SECRET)
    if failure == "connection refused":
        target = serve((200, "application/json", b"{}"))
        target.url = f"https://127.0.0.1:{_closed_port()}"
    elif failure == "TLS error":
        target = serve((200, "application/json", b"{}"), trusted=False)
    else:
        target = serve(FAILURES[failure])
    items = _check(platform, target, tmp_path)
    assert items, f"{platform}: check() said nothing about {failure}"
    first = items[0]
    assert not first.ok and first.status == EXPECTED[failure], (
        f"{platform}, {failure}: {first.status}: {first.detail}"
    )
    assert first.detail.strip() and "\n" not in first.detail and SECRET not in first.detail
    if EXPECTED[failure] in STOPPING:
        # A failure every further probe would meet again is said once, and ends the check.
        assert len(items) == 1, [f"{i.name}: {i.status}" for i in items]
    assert all(not i.ok for i in items), f"{platform}, {failure}: a line says ok"
