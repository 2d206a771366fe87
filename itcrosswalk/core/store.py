"""The store: the common model's records, cursors, runs, quarantine, links and locks.

SQLAlchemy Core on SQLite (the default) or PostgreSQL. Entity tables are generated from the
pydantic models, so a field added to the model is a column here. Each sync page is written in
one transaction together with its stream's cursor.
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
import os
import re
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from .errors import ConfigError, LockHeld, StoreError
from .model import ENTITIES, Record
from .secrets import redact

SCHEMA_VERSION = 2
"""The last ``schema_version`` before migrations (2: stores that added missing columns in
place when they opened). A store still writes it; Alembic's revision (:mod:`.migrations`) is
the schema's version since."""

TABLE_NAMES: dict[str, str] = {
    "ticket": "tickets",
    "sla_record": "sla_records",
    "work_item": "work_items",
    "demand": "demands",
    "device": "devices",
    "device_compliance": "device_compliance",
    "installed_app": "installed_apps",
    "person": "people",
    "plan_line": "plan_lines",
    "assignment": "assignments",
    "assignment_period": "assignment_periods",
    "capacity": "capacities",
    "knowledge_article": "knowledge_articles",
    "knowledge_use": "knowledge_uses",
    "knowledge_feedback": "knowledge_feedback",
    "knowledge_link": "knowledge_links",
    "choice": "choices",
    "asset": "assets",
}


class UTCDateTime(sa.types.TypeDecorator):
    """Stores UTC and always returns aware UTC datetimes, on SQLite as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _column_type(annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _column_type(inner[0])
    if origin in (list, dict) or annotation in (list, dict):
        return sa.JSON()
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return sa.String(32)
        if issubclass(annotation, bool):
            return sa.Boolean()
        if issubclass(annotation, int):
            return sa.BigInteger()
        if issubclass(annotation, float):
            return sa.Float()
        if issubclass(annotation, datetime):
            return UTCDateTime()
        if issubclass(annotation, date):
            return sa.Date()
    return sa.Text()


def _nullable(annotation: Any) -> bool:
    """A column may be NULL exactly where the model's field admits None."""
    origin = typing.get_origin(annotation)
    return origin in (typing.Union, types.UnionType) and type(None) in typing.get_args(annotation)


metadata = sa.MetaData()

ENTITY_TABLES: dict[str, sa.Table] = {}
for _entity, _model in ENTITIES.items():
    _columns = []
    for _name, _field in _model.model_fields.items():
        _columns.append(
            sa.Column(
                _name,
                _column_type(_field.annotation),
                primary_key=_name in ("source", "source_id"),
                nullable=_nullable(_field.annotation),
            )
        )
    _columns += [
        sa.Column("stream", sa.String(128), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False, default=False),
        sa.Column("deleted_at", UTCDateTime()),
        sa.Column("sweep", sa.String(64)),
        sa.Column("synced_at", UTCDateTime()),
        sa.Column("run_id", sa.Integer()),
        # The raw record's version (a change counter or a content hash): "unchanged" is
        # decided by it, never by the update time alone (two edits can share one second).
        sa.Column("content_hash", sa.String(128)),
    ]
    _table = sa.Table(TABLE_NAMES[_entity], metadata, *_columns)
    sa.Index(f"ix_{_table.name}_source_stream", _table.c.source, _table.c.stream)
    sa.Index(f"ix_{_table.name}_updated_at", _table.c.updated_at)
    ENTITY_TABLES[_entity] = _table
sa.Index("ix_devices_serial_key", ENTITY_TABLES["device"].c.serial_key)
sa.Index("ix_people_upn", ENTITY_TABLES["person"].c.upn)
sa.Index(
    "ix_assignment_periods_assignment",
    ENTITY_TABLES["assignment_period"].c.source,
    ENTITY_TABLES["assignment_period"].c.assignment_id,
)
sa.Index("ix_assets_serial_key", ENTITY_TABLES["asset"].c.serial_key)
sa.Index("ix_knowledge_articles_number", ENTITY_TABLES["knowledge_article"].c.number)
# Problems on a CI or in a category (problem.repeat_incidents looks them up per incident).
sa.Index(
    "ix_tickets_kind_device",
    ENTITY_TABLES["ticket"].c.kind,
    ENTITY_TABLES["ticket"].c.device_name,
)
sa.Index(
    "ix_tickets_kind_category",
    ENTITY_TABLES["ticket"].c.kind,
    ENTITY_TABLES["ticket"].c.category,
)
# A ticket's SLA records (service.p1_within_sla and service.open_sla_breached look them up
# per ticket: without it, each lookup reads every SLA record of the source).
sa.Index(
    "ix_sla_records_ticket",
    ENTITY_TABLES["sla_record"].c.source,
    ENTITY_TABLES["sla_record"].c.ticket_id,
)
# The metrics pack's census of tickets (live records by kind and platform, which carry a state),
# read from the index alone instead of a walk of the table; the opened time's span (the months,
# the business calendar an SLA clock runs on).
sa.Index(
    "ix_tickets_census",
    *[
        ENTITY_TABLES["ticket"].c[name]
        for name in ("kind", "platform", "source", "state", "deleted")
    ],
)
sa.Index("ix_tickets_opened_at", ENTITY_TABLES["ticket"].c.opened_at)

schema_version = sa.Table(
    "schema_version", metadata, sa.Column("version", sa.Integer, primary_key=True)
)

stream_state = sa.Table(
    "stream_state",
    metadata,
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("stream", sa.String(128), primary_key=True),
    sa.Column("entity", sa.String(64)),
    sa.Column("watermark", UTCDateTime()),
    sa.Column("watermark_key", sa.String(255)),
    sa.Column("resume_token", sa.JSON()),
    sa.Column("window_since", UTCDateTime()),
    sa.Column("window_until", UTCDateTime()),
    sa.Column("sweep", sa.String(64)),
    sa.Column("last_full_at", UTCDateTime()),
    sa.Column("remote_total", sa.BigInteger()),
    sa.Column("remote_total_at", UTCDateTime()),
    sa.Column("window_total", sa.BigInteger()),
    sa.Column("access", sa.String(32)),
    sa.Column("message", sa.Text()),
    sa.Column("updated_at", UTCDateTime()),
    sa.Column("change_token", sa.Text()),
)

