"""A tiny third-party plugin, installed by the tests to prove the entry-point path."""

from __future__ import annotations

from typing import Any

import click

from itcrosswalk.hookspecs import hookimpl


@hookimpl
def register_commands(cli: Any) -> None:
    @cli.command("hello-example")
    def hello() -> None:
        """Say hello from the example plugin."""
        click.echo("hello from crosswalk_example")


@hookimpl
def register_metrics(register: Any) -> None:
    register({"id": "example.count", "title": "An example metric"})


@hookimpl
def register_controls(register: Any) -> None:
    register({"id": "example.control", "title": "An example control"})


@hookimpl
def register_templates(register: Any) -> None:
    register({"id": "example.template", "title": "An example template"})
