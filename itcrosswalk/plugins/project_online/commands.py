"""``crosswalk project-online ...``: the delegated sign-in and the create-from-template write-back.

Only click is imported at the top, so ``crosswalk --help`` stays light; the adapter (and MSAL,
keyring, requests-ntlm) load when a command runs.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

import click


def _adapter(obj: Any, source: str) -> Any:
    from ...core.errors import ConfigError
    from ...core.sync import build_adapter

    adapter = build_adapter(obj.config, source, obj.pm)
    if adapter.platform != "project_online":
        adapter.close()
        raise ConfigError(
            f"source {source} is a {adapter.platform} source, not a project_online one"
        )
    return adapter


@click.group("project-online")
def project_online() -> None:
    """Project Online / Project Server: sign-in and write-back."""


@project_online.command("login")
@click.argument("source")
@click.pass_obj
def login(obj: Any, source: str) -> None:
    """Sign in once (device code) and keep the refresh token in the OS keyring."""
    adapter = _adapter(obj, source)
    try:
        done = adapter.device_login(lambda message: click.echo(message, err=True))
    finally:
        adapter.close()
    click.echo(
        f"signed in: source {done['source']}, refresh token kept in the keyring ({done['keyring']})"
    )


@project_online.command("create-project")
@click.argument("source")
@click.option("--name", required=True, help="The project's name (unique in the PWA).")
@click.option("--type", "ept", default=None, help="The enterprise project type (template).")
@click.option("--start", type=click.DateTime(), default=None, help="The project's start date.")
@click.option("--finish", type=click.DateTime(), default=None, help="Its planned finish.")
@click.option("--description", default="", help="The project's description.")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="NAME=VALUE",
    help="A project custom field value by its display name (repeatable).",
)
@click.option(
    "--correlation-id", default=None, help="Makes retries idempotent (default: from the name)."
)
@click.option(
    "--dry-run", is_flag=True, help="Print the requests that would be sent; write nothing."
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.pass_obj
def create_project(
    obj: Any,
    source: str,
    name: str,
    ept: str | None,
    start: datetime | None,
    finish: datetime | None,
    description: str,
    fields: tuple[str, ...],
    correlation_id: str | None,
    dry_run: bool,
    fmt: str,
) -> None:
    """Create a project from a standard template (an enterprise project type and custom field
    values), publish it and check it in. Idempotent: running it twice creates one project."""
    from dataclasses import asdict

    from .writer import plan_lines

    custom: dict[str, str] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint="--field")
        custom[key.strip()] = value
    values: dict[str, Any] = {
        "name": name,
        "description": description,
        "planned_start": start,
        "planned_finish": finish,
        "enterprise_project_type": ept,
        "custom_fields": custom,
    }
    adapter = _adapter(obj, source)
    try:
        result = adapter.writers["work_item:project"](
            {k: v for k, v in values.items() if v not in (None, "", {})},
            correlation_id=correlation_id
            or f"itcrosswalk:project-online:{name.strip().casefold()}",
            dry_run=dry_run,
        )
    finally:
        adapter.close()
    if fmt == "json":
        json.dump(asdict(result), sys.stdout, indent=2, ensure_ascii=False, default=str)
        sys.stdout.write("\n")
        return
    click.echo(f"{result.action}: {name} ({result.source_id}) {result.url}")
    for line in plan_lines(result):
        click.echo(f"  {line}")
