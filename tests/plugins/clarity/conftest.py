"""Fixtures: the Clarity emulator on loopback HTTPS, and configs pointing the adapter at it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import Config, load_config
from itcrosswalk.plugins.clarity.sandbox import CLIENT_ID, create_app
from itcrosswalk.sandbox.world import World, generate
from tests.plugins.conftest import Served

KEY = "clarity-api-key-that-must-never-leak"
PASSWORD = "clarity-password-that-must-never-leak"

Tenant = Served
"""A running emulator and what a config needs to reach it."""


@pytest.fixture(scope="session")
def world() -> World:
    # "small" gives the tenant six projects and a program; few tickets and devices keep it quick.
    return generate(7, "small", tickets=20, devices=20)


@pytest.fixture
def tenant_factory(serve: Callable[..., Served], world: World) -> Callable[..., Tenant]:
    def start(**kwargs: Any) -> Tenant:
        users = kwargs.pop("users", {"svc_crosswalk": KEY, "svc_basic": PASSWORD})
        return serve("clarity", create_app, kwargs.pop("world", world), users=users, **kwargs)

    return start


@pytest.fixture
def tenant(tenant_factory: Callable[..., Tenant]) -> Tenant:
    return tenant_factory()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def make_config(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Config]:
    monkeypatch.setenv("CLARITY_KEY", KEY)
    monkeypatch.setenv("CLARITY_PASSWORD", PASSWORD)

    def build(
        tenant: Tenant,
        *,
        auth: str | None = None,
        extra: str = "",
        store_url: str | None = None,
        client: bool = True,
    ) -> Config:
        auth = auth or '{ type = "bearer", token = "env:CLARITY_KEY" }'
        lines = [
            "[store]",
            f'url = "{store_url or sqlite_url}"',
            "",
            "[sources.ppm]",
            'platform = "clarity"',
            f'url = "{tenant.url}"',
            f"auth = {auth}",
            f'ca_bundle = "{tenant.ca}"',
            "max_wait = 20",
            "max_retries = 4",
            'custom_fields = { department = "c_department" }',
        ]
        if client:
            lines.append(f'client_id = "{CLIENT_ID}"')
        path = tmp_path / "crosswalk.toml"
        path.write_text("\n".join(lines) + "\n" + extra + "\n")
        return load_config(path)

    return build
