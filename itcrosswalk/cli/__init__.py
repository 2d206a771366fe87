"""The ``crosswalk`` command: turns arguments into calls and exceptions into one-line messages.

This package is the only place that prints. The sync-side commands live here; each further
area (metrics, templates, reports, evaluation) is a module of this package whose
``register(cli)`` adds its commands; every module imports only click at the top, so
``crosswalk --help`` stays light. Exit codes: 0 ok, 1 error, 2 usage, 3 finished with
quarantined records, skipped streams or failed controls.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import pkgutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from .. import __version__, registry

log = logging.getLogger("itcrosswalk")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_ATTENTION = 0, 1, 2, 3


def _areas() -> list[str]:
    """The command modules of this package, in name order."""
    return sorted(
        info.name
        for info in pkgutil.iter_modules(__path__)
        if not info.ispkg and not info.name.startswith("_")  # __main__ is not an area
    )


class Context:
    """What every command gets: the config path, the plugins' registry, and the debug flag."""

    def __init__(self, config_path: str | None, debug: bool, pm: registry.PluginRegistry) -> None:
        self.config_path = config_path
        self.debug = debug
        self.pm = pm
        self._config: Any = None

    @property
    def config(self) -> Any:
        if self._config is None:
            from ..core.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    def store(self) -> Any:
        from ..core.store import Store

        return Store(self.config.store.url)


class CrosswalkGroup(click.Group):
    """A group that attaches plugin commands on first need, and turns errors into one line."""

    def __init__(
        self, *args: Any, pm: registry.PluginRegistry | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.pm = pm
        self._attached = False

    def _attach(self) -> None:
        if not self._attached:
            self._attached = True
            (self.pm or registry.get_registry()).attach_commands(self)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._attach()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None:
            self._attach()
            command = super().get_command(ctx, cmd_name)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        from ..core.errors import CrosswalkError
        from ..core.secrets import redact

        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except CrosswalkError as exc:
            if _debug(ctx):
                raise
            click.echo(f"error: {redact(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            # `crosswalk export ... | head`: the reader left; nothing more to say.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(EXIT_OK)
        except KeyboardInterrupt:
            click.echo(
                "interrupted: committed pages are kept; the next sync resumes from them", err=True
            )
            ctx.exit(130)
        except Exception as exc:
            if _debug(ctx):
                raise
            click.echo(
                f"error: unexpected {type(exc).__name__}: {redact(str(exc))} (run with --debug for the traceback)",
                err=True,
            )
            ctx.exit(EXIT_ERROR)


def _debug(ctx: click.Context) -> bool:
    obj = ctx.find_object(Context)
    return bool(obj and obj.debug)


def _setup_logging(debug: bool, verbose: int) -> None:
    from ..core.secrets import REDACTOR

    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_crosswalk", False):
            root.removeHandler(handler)
    if sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=debug)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._crosswalk = True  # type: ignore[attr-defined]
    handler.addFilter(REDACTOR)
    handler.setLevel(level)
    root.addHandler(handler)
    logging.getLogger("itcrosswalk").setLevel(level)
    # urllib3 logs each retry with the full URL; the HTTP policy logs retries in plain words.
    logging.getLogger("urllib3").setLevel(logging.DEBUG if debug else logging.ERROR)


def _emit(
    rows: list[dict[str, Any]], fmt: str, columns: list[str] | None = None, title: str | None = None
) -> None:
    from ..core.output import table_rows, write_csv, write_json

    if fmt == "json":
        write_json(rows, sys.stdout)
    elif fmt == "csv":
        write_csv(rows, sys.stdout, columns)
    else:
        from rich.console import Console
        from rich.table import Table

        names, cells = table_rows(rows, columns)
        table = Table(title=title, show_lines=False)
        for name in names:
            table.add_column(name, overflow="fold")
        for row in cells:
            table.add_row(*row)
        Console(width=max(120, Console().width)).print(table)


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="table for people, json or csv for scripts.",
)