sync_runs = sa.Table(
    "sync_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(128), nullable=False, index=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("ended_at", UTCDateTime()),
    sa.Column("outcome", sa.String(32), nullable=False),
    sa.Column("full", sa.Boolean(), nullable=False, default=False),
    sa.Column("dry_run", sa.Boolean(), nullable=False, default=False),
    sa.Column("counts", sa.JSON()),
    sa.Column("error", sa.Text()),
    sa.Column("manifest", sa.JSON()),
    sa.Column("holder", sa.String(255)),
)

quarantine = sa.Table(
    "quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("stream", sa.String(128), nullable=False),
    sa.Column("source_id", sa.String(255)),
    sa.Column("error", sa.Text(), nullable=False),
    sa.Column("payload", sa.JSON()),
    sa.Column("at", UTCDateTime(), nullable=False),
    sa.Column("resolved", sa.Boolean(), nullable=False, default=False),
    # A record without an id is known by its payload: one row per distinct bad payload.
    sa.Column("payload_hash", sa.String(80)),
    sa.Index("ix_quarantine_key", "source", "stream", "source_id"),
)

links_table = sa.Table(
    "links",
    metadata,
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("entity", sa.String(64), primary_key=True),
    sa.Column("source_id", sa.String(255), primary_key=True),
    sa.Column("relation", sa.String(64), primary_key=True),
    sa.Column("target_entity", sa.String(64), primary_key=True),
    sa.Column("target_ref", sa.String(255), primary_key=True),
    sa.Column("updated_at", UTCDateTime()),
)

