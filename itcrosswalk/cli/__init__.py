"""The ``crosswalk`` command: turns arguments into calls and exceptions into one-line messages.

This package is the only place that prints. The sync-side commands live here; each further
area (metrics, templates, reports, evaluation) is a module of this package whose
``register(cli)`` adds its commands; every module imports only click at the top, so
``crosswalk --help`` stays light. Exit codes: 0 ok, 1 error, 2 usage, 3 finished with
quarantined records, skipped streams or failed controls.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import json
import logging
import os
import pkgutil
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from .. import __version__, registry

log = logging.getLogger("itcrosswalk")

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_ATTENTION = 0, 1, 2, 3
FORMATS = ("table", "json", "csv")


def worst(a: int, b: int) -> int:
    """The worse of two exit codes: an error (1) outranks attention (3), which outranks ok."""
    rank = {EXIT_OK: 0, EXIT_ATTENTION: 1}
    return a if rank.get(a, 2) >= rank.get(b, 2) else b


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
        self.wide = False
        self._config: Any = None

    @property
    def config(self) -> Any:
        if self._config is None:
            from ..core.config import load_config

            self._config = load_config(self.config_path)
        return self._config

    def store(self) -> Any:
        from ..core.errors import ConfigError
        from ..core.store import Store

        config = self.config
        try:
            return Store(config.store.url)
        except ConfigError as exc:
            if not str(exc).startswith("store.url:"):
                raise  # the store itself (its schema), already named in the line
            # Name the file the bad store.url is in, as every other config error does.
            raise ConfigError(f"{config.path}: {exc}") from None


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
            # A StoreError already names the store and says what to do (core.store).
            click.echo(f"error: {redact(str(exc))}", err=True)
            ctx.exit(exc.exit_code)
        except BrokenPipeError:
            # `crosswalk export ... | head`: the reader left; nothing more to say.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(EXIT_OK)
        except KeyboardInterrupt as exc:
            click.echo(
                "interrupted: committed pages are kept; the next sync resumes from them", err=True
            )
            # 128 + the signal, as a shell reports it: SIGTERM (a Terminated) 143, Ctrl-C 130.
            from ..core.sync import Terminated

            ctx.exit(128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT))
        except Exception as exc:
            if _debug(ctx):
                raise
            message = _store_problem(ctx, exc) or _file_problem(exc)
            if message is None:
                message = (
                    f"unexpected {type(exc).__name__}: {redact(str(exc))} "
                    "(run with --debug for the traceback)"
                )
            click.echo(f"error: {redact(message)}", err=True)
            ctx.exit(EXIT_ERROR)


def _store_problem(ctx: click.Context, exc: BaseException) -> str | None:
    """A raw database error (outside the store's own one-line errors) as the store's line."""
    if not _is_store_error(exc):
        return None
    from ..core.store import store_failure

    obj = ctx.find_object(Context)
    try:
        url = obj.config.store.url if obj else ""
    except Exception:  # the config itself may be what failed
        url = ""
    return store_failure(url, exc)


def _file_problem(exc: BaseException) -> str | None:
    """A filesystem error as one line naming the path and what to do."""
    if not isinstance(exc, OSError) or not exc.filename:
        return None
    path = exc.filename
    reason = exc.strerror or type(exc).__name__
    if isinstance(exc, PermissionError):
        advice = "check the permissions of the file and its folder"
    elif isinstance(exc, FileNotFoundError):
        advice = "check that the folder exists"
    elif isinstance(exc, IsADirectoryError):
        advice = "give a file name, not a folder"
    else:
        advice = "check the path"
    return f"cannot use {path}: {reason}; {advice}"


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


def _width() -> int | None:
    """The table width: the terminal's (or $COLUMNS), unless ``--wide`` asked for all of it."""
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(Context) if ctx else None
    if obj is not None and obj.wide:
        return None
    return shutil.get_terminal_size((80, 24)).columns


OUTPUT_FORMATS = {".json": "json", ".csv": "csv", ".txt": "table"}


def _format_for(fmt: str | None, output: str | None, allowed: tuple[str, ...] = FORMATS) -> str:
    """The format asked for, else the one ``-o``'s extension names, else a table.

    Called before anything is opened, so a wrong extension creates no file.
    """
    if fmt is None and output:
        suffix = Path(output).suffix.lower()
        inferred = OUTPUT_FORMATS.get(suffix)
        if inferred is None or inferred not in allowed:
            known = ", ".join(k for k, v in OUTPUT_FORMATS.items() if v in allowed)
            raise click.BadParameter(
                f"cannot tell the format from {suffix or 'no extension'!r} "
                f"(known: {known}); add --format {'|'.join(allowed)}",
                param_hint="'--output'",
            )
        return inferred
    fmt = fmt or "table"
    if fmt not in allowed:
        raise click.BadParameter(
            f"{fmt!r} is not one of {', '.join(allowed)}", param_hint="'--format'"
        )
    return fmt


def _emit(
    rows: Any,
    fmt: str | None,
    columns: list[str] | None = None,
    title: str | None = None,
    *,
    output: str | None = None,
    whole: tuple[str, ...] = ("source", "stream", "id", "metric"),
) -> None:
    """Rows to stdout or ``output`` as a table that fits the terminal, JSON or CSV."""
    from ..core.output import render_table, write_csv, write_json

    ctx = click.get_current_context(silent=True)
    if output is None and ctx is not None:
        output = ctx.meta.get(_OUTPUT)
    fmt = _format_for(fmt, output)
    with _open_output(output) as out:
        if fmt == "json":
            write_json(rows, out)
        elif fmt == "csv":
            write_csv(rows, out, columns)
        else:
            width = None if output else _width()
            table = render_table(rows, columns, width=width, title=title, whole=whole)
            out.write(table.text)
            if table.hidden:
                out.flush()
                plural = "s" if len(table.hidden) > 1 else ""
                click.echo(
                    _cut(
                        f"({len(table.hidden)} column{plural} left out to fit {width}: "
                        f"{', '.join(table.hidden)}; --wide shows them)"
                    ),
                    err=True,
                )
    if output:
        click.echo(f"wrote {output}", err=True)


def _set_wide(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    obj = ctx.find_object(Context)
    if value and obj is not None:
        obj.wide = True


_OUTPUT = "crosswalk.output"


def _take_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    # Eager, so the --format callback (and _emit) know where the data goes.
    if value is not None:
        ctx.meta[_OUTPUT] = value
    return value


def infer_format(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A ``--format`` callback: when not given, the format ``-o``'s extension names."""
    given = ctx.get_parameter_source(param.name or "") not in (
        click.core.ParameterSource.DEFAULT,
        None,
    )
    output = ctx.meta.get(_OUTPUT)
    if given or not output:
        return value
    choices = tuple(getattr(param.type, "choices", FORMATS))
    return _format_for(None, output, tuple(c for c in choices if c in FORMATS))


def output_option(command: Any) -> Any:
    """``-o PATH``: the data goes to this file, its format following the extension."""
    return click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False),
        default=None,
        is_eager=True,
        expose_value=False,
        callback=_take_output,
        help="Write to this file (.json, .csv, .txt: the format follows the extension).",
    )(command)


def format_option(command: Any) -> Any:
    """``--format table|json|csv`` (or from ``-o``'s extension), ``-o PATH`` and ``--wide``."""
    command = click.option(
        "--wide",
        is_flag=True,
        expose_value=False,
        callback=_set_wide,
        help="Cells at full width, however wide the terminal.",
    )(command)
    command = output_option(command)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(FORMATS)),
        default="table",
        show_default=True,
        callback=infer_format,
        help="table for people, json or csv for scripts.",
    )(command)


