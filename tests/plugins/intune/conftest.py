"""Fixtures: the Graph emulator on loopback HTTPS, and configs pointing msgraph-sdk at it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import Config, load_config
from itcrosswalk.plugins.intune.sandbox import SANDBOX_TENANT, create_app
from itcrosswalk.sandbox.world import World, generate
from tests.plugins.conftest import Served

CLIENT_ID = "5f0c1e2d-7a3b-4c8d-9e1f-0a2b3c4d5e6f"
SECRET = "Gr4ph~secret.that-must-never-leak"


Tenant = Served
"""A running emulator and what a config needs to reach it."""


@pytest.fixture(scope="session")
def world() -> World:
    return generate(7, "tiny")


@pytest.fixture
def tenant_factory(serve: Callable[..., Served], world: World) -> Callable[..., Tenant]:
    def start(**kwargs: Any) -> Tenant:
        return serve(
            "intune", create_app, kwargs.pop("world", world), users={CLIENT_ID: SECRET}, **kwargs
        )

    return start


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