locks = sa.Table(
    "locks",
    metadata,
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("holder", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("acquired_at", UTCDateTime(), nullable=False),
    # When the holder's process started: a PID reused by another process after a kill has
    # another start time, so the lock is known stale although the PID is alive.
    sa.Column("pid_started", sa.String(64)),
)

# Metric history: one row per snapshot (a scheduled job's run, or `metrics --record`), one per
# metric, breakdown key and compliance figure in it, so a report can draw a trend.
snapshot_runs = sa.Table(
    "snapshot_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("taken_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("origin", sa.String(255), nullable=False),
    sa.Column("compliance_run_id", sa.Integer),
    sa.Column("sources", sa.JSON()),
)

metric_snapshots = sa.Table(
    "metric_snapshots",
    metadata,
    sa.Column("snapshot_id", sa.Integer, primary_key=True),
    sa.Column("metric", sa.String(128), primary_key=True),
    sa.Column("dimension", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("unit", sa.String(32), nullable=False),
    sa.Column("value", sa.Float()),
    sa.Column("n", sa.Integer),
    sa.Column("unsupported", sa.Text()),
    sa.Index("ix_metric_snapshots_metric", "metric", "dimension"),
)


@dataclass
class StreamCursor:
    """Where a stream stands: its watermark, and an in-progress read's window and resume token."""

    watermark: datetime | None = None
    watermark_key: str | None = None
    resume_token: Any = None
    window_since: datetime | None = None
    window_until: datetime | None = None
    sweep: str | None = None
    last_full_at: datetime | None = None
    remote_total: int | None = None
    """The platform's own count of the stream's rows, from the last full read."""
    remote_total_at: datetime | None = None
    """When that count was taken (the full read's ceiling)."""
    window_total: int | None = None
    """The platform's count of the rows in the last incremental window."""
    access: str | None = None
    message: str | None = None
    change_token: str | None = None
    """The platform's change token (a delta link) the last completed read left."""


@dataclass
class QuarantineItem:
    """A record that failed mapping: its id (if it has one), the error, and the raw payload."""

    source_id: str | None
    error: str
    payload: Any


@dataclass
class WriteResult:
    inserted: int = 0
    updated: int = 0
    quarantined: int = 0


def _now() -> datetime:
    return datetime.now(UTC)


def _json_safe(value: Any) -> Any:
    """Payloads and manifests as JSON: datetimes become ISO strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def one_line(text: str, limit: int = 300) -> str:
    """The first line of ``text``, whitespace collapsed, cut at ``limit`` characters."""
    first = " ".join((text or "").strip().splitlines()[:1][0].split()) if text.strip() else ""
    return first if len(first) <= limit else first[: limit - 1] + "…"


_F = typing.TypeVar("_F", bound=Callable[..., Any])


def _store_errors(method: _F) -> _F:
    """A database error leaves the store as one line naming the store (without its password)
    and the driver's cause: SQLAlchemy's own text carries the statement and its parameters,
    that is, record data, and can run to kilobytes."""

    @functools.wraps(method)
    def wrapper(self: Store, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(store_failure(self.url, exc)) from None

    return typing.cast(_F, wrapper)


KNOWN_STORES = "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
"""The store URLs itcrosswalk ships for (SQLite and PostgreSQL through psycopg)."""


def url_problem(drivername: str, exc: BaseException) -> str:
    """One line for a store URL SQLAlchemy cannot use: the key, the dialect, the known ones."""
    if isinstance(exc, sa.exc.NoSuchModuleError):
        what = f"unknown database dialect {drivername!r}"
    else:
        what = f"unusable database URL for {drivername!r} ({one_line(str(exc), 200)})"
    return f"store.url: {what}; known: sqlite, postgresql+psycopg (use {KNOWN_STORES})"


def store_failure(url: str, exc: BaseException) -> str:
    """One line for a store that failed: which store (no password), the cause, what to do."""
    if isinstance(exc, sa.exc.NoSuchModuleError | sa.exc.ArgumentError):
        try:
            drivername = make_url(url).drivername
        except Exception:
            drivername = url.split("://")[0]
        return url_problem(drivername, exc)
    try:
        parsed = make_url(url)
        shown = parsed.render_as_string(hide_password=True)
        folder = (
            Path(parsed.database).parent
            if parsed.get_backend_name() == "sqlite" and parsed.database
            else None
        )
    except Exception:  # the URL itself may be what is wrong; say what we can
        shown, folder = "(unreadable URL)", None
    cause = _cause(exc) if isinstance(exc, sa.exc.SQLAlchemyError) else one_line(str(exc), 200)
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        # Not the store's reach or rights but what was written: nothing the admin can mend.
        advice = "this is a bug: run with --debug and report it"
    elif folder is None:
        advice = "check that the database server is up and that store.url is right"
    elif "readonly" in cause or "read-only" in cause:
        advice = f"the store file or its folder {folder} is read-only for this account"
    else:
        advice = f"check that {folder} exists and that this account may write there"
    return f"the store {shown} failed: {cause}; {advice}"


def _cause(exc: sa.exc.SQLAlchemyError) -> str:
    orig = getattr(exc, "orig", None)
    if orig is not None:
        return f"{type(orig).__name__}: {one_line(str(orig), 200)}"
    # Without a driver error, SQLAlchemy's message still starts with the cause; the SQL
    # follows on its own lines, which one_line drops.
    return f"{type(exc).__name__}: {one_line(str(exc), 200)}"


# What no store can hold as text: UTF-16 surrogates that lost their pair (UTF-8 cannot encode
# them; SQLite's driver and psycopg both refuse) and NUL (PostgreSQL's text refuses it). JSON
# carries both ("\ud83d", "\u0000"), so a platform can send them in any field.
_UNSTORABLE = re.compile("[\ud800-\udfff\x00]")
REPLACEMENT = "\ufffd"
SANITIZED_KEY = "sanitized_fields"
"""The ``extra`` key listing the fields whose unstorable characters were replaced."""


def storable(value: Any) -> tuple[Any, bool]:
    """``value`` with every unstorable character in its text (keys included) replaced by
    U+FFFD, and whether anything was replaced."""
    if isinstance(value, str):
        if _UNSTORABLE.search(value) is None:
            return value, False
        return _UNSTORABLE.sub(REPLACEMENT, value), True
    if isinstance(value, dict):
        changed = False
        out: dict[Any, Any] = {}
        for key, item in value.items():
            key2, key_changed = storable(key)
            item2, item_changed = storable(item)
            out[key2] = item2
            changed = changed or key_changed or item_changed
        return (out, True) if changed else (value, False)
    if isinstance(value, list | tuple):
        items = [storable(item) for item in value]
        if any(changed for _item, changed in items):
            return [item for item, _changed in items], True
        return value, False
    return value, False


def _storable_row(row: dict[str, Any]) -> dict[str, Any]:
    """A record's row with unstorable text replaced, the fields it touched named in ``extra``
    (the record is kept, and says it was altered, rather than blocking its stream)."""
    touched: list[str] = []
    for name, value in list(row.items()):
        clean, changed = storable(value)
        if changed:
            row[name] = clean
            touched.append(name)
    if touched and "extra" in row:
        extra = dict(row.get("extra") or {})
        extra[SANITIZED_KEY] = sorted(set(extra.get(SANITIZED_KEY) or []) | set(touched))
        row["extra"] = extra
    return row


def _payload_hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


# In JSON as ``json.dumps`` writes it (ASCII, the rest escaped), an unstorable character is a
# ``\u0000`` or ``\udXXX`` escape; a real astral character (a surrogate pair) matches too,
# which only sends its row the exact way.
_UNSTORABLE_ESCAPE = re.compile(r"\\u(?:0000|d[89a-f])")


def _json_text() -> Callable[[Any], str]:
    """``json.dumps`` with its default settings (the text SQLAlchemy's JSON type writes), its
    C encoder made once: ``json.dumps`` makes one per call, and builds a closure besides,
    which costs more than the encoding of a small mapping. No circular check: a cycle ends in
    RecursionError rather than ValueError (a record's fields and a finding's dimensions hold
    none)."""
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - a Python without the C accelerator
        return json.dumps
    base = json.JSONEncoder()
    encode = make(
        None,  # markers: no circular check
        base.default,
        json.encoder.encode_basestring_ascii,
        None,  # indent
        base.key_separator,
        base.item_separator,
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )
    return lambda value: "".join(encode(value, 0))


json_text = _json_text()


def _json_value(value: Any) -> str:
    """A JSON column's text, as :func:`json_text` writes it. A list of plain text (the ids of
    the devices an app is on: hundreds of them) is joined in C, where the encoder would take
    each string apart; anything else, or text with a character JSON escapes, is encoded."""
    if type(value) is list and value:
        try:
            body = "".join(value)
        except TypeError:  # not all text
            return json_text(value)
        # What json.dumps escapes (json.encoder.ESCAPE_ASCII): anything but printable
        # ASCII, and the quote and the backslash; each test a C loop over the text.
        if body.isascii() and body.isprintable() and '"' not in body and "\\" not in body:
            return '["' + '", "'.join(value) + '"]'
    return json_text(value)


class _Upsert:
    """A table's upsert run at the driver (one prepared statement, ``executemany``), its values
    converted here as the column types would (SQLAlchemy's per-parameter processing costs more
    than the rest of a sync). Rows are written exactly as the SQLAlchemy statement writes them;
    a row with unstorable text is cleaned by :func:`_storable_row` first, and a page whose
    values this cannot convert (a value JSON cannot hold) goes through SQLAlchemy instead."""

    def __init__(self, engine: sa.Engine, statement: Any, table: sa.Table) -> None:
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self.sqlite = dialect.name == "sqlite"
        positions = getattr(compiled, "positiontup", None)
        self.names = list(positions) if positions else list(compiled.binds)
        self.named = not positions
        self._pick = operator.itemgetter(*self.names)
        # The bind names are the column names (no column of ours is named like a keyword).
        self.json: list[int] = []
        self.datetimes: list[int] = []
        self.dates: list[int] = []
        self.texts: list[int] = []
        for index, name in enumerate(self.names):
            kind = table.c[name].type
            if isinstance(kind, sa.JSON):
                self.json.append(index)
            elif isinstance(kind, UTCDateTime):
                self.datetimes.append(index)
            elif isinstance(kind, sa.Date):
                self.dates.append(index)
            elif isinstance(kind, sa.String):
                self.texts.append(index)
        # Per moment column, the last moment converted and what it became: a row's moments are
        # mostly its own, but the page's write time is one object on every row.
        self._last: list[tuple[Any, Any]] = [(None, None)] * len(self.datetimes)

    def values(self, row: dict[str, Any]) -> tuple[list[Any], bool]:
        """The row's parameters, and whether their text may hold an unstorable character."""
        try:
            values = list(self._pick(row))
        except KeyError:  # a row without some column: NULL there, as SQLAlchemy binds it
            values = [row.get(name) for name in self.names]
        for i in self.json:
            values[i] = _json_value(values[i])
        sqlite = self.sqlite
        last = self._last
        for j, i in enumerate(self.datetimes):
            moment = values[i]
            if moment is not None:
                seen = last[j]
                if seen[0] is moment:  # the page's write time: one object on every row
                    values[i] = seen[1]
                    continue
                given, zone = moment, moment.tzinfo
                if zone is not UTC:
                    moment = moment.replace(tzinfo=UTC) if zone is None else moment.astimezone(UTC)
                # SQLite: the text SQLAlchemy's DateTime stores, the naive UTC time (the
                # "+00:00" of an aware UTC time's isoformat cut off).
                values[i] = moment.isoformat(" ", "microseconds")[:26] if sqlite else moment
                last[j] = (given, values[i])  # one store: another thread sees a whole pair
        if sqlite:
            for i in self.dates:
                if values[i] is not None:
                    values[i] = values[i].isoformat()
        for i in self.texts:
            text = values[i]
            if text is not None and type(text) is not str:
                values[i] = text.value if isinstance(text, Enum) else text
        texts = "".join([v for v in values if type(v) is str])
        if texts.isascii():  # most rows: no surrogate can be there, and NUL is one memchr
            suspect = "\x00" in texts
        else:
            suspect = _UNSTORABLE.search(texts) is not None
        if not suspect and "\\u" in texts:
            suspect = _UNSTORABLE_ESCAPE.search(texts) is not None
        return values, suspect

    def run(self, conn: Any, rows: Sequence[dict[str, Any]], batch: int = 1000) -> None:
        """Write ``rows`` (dicts by column name), cleaning the text of those that need it."""
        params: list[Any] = []
        for row in rows:
            try:
                values, suspect = self.values(row)
                if suspect:
                    values, _suspect = self.values(_storable_row(row))
            except (TypeError, ValueError, RecursionError) as exc:  # as SQLAlchemy's fails
                raise sa.exc.StatementError(
                    f"{type(exc).__name__}: {exc}", self.sql, None, exc
                ) from None
            params.append(
                dict(zip(self.names, values, strict=True)) if self.named else tuple(values)
            )
        for start in range(0, len(params), batch):
            conn.exec_driver_sql(self.sql, params[start : start + batch])


@dataclass(frozen=True)
class _PageStatements:
    """The statements a page write runs on an entity's table, as driver SQL made once per
    dialect. A page's ids are one parameter (a JSON array SQLite's ``json_each`` reads, a
    PostgreSQL ``text[]``), so the statement is the same for every page: nothing is compiled
    per page, and the database keeps it prepared."""

    existing: str
    unquarantine: str
    unlink: str
    versions: str
    sqlite: bool

    def ids(self, ids: Sequence[str]) -> Any:
        return json.dumps(list(ids)) if self.sqlite else list(ids)


@functools.cache
def _page_statements(entity: str, dialect: str) -> _PageStatements:
    table = ENTITY_TABLES[entity].name
    sqlite = dialect == "sqlite"
    mark = "?" if sqlite else "%s"
    among = f"IN (SELECT value FROM json_each({mark}))" if sqlite else f"= ANY({mark}::text[])"
    live = "deleted = 0" if sqlite else "deleted IS false"
    return _PageStatements(
        existing=f"SELECT source_id FROM {table} WHERE source = {mark} AND source_id {among}",
        unquarantine=(
            f"DELETE FROM {quarantine.name} WHERE source = {mark} AND stream = {mark} "
            f"AND source_id {among}"
        ),
        unlink=(
            f"DELETE FROM {links_table.name} WHERE source = {mark} AND entity = {mark} "
            f"AND source_id {among}"
        ),
        versions=(
            f"SELECT source_id, content_hash FROM {table} WHERE source = {mark} "
            f"AND source_id {among} AND {live}"
        ),
        sqlite=sqlite,
    )


def process_started(pid: int) -> str | None:
    """When process ``pid`` started, as the kernel counts it (Linux: clock ticks since boot,
    field 22 of ``/proc/PID/stat``); None where it cannot be told (no such process, no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields_after = stat.rsplit(")", 1)[-1].split()
    return fields_after[19] if len(fields_after) > 19 else None


def _lock_is_stale(lock: dict[str, Any]) -> bool:
    """A lock of this host whose process is gone, or whose PID another process now has."""
    pid = int(lock["pid"])
    if not _pid_alive(pid):
        return True
    recorded = lock.get("pid_started")
    now = process_started(pid)
    return recorded is not None and now is not None and now != recorded


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """The common store. ``Store("sqlite:///crosswalk.db")`` or a PostgreSQL URL."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except Exception:
            raise ConfigError(
                f"store.url: not a database URL ({url.split('://')[0]}://...); use {KNOWN_STORES}"
            ) from None
        if parsed.drivername in ("postgresql", "postgres"):
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url = parsed.render_as_string(hide_password=True)
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"timeout": 30}
        try:
            self.engine = sa.create_engine(parsed, **kwargs)
        except (sa.exc.NoSuchModuleError, sa.exc.ArgumentError) as exc:
            # A typo in the URL is the admin's to mend, not a bug: name the key and the way out.
            raise ConfigError(url_problem(parsed.drivername, exc)) from None
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:":
                Path(database).parent.mkdir(parents=True, exist_ok=True)
        if self.engine.dialect.name == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self.dialect = self.engine.dialect.name
        self._upserts: dict[Any, _Upsert] = {}
        self._analyzed: set[str] = set()  # tables given statistics once (PostgreSQL)
        try:
            self._create_schema()
        except BaseException:
            self.engine.dispose()  # a refused store leaves no connection open
            raise

    @_store_errors
    def _create_schema(self) -> None:
        """Create a new store, migrate an older one, refuse a newer one (never a raw "no such
        column" at the first write), under a database-wide lock so syncs that open a new store
        at the same moment neither race on ``CREATE TABLE`` nor see half a schema."""
        from .migrations import prepare

        prepare(self.engine, self.url)

    def close(self) -> None:
        self.engine.dispose()

    def table(self, entity: str) -> sa.Table:
        return ENTITY_TABLES[entity]

    def _insert(self, table: sa.Table) -> Any:
        from sqlalchemy.dialects import postgresql, sqlite

        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    def _upsert(self, entity: str, *, keep_sweep: bool) -> _Upsert:
        """The driver-level upsert of an entity's table (built once per store): every column
        but the key is updated, ``sweep`` kept as stored when ``keep_sweep``."""
        key = (entity, keep_sweep)
        upsert = self._upserts.get(key)
        if upsert is None:
            table = ENTITY_TABLES[entity]
            statement = self._insert(table)
            names = [c.name for c in table.columns if c.name not in ("source", "source_id")]
            if keep_sweep:
                names.remove("sweep")
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.source, table.c.source_id],
                set_={name: statement.excluded[name] for name in names},
            )
            upsert = self._upserts[key] = _Upsert(self.engine, statement, table)
        return upsert

    def _link_insert(self) -> _Upsert:
        upsert = self._upserts.get("links")
        if upsert is None:
            statement = self._insert(links_table).on_conflict_do_nothing()
            upsert = self._upserts["links"] = _Upsert(self.engine, statement, links_table)
        return upsert

    # -- records -------------------------------------------------------------------------------

    @_store_errors
    def write_page(
        self,
        *,
        source: str,
        stream: str,
        entity: str,
        records: Sequence[Record],
        quarantined: Sequence[QuarantineItem] = (),
        links: Sequence[tuple[str, str, str, str, str, str]] = (),
        cursor: StreamCursor | None = None,
        run_id: int | None = None,
        sweep: str | None = None,
        versions: typing.Mapping[str, str] | None = None,
    ) -> WriteResult:
        """Upsert a page of records, its quarantine, links and cursor in one transaction.

        ``versions`` maps a record's ``source_id`` to the version of the raw record it came
        from (see :meth:`known_versions`)."""
        table = ENTITY_TABLES[entity]
        now = _now()
        rows: dict[str, dict[str, Any]] = {}
        versions = versions or {}
        for record in records:
            # The fields as the model holds them (what model_dump copies, without the copy).
            row = dict(record.__dict__)
            row.update(stream=stream, deleted=False, deleted_at=None, synced_at=now, run_id=run_id)
            row["sweep"] = sweep
            row["content_hash"] = versions.get(record.source_id)
            # Unstorable text is cleaned as the rows are written (_Upsert.run), where it is
            # found at the cost of one search per row.
            key = row["source_id"]
            if not (key.isascii() and "\x00" not in key):
                key = storable(key)[0]
            rows[key] = row  # a key repeated within a page: the last one wins
        result = WriteResult(quarantined=len(quarantined))
        with self.engine.begin() as conn:
            if rows:
                statements = _page_statements(entity, self.dialect)
                ids = statements.ids(list(rows))
                existing = {
                    row[0] for row in conn.exec_driver_sql(statements.existing, (source, ids))
                }
                result.inserted = len(rows) - len(existing)
                result.updated = len(existing)
                self._upsert(entity, keep_sweep=sweep is None).run(conn, list(rows.values()))
                conn.exec_driver_sql(statements.unquarantine, (source, stream, ids))
                conn.exec_driver_sql(statements.unlink, (source, entity, ids))
            for item in quarantined:
                # The payload must be storable too, or the quarantine itself blocks the stream.
                source_id = storable(item.source_id)[0]
                payload = storable(_json_safe(item.payload))[0]
                digest = _payload_hash(payload)
                same = (
                    quarantine.c.source_id == source_id
                    if source_id is not None
                    else sa.and_(
                        quarantine.c.source_id.is_(None), quarantine.c.payload_hash == digest
                    )
                )
                conn.execute(
                    quarantine.delete().where(
                        quarantine.c.source == source, quarantine.c.stream == stream, same
                    )
                )
                conn.execute(
                    quarantine.insert().values(
                        run_id=run_id,
                        source=source,
                        stream=stream,
                        source_id=source_id,
                        error=storable(redact(item.error))[0],
                        payload=payload,
                        payload_hash=digest,
                        at=now,
                        resolved=False,
                    )
                )
            if sweep is not None and quarantined:
                # A record quarantined during a sweep is still on the platform: its last good
                # version stays live (the quarantine says why it is stale), never tombstoned.
                held = [storable(i.source_id)[0] for i in quarantined if i.source_id is not None]
                for start in range(0, len(held), 500):
                    conn.execute(
                        table.update()
                        .where(
                            table.c.source == source,
                            table.c.stream == stream,
                            table.c.source_id.in_(held[start : start + 500]),
                        )
                        .values(sweep=sweep)
                    )
            if links:
                unique = {tuple(storable(part)[0] for part in link): None for link in links}
                self._link_insert().run(
                    conn,
                    [
                        dict(
                            zip(
                                (
                                    "source",
                                    "entity",
                                    "source_id",
                                    "relation",
                                    "target_entity",
                                    "target_ref",
                                ),
                                link,
                                strict=True,
                            ),
                            updated_at=now,
                        )
                        for link in unique
                    ],
                )
            if cursor is not None:
                self._save_cursor(conn, source, stream, entity, cursor)
        if self.dialect == "postgresql" and table.name not in self._analyzed:
            self._plan_for([table.name, links_table.name, quarantine.name])
        return result

    def _plan_for(self, tables: list[str]) -> None:
        """Give PostgreSQL statistics for the tables a sync writes, once they hold a page.

        A table never analyzed looks empty to the planner, which then matches a page's ids
        (``= ANY(array)``) by filtering every row of the source instead of through the key:
        each page costs more than the one before, and 100,000 incidents with their links took
        54 s instead of 17. Autovacuum analyzes only after a minute or more; one ANALYZE of
        what a first page wrote is enough, as the planner scales its statistics by the
        table's size from then on. Done once per table and store, and only where there are no
        statistics yet."""
        with self.engine.begin() as conn:
            for name in tables:
                if name in self._analyzed:
                    continue
                self._analyzed.add(name)
                never = conn.exec_driver_sql(
                    "SELECT reltuples <= 0 FROM pg_class WHERE oid = to_regclass(%s)", (name,)
                ).scalar()
                if never:
                    conn.exec_driver_sql(f'ANALYZE "{name}"')

    @_store_errors
    def known_versions(self, entity: str, source: str, ids: Sequence[str]) -> dict[str, str | None]:
        """``source_id -> content_hash`` (the version stored with the record) of the live (not
        tombstoned) records among ``ids``."""
        if not ids:
            return {}
        statements = _page_statements(entity, self.dialect)
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql(statements.versions, (source, statements.ids(ids)))
            return {source_id: version for source_id, version in rows}

    def count_sweep(self, *, source: str, stream: str, entity: str, sweep: str) -> int:
        """How many live records of the stream the sweep ``sweep`` has seen so far."""
        table = ENTITY_TABLES[entity]
        query = (
            sa.select(sa.func.count())
            .select_from(table)
            .where(
                table.c.source == source,
                table.c.stream == stream,
                table.c.sweep == sweep,
                table.c.deleted.is_(False),
            )
        )
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    @_store_errors
    def tombstone(self, *, source: str, stream: str, entity: str, sweep: str) -> int:
        """Mark deleted every live record of the stream that the sweep ``sweep`` did not see."""
        table = ENTITY_TABLES[entity]
        with self.engine.begin() as conn:
            result = conn.execute(
                table.update()
                .where(
                    table.c.source == source,
                    table.c.stream == stream,
                    table.c.deleted.is_(False),
                    sa.or_(table.c.sweep.is_(None), table.c.sweep != sweep),
                )
                .values(deleted=True, deleted_at=_now())
            )
            return int(result.rowcount or 0)

    def tombstone_absent(
        self,
        *,
        source: str,
        stream: str,
        entity: str,
        present: set[str],
        key: Callable[[str], str] = lambda source_id: source_id,
    ) -> int:
        """Mark deleted every live record of the stream whose ``key(source_id)`` is not in
        ``present`` (what an id-only read of the platform found)."""
        table = ENTITY_TABLES[entity]
        with self.engine.begin() as conn:
            live = conn.execute(
                sa.select(table.c.source_id).where(
                    table.c.source == source,
                    table.c.stream == stream,
                    table.c.deleted.is_(False),
                )
            ).scalars()
            gone = [sid for sid in live if key(sid) not in present]
            for start in range(0, len(gone), 500):
                conn.execute(
                    table.update()
                    .where(
                        table.c.source == source,
                        table.c.stream == stream,
                        table.c.source_id.in_(gone[start : start + 500]),
                    )
                    .values(deleted=True, deleted_at=_now())
                )
        return len(gone)

    @_store_errors
    def tombstone_ids(self, *, source: str, stream: str, entity: str, ids: Sequence[str]) -> int:
        """Mark deleted the live records of the stream with these ids (deletions the platform
        reported itself, such as Dataverse ``$deletedEntity`` rows)."""
        table = ENTITY_TABLES[entity]
        gone = 0
        with self.engine.begin() as conn:
            for start in range(0, len(ids), 500):
                gone += conn.execute(
                    table.update()
                    .where(
                        table.c.source == source,
                        table.c.stream == stream,
                        table.c.deleted.is_(False),
                        table.c.source_id.in_(list(ids[start : start + 500])),
                    )
                    .values(deleted=True, deleted_at=_now())
                ).rowcount
        return gone

    def count(
        self,
        entity: str,
        *,
        source: str | None = None,
        stream: str | None = None,
        include_deleted: bool = False,
    ) -> int:
        table = ENTITY_TABLES[entity]
        query = sa.select(sa.func.count()).select_from(table)
        if source is not None:
            query = query.where(table.c.source == source)
        if stream is not None:
            query = query.where(table.c.stream == stream)
        if not include_deleted:
            query = query.where(table.c.deleted.is_(False))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def export(
        self,
        entity: str,
        *,
        source: str | None = None,
        include_deleted: bool = False,
        batch: int = 1000,
    ) -> Iterator[dict[str, Any]]:
        """Records as dicts keyed by the model's field names (+ ``deleted``), streamed."""
        table = ENTITY_TABLES[entity]
        names = list(ENTITIES[entity].model_fields) + ["deleted"]
        query = sa.select(*[table.c[n] for n in names]).order_by(table.c.source, table.c.source_id)
        if source is not None:
            query = query.where(table.c.source == source)
        if not include_deleted:
            query = query.where(table.c.deleted.is_(False))
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch).execute(query)
            try:
                for row in result:
                    yield dict(row._mapping)
            finally:
                result.close()  # a reader that stops early must not leave a server-side cursor open

    # -- cursors -------------------------------------------------------------------------------

    def _save_cursor(
        self, conn: Any, source: str, stream: str, entity: str, cursor: StreamCursor
    ) -> None:
        values = {name: storable(value)[0] for name, value in asdict(cursor).items()}
        values["resume_token"] = _json_safe(values["resume_token"])
        # Messages come from exceptions, whatever produced them: no secret is stored.
        values["message"] = redact(values["message"]) if values["message"] else values["message"]
        values.update(entity=entity, updated_at=_now())
        statement = self._insert(stream_state).values(source=source, stream=stream, **values)
        conn.execute(
            statement.on_conflict_do_update(index_elements=["source", "stream"], set_=values)
        )

    @_store_errors
    def save_cursor(self, source: str, stream: str, entity: str, cursor: StreamCursor) -> None:
        with self.engine.begin() as conn:
            self._save_cursor(conn, source, stream, entity, cursor)

    def get_cursor(self, source: str, stream: str) -> StreamCursor | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(stream_state).where(
                    stream_state.c.source == source, stream_state.c.stream == stream
                )
            ).first()
        if row is None:
            return None
        mapping = row._mapping
        return StreamCursor(**{f.name: mapping[f.name] for f in fields(StreamCursor)})

    # -- runs ----------------------------------------------------------------------------------

    @_store_errors
    def start_run(
        self, *, source: str, full: bool, dry_run: bool, holder: str, manifest: dict[str, Any]
    ) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                sync_runs.insert().values(
                    source=source,
                    started_at=_now(),
                    outcome="running",
                    full=full,
                    dry_run=dry_run,
                    holder=holder,
                    manifest=_json_safe(manifest),
                    counts={},
                )
            )
            key = result.inserted_primary_key
            assert key is not None
            return int(key[0])

    @_store_errors
    def finish_run(
        self,
        run_id: int,
        *,
        outcome: str,
        counts: dict[str, Any],
        error: str | None,
        manifest: dict[str, Any],
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sync_runs.update()
                .where(sync_runs.c.id == run_id)
                .values(
                    ended_at=_now(),
                    outcome=outcome,
                    counts=storable(_json_safe(counts))[0],
                    error=storable(redact(error) if error else error)[0],
                    manifest=storable(_json_safe(manifest))[0],
                )
            )

    def interrupted_runs(
        self,
        source: str,
        reason: str = "killed: its process ended without recording the run (its lock was stale)",
    ) -> None:
        """Mark the source's runs still ``running`` as interrupted, with the reason."""
        with self.engine.begin() as conn:
            conn.execute(
                sync_runs.update()
                .where(sync_runs.c.source == source, sync_runs.c.outcome == "running")
                .values(outcome="interrupted", ended_at=_now(), error=reason)
            )

    def runs(self, source: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
        query = sa.select(sync_runs).order_by(sync_runs.c.id.desc()).limit(limit)
        if source is not None:
            query = query.where(sync_runs.c.source == source)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    # -- locks ---------------------------------------------------------------------------------

    def acquire_lock(
        self, source: str, holder: str, *, host: str, pid: int, started: str | None = None
    ) -> None:
        """Take the source's lock, or raise ``LockHeld`` naming who has it.

        A lock left by a killed sync on this host is taken over, and that sync's run marked
        interrupted: its process is gone, or its PID now belongs to another process (a start
        time other than the one the lock recorded). ``started`` is the holder's process start
        time (:func:`process_started` of ``pid`` by default).
        """
        if started is None:
            started = process_started(pid)
        for _attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        locks.insert().values(
                            source=source,
                            holder=holder,
                            host=host,
                            pid=pid,
                            acquired_at=_now(),
                            pid_started=started,
                        )
                    )
                return
            except sa.exc.IntegrityError:
                current = self.lock_holder(source)
                if current is None:
                    continue
                if current["host"] == host and _lock_is_stale(current):
                    with self.engine.begin() as conn:
                        conn.execute(
                            locks.delete().where(
                                locks.c.source == source,
                                locks.c.holder == current["holder"],
                                locks.c.pid == current["pid"],
                            )
                        )
                    self.interrupted_runs(source)
                    continue
                since = current["acquired_at"]
                raise LockHeld(
                    f"source {source} is being synced by {current['holder']} since {since:%Y-%m-%d %H:%M:%S} UTC; "
                    f"wait for it to finish, or remove a stale lock with `crosswalk sync --break-lock {source}`"
                ) from None
        raise LockHeld(f"source {source}: could not take the lock; try again")

    def release_lock(self, source: str, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(locks.delete().where(locks.c.source == source, locks.c.holder == holder))

    def break_lock(self, source: str) -> bool:
        with self.engine.begin() as conn:
            removed = conn.execute(locks.delete().where(locks.c.source == source)).rowcount
        if removed:
            self.interrupted_runs(source, "its lock was removed with --break-lock")
        return bool(removed)

    def source_names(self) -> list[str]:
        """Every source the store has cursors or runs of."""
        with self.engine.connect() as conn:
            names = set(conn.execute(sa.select(stream_state.c.source).distinct()).scalars())
            names |= set(conn.execute(sa.select(sync_runs.c.source).distinct()).scalars())
        return sorted(names)

    def lock_holder(self, source: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(locks).where(locks.c.source == source)).first()
        return dict(row._mapping) if row else None

    # -- reading back --------------------------------------------------------------------------

    def quarantine_rows(
        self, source: str | None = None, stream: str | None = None
    ) -> list[dict[str, Any]]:
        query = (
            sa.select(quarantine).where(quarantine.c.resolved.is_(False)).order_by(quarantine.c.id)
        )
        if source is not None:
            query = query.where(quarantine.c.source == source)
        if stream is not None:
            query = query.where(quarantine.c.stream == stream)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def links_for(self, source: str, entity: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(links_table).where(links_table.c.source == source)
        if entity is not None:
            query = query.where(links_table.c.entity == entity)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    @staticmethod
    def _dangling(conn: Any) -> dict[tuple[str, str], int]:
        return {
            (row.source, row.stream): int(row.n)
            for row in conn.execute(_dangling_query("work_item"))
        }

    def status(self) -> list[dict[str, Any]]:
        """One row per source and stream: watermark, counts, access, and the source's last run."""
        rows: list[dict[str, Any]] = []
        with self.engine.connect() as conn:
            states = conn.execute(
                sa.select(stream_state).order_by(stream_state.c.source, stream_state.c.stream)
            ).all()
            quarantined = {
                (r.source, r.stream): r.n
                for r in conn.execute(
                    sa.select(quarantine.c.source, quarantine.c.stream, sa.func.count().label("n"))
                    .where(quarantine.c.resolved.is_(False))
                    .group_by(quarantine.c.source, quarantine.c.stream)
                )
            }
            counts: dict[tuple[str, str], tuple[int, int]] = {}
            for table in ENTITY_TABLES.values():
                query = sa.select(
                    table.c.source,
                    table.c.stream,
                    sa.func.sum(sa.case((table.c.deleted.is_(False), 1), else_=0)).label("live"),
                    sa.func.sum(sa.case((table.c.deleted.is_(True), 1), else_=0)).label("dead"),
                ).group_by(table.c.source, table.c.stream)
                for r in conn.execute(query):
                    counts[(r.source, r.stream)] = (int(r.live or 0), int(r.dead or 0))
            dangling = self._dangling(conn)
            last_runs: dict[str, Any] = {}
            latest = (
                sa.select(sync_runs.c.source, sa.func.max(sync_runs.c.id).label("id"))
                .group_by(sync_runs.c.source)
                .subquery()
            )
            for last in conn.execute(
                sa.select(sync_runs).join(latest, sync_runs.c.id == latest.c.id)
            ):
                last_runs[last.source] = last
        for state in states:
            live, dead = counts.get((state.source, state.stream), (0, 0))
            run = last_runs.get(state.source)
            rows.append(
                {
                    "source": state.source,
                    "stream": state.stream,
                    "entity": state.entity,
                    "watermark": state.watermark,
                    "records": live,
                    "deleted": dead,
                    "quarantined": quarantined.get((state.source, state.stream), 0),
                    "dangling": dangling.get((state.source, state.stream), 0),
                    "remote_total": state.remote_total,
                    "remote_total_at": state.remote_total_at,
                    "window_total": state.window_total,
                    "access": state.access,
                    "message": state.message,
                    "last_full_at": state.last_full_at,
                    "in_progress": state.window_until is not None,
                    "last_run_started": run.started_at if run else None,
                    "last_run_ended": run.ended_at if run else None,
                    "last_run_outcome": run.outcome if run else None,
                    "last_run_error": run.error if run else None,
                }
            )
        return rows


def _dangling_query(entity: str) -> Any:
    """Records of ``entity`` whose parent is not a live record of their source, or that the
    adapter flagged (a ``dangling_parent`` link: the parent is recycled, purged, unreadable)."""
    table = ENTITY_TABLES[entity]
    target = ENTITY_TABLES["work_item"].alias("target")
    missing = ~sa.exists().where(
        target.c.source == links_table.c.source,
        target.c.source_id == links_table.c.target_ref,
        target.c.deleted.is_(False),
    )
    joined = links_table.join(
        table,
        sa.and_(
            links_table.c.source == table.c.source,
            links_table.c.source_id == table.c.source_id,
            links_table.c.entity == entity,
        ),
    )
    return (
        sa.select(
            table.c.source,
            table.c.stream,
            sa.func.count(sa.distinct(table.c.source_id)).label("n"),
        )
        .select_from(joined)
        .where(
            table.c.deleted.is_(False),
            links_table.c.target_entity == "work_item",
            sa.or_(
                links_table.c.relation == "dangling_parent",
                sa.and_(links_table.c.relation == "parent", missing),
            ),
        )
        .group_by(table.c.source, table.c.stream)
    )


def threads_apart(engine: sa.Engine) -> bool:
    """Whether threads of ours each get a connection of their own to the same database: not on
    an in-memory SQLite database, which has one connection per thread that no other sees, or
    one for all (which two threads would share mid-query), whatever pool SQLAlchemy gives it."""
    if isinstance(engine.pool, sa.pool.SingletonThreadPool | sa.pool.StaticPool):
        return False
    url = engine.url
    return not (
        url.get_backend_name() == "sqlite"
        and (url.database in (None, "", ":memory:") or url.query.get("mode") == "memory")
    )


def without_jit(conn: sa.Connection) -> None:
    """No JIT compilation for this transaction's queries, on PostgreSQL 11 and later.

    PostgreSQL compiles a query's expressions to machine code when its estimated cost is high;
    a business calendar's CASE over hundreds of days took LLVM 17 s to compile, for a pass that
    runs in under a second without it, and the pack's shared pass over a million tickets
    runs faster without it than the compilation alone takes. A control's subquery per row
    crosses the thresholds too (compiling took 1.3 s of endpoint.asset_seen's 1.4 at 20,000
    devices). The metrics and the controls both read with it."""
    if conn.dialect.name == "postgresql" and (conn.dialect.server_version_info or (0,)) >= (11,):
        conn.exec_driver_sql("SET LOCAL jit = off")


# Pages the write-ahead log grows to before SQLite copies them into the database (its default:
# 1,000, 4 MB). A sync's page writes touch the same index pages commit after commit; each
# checkpoint copies every page changed since the last one, so checkpointing a tenth as often
# copies the hot pages a tenth as often: SQLite's own CPU in a sync's writes fell by a third
# at 30,000 incidents and by 8 % at 100,000 (bench/sync_bench.py's floor script, run with
# this pragma and without), and fewer checkpoints are fewer fsyncs. The log holds up to 40 MB
# on disk meanwhile (the index of it in memory: 80 KB); SQLite removes it when the last
# connection closes.
WAL_AUTOCHECKPOINT = 10_000


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT}")
    cursor.close()