def format_only_option(command: Any) -> Any:
    """``--format table|json|csv`` for commands whose output is no table of rows."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(FORMATS)),
        default="table",
        show_default=True,
        help="table for people, json or csv for scripts.",
    )(command)


def output_options(command: Any) -> Any:
    """``--format`` (default: from ``-o``'s extension, else a table), ``-o PATH`` and ``--wide``."""
    command = click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False),
        default=None,
        is_eager=True,
        callback=_take_output,
        help="Write to this file (.json, .csv, .txt: the format follows the extension).",
    )(command)
    command = click.option(
        "--wide",
        is_flag=True,
        expose_value=False,
        callback=_set_wide,
        help="Cells at full width, however wide the terminal.",
    )(command)
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(FORMATS)),
        default=None,
        callback=infer_format,
        help="table (default) for people, json or csv for scripts.",
    )(command)


# -- names ----------------------------------------------------------------------------------


def _suggestion(value: str, known: Iterable[str]) -> str | None:
    """The nearest of ``known`` to ``value`` (difflib, case-insensitive), if any is close."""
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


def check_name(kind: str, value: str, known: Iterable[str], *, param: str | None = None) -> str:
    """``value`` if it is one of ``known``; else a usage error (exit 2) naming the nearest one.

    The one place every command checks a name it was given: a source, a stream, an entity, a
    metric, a dimension, a control, a template.
    """
    names = sorted(set(known))
    if value in names:
        return value
    close = _suggestion(value, names)
    message = f"no {kind} {value!r}"
    if close:
        message += f"; did you mean {close!r}?"
    shown = ", ".join(names[:15]) + (f" and {len(names) - 15} more" if len(names) > 15 else "")
    message += f" ({kind}s: {shown or 'none'})"
    raise click.BadParameter(message, param_hint=f"'{param}'" if param else None)


def check_names(
    kind: str, values: Iterable[str], known: Iterable[str], *, param: str | None = None
) -> list[str]:
    """:func:`check_name` for each of ``values``."""
    names = list(known)
    return [check_name(kind, v, names, param=param) for v in values]


