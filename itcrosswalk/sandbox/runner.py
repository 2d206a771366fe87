"""Running the registered emulators together, and the config that points itcrosswalk at them."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from .. import plugins
from .faults import Faults
from .server import SandboxServer
from .world import World

SANDBOX_USER = "crosswalk"
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

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    world: World,
    *,
    pm: pluggy.PluginManager | None = None,
    platforms: list[str] | None = None,
    secret: str | None = None,
    ports: dict[str, int] | None = None,
) -> Sandbox:
    """Start the emulators (all registered ones, or ``platforms``) and return where they are."""
    factories = plugins.get_sandboxes(pm)
    names = platforms or sorted(factories)
    secret = secret or secrets.token_urlsafe(18)
    apps: dict[str, Any] = {}
    faults: dict[str, Faults] = {}
    for name in names:
        faults[name] = Faults()
        apps[name] = factories[name](world, faults[name], users={SANDBOX_USER: secret})
    server = SandboxServer(apps, ports=ports)
    urls = server.start()
    return Sandbox(world=world, server=server, apps=apps, faults=faults, urls=urls, secret=secret)


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
        "# Written by `crosswalk demo`: the built-in sandbox's emulators on loopback.",
        "# The emulators stop with the demo; the store stays, so export, status and metrics work offline.",
        "",
        "[store]",
        f'url = "{store_url}"',
    ]
    for platform, url in sorted(sandbox.urls.items()):
        lines += [
            "",
            f"[sources.sandbox-{platform.replace('_', '-')}]",
            f'platform = "{platform}"',
            f'url = "{url}"',
            f'ca_bundle = "{ca_path.name}"',
            f'auth = {{ type = "basic", user = "{SANDBOX_USER}", password = "file:{secret_path.resolve()}" }}',
        ]
    path = directory / "crosswalk.toml"
    path.write_text("\n".join(lines) + "\n")
    return path
