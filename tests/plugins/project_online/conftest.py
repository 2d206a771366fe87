"""Fixtures: the Project Server emulator on loopback HTTPS, configs pointing the adapter at it,
and an in-memory keyring standing in for the OS keyring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from itcrosswalk.core.config import Config, load_config
from itcrosswalk.plugins.project_online.sandbox import DEMO_CUSTOM_FIELDS, create_app
from itcrosswalk.sandbox.faults import Faults
from itcrosswalk.sandbox.world import World, generate
from tests.plugins.conftest import Served

PASSWORD = "Pwa-pa55word-that-must-never-leak"
USER = "svc_crosswalk"
NTLM_AUTH = '{ type = "ntlm", user = "CITY\\\\svc_crosswalk", password = "env:PWA_PASSWORD" }'
BEARER_AUTH = '{ type = "bearer", token = "env:PWA_PASSWORD" }'


@dataclass
class Instance:
    """A running emulator and what a config needs to reach it."""

    app: Any
    url: str
    root: str
    ca: Path
    faults: Faults
    world: World


@pytest.fixture(scope="session")
def world() -> World:
    return generate(7, "tiny")


@pytest.fixture(scope="session")
def small_world() -> World:
    return generate(11, "small")


@pytest.fixture
def instance_factory(serve: Callable[..., Served], world: World) -> Callable[..., Instance]:
    def start(**kwargs: Any) -> Instance:
        served = serve(
            "project_online",
            create_app,
            kwargs.pop("world", world),
            users={USER: PASSWORD},
            **kwargs,
        )
        root = served.url
        return Instance(**{**vars(served), "url": f"{root}/sites/pwa"}, root=root)

    return start


@pytest.fixture
def instance(instance_factory: Callable[..., Instance]) -> Instance:
    return instance_factory()


@pytest.fixture
def pwa_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PWA_PASSWORD", PASSWORD)


def custom_fields_toml(fields: dict[str, str] | None = None) -> str:
    items = fields if fields is not None else DEMO_CUSTOM_FIELDS
    return "custom_fields = { " + ", ".join(f'{k} = "{v}"' for k, v in items.items()) + " }"


@pytest.fixture
def make_config(tmp_path: Path, pwa_env: None) -> Callable[..., Config]:
    """A config for the emulator; the store is SQLite unless a test passes ``store_url`` (the
    conformance suite runs on both backends, the rest need no PostgreSQL round trips)."""

    def build(
        instance: Instance,
        *,
        store_url: str | None = None,
        auth: str | None = BEARER_AUTH,
        extra: str = "",
        fmt: str = "light",
        custom: dict[str, str] | None = None,
    ) -> Config:
        url = store_url or f"sqlite:///{tmp_path / 'store.db'}"
        lines = [
            "[store]",
            f'url = "{url}"',
            "",
            "[sources.pwa]",
            'platform = "project_online"',
            f'url = "{instance.url}"',
            f'ca_bundle = "{instance.ca}"',
            f'json_format = "{fmt}"',
            custom_fields_toml(custom),
            "max_wait = 20",
            "max_retries = 4",
        ]
        if auth:
            lines.append(f"auth = {auth}")
        path = tmp_path / "crosswalk.toml"
        path.write_text("\n".join(lines) + "\n" + extra + "\n")
        return load_config(path)

    return build


def project_rows(world: World) -> list[Any]:
    return [w for w in world.work if w.platform == "project_online" and w.kind == "project"]