def make_cli(pm: registry.PluginRegistry | None = None) -> click.Group:
    """The ``crosswalk`` group, bound to a plugins' registry (a fresh one per test)."""

    @click.group(
        cls=CrosswalkGroup, pm=pm, context_settings={"help_option_names": ["-h", "--help"]}
    )
    @click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Config file (else $CROSSWALK_CONFIG, else ./crosswalk.toml).",
    )
    @click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
    @click.option("-v", "--verbose", count=True, help="More log lines (retries, resumes).")
    @click.version_option(__version__, prog_name="crosswalk")
    @click.pass_context
    def cli(ctx: click.Context, config_path: str | None, debug: bool, verbose: int) -> None:
        """itcrosswalk: one common model of portfolio work, service tickets and endpoints,
        synced from ServiceNow, Jira Align, Project Server and Intune."""
        ctx.obj = Context(config_path, debug, pm or registry.get_registry())
        _setup_logging(debug, verbose)

    # -- init ---------------------------------------------------------------------------------

    @cli.command()
    @click.argument("path", required=False, type=click.Path(dir_okay=False))
    @click.option("--force", is_flag=True, help="Overwrite an existing file.")
    @click.pass_obj
    def init(obj: Context, path: str | None, force: bool) -> None:
        """Write a commented starter crosswalk.toml."""
        from ..core.config import STARTER_CONFIG

        target = Path(
            path or obj.config_path or os.environ.get("CROSSWALK_CONFIG") or "crosswalk.toml"
        )
        if target.exists() and not force:
            raise click.UsageError(f"{target} exists; pass --force to overwrite it")
        target.write_text(STARTER_CONFIG)
        click.echo(f"wrote {target}: edit the sources, then run `crosswalk check`")

    # -- plugins ------------------------------------------------------------------------------

    @cli.group("plugins", invoke_without_command=True)
    @format_option
    @click.pass_context
    def plugins_(ctx: click.Context, fmt: str) -> None:
        """List plugins, their hooks, and any that failed to load."""
        if ctx.invoked_subcommand:
            return
        rows = ctx.obj.pm.describe()
        platforms = ctx.obj.pm.platforms()
        for row in rows:
            row["platforms"] = sorted(
                p for p, info in platforms.items() if info.plugin == row["name"]
            )
        _emit(rows, fmt, ["name", "origin", "platforms", "hooks", "error"])
        if any(row["error"] for row in rows):
            ctx.exit(EXIT_ATTENTION)

    @plugins_.command("show")
    @click.argument("name")
    @click.pass_obj
    def plugins_show(obj: Context, name: str) -> None:
        """Show a platform's crosswalk tables (native value -> normalized value)."""
        platforms = obj.pm.platforms()
        if name not in platforms:
            raise click.UsageError(
                f"no platform {name!r}; installed: {', '.join(sorted(platforms)) or 'none'}"
            )
        info = platforms[name]
        from ..core.output import jsonable

        click.echo(
            json.dumps(
                jsonable({"platform": name, "plugin": info.plugin, "mapping": info.mapping}),
                indent=2,
            )
        )

    # -- check --------------------------------------------------------------------------------

    @cli.command()
    @click.argument("sources", nargs=-1)
    @format_option
    @click.pass_obj
    def check(obj: Context, sources: tuple[str, ...], fmt: str) -> None:
        """Preflight: reach every source, and test every table or resource a sync will read."""
        from ..core.sync import build_adapter

        rows: list[dict[str, Any]] = []
        failed = False
        for name in sources or tuple(obj.config.sources):
            adapter = build_adapter(obj.config, name, obj.pm)
            try:
                for item in adapter.check():
                    failed |= not item.ok
                    rows.append(
                        {
                            "source": name,
                            "stream": item.name,
                            "ok": item.ok,
                            "status": item.status,
                            "first_sync_requests": item.estimate_requests,
                            "detail": item.detail,
                        }
                    )
            finally:
                adapter.close()
        _emit(rows, fmt, ["source", "stream", "ok", "status", "first_sync_requests", "detail"])
        if fmt == "table":
            total = sum(r["first_sync_requests"] or 0 for r in rows)
            click.echo(f"a first sync will make about {total} requests", err=True)
        if failed:
            sys.exit(EXIT_ATTENTION)

    # -- sync ---------------------------------------------------------------------------------

    @cli.command()
    @click.argument("sources", nargs=-1)
    @click.option("--full", is_flag=True, help="Re-read everything and tombstone what disappeared.")
    @click.option("--dry-run", is_flag=True, help="Fetch and map, write nothing.")
    @click.option("--stream", "streams", multiple=True, help="Only these streams (repeatable).")
    @click.option("--break-lock", is_flag=True, help="Remove a stale lock of these sources first.")
    @format_option
    @click.pass_obj
    def sync(
        obj: Context,
        sources: tuple[str, ...],
        full: bool,
        dry_run: bool,
        streams: tuple[str, ...],
        break_lock: bool,
        fmt: str,
    ) -> None:
        """Sync sources (all enabled ones by default) into the store."""
        from ..core.sync import SyncEngine

        config = obj.config
        names = list(sources) or [n for n, s in config.sources.items() if s.enabled]
        if not names:
            raise click.UsageError("the config has no sources; `crosswalk init` writes a starter")
        store = obj.store()
        code = EXIT_OK
        rows: list[dict[str, Any]] = []
        try:
            with _progress() as progress:
                engine = SyncEngine(config, store, pm=obj.pm, progress=progress)
                for name in names:
                    if break_lock and store.break_lock(name):
                        click.echo(f"removed the lock of source {name}", err=True)
                    started = time.monotonic()
                    result = engine.sync(
                        name, full=full, dry_run=dry_run, streams=list(streams) or None
                    )
                    seconds = time.monotonic() - started
                    for s in result.streams:
                        rows.append(
                            {
                                "source": name,
                                "stream": s.stream,
                                "status": s.status,
                                "full": s.full,
                                "read": s.read,
                                "inserted": s.inserted,
                                "updated": s.updated,
                                "quarantined": s.quarantined,
                                "tombstoned": s.tombstoned,
                                "requests": s.requests,
                                "platform_count": s.remote_total,
                                "message": s.message,
                            }
                        )
                    log.info("source %s synced in %.1fs", name, seconds)
                    code = (
                        max(code, result.exit_code)
                        if result.exit_code != EXIT_ERROR
                        else EXIT_ERROR
                    )
        finally:
            store.close()
        _emit(
            rows,
            fmt,
            [
                "source",
                "stream",
                "status",
                "full",
                "read",
                "inserted",
                "updated",
                "quarantined",
                "tombstoned",
                "requests",
                "platform_count",
                "message",
            ],
            title="dry run: nothing written" if dry_run else None,
        )
        if code:
            sys.exit(code)

    # -- status -------------------------------------------------------------------------------

    @cli.command()
    @format_option
    @click.pass_obj
    def status(obj: Context, fmt: str) -> None:
        """Watermarks, counts, quarantine and the last run of every source and stream."""
        store = obj.store()
        try:
            rows = store.status()
        finally:
            store.close()
        _emit(
            rows,
            fmt,
            None
            if fmt == "json"
            else [
                "source",
                "stream",
                "watermark",
                "records",
                "deleted",
                "quarantined",
                "dangling",
                "remote_total",
                "access",
                "last_run_outcome",
                "last_run_ended",
                "message",
            ],
        )

    # -- export -------------------------------------------------------------------------------

    @cli.command()
    @click.argument("entity", type=click.Choice(sorted(_export_names())))
    @format_option
    @click.option("--source", default=None, help="Only this source.")
    @click.option("--include-deleted", is_flag=True, help="Also records tombstoned by a full sync.")
    @click.option(
        "--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write to a file."
    )
    @click.pass_obj
    def export(
        obj: Context,
        entity: str,
        fmt: str,
        source: str | None,
        include_deleted: bool,
        output: str | None,
    ) -> None:
        """Export one entity of the common model from the store."""
        from ..core.model import ENTITIES, EXPORT_NAMES
        from ..core.output import write_csv, write_json

        entity_id = EXPORT_NAMES[entity]
        store = obj.store()
        try:
            rows = store.export(entity_id, source=source, include_deleted=include_deleted)
            if not include_deleted:
                rows = ({k: v for k, v in row.items() if k != "deleted"} for row in rows)
            columns = list(ENTITIES[entity_id].model_fields)
            with _open_output(output) as out:
                if fmt == "json":
                    write_json(rows, out)
                elif fmt == "csv":
                    write_csv(rows, out, columns + (["deleted"] if include_deleted else []))
                else:
                    materialized = list(rows)
                    if output:
                        raise click.UsageError("--output takes --format json or csv")
                    short = [c for c in columns if c not in ("extra", "url", "platform")][:10]
                    _emit(materialized, "table", short)
        finally:
            store.close()

    # -- sandbox ------------------------------------------------------------------------------

    @cli.group()
    def sandbox() -> None:
        """The built-in sandbox: emulators of every platform serving one seeded city."""

    @sandbox.command("serve")
    @click.option("--seed", default=7, show_default=True, type=int)
    @click.option(
        "--size", default="small", show_default=True, type=click.Choice(["tiny", "small", "medium"])
    )
    @click.option("--tickets", type=int, default=None, help="Override the number of tickets.")
    @click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False),
        default="crosswalk-sandbox",
        show_default=True,
        help="Where the config, CA and secret are written.",
    )
    @click.pass_obj
    def sandbox_serve(
        obj: Context, seed: int, size: str, tickets: int | None, directory: str
    ) -> None:
        """Serve the emulators on loopback HTTPS until interrupted."""
        from ..sandbox import runner
        from ..sandbox.world import generate

        world = generate(seed, size, tickets=tickets)
        with runner.start(world, pm=obj.pm) as box:
            path = runner.write_config(box, Path(directory))
            for name, url in sorted(box.urls.items()):
                click.echo(f"{name}: {url}")
            click.echo(f"config: {path}  (crosswalk --config {path} sync)")
            click.echo("press Ctrl-C to stop")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                click.echo("stopped")

    # -- demo ---------------------------------------------------------------------------------

    @cli.command()
    @click.option(
        "--dir",
        "directory",
        type=click.Path(file_okay=False),
        default="crosswalk-demo",
        show_default=True,
    )
    @click.option("--seed", default=7, show_default=True, type=int)
    @click.option(
        "--size", default="small", show_default=True, type=click.Choice(["tiny", "small", "medium"])
    )
    @click.pass_obj
    def demo(obj: Context, directory: str, seed: int, size: str) -> None:
        """Serve the sandbox, sync every platform from it, compute the metrics, evaluate the
        platforms, and say what landed where."""
        from ..core.config import load_config
        from ..core.errors import CrosswalkError
        from ..core.secrets import redact
        from ..core.store import Store
        from ..core.sync import SyncEngine
        from ..sandbox import runner
        from ..sandbox.world import generate

        target = Path(directory)
        click.echo(f"generating the city (seed {seed}, size {size}) ...")
        world = generate(seed, size)
        code = EXIT_OK
        with runner.start(world, pm=obj.pm) as box:
            config_path = runner.write_config(box, target)
            config = load_config(config_path)
            store = Store(config.store.url)
            try:
                with _progress() as progress:
                    engine = SyncEngine(config, store, pm=obj.pm, progress=progress)
                    for name in config.sources:
                        try:
                            result = engine.sync(name)
                        except CrosswalkError as exc:  # one platform failing spoils no other
                            code = max(code, EXIT_ATTENTION)
                            click.echo(f"sync of {name} failed: {redact(str(exc))}")
                            continue
                        code = max(code, result.exit_code)
                        read = sum(s.read for s in result.streams)
                        click.echo(
                            f"synced {name}: {read} records from {len(result.streams)} streams "
                            f"({result.outcome})"
                        )
                rows = store.status()
                written = _demo_outputs(config, store, target, obj.pm, now=world.now)
            finally:
                store.close()
        _emit(
            [
                {
                    k: r[k]
                    for k in (
                        "source",
                        "stream",
                        "records",
                        "quarantined",
                        "remote_total",
                        "access",
                    )
                }
                for r in rows
            ],
            "table",
            title="what landed",
        )
        for label, path in written:
            click.echo(f"{label:<11} {path}")
        click.echo(f"\nconfig: {config_path}\nstore:  {config.store.url}")
        click.echo(f"explore: crosswalk --config {config_path} export tickets --format json")
        click.echo(f"         crosswalk --config {config_path} metrics --by platform")
        click.echo(f"         crosswalk --config {config_path} evaluate")
        click.echo(f"         crosswalk --config {config_path} status")
        if code == EXIT_ERROR:
            sys.exit(code)

    for area in _areas():
        importlib.import_module(f"{__name__}.{area}").register(cli)
    return cli