class SuggestingChoice(click.Choice):
    """A click choice whose error names the nearest choice."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            close = _suggestion(str(value), [str(c) for c in self.choices])
            if close:
                exc.message = f"{exc.message.rstrip('.')}; did you mean {close!r}?"
            raise


def known_sources(obj: Context, *, stored: bool = True) -> list[str]:
    """The configured sources, and (``stored``) those the store holds records or runs of."""
    names = set(obj.config.sources)
    if stored:
        store = obj.store()
        try:
            names |= set(store.source_names())
        finally:
            store.close()
    return sorted(names)


def check_source(obj: Context, name: str | None, *, param: str = "--source") -> str | None:
    """``name`` checked against :func:`known_sources` (None passes: every source)."""
    if name is None:
        return None
    if name in obj.config.sources:
        return name
    return check_name("source", name, known_sources(obj), param=param)


def _export_names() -> list[str]:
    from ..core.model import EXPORT_NAMES

    return list(EXPORT_NAMES)


# -- the commands ----------------------------------------------------------------------------
#
# Each is a module-level click command; make_cli adds them to a fresh group bound to a
# registry, which the commands read from the click context (``obj.pm``).

# -- init ---------------------------------------------------------------------------------


@click.command()
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
def init(obj: Context, path: str | None, force: bool) -> None:
    """Write a commented starter crosswalk.toml."""
    from ..core.config import STARTER_CONFIG

    target = Path(path or obj.config_path or os.environ.get("CROSSWALK_CONFIG") or "crosswalk.toml")
    if target.exists() and not force:
        raise click.UsageError(f"{target} exists; pass --force to overwrite it")
    target.write_text(STARTER_CONFIG)
    click.echo(f"wrote {target}: edit the sources, then run `crosswalk check`")


# -- plugins ------------------------------------------------------------------------------


@click.group("plugins", invoke_without_command=True)
@format_option
@click.pass_context
def plugins_(ctx: click.Context, fmt: str) -> None:
    """List plugins, their hooks, and any that failed to load."""
    if ctx.invoked_subcommand:
        return
    rows = ctx.obj.pm.describe()
    platforms = ctx.obj.pm.platforms()
    for row in rows:
        row["platforms"] = sorted(p for p, info in platforms.items() if info.plugin == row["name"])
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


@click.command()
@click.argument("sources", nargs=-1)
@click.option("--stream", "streams", multiple=True, help="Only these streams (repeatable).")
@output_options
@click.pass_obj
def check(
    obj: Context,
    sources: tuple[str, ...],
    streams: tuple[str, ...],
    fmt: str | None,
    output: str | None,
) -> None:
    """Preflight: reach every source, and test every stream a sync will read.

    Exit codes are the sync's: 1 when a sync would fail (authentication, an unreachable
    source, a missing secret, a bad config), 3 when it would skip streams.
    """
    from ..core.errors import CrosswalkError
    from ..core.secrets import redact
    from ..core.sync import build_adapter

    fmt = _format_for(fmt, output)
    code = EXIT_OK
    rows: list[dict[str, Any]] = []
    for name, wanted in _plan(obj, sources, streams):
        found: list[dict[str, Any]] = []
        try:
            adapter = build_adapter(obj.config, name, obj.pm)
            try:
                selected = [s.name for s in _select_streams(obj, adapter, name, wanted)]
                offered = {s.name for s in adapter.streams()}
                items = adapter.check()
            finally:
                adapter.close()
        except CrosswalkError as exc:
            code = worst(code, exc.exit_code)
            rows.append(_check_row(name, "-", False, _error_status(exc), None, redact(str(exc))))
            continue
        for item in items:
            if item.name in offered and item.name not in selected:
                continue
            code = worst(code, _check_exit(item))
            found.append(
                _check_row(
                    name,
                    item.name,
                    item.ok,
                    item.status or ("ok" if item.ok else "error"),
                    item.estimate_requests,
                    redact(item.detail),
                )
            )
        # People read one line per distinct problem; scripts get one row per stream.
        rows += _distinct_problems(found, total=len(selected)) if fmt == "table" else found
    if fmt == "table":
        shown = [
            {
                **{k: v for k, v in r.items() if k != "first_sync_requests"},
                "requests": r["first_sync_requests"],
            }
            for r in rows
        ]
        _emit(shown, fmt, ["source", "stream", "status", "detail", "requests"], output=output)
    else:
        _emit(
            rows,
            fmt,
            ["source", "stream", "ok", "status", "first_sync_requests", "detail"],
            output=output,
        )
    if fmt == "table" and not output and all(r["ok"] for r in rows):
        # An estimate beside a failed row would promise a sync that cannot run.
        total = sum(r["first_sync_requests"] or 0 for r in rows)
        click.echo(f"a first sync will make about {total} requests", err=True)
    if code:
        sys.exit(code)


# -- sync ---------------------------------------------------------------------------------


@click.command()
@click.argument("sources", nargs=-1)
@click.option("--full", is_flag=True, help="Re-read everything and tombstone what disappeared.")
@click.option("--dry-run", is_flag=True, help="Fetch and map, write nothing.")
@click.option(
    "--stream",
    "streams",
    multiple=True,
    help="Only these streams (repeatable); only the sources offering them are synced.",
)
@click.option("--break-lock", is_flag=True, help="Remove a stale lock of these sources first.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "lines", "json", "csv"]),
    default=None,
    help="table on a terminal; elsewhere (cron, CI) one key=value line per stream.",
)
@click.option(
    "--wide",
    is_flag=True,
    expose_value=False,
    callback=_set_wide,
    help="Cells at full width, however wide the terminal.",
)
@click.pass_obj
def sync(
    obj: Context,
    sources: tuple[str, ...],
    full: bool,
    dry_run: bool,
    streams: tuple[str, ...],
    break_lock: bool,
    fmt: str | None,
) -> None:
    """Sync sources (all enabled ones by default) into the store.

    One source failing never stops the others: each is synced and reported, and the exit
    code is the worst of them (1 error, 3 quarantined records or skipped streams).
    """
    from ..core.errors import CrosswalkError, StoreError
    from ..core.secrets import redact
    from ..core.sync import SyncEngine

    fmt = fmt or ("table" if sys.stdout.isatty() else "lines")
    plan = _plan(obj, sources, streams)
    config = obj.config
    store = obj.store()
    code = EXIT_OK
    rows: list[dict[str, Any]] = []
    summaries: list[dict[str, Any]] = []
    try:
        with _progress() as progress:
            engine = SyncEngine(config, store, pm=obj.pm, progress=progress)
            for name, wanted in plan:
                started = time.monotonic()
                try:
                    if break_lock and store.break_lock(name):
                        click.echo(f"removed the lock of source {name}", err=True)
                    result = engine.sync(name, full=full, dry_run=dry_run, streams=wanted)
                except StoreError:
                    raise  # the store is every source's: nothing after this could be kept
                except CrosswalkError as exc:
                    code = worst(code, exc.exit_code)
                    click.echo(f"error: sync of {name} failed: {redact(str(exc))}", err=True)
                    summaries.append(
                        _source_summary(
                            name,
                            "failed",
                            [],
                            time.monotonic() - started,
                            redact(str(exc)),
                            exc.exit_code,
                        )
                    )
                    continue
                except Exception as exc:
                    if _is_store_error(exc) or obj.debug:
                        raise
                    # An adapter's bug spoils its own source, never the next one.
                    code = worst(code, EXIT_ERROR)
                    click.echo(
                        f"error: sync of {name} failed: unexpected {type(exc).__name__}: "
                        f"{redact(str(exc))}",
                        err=True,
                    )
                    summaries.append(
                        _source_summary(
                            name,
                            "failed",
                            [],
                            time.monotonic() - started,
                            f"unexpected {type(exc).__name__}: {redact(str(exc))} "
                            "(run with --debug for the traceback)",
                            EXIT_ERROR,
                        )
                    )
                    continue
                seconds = time.monotonic() - started
                stream_rows = [_stream_row(name, s) for s in result.streams]
                rows += stream_rows
                code = worst(code, result.exit_code)
                summaries.append(
                    _source_summary(
                        name,
                        result.outcome,
                        stream_rows,
                        seconds,
                        redact(result.error or ""),
                        result.exit_code,
                    )
                )
                log.info("source %s synced in %.1fs", name, seconds)
    finally:
        store.close()
    _sync_report(rows, summaries, fmt, dry_run)
    if code:
        sys.exit(code)


# -- status -------------------------------------------------------------------------------


@click.command()
@click.argument("source", required=False)
@output_options
@click.pass_obj
def status(obj: Context, source: str | None, fmt: str | None, output: str | None) -> None:
    """One line per source: records, last run, its outcome and reason, what needs a look.

    With SOURCE, one line per stream: records beside the platform's own count from the
    last full read, the gap, quarantine, access and the watermark.
    """
    fmt = _format_for(fmt, output)
    if source is not None:
        source = check_source(obj, source, param="SOURCE")
    store = obj.store()
    try:
        sources = _status_sources(obj, store)
        streams = [_status_stream(r) for r in store.status() if r["source"] == source]
    finally:
        store.close()
    if source is None:
        if fmt == "table":
            # Today's runs by their time alone: the reason gets the room.
            sources = [{**s, "last_run": _when(s["last_run"])} for s in sources]
        _emit(
            sources,
            fmt,
            None
            if fmt == "json"
            else [
                "source",
                "outcome",
                "records",
                "last_run",
                "note",
                "platform",
                "streams",
                "quarantined",
            ],
            output=output,
        )
        return
    head = next(s for s in sources if s["source"] == source)
    if fmt == "table":
        title = (
            f"{source} ({head['platform']}): {head['outcome']}"
            + (f", last run {_local(head['last_run'])}" if head["last_run"] else "")
            + (f"; {head['note']}" if head["note"] else "")
        )
        shown = [
            {
                "stream": s["stream"],
                "records": s["records"],
                "on platform": s["platform_count"],
                "gap": s["gap"],
                "quarantined": s["quarantined"],
                "note": s["note"],
                "watermark": s["watermark"],
                "last full read": s["last_full_at"],
                "last window": s["window_count"],
                "deleted": s["deleted"],
                "dangling": s["dangling"],
            }
            for s in streams
        ]
        _emit(shown, "table", None, title=_cut(title), output=output)
    else:
        _emit(streams, fmt, None, output=output)


# -- runs, quarantine -----------------------------------------------------------------------


@click.command()
@click.argument("source", required=False)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@output_options
@click.pass_obj
def runs(obj: Context, source: str | None, limit: int, fmt: str | None, output: str | None) -> None:
    """The sync history: each run's outcome, counts, duration and reason."""
    fmt = _format_for(fmt, output)
    source = check_source(obj, source, param="SOURCE")
    store = obj.store()
    try:
        history = store.runs(source, limit=limit)
    finally:
        store.close()
    rows = [_run_row(run) for run in history]
    _emit(
        rows,
        fmt,
        None
        if fmt == "json"
        else [
            "id",
            "source",
            "started",
            "seconds",
            "outcome",
            "read",
            "quarantined",
            "reason",
            "full",
        ],
        output=output,
    )


