"""Fixtures: the Dataverse emulator (with its Entra ID) on loopback HTTPS, and configs pointing
the adapter at it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import Config, load_config
from itcrosswalk.plugins.planner_premium.sandbox import SANDBOX_TENANT, create_app
from itcrosswalk.sandbox.world import World, generate
from tests.plugins.conftest import Served

APP = "7d1f0a2e-3c44-4b8e-9a51-0c1e5a7b9d21"
SECRET = "dataverse-app-secret-that-must-never-leak"
USER = "pm@city.example.gov"
"""The delegated, Project-licensed user who calls the Schedule API."""

Env = Served


def token_for(env: Env, subject: str, *, app_only: bool = True) -> str:
    """A token the environment's Entra ID issued (for a bearer-auth source or a user)."""
    scope = f"{env.url}/.default" if app_only else f"{env.url}/user_impersonation"
    return str(env.app.entra.issue_token(subject, app_only=app_only, scope=scope))


@pytest.fixture(scope="session")
def world() -> World:
    # "small": six Project Online projects, four of them moved; few tickets and devices.
    return generate(7, "small", tickets=20, devices=20)


@pytest.fixture
def env_factory(
    serve: Callable[..., Served], world: World, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Env]:
    def start(**kwargs: Any) -> Env:
        users = kwargs.pop("users", {APP: SECRET})
        served = serve(
            "planner_premium", create_app, kwargs.pop("world", world), users=users, **kwargs
        )
        monkeypatch.setenv("DATAVERSE_USER_TOKEN", token_for(served, USER, app_only=False))
        return served

    return start


@pytest.fixture
def env(env_factory: Callable[..., Env]) -> Env:
    return env_factory()


@pytest.fixture
def make_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Config]:
    monkeypatch.setenv("DATAVERSE_SECRET", SECRET)

    def build(
        env: Env,
        *,
        auth: str | None = None,
        extra: str = "",
        store_url: str | None = None,
        name: str = "planner",
    ) -> Config:
        if auth is None:
            auth = (
                f'{{ type = "oauth_client_credentials", client_id = "{APP}", '
                'client_secret = "env:DATAVERSE_SECRET" }'
            )
            extra = f'tenant_id = "{SANDBOX_TENANT}"\n' + extra
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
