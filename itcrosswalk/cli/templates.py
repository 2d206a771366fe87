"""``crosswalk template``: the standard templates — list, show, check, render, apply.

Only click is imported here; the templates package, the store and the adapters load inside
the commands, so ``crosswalk --help`` stays light.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from . import (
    EXIT_ATTENTION,
    Context,
    _emit,
    check_name,
    check_source,
    format_only_option,
    format_option,
)


def _config_or_none(obj: Context) -> Any:
    """The config when there is one: listing and showing templates work without it."""
    from ..core.config import find_config_path

    if obj.config_path is None and not find_config_path(None).exists():
        return None
    return obj.config


def _template(catalog: Any, name: str) -> Any:
    """The template ``name``, or a usage error naming the nearest one."""
    return catalog.get(check_name("template", name, catalog.templates, param="NAME"))


def _catalog(obj: Context, config: Any = "auto") -> Any:
    from ..core.templates.loader import load_catalog

    catalog = load_catalog(_config_or_none(obj) if config == "auto" else config, obj.pm)
    for problem in catalog.problems:
        click.echo(f"warning: template not loaded: {problem}", err=True)
    return catalog


def register(cli: click.Group) -> None:
    """Add the ``template`` group to the ``crosswalk`` command."""

    @cli.group("template")
    def template() -> None:
        """Standard PMO and service templates, the same on every platform."""

    @template.command("list")
    @format_option
    @click.pass_obj
    def template_list(obj: Context, fmt: str) -> None:
        """List the templates in effect (built-in, plugins', the config's folders)."""
        catalog = _catalog(obj)
        rows = [t.summary() for _, t in sorted(catalog.templates.items())]
        _emit(rows, fmt, ["id", "title", "kind", "target", "checks", "fields", "origin"])

    @template.command("show")
    @click.argument("name")
    @format_only_option
    @click.pass_obj
    def template_show(obj: Context, name: str, fmt: str) -> None:
        """Show one template: its fields, sections and what it checks."""
        from ..core.templates.render import render

        found = _template(_catalog(obj), name)
        if fmt == "json":
            click.echo(json.dumps(found.model_dump(mode="json"), indent=2))
        elif fmt == "csv":
            _emit(
                [
                    {
                        "name": f.name,
                        "label": f.title,
                        "required": f.required,
                        "key": f.key,
                        "default": f.default,
                        "help": f.help,
                    }
                    for f in found.fields
                ],
                "csv",
                ["name", "label", "required", "key", "default", "help"],
            )
        else:
            blank = found.model_copy(update={"render": "document"})
            click.echo(render(blank, "md"), nl=False)
            click.echo(
                f"\nkind: {found.kind}; target: {found.target or '-'}; origin: {found.origin}"
                + (f" (replaces {found.overrides})" if found.overrides else "")
            )

    @template.command("check")
    @click.argument("name", required=False)
    @click.option("--source", default=None, help="Only this source.")
    @click.option("--failing", is_flag=True, help="Only the records that miss something.")
    @format_option
    @click.pass_obj
    def template_check(
        obj: Context, name: str | None, source: str | None, failing: bool, fmt: str
    ) -> None:
        """Which records, on any platform, miss what their stage requires (exit 3 if any)."""
        from ..core.templates.check import FINDING_COLUMNS, run_checks

        catalog = _catalog(obj, obj.config)
        source = check_source(obj, source)
        if name:
            chosen = [_template(catalog, name)]
            if chosen[0].check is None:
                raise click.UsageError(
                    f"template {name} checks nothing; these do: "
                    + ", ".join(t.id for t in catalog.with_checks())
                )
        else:
            chosen = catalog.with_checks()
        store = obj.store()
        try:
            findings = run_checks(store, chosen, source=source)
        finally:
            store.close()
        failed = [f for f in findings if not f["ok"]]
        rows = failed if failing else findings
        _emit(rows, fmt, None if fmt == "json" else FINDING_COLUMNS)
        if fmt == "table":
            click.echo(
                f"{len(failed)} of {len(findings)} checked records miss what their stage requires",
                err=True,
            )
        if failed:
            sys.exit(EXIT_ATTENTION)

    @template.command("render")
    @click.argument("name")
    @click.option("--item", default=None, help="One record: SOURCE:ID (its id or number).")
    @click.option(
        "--portfolio", default=None, help="Every work item under a portfolio or program: SOURCE:ID."
    )
    @click.option(
        "--format",
        "fmt",
        type=click.Choice(["md", "html"]),
        default="md",
        show_default=True,
    )
    @click.option(
        "--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write to a file."
    )
    @click.pass_obj
    def template_render(
        obj: Context,
        name: str,
        item: str | None,
        portfolio: str | None,
        fmt: str,
        output: str | None,
    ) -> None:
        """Render a template to Markdown or HTML, from a record or portfolio, or blank."""
        from ..core.templates.render import render

        found = _template(_catalog(obj), name)
        store = obj.store() if (item or portfolio or found.render == "status-report") else None
        try:
            text = render(found, fmt, store=store, item=item, portfolio=portfolio)
        finally:
            if store is not None:
                store.close()
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text)
            click.echo(f"wrote {output}", err=True)
        else:
            click.echo(text, nl=False)

    @template.command("apply")
    @click.argument("name")
    @click.option("--to", "source", required=True, help="The source to create the record on.")
    @click.option(
        "--set",
        "assignments",
        multiple=True,
        metavar="FIELD=VALUE",
        help="A field's value (repeatable).",
    )
    @click.option(
        "--correlation-id",
        default=None,
        help="Identify the request yourself (default: derived from the template and its key fields).",
    )
    @click.option("--dry-run", is_flag=True, help="Print the exact requests; change nothing.")
    @format_only_option
    @click.pass_obj
    def template_apply(
        obj: Context,
        name: str,
        source: str,
        assignments: tuple[str, ...],
        correlation_id: str | None,
        dry_run: bool,
        fmt: str,
    ) -> None:
        """Create a form's record on a platform (idempotent: applying twice creates once)."""
        from ..core.sync import build_adapter
        from ..core.templates.apply import apply, parse_assignments

        config = obj.config
        found = _template(_catalog(obj, config), name)
        source = check_name("source", source, config.sources, param="--to")
        given = parse_assignments(assignments)
        adapter = build_adapter(config, source, obj.pm)
        try:
            applied = apply(found, adapter, given, correlation=correlation_id, dry_run=dry_run)
        finally:
            adapter.close()
        result, cid = applied.result, applied.correlation_id
        payload = {
            "template": found.id,
            "source": source,
            "writer": applied.writer,
            "action": result.action,
            "entity": result.entity,
            "source_id": result.source_id,
            "url": result.url,
            "correlation_id": cid,
            "fields": applied.values,
            "requests": result.requests,
        }
        if fmt == "json":
            from ..core.output import jsonable

            click.echo(json.dumps(jsonable(payload), indent=2))
            return
        if fmt == "csv":
            _emit([{k: v for k, v in payload.items() if k != "requests"}], "csv")
            return
        words = {
            "created": f"created {result.entity} {result.source_id} on {source}",
            "exists": f"already there: {result.entity} {result.source_id} on {source} carries "
            "this correlation id; nothing was sent",
            "dry_run": f"dry run: nothing was created on {source}; the requests it would make:",
        }
        click.echo(words.get(result.action, result.action))
        if result.url:
            click.echo(f"  {result.url}")
        click.echo(f"  correlation id: {cid}")
        if dry_run:
            for request in result.requests:
                click.echo(f"\n{request['method']} {request['url']}")
                if request.get("body") is not None:
                    click.echo(json.dumps(request["body"], indent=2, sort_keys=True))