@click.command()
@click.argument("source", required=False)
@click.option("--stream", default=None, help="Only this stream.")
@click.option(
    "--show",
    "show",
    type=int,
    default=None,
    metavar="ID",
    help="One record: why, its payload, how to retry.",
)
@output_options
@click.pass_obj
def quarantine(
    obj: Context,
    source: str | None,
    stream: str | None,
    show: int | None,
    fmt: str | None,
    output: str | None,
) -> None:
    """Records that could not be mapped: why each was quarantined, and how to retry it."""
    fmt = _format_for(fmt, output)
    source = check_source(obj, source, param="SOURCE")
    store = obj.store()
    try:
        held = store.quarantine_rows(source)
    finally:
        store.close()
    if stream is not None:
        check_name("stream", stream, {r["stream"] for r in held} or [stream], param="--stream")
        held = [r for r in held if r["stream"] == stream]
    if show is not None:
        check_name("quarantined record", str(show), [str(r["id"]) for r in held], param="--show")
        item = next(r for r in held if r["id"] == show)
        retry = _retry_advice(item)
        if fmt == "table":
            from ..core.output import table_cell

            with _open_output(output) as out:
                for key in ("id", "source", "stream", "source_id", "at", "error"):
                    out.write(f"{key:>9}: {table_cell(item[key])}\n")
                out.write(f"{'retry':>9}: {retry}\n")
                out.write("  payload:\n")
                out.write(
                    json.dumps(item["payload"], indent=2, sort_keys=True, ensure_ascii=False) + "\n"
                )
            return
        _emit([{**item, "retry": retry}], fmt, None, output=output)
        return
    rows = [{k: r[k] for k in ("id", "source", "stream", "source_id", "at", "error")} for r in held]
    _emit(rows, fmt, ["id", "source", "stream", "source_id", "at", "error"], output=output)
    if fmt == "table" and not output and rows:
        click.echo(
            f"{len(rows)} quarantined; `crosswalk quarantine --show ID` gives one's payload "
            "and how to retry it",
            err=True,
        )


