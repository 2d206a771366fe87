"""``crosswalk migrate``: check a move between platforms (Project Online to Planner premium),
print what an import would create, and create the missing projects.

Only click is imported here; the store, the comparison and the adapters load in the commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import EXIT_ATTENTION, Context, _emit, check_source


def _mapping(path: str | None) -> dict[str, str] | None:
    """A mapping file: JSON ``{"source id or name": "target id or name"}`` or CSV lines
    ``from,to``."""
    if not path:
        return None
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise click.BadParameter(f"{path} is not JSON: {exc}", param_hint="--mapping") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise click.BadParameter(
                f"{path}: expected an object of names or ids", param_hint="--mapping"
            )
        return {str(k): v for k, v in data.items()}
    pairs: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        left, sep, right = line.partition(",")
        if not sep or not left.strip() or not right.strip():
            raise click.BadParameter(
                f"{path} line {number}: expected FROM,TO", param_hint="--mapping"
            )
        pairs[left.strip()] = right.strip()
    return pairs


def _report(obj: Context, source_from: str, source_to: str, mapping: str | None) -> Any:
    from ..core.migrate import verify
    from ..core.store import Store

    for name, param in ((source_from, "SOURCE_FROM"), (source_to, "SOURCE_TO")):
        check_source(obj, name, param=param)
    store = Store(obj.config.store.url)
    try:
        return verify(store, source_from, source_to, mapping=_mapping(mapping)), store
    except BaseException:
        store.close()
        raise


_common = [
    click.argument("source_from"),
    click.argument("source_to"),
    click.option("--mapping", type=click.Path(dir_okay=False, exists=True), default=None,
                 help="A JSON or CSV file pairing source projects (id or name) with targets."),
]  # fmt: skip


def _options(command: Any) -> Any:
    for decorator in reversed(_common):
        command = decorator(command)
    return command


def register(cli: click.Group) -> None:
    """Add the ``migrate`` group to the ``crosswalk`` command."""

    @cli.group("migrate")
    def migrate() -> None:
        """Move projects between platforms and prove nothing was lost (sync both first)."""

    @migrate.command("verify")
    @_options
    @click.option("--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table")
    @click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
                  help="Write the report to this file (HTML for --format html).")  # fmt: skip
    @click.pass_obj
    def verify_(obj: Context, source_from: str, source_to: str, mapping: str | None, fmt: str,
                output: str | None) -> None:  # fmt: skip
        """What moved from SOURCE_FROM to SOURCE_TO, what is missing (exit 3), what differs and
        what the target cannot hold."""
        from ..core.migrate import render_html

        report, store = _report(obj, source_from, source_to, mapping)
        store.close()
        if fmt == "html":
            page = render_html(report)
            if output:
                Path(output).write_text(page, encoding="utf-8")
                click.echo(f"wrote {output}", err=True)
            else:
                click.echo(page)
        elif fmt == "json":
            text = json.dumps(report.as_json(), indent=2, default=str, ensure_ascii=False)
            if output:
                Path(output).write_text(text + "\n", encoding="utf-8")
            else:
                click.echo(text)
        else:
            click.echo(
                f"{source_from} -> {source_to}: {len(report.matched)} of {report.projects} projects "
                f"moved, {len(report.missing)} missing, {len(report.differences)} differences"
            )
            _emit(report.rows(), "table", ["finding", "project", "field", "from", "to"],
                  title="migration check", output=output)  # fmt: skip
        if report.exit_code:
            sys.exit(EXIT_ATTENTION)

    def _imports(obj: Context, source_from: str, source_to: str, mapping: str | None,
                 names: tuple[str, ...], dry_run: bool) -> list[dict[str, Any]]:  # fmt: skip
        from ..core.errors import CrosswalkError
        from ..core.migrate import import_items
        from ..core.sync import build_adapter

        report, store = _report(obj, source_from, source_to, mapping)
        try:
            items = import_items(store, report, names=names or None)
        finally:
            store.close()
        adapter = build_adapter(obj.config, source_to, obj.pm)
        done: list[dict[str, Any]] = []
        try:
            writer = adapter.writers.get("work_item:project")
            if writer is None:
                raise click.UsageError(
                    f"source {source_to} ({adapter.platform}) cannot create projects"
                )
            for fields, correlation in items:
                try:
                    result = writer(fields, correlation_id=correlation, dry_run=dry_run)
                except CrosswalkError as exc:
                    done.append(
                        {
                            "project": fields["name"],
                            "action": "failed",
                            "error": str(exc),
                            "requests": [],
                        }
                    )
                    continue
                done.append({"project": fields["name"], "action": result.action, "id": result.source_id,
                             "url": result.url, "requests": result.requests})  # fmt: skip
        finally:
            adapter.close()
        return done

    def _print(done: list[dict[str, Any]], fmt: str, show_requests: bool) -> None:
        if fmt == "json":
            click.echo(json.dumps(done, indent=2, default=str, ensure_ascii=False))
            return
        if not done:
            click.echo("nothing to import: no project is missing")
        for item in done:
            click.echo(
                f"{item['action']}: {item['project']}"
                + (f" ({item.get('id')})" if item.get("id") else "")
            )
            if item.get("error"):
                click.echo(f"  {item['error']}")
            if show_requests:
                for request in item["requests"]:
                    if request["method"] == "POST":
                        click.echo(
                            f"  POST {request['url'].rsplit('/', 1)[-1]} {json.dumps(request['body'], default=str)}"
                        )

    @migrate.command("plan")
    @_options
    @click.option(
        "--project", "names", multiple=True, help="Only this missing project (repeatable)."
    )
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    @click.pass_obj
    def plan(obj: Context, source_from: str, source_to: str, mapping: str | None,
             names: tuple[str, ...], fmt: str) -> None:  # fmt: skip
        """Print the operation sets an import of the missing projects would send; send nothing."""
        done = _imports(obj, source_from, source_to, mapping, names, dry_run=True)
        _print(done, fmt, show_requests=True)
        if any(d["action"] == "failed" for d in done):
            sys.exit(EXIT_ATTENTION)

    @migrate.command("apply")
    @_options
    @click.option(
        "--project", "names", multiple=True, help="Only this missing project (repeatable)."
    )
    @click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
    @click.pass_obj
    def apply(obj: Context, source_from: str, source_to: str, mapping: str | None,
              names: tuple[str, ...], fmt: str) -> None:  # fmt: skip
        """Create the missing projects in SOURCE_TO through its writer, idempotently (sync
        SOURCE_TO and verify again afterwards)."""
        done = _imports(obj, source_from, source_to, mapping, names, dry_run=False)
        _print(done, fmt, show_requests=False)
        if any(d["action"] == "failed" for d in done):
            sys.exit(EXIT_ATTENTION)
