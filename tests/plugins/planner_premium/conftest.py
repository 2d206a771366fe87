"""Fixtures: the Dataverse emulator on loopback HTTPS, and configs pointing the adapter at it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import Config, load_config
from itcrosswalk.plugins.planner_premium.sandbox import Principal, create_app
from itcrosswalk.sandbox.world import World, generate
from tests.plugins.conftest import Served

TOKEN = "dataverse-app-token-that-must-never-leak"
USER_TOKEN = "dataverse-user-token-that-must-never-leak"
"""A delegated, Project-licensed user's token (the Schedule API's caller)."""

Env = Served


@pytest.fixture(scope="session")
def world() -> World:
    # "small": six Project Online projects, four of them moved; few tickets and devices.
    return generate(7, "small", tickets=20, devices=20)


@pytest.fixture
def env_factory(serve: Callable[..., Served], world: World) -> Callable[..., Env]:
    def start(**kwargs: Any) -> Env:
        users = kwargs.pop("users", {"crosswalk-app": TOKEN})
        served = serve(
            "planner_premium", create_app, kwargs.pop("world", world), users=users, **kwargs
        )
        served.app.add_principal(
            USER_TOKEN, Principal("pm@city.example.gov", app_only=False, licensed=True)
        )
        return served

    return start


@pytest.fixture
def env(env_factory: Callable[..., Env]) -> Env:
    return env_factory()


@pytest.fixture
def make_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Config]:
    monkeypatch.setenv("DATAVERSE_TOKEN", TOKEN)
    monkeypatch.setenv("DATAVERSE_USER_TOKEN", USER_TOKEN)

    def build(
        env: Env,
        *,
        auth: str | None = None,
        extra: str = "",
        store_url: str | None = None,
        name: str = "planner",
    ) -> Config:
        auth = auth or '{ type = "bearer", token = "env:DATAVERSE_TOKEN" }'
        lines = [
            "[store]",
            f'url = "{store_url or "sqlite:///" + str(tmp_path / "store.db")}"',
            "",
            f"[sources.{name}]",
            'platform = "planner_premium"',
            f'url = "{env.url}"',
            f"auth = {auth}",
            f'ca_bundle = "{env.ca}"',
            "max_wait = 20" if "max_wait" not in extra else "",
            "max_retries = 4" if "max_retries" not in extra else "",
            "operation_timeout = 20",
        ]
        path = tmp_path / "crosswalk.toml"
        path.write_text("\n".join(lines) + "\n" + extra + "\n")
        return load_config(path)

    return build