# -- export -------------------------------------------------------------------------------


@click.command()
@click.argument("entity", type=SuggestingChoice(sorted(_export_names())))
@output_options
@click.option("--source", default=None, help="Only this source.")
@click.option("--include-deleted", is_flag=True, help="Also records tombstoned by a full sync.")
@click.pass_obj
def export(
    obj: Context,
    entity: str,
    fmt: str | None,
    source: str | None,
    include_deleted: bool,
    output: str | None,
) -> None:
    """Export one entity of the common model from the store."""
    from ..core.model import ENTITIES, EXPORT_NAMES

    fmt = _format_for(fmt, output)
    source = check_source(obj, source)
    entity_id = EXPORT_NAMES[entity]
    store = obj.store()
    try:
        rows: Any = store.export(entity_id, source=source, include_deleted=include_deleted)
        if not include_deleted:
            rows = ({k: v for k, v in row.items() if k != "deleted"} for row in rows)
        columns = list(ENTITIES[entity_id].model_fields)
        if fmt == "csv":
            columns += ["deleted"] if include_deleted else []
        elif fmt == "table":
            # What a person scans first; ids and stamps last, where the width runs out.
            last = ("source_id", "updated_at", "created_at")
            columns = [c for c in columns if c not in ("extra", "url", "platform", *last)] + list(
                last
            )
        _emit(rows, fmt, None if fmt == "json" else columns, output=output)
    finally:
        store.close()


# -- sandbox ------------------------------------------------------------------------------


@click.group()
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
def sandbox_serve(obj: Context, seed: int, size: str, tickets: int | None, directory: str) -> None:
    """Serve the emulators on loopback HTTPS until interrupted."""
    from ..sandbox import runner
    from ..sandbox.world import generate, live_now

    world = generate(seed, size, tickets=tickets, now=live_now())
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


@click.command()
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
    from ..sandbox.world import generate, live_now

    target = Path(directory)
    _fresh_demo_folder(target)
    click.echo(f"generating the city (seed {seed}, size {size}) ...")
    # Dated now, so the metrics, controls and evaluation run later match what it printed.
    world = generate(seed, size, now=live_now())
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
                "source": r["source"],
                "stream": r["stream"],
                "records": r["records"],
                "quarantined": r["quarantined"],
                "access": r["access"],
                "on platform": r["remote_total"],
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
    click.echo(f"         crosswalk --config {config_path} runs")
    if code == EXIT_ERROR:
        sys.exit(code)


