"""The Jira Align plugin: the agile portfolio through REST API 2.0. Hook implementations only."""

from __future__ import annotations

from typing import Any

from ...hookspecs import hookimpl


@hookimpl
def register_platforms(register: Any) -> None:
    from . import mapping
    from .adapter import JiraAlignAdapter, JiraAlignOptions

    register(
        "jira_align", JiraAlignAdapter, mapping=mapping.describe(), config_model=JiraAlignOptions
    )


@hookimpl
def register_sandboxes(register: Any) -> None:
    from .sandbox import create_app, sandbox_source

    register("jira_align", create_app, source=sandbox_source)


@hookimpl
def register_templates(register: Any) -> None:
    from .mapping import TEMPLATES

    for template in TEMPLATES:
        register(template)
