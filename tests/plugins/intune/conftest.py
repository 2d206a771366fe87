"""Fixtures: the Graph emulator on loopback HTTPS, and configs pointing msgraph-sdk at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import Config, load_config
from itcrosswalk.plugins.intune.sandbox import SANDBOX_TENANT, GraphEmulator, create_app
from itcrosswalk.sandbox.faults import Faults
from itcrosswalk.sandbox.server import SandboxServer
from itcrosswalk.sandbox.world import World, generate

CLIENT_ID = "5f0c1e2d-7a3b-4c8d-9e1f-0a2b3c4d5e6f"
SECRET = "Gr4ph~secret.that-must-never-leak"


@dataclass
class Tenant:
    """A running Graph emulator and what a config needs to reach it."""

    app: GraphEmulator
    url: str
    ca: Path
    faults: Faults
    world: World


@pytest.fixture(scope="session")
def world() -> World:
    return generate(7, "tiny")


@pytest.fixture
def tenant_factory(tmp_path: Path, world: World) -> Iterator[Callable[..., Tenant]]:
    servers: list[SandboxServer] = []

    def start(**kwargs: Any) -> Tenant:
        faults = Faults()
        the_world = kwargs.pop("world", world)
        app = create_app(the_world, faults, users={CLIENT_ID: SECRET}, **kwargs)
        server = SandboxServer({"intune": app})
        servers.append(server)
        urls = server.start()
        ca = server.write_ca(tmp_path / f"ca-{len(servers)}.pem")
        return Tenant(app=app, url=urls["intune"], ca=ca, faults=faults, world=the_world)

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def tenant(tenant_factory: Callable[..., Tenant]) -> Tenant:
    return tenant_factory()


@pytest.fixture
def graph_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPH_SECRET", SECRET)


def _config_builder(tmp_path: Path, store_url: str) -> Callable[..., Config]:
    def build(
        tenant: Tenant,
        *,
        auth: str | None = None,
        extra: str = "",
        url: str | None = None,
        tenant_id: str = SANDBOX_TENANT,
    ) -> Config:
        auth = auth or (
            f'{{ type = "oauth_client_credentials", client_id = "{CLIENT_ID}", '
            'client_secret = "env:GRAPH_SECRET" }'
        )
        lines = [
            "[store]",
            f'url = "{store_url}"',
            "",
            "[sources.intune]",
            'platform = "intune"',
            f'url = "{url or tenant.url + "/v1.0"}"',
            f'tenant_id = "{tenant_id}"',
            f'ca_bundle = "{tenant.ca}"',
            f"auth = {auth}",
            "max_wait = 20",
            "max_retries = 3",
            "page_size = 20",
        ]
        path = tmp_path / "crosswalk.toml"
        path.write_text("\n".join(lines) + "\n" + extra + "\n")
        return load_config(path)

    return build


@pytest.fixture
def make_config(tmp_path: Path, store_url: str, graph_env: None) -> Callable[..., Config]:
    """Configs whose store runs on every backend (SQLite and PostgreSQL)."""
    return _config_builder(tmp_path, store_url)


@pytest.fixture
def make_http_config(tmp_path: Path, graph_env: None) -> Callable[..., Config]:
    """Configs on a SQLite store, for tests about the HTTP side only."""
    return _config_builder(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