COMMANDS: tuple[click.Command, ...] = (
    init,
    plugins_,
    check,
    sync,
    status,
    runs,
    quarantine,
    export,
    sandbox,
    demo,
)
"""The core's own commands: :func:`make_cli` adds them to each new ``crosswalk`` group."""


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

    for command in COMMANDS:
        cli.add_command(command)
    for area in _areas():
        importlib.import_module(f"{__name__}.{area}").register(cli)
    return cli


def _fresh_demo_folder(target: Path) -> None:
    """A demo starts from an empty store: a second one (another seed) never mixes two cities.

    A folder holding a config the demo did not write is refused, so no one's store is removed.
    """
    config = target / "crosswalk.toml"
    if not config.exists():
        return
    if not config.read_text(encoding="utf-8", errors="replace").startswith(runner_header()):
        raise click.UsageError(
            f"{target} holds a crosswalk.toml the demo did not write; give another --dir"
        )
    removed = False
    for name in ("crosswalk.db", "crosswalk.db-wal", "crosswalk.db-shm"):
        with contextlib.suppress(FileNotFoundError):
            (target / name).unlink()
            removed = True
    if removed:
        click.echo(f"replacing the previous demo's store in {target}")


def runner_header() -> str:
    from ..sandbox.runner import CONFIG_HEADER

    return CONFIG_HEADER


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
    from ..core.history import record_snapshot
    from ..core.reports import dashboard
    from ..core.reports.render import write

    record_snapshot(store, config, pm=pm, origin="demo", now=now)
    for audience in dashboard.AUDIENCES:
        data = dashboard.build(store, config, audience, pm=pm, now=now)
        page = write(data, "html", target / "dashboards" / f"dashboard-{audience}.html")
        write(data, "json", target / "dashboards" / f"dashboard-{audience}.json")
        if audience == "cio":
            written.append(("dashboards:", page.parent))
    from ..core.evaluate import ROLES

    for role, info in ROLES.items():
        members = sorted(
            (r for r in results if role in r.roles), key=lambda r: r.roles[role]["rank"]
        )
        if members:
            click.echo(f"  {info.title}:")
        for result in members:
            mine = result.roles[role]
            total = "-" if mine["total"] is None else f"{mine['total']:.1f}"
            click.echo(
                f"    {mine['rank']}. {result.source} ({result.platform}): {total} [{result.status}]"
            )
    from ..core.assets.forecast import forecast  # the refresh plan
    from ..core.assets.forecast import write as write_forecast

    kb = [m.as_json() for m in metrics if m.id.startswith(("kb.", "problem."))]
    _emit(kb, "table", ["id", "value", "unit", "n", "unsupported"], title="knowledge and problems")
    written.append(
        ("forecast:", write_forecast(forecast(store, config, now=now), target / "forecast")[0])
    )
    return written


# -- planning a sync or a check --------------------------------------------------------------


def _plan(
    obj: Context, sources: tuple[str, ...], streams: tuple[str, ...]
) -> list[tuple[str, list[str] | None]]:
    """Which sources to sync or check, each with the streams asked of it (None: its own).

    Every name is checked first (a usage error names the nearest one), and ``--stream``
    applies only to the sources that offer it: the others are not touched.
    """
    from ..core.errors import ConfigError, CrosswalkError
    from ..core.sync import build_adapter

    config = obj.config
    if not config.sources:
        raise ConfigError(
            f"{config.path}: no sources configured (a [sources.NAME] table per platform); "
            "`crosswalk init` writes a starter"
        )
    names = check_names("source", sources, config.sources, param="SOURCES") or [
        n for n, s in config.sources.items() if s.enabled
    ]
    if not streams:
        return [(name, None) for name in names]
    offered: dict[str, list[str]] = {}
    for name in names:
        try:
            adapter = build_adapter(config, name, obj.pm)
        except CrosswalkError:
            continue  # it cannot say what it offers; the named streams are someone else's
        try:
            offered[name] = [s.name for s in adapter.streams()]
        finally:
            adapter.close()
    every = {stream for names_ in offered.values() for stream in names_}
    check_names("stream", streams, every, param="--stream")
    plan = []
    for name in names:
        wanted = [s for s in streams if s in offered.get(name, [])]
        if wanted:
            plan.append((name, wanted))
    return plan


def _select_streams(obj: Context, adapter: Any, name: str, wanted: list[str] | None) -> list[Any]:
    """The streams a sync of ``name`` would read: the engine's own rule, so check agrees."""
    from ..core.sync import SyncEngine

    engine = SyncEngine(obj.config, None, pm=obj.pm)  # type: ignore[arg-type]
    return list(engine._select(adapter, obj.config.sources[name], wanted))


def _error_status(exc: Exception) -> str:
    from ..core.adapter import check_status

    return check_status(exc)


def _check_exit(item: Any) -> int:
    """The exit code a sync would give for what this check found (the sync's own rule)."""
    if item.ok:
        return EXIT_OK
    return EXIT_ATTENTION if item.status in ("no_access", "missing") else EXIT_ERROR


def _check_row(
    source: str, stream: str, ok: bool, status: str, requests: int | None, detail: str
) -> dict[str, Any]:
    return {
        "source": source,
        "stream": stream,
        "ok": ok,
        "status": status,
        "first_sync_requests": requests,
        "detail": detail,
    }


