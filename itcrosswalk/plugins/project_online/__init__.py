"""The Project Online / Project Server plugin: ProjectData reads, ProjectServer write-back.

Hook implementations only; the adapter, MSAL and requests-ntlm are imported when used.
"""

from __future__ import annotations

from typing import Any

from ...hookspecs import hookimpl


@hookimpl
def register_platforms(register: Any) -> None:
    from . import mapping
    from .adapter import ProjectOnlineAdapter, ProjectOnlineOptions

    register(
        "project_online",
        ProjectOnlineAdapter,
        mapping=mapping.describe(),
        config_model=ProjectOnlineOptions,
    )


@hookimpl
def register_sandboxes(register: Any) -> None:
    from .sandbox import create_app, demo_source

    register("project_online", create_app, source=demo_source)


@hookimpl
def register_commands(cli: Any) -> None:
    from .commands import project_online

    cli.add_command(project_online)
