"""The Jira plugin: Jira Service Management desks and Jira Software epics through the ``jira``
package. Hook implementations only."""

from __future__ import annotations

from typing import Any

from ...hookspecs import hookimpl


@hookimpl
def register_platforms(register: Any) -> None:
    from . import mapping
    from .adapter import JiraAdapter, JiraOptions

    register("jira", JiraAdapter, mapping=mapping.describe(), config_model=JiraOptions)


@hookimpl
def register_sandboxes(register: Any) -> None:
    from .sandbox import create_app, sandbox_source

    register("jira", create_app, source=sandbox_source)