def _distinct_problems(rows: list[dict[str, Any]], *, total: int) -> list[dict[str, Any]]:
    """One row per distinct problem: streams failing for the same reason share one line."""
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    streams: dict[tuple[Any, ...], list[str]] = {}
    for row in rows:
        key = (row["stream"],) if row["ok"] else (row["status"], row["detail"])
        if key not in merged:
            merged[key] = dict(row)
            streams[key] = []
        streams[key].append(row["stream"])
    out = []
    for key, row in merged.items():
        names = streams[key]
        if len(names) > 1:
            row["stream"] = f"all {len(names)} streams" if len(names) >= total else ", ".join(names)
        out.append(row)
    return out


# -- the sync summary ------------------------------------------------------------------------------


def _stream_row(source: str, s: Any) -> dict[str, Any]:
    return {
        "source": source,
        "stream": s.stream,
        "status": s.status,
        "full": s.full,
        "read": s.read,
        "inserted": s.inserted,
        "updated": s.updated,
        "quarantined": s.quarantined,
        "tombstoned": s.tombstoned,
        "requests": s.requests,
        # An incremental read's count is its window's, not the stream's: only a full read's
        # count stands beside the store's.
        "platform_count": s.remote_total if s.full else None,
        "message": s.message,
    }


def _source_summary(
    name: str, outcome: str, streams: list[dict[str, Any]], seconds: float, error: str, code: int
) -> dict[str, Any]:
    return {
        "source": name,
        "outcome": outcome,
        "exit_code": code,
        "streams": len(streams),
        "read": sum(r["read"] for r in streams),
        "quarantined": sum(r["quarantined"] for r in streams),
        "seconds": round(seconds, 1),
        "error": error,
    }


def _logfmt(pairs: dict[str, Any]) -> str:
    """``key=value`` pairs a log reader can grep; values with spaces or quotes are quoted."""
    from ..core.output import table_cell

    out = []
    for key, value in pairs.items():
        text = table_cell(value)
        if text == "" or any(c in text for c in ' "=\\'):
            text = json.dumps(text, ensure_ascii=False)
        out.append(f"{key}={text}")
    return " ".join(out)


def _sync_report(
    rows: list[dict[str, Any]], summaries: list[dict[str, Any]], fmt: str, dry_run: bool
) -> None:
    if fmt in ("json", "csv"):
        # One row per stream, and one per source that failed before reading any.
        failed = [
            {
                **_stream_row(s["source"], _EmptyStream()),
                "stream": None,
                "status": s["outcome"],
                "message": s["error"],
            }
            for s in summaries
            if s["outcome"] == "failed" and not s["streams"]
        ]
        _emit(rows + failed, fmt, list(_stream_row("", _EmptyStream())))
        return
    if fmt == "lines":
        for row in rows:
            click.echo(
                "sync "
                + _logfmt({k: v for k, v in row.items() if k != "full"} | {"full": row["full"]})
            )
        for summary in summaries:
            click.echo("sync " + _logfmt(summary | {"dry_run": dry_run}))
        return
    for index, summary in enumerate(summaries):
        title = f"{summary['source']}: {summary['outcome']}, {summary['read']} read in {summary['seconds']} s"
        if summary["error"]:
            title += f": {summary['error']}"
        if dry_run:
            title += " (dry run: nothing written)"
        shown = [
            {
                "stream": r["stream"],
                "status": r["status"],
                "read": r["read"],
                "new": r["inserted"],
                "updated": r["updated"],
                "quarantined": r["quarantined"],
                "message": r["message"],
                "deleted": r["tombstoned"],
                "requests": r["requests"],
                "on platform": r["platform_count"],
                "full": r["full"],
            }
            for r in rows
            if r["source"] == summary["source"]
        ]
        if index:
            click.echo("")
        if shown:
            _emit(shown, "table", None, title=_cut(title))
        else:
            click.echo(_cut(title))


class _EmptyStream:
    """The shape of a stream result, for the CSV header of a sync that read nothing."""

    stream = status = message = ""
    full = False
    read = inserted = updated = quarantined = tombstoned = requests = 0
    remote_total = None


# -- status --------------------------------------------------------------------------------------


def _local(value: Any) -> str:
    from ..core.output import table_cell

    return table_cell(value)


def _when(value: Any) -> str:
    """A local time to the second; the date is left out when it is today."""
    from datetime import datetime

    if not isinstance(value, datetime):
        return _local(value)
    local = value.astimezone() if value.tzinfo else value
    if local.date() == datetime.now(local.tzinfo).date():
        return local.strftime("%H:%M:%S")
    return _local(value)


def _cut(text: str) -> str:
    """One line of at most the table width, cut with an ellipsis."""
    from ..core.output import ELLIPSIS

    width = _width()
    text = " ".join(text.split())
    if width is None or len(text) <= width:
        return text
    return text[: width - 1] + ELLIPSIS


def _gap(state: dict[str, Any]) -> int | None:
    """How many of the platform's rows (counted at the last full read) the store lacks."""
    total = state.get("remote_total")
    if total is None:
        return None
    return max(0, int(total) - int(state["records"]) - int(state["quarantined"]))