def _demo_outputs(
    config: Any, store: Any, target: Path, pm: registry.PluginRegistry, *, now: Any
) -> list[tuple[str, Path]]:
    """What the demo leaves beside its store: the metrics, the compliance report and the
    platform evaluation, all judged at the seeded world's moment so they match what it holds."""
    from ..core.evaluate import evaluate
    from ..core.metrics import compute_metrics
    from ..core.output import write_json
    from ..core.reports.compliance import write_compliance
    from ..core.reports.evaluation import render_html

    written: list[tuple[str, Path]] = []
    metrics = compute_metrics(store, config, by=["platform"], now=now, pm=pm)
    path = target / "metrics.json"
    with open(path, "w", encoding="utf-8") as handle:
        write_json([m.as_json() for m in metrics], handle)
    written.append(("metrics:", path))
    html_report, _json_report = write_compliance(store, config, pm, target, now=now)
    written.append(("compliance:", Path(html_report)))
    results = evaluate(config, store, pm=pm, now=now)
    path = target / "evaluation.json"
    with open(path, "w", encoding="utf-8") as handle:
        write_json([r.as_json() for r in results], handle)
    html = target / "evaluation.html"
    html.write_text(render_html(results), encoding="utf-8")
    written.append(("evaluation:", html))
    for result in results:
        total = "-" if result.total is None else f"{result.total:.1f}"
        click.echo(
            f"  {result.rank}. {result.source} ({result.platform}): {total} [{result.status}]"
        )
    return written


def _export_names() -> list[str]:
    from ..core.model import EXPORT_NAMES

    return list(EXPORT_NAMES)


@contextlib.contextmanager
def _open_output(path: str | None) -> Iterator[Any]:
    if path is None:
        yield sys.stdout
        return
    with open(path, "w", encoding="utf-8", newline="") as handle:
        yield handle


@contextlib.contextmanager
def _progress() -> Iterator[Any]:
    """Progress bars on a terminal; plain log lines elsewhere (cron, CI)."""
    if not sys.stderr.isatty():
        last: dict[str, float] = {}

        def plain(stream: str, done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - last.get(stream, 0) >= 10:
                last[stream] = now
                log.info("%s: %d records%s", stream, done, f" of about {total}" if total else "")

        yield plain
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
    ) as bars:
        tasks: dict[str, Any] = {}

        def update(stream: str, done: int, total: int | None) -> None:
            if stream not in tasks:
                tasks[stream] = bars.add_task(stream, total=total)
            bars.update(
                tasks[stream], completed=done, total=total if total and total >= done else None
            )

        yield update


def main() -> None:
    """The console script."""
    make_cli()(prog_name="crosswalk")


if __name__ == "__main__":
    main()
