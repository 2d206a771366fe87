"""Loopback HTTPS for the emulators: each WSGI app on its own port, behind a throwaway CA.

The CA comes from ``trustme``; clients trust it through the PEM file ``write_ca`` writes, so
the real client libraries run unmodified over real TLS.
"""

from __future__ import annotations

import socketserver
import ssl
import threading
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

import trustme

WSGIApp = Any


class _QuietHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, OSError):
            pass


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], context: ssl.SSLContext, app: WSGIApp) -> None:
        self.context = context
        super().__init__(address, _QuietHandler)
        self.set_app(app)

    def get_request(self) -> tuple[Any, Any]:
        sock, address = self.socket.accept()
        return self.context.wrap_socket(
            sock, server_side=True, do_handshake_on_connect=False
        ), address

    def finish_request(self, request: Any, client_address: Any) -> None:
        try:
            request.do_handshake()
        except (ssl.SSLError, ConnectionError, OSError):
            return  # a client that does not trust the CA: its problem, not a traceback here
        super().finish_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class SandboxServer:
    """Serves WSGI apps on 127.0.0.1 over HTTPS, each on its own port, with a throwaway CA."""

    def __init__(
        self,
        apps: dict[str, WSGIApp],
        *,
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
    ) -> None:
        self.apps = apps
        self.host = host
        self.ports = ports or {}
        self.ca = trustme.CA()
        self.ca_pem: bytes = self.ca.cert_pem.bytes()
        self.urls: dict[str, str] = {}
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> dict[str, str]:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ca.issue_cert(self.host, "localhost").configure_cert(context)
        for name, app in self.apps.items():
            server = _Server((self.host, self.ports.get(name, 0)), context, app)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.1},
                daemon=True,
                name=f"sandbox-{name}",
            )
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
            self.urls[name] = f"https://{self.host}:{server.server_address[1]}"
        return dict(self.urls)

    def write_ca(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self.ca_pem)
        return path

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