def _status_stream(state: dict[str, Any]) -> dict[str, Any]:
    note = []
    if state["access"] not in (None, "ok"):
        note.append(str(state["access"]))
    if state["in_progress"]:
        note.append("read in progress (resumes from its last page)")
    if state["message"]:
        note.append(str(state["message"]))
    return {
        "source": state["source"],
        "stream": state["stream"],
        "entity": state["entity"],
        "records": state["records"],
        "deleted": state["deleted"],
        "quarantined": state["quarantined"],
        "dangling": state["dangling"],
        "platform_count": state["remote_total"],
        "platform_count_at": state.get("remote_total_at"),
        "window_count": state.get("window_total"),
        "gap": _gap(state),
        "watermark": state["watermark"],
        "last_full_at": state["last_full_at"],
        "access": state["access"],
        "message": state["message"],
        "note": "; ".join(note),
        "last_run_started": state["last_run_started"],
        "last_run_ended": state["last_run_ended"],
        "last_run_outcome": state["last_run_outcome"],
        "last_run_error": state["last_run_error"],
    }


def _status_sources(obj: Context, store: Any) -> list[dict[str, Any]]:
    """One row per source the config names or the store holds, with what needs a look."""
    config = obj.config
    states: dict[str, list[dict[str, Any]]] = {}
    for state in store.status():
        states.setdefault(state["source"], []).append(state)
    names = sorted(set(config.sources) | set(states) | set(store.source_names()))
    rows = []
    for name in names:
        streams = states.get(name, [])
        runs = store.runs(name, limit=1)
        run = runs[0] if runs else None
        lock = store.lock_holder(name)
        configured = config.sources.get(name)
        note: list[str] = []
        outcome = run["outcome"] if run else "never"
        if lock is not None:
            outcome = "running"
            note.append(f"running since {_local(lock['acquired_at'])} ({lock['holder']})")
        elif run is None:
            note.append(f"never synced: run `crosswalk sync {name}`")
        elif outcome == "running":
            outcome = "interrupted"
            note.append("its last run ended without saying so; the next sync resumes")
        if run and run["error"] and outcome not in ("ok", "running"):
            note.append(str(run["error"]))
        troubled = [s for s in streams if s["access"] not in (None, "ok")]
        for access in sorted({str(s["access"]) for s in troubled}):
            which = [s["stream"] for s in troubled if s["access"] == access]
            note.append(f"{access}: {', '.join(which)}")
        gaps = [(s["stream"], _gap(s)) for s in streams if _gap(s)]
        if gaps:
            note.append(
                "below the platform's count: "
                + ", ".join(f"{stream} -{gap}" for stream, gap in gaps)
            )
        quarantined = sum(s["quarantined"] for s in streams)
        if quarantined:
            note.append(f"{quarantined} quarantined (`crosswalk quarantine {name}`)")
        if configured is None:
            note.append("no longer in the config")
        elif not configured.enabled:
            note.append("disabled in the config")
        rows.append(
            {
                "source": name,
                "platform": configured.platform if configured else None,
                "outcome": outcome,
                "records": sum(s["records"] for s in streams),
                "quarantined": quarantined,
                "streams": len(streams),
                "gaps": dict(gaps),
                "last_run": (run["ended_at"] or run["started_at"]) if run else None,
                "last_run_started": run["started_at"] if run else None,
                "last_run_ended": run["ended_at"] if run else None,
                "reason": run["error"] if run else None,
                "running": lock is not None,
                "holder": lock["holder"] if lock else None,
                "note": "; ".join(note),
            }
        )
    return rows


# -- runs, quarantine ------------------------------------------------------------------------------


def _run_row(run: dict[str, Any]) -> dict[str, Any]:
    counts = run.get("counts") or {}
    started, ended = run["started_at"], run["ended_at"]
    return {
        "id": run["id"],
        "source": run["source"],
        "started": started,
        "ended": ended,
        "seconds": round((ended - started).total_seconds(), 1) if started and ended else None,
        "outcome": run["outcome"],
        "full": run["full"],
        "dry_run": run["dry_run"],
        "streams": len(counts),
        "read": sum(int(c.get("read") or 0) for c in counts.values()),
        "inserted": sum(int(c.get("inserted") or 0) for c in counts.values()),
        "updated": sum(int(c.get("updated") or 0) for c in counts.values()),
        "quarantined": sum(int(c.get("quarantined") or 0) for c in counts.values()),
        "reason": run["error"],
        "holder": run["holder"],
    }


def _retry_advice(item: dict[str, Any]) -> str:
    return (
        "fix the cause (the record on the platform, or the mapping), then "
        f"`crosswalk sync {item['source']} --stream {item['stream']}` retries it if it changed, "
        f"`crosswalk sync {item['source']} --stream {item['stream']} --full` if it did not; "
        "a record stored cleanly leaves the quarantine"
    )


def _is_store_error(exc: BaseException) -> bool:
    return type(exc).__module__.split(".")[0] == "sqlalchemy"


@contextlib.contextmanager
def _open_output(path: str | None) -> Iterator[Any]:
    """stdout, or ``path`` written whole or not at all (a failed command leaves no file)."""
    if path is None:
        yield sys.stdout
        return
    target = Path(path)
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


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
