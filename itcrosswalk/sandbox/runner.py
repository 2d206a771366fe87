"""Running the registered emulators together, and the config that points itcrosswalk at them."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.contract import Registry
from .faults import Faults
from .server import SandboxServer
from .world import World

SANDBOX_USER = "crosswalk"
CONFIG_HEADER = "# Written by `crosswalk demo`"
"""How the configs written here begin, so the demo knows a folder is its own to replace."""
SECRET_FILE = "sandbox-secret"
CA_FILE = "sandbox-ca.pem"


@dataclass
class Sandbox:
    """The emulators of every registered platform, serving one world on loopback HTTPS."""

    world: World
    server: SandboxServer
    apps: dict[str, Any]
    faults: dict[str, Faults] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)
    secret: str = ""
    sources: dict[str, Any] = field(default_factory=dict)
    """platform -> ``source(user, secret_ref)`` giving its config keys, or None for basic auth."""

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    world: World,
    *,
    pm: Registry,
    platforms: list[str] | None = None,
    secret: str | None = None,
    ports: dict[str, int] | None = None,
) -> Sandbox:
    """Start the emulators (all registered ones, or ``platforms``) and return where they are."""
    registered = pm.sandboxes()
    names = platforms or sorted(registered)
    secret = secret or secrets.token_urlsafe(18)
    apps: dict[str, Any] = {}
    faults: dict[str, Faults] = {}
    for name in names:
        faults[name] = Faults()
        apps[name] = registered[name].factory(world, faults[name], users={SANDBOX_USER: secret})
    server = SandboxServer(apps, ports=ports)
    urls = server.start()
    return Sandbox(
        world=world,
        server=server,
        apps=apps,
        faults=faults,
        urls=urls,
        secret=secret,
        sources={name: registered[name].source for name in names},
    )


def _toml(value: Any) -> str:
    """One TOML value: strings, numbers, booleans, lists and inline tables of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def write_config(
    sandbox: Sandbox, directory: Path, *, store_url: str = "sqlite:///crosswalk.db"
) -> Path:
    """Write ``crosswalk.toml``, the CA file and a 0600 secret file into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_path = sandbox.server.write_ca(directory / CA_FILE)
    secret_path = directory / SECRET_FILE
    fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(sandbox.secret)
    os.chmod(secret_path, 0o600)
    lines = [
        f"{CONFIG_HEADER}: the built-in sandbox's emulators on loopback.",
        "# The emulators stop with the demo; the store stays, so export, status and metrics work offline.",
        "",
        "[store]",
        f'url = "{store_url}"',
    ]
    secret_ref = f"file:{secret_path.resolve()}"
    for platform, url in sorted(sandbox.urls.items()):
        describe = sandbox.sources.get(platform)
        keys: dict[str, Any] = (
            describe(SANDBOX_USER, secret_ref)
            if describe
            else {"auth": {"type": "basic", "user": SANDBOX_USER, "password": secret_ref}}
        )
        lines += [
            "",
            f"[sources.sandbox-{platform.replace('_', '-')}]",
            f'platform = "{platform}"',
            f"url = {_toml(url)}",
            f"ca_bundle = {_toml(ca_path.name)}",
        ]
        lines += [f"{key} = {_toml(value)}" for key, value in keys.items()]
    path = directory / "crosswalk.toml"
    path.write_text("\n".join(lines) + "\n")
    return path
