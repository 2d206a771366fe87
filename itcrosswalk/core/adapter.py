"""The contract between the core and a platform adapter.

An adapter is built from one configured source. It declares its streams; the core owns the
loop (paging, cycle detection, validation, quarantine, cursors, progress). A stream says
what it reads, its key and cursor field, its paginator, and how a raw record maps into the
common model; it performs exactly one request per ``fetch`` call.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Protocol, Union, cast

from pydantic import AfterValidator, BaseModel, ConfigDict

from .errors import ConfigError, CrosswalkError, MalformedResponse, PagingLoopError
from .model import Record

if TYPE_CHECKING:
    from .client import HttpClient


@dataclass(frozen=True)
class Window:
    """The slice of a stream one sync reads: ``since`` (closed, may be None for all) up to
    ``until``, the ceiling taken when the sync started."""

    since: datetime | None
    until: datetime | None
    full: bool = False
    change_token: str | None = None
    """The platform's change token the last completed read left (a Dataverse ``@odata.deltaLink``,
    a Graph delta link), for an incremental read; None on a full read or where none is kept."""


@dataclass
class Page:
    """One platform response, as raw records plus what the paginator needs next."""

    records: list[dict[str, Any]]
    total: int | None = None
    """The platform's own count of rows matching this request's query, if it tells."""
    next_hint: Any = None
    """Whatever the paginator needs from the response (a next link, a header)."""
    requested: int | None = None
    """How many rows the request asked for (the page size)."""
    deleted: list[str] = field(default_factory=list)
    """Ids (as :meth:`Stream.record_id` gives them) the platform reports deleted since the change
    token (Dataverse ``$deletedEntity``): they become tombstones."""
    change_token: str | None = None
    """The platform's token for the next incremental read, on the page that ends a read."""
    restart: bool = False
    """The platform refused the change token (expired, invalidated) and this read starts over
    as a full one: what it does not return by its end is tombstoned."""


class Paginator(Protocol):
    """First request, next token from a response, and the token applied to a request.

    Tokens are JSON-serializable: the engine stores the token that follows each committed
    page, so a crash resumes from it. A paginator whose tokens must not outlive the read
    (opaque server tokens that expire or are bound to one query) sets ``resumable = False``:
    the engine then stores none, and a killed read starts its window again.
    """

    def first(self, window: Window) -> Any: ...

    def next(self, token: Any, page: Page) -> Any | None:
        """The token of the page after ``page`` (fetched with ``token``), or None at the end."""
        ...


class Stream:
    """One entity stream of a platform, declared by the adapter.

    Attributes:
        name: the stream's id, the platform's own name (``incident``, ``managedDevices``).
        entity: the common-model entity its records become (``ticket``).
        key: the native field holding the record's id.
        cursor_field: the native update-time field, or None when the stream is read in full.
        fallback_cursor_field: the native creation-time field, for platforms that leave the
            update time empty on records never edited (Jira Align's ``lastUpdatedDate``). It is
            such a record's cursor, and part of the incremental filter: a window matches a
            record when *any* of :meth:`window_fields` is at or after ``since``, so a record
            created between two syncs and never edited is read by the next one.
        incremental: False for streams the platform cannot filter by update time; these are
            read in full every time and tombstone what disappeared.
        id_sweep: True for incremental streams small enough to list by id on every sync:
            after each incremental read the engine asks :meth:`live_ids` and tombstones the
            records the platform no longer has (deletions no update-time filter can see).
        linked: the cross-system links a record carries, as ``(relation, target_entity,
            attribute)``: each attribute the record fills is one link (``("parent",
            "work_item", "parent_id")``); :meth:`links` reads them.
    """

    name: ClassVar[str] = ""
    entity: ClassVar[str] = ""
    key: ClassVar[str] = "id"
    cursor_field: ClassVar[str | None] = None
    fallback_cursor_field: ClassVar[str | None] = None
    incremental: ClassVar[bool] = True
    id_sweep: ClassVar[bool] = False
    linked: ClassVar[tuple[tuple[str, str, str], ...]] = ()

    paginator: Paginator

    def fetch(self, token: Any, window: Window) -> Page:
        """Make exactly one request for the page ``token`` names."""
        raise NotImplementedError

    def transport(self, token: Any, window: Window) -> Any:
        """The first half of :meth:`fetch`: send the request and read the response, decoding
        nothing; :meth:`decode` turns what it returns into the page.

        The paging loop runs this half on its prefetch thread and :meth:`decode` when the
        caller takes the page, so one decoded page (tens of megabytes at a thousand rows) is
        alive at a time rather than two. By default the whole :meth:`fetch` happens here; a
        stream that splits overrides both (and its :meth:`fetch` is ``decode(transport())``).
        """
        return self.fetch(token, window)

    def decode(self, fetched: Any, token: Any, window: Window) -> Page:
        """The second half of :meth:`fetch`: the page from what :meth:`transport` returned.
        A body that does not parse raises :class:`MalformedResponse`, and the paging loop asks
        for the page again."""
        return cast(Page, fetched)

    def prepare(self, raws: list[dict[str, Any]]) -> None:
        """Called with the records of a page about to be mapped (not the unchanged ones), so a
        stream can fetch what enriches them in one request per page rather than one per record."""

    def map(self, raw: Mapping[str, Any]) -> Record:
        """Map one native record into the common model; raise to quarantine it."""
        raise NotImplementedError

    def read_ids(self) -> Iterable[str]:
        """Every id the platform holds for this stream now (the same ids as
        :meth:`record_id`), read as cheaply as it allows (``$select`` of the key only); for
        streams with ``lists_ids``."""
        raise NotImplementedError

    def window_fields(self) -> list[str]:
        """The fields an incremental filter must cover, OR-ed: the update time, and the
        creation time where records can lack an update time (see ``fallback_cursor_field``).
        A stream builds its platform's filter from these (``a ge D or b ge D``)."""
        return [f for f in (self.cursor_field, self.fallback_cursor_field) if f]

    def record_id(self, raw: Mapping[str, Any]) -> str | None:
        """The id a raw record is stored under (:meth:`source_id` of its ``key``), also used to
        quarantine one that fails to map; None when the platform sent none it could read."""
        value = raw.get(self.key)
        if isinstance(value, Mapping):
            value = value.get("value")
        if value in (None, ""):
            return None
        try:
            return self.source_id(value)
        except (TypeError, ValueError):
            return None

    def source_id(self, value: Any) -> str:
        """The stored id of the record whose native id is ``value`` (a platform that prefixes
        its ids, ``epic-1200``, says so here; a value it cannot read raises ValueError)."""
        return str(value)

    def cursor_value(self, raw: Mapping[str, Any]) -> datetime | None:
        """The record's update time, for the watermark and the client-side window check."""
        return None

    def links(self, record: Record) -> list[tuple[str, str, str]]:
        """Cross-system links found on a record: ``(relation, target_entity, target_ref)``;
        by default those ``linked`` declares."""
        out = []
        for relation, target, attribute in self.linked:
            ref = getattr(record, attribute, None)
            if ref:
                out.append((relation, target, str(ref)))
        return out

    def version(self, raw: Mapping[str, Any]) -> str:
        """What tells one version of a record from the next: the platform's change counter
        where it keeps one (a stream overrides this), else a hash of the raw record's content.

        A record re-read with the version stored is "unchanged" and skips mapping; the update
        time alone cannot say so, since two edits can share one second.
        """
        return content_hash(raw)

    def live_ids(self) -> tuple[Iterable[str], int | None]:
        """Every record id (as :meth:`record_id` gives it) the platform holds now, read cheaply
        (ids only), with the platform's own count of them if it tells; for ``id_sweep`` streams."""
        raise NotImplementedError

    def sweep_key(self, source_id: str) -> str:
        """The id :meth:`live_ids` names for a stored record (a record derived from another,
        such as one SLA cycle of a ticket, is live while its ticket is)."""
        return source_id


class _PlainPickler(pickle.Pickler):
    """Pickle bytes of plain data only: the types a JSON decoder makes (and tuples, sets,
    bytes), which the pickler writes itself without asking :meth:`reducer_override`; anything
    else raises, for :func:`content_hash` to fall back to sorted JSON."""

    def reducer_override(self, obj: Any) -> Any:
        raise ValueError(f"not plain data: {type(obj).__name__}")


def content_hash(raw: Mapping[str, Any]) -> str:
    """A hash of a raw record's content: what tells one version of a record from the next
    where the platform keeps no change counter.

    It hashes the record's pickle bytes (protocol 5, in fast mode: no memo, so no
    back-references, and equal content read again gives equal bytes whatever objects it
    shares), at three quarters of the cost of marshal's bytes (which encode each string anew,
    where pickle writes an ASCII string's own bytes) and a quarter of sorted JSON's, and as
    exact: any changed value, key or type (``1``, ``1.0``, ``"1"``, ``True``) changes them.
    The bytes follow the keys in the order the platform sent them: a platform that reorders
    its fields, or an upgrade that changes the hash, makes records look changed once (mapped
    and written again, which is idempotent), never hides a change. A record holding a value
    that is not plain data (a datetime, a Decimal, a str subclass such as an enumeration's
    member) falls back to the hash of its sorted JSON.
    """
    buffer = io.BytesIO()
    pickler = _PlainPickler(buffer, 5)
    pickler.fast = True
    try:
        pickler.dump(raw)
    except (ValueError, TypeError, RecursionError, pickle.PicklingError):
        return sorted_json_hash(raw)
    return "p5:" + hashlib.sha256(buffer.getbuffer()).hexdigest()


def sorted_json_hash(raw: Mapping[str, Any]) -> str:
    """A hash of a raw record's sorted JSON: the same content in any key order, the same hash
    (:func:`content_hash`'s fallback)."""
    text = json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass
class CheckItem:
    """One line of a preflight: what was tested, whether it passed, and what to do if not."""

    name: str
    ok: bool
    detail: str = ""
    estimate_requests: int | None = None
    status: str = ""
    """``ok``, ``no_access``, ``missing``, ``auth``, ``unreachable``, ``config``, ``error``
    (:func:`check_status` names the failures)."""


STOPPING = frozenset({"auth", "unreachable", "config"})
"""Check statuses that end a preflight: every further probe would only meet them again."""


def check_status(exc: BaseException) -> str:
    """A preflight line's status for the error that stopped it, the same on every platform:
    a missing secret or a bad key is ``config`` whichever adapter met it."""
    from . import errors

    for kind, status in (
        (errors.AuthError, "auth"),
        (errors.AccessDenied, "no_access"),
        (errors.NotFound, "missing"),
        (errors.ConnectError, "unreachable"),
        (errors.ConfigError, "config"),
    ):
        if isinstance(exc, kind):
            return status
    return "error"


ProbeResult = Union["CheckItem", str, tuple[str, int | None]]
"""What a probe found when it succeeded: the line's detail, with the request estimate of a first
sync when it knows one, or a whole :class:`CheckItem` (a probe that found a problem itself)."""


@dataclass
class Probe:
    """One line of ``check()``: the stream it speaks for and the one cheap request that tests it.

    ``run`` returns a :data:`ProbeResult` or raises the error tree's exception for what it met;
    :func:`run_checks` turns that into the line's status, the same on every platform.
    """

    name: str
    run: Callable[[], ProbeResult]


def run_checks(
    probes: Iterable[Probe], *, preflight: Callable[[], str | None] | None = None
) -> list[CheckItem]:
    """The preflight every adapter's ``check()`` is: one line per probe, in order.

    ``preflight`` (sign-in, who am I) runs first; the words it returns lead the first line. A
    failure whose status is in :data:`STOPPING` (auth, unreachable, config), in the preflight or
    in a probe, is said once, on the line of the probe it stopped, and ends the check; a
    preflight failure of another kind (a permission every read needs) is said on every line.
    """
    probes = list(probes)
    intro = None
    if preflight is not None:
        try:
            intro = preflight()
        except CrosswalkError as exc:
            status = check_status(exc)
            hit = probes[:1] if status in STOPPING else probes
            return [CheckItem(p.name, False, str(exc), status=status) for p in hit]
    items: list[CheckItem] = []
    for probe in probes:
        try:
            found = probe.run()
        except CrosswalkError as exc:
            status = check_status(exc)
            items.append(CheckItem(probe.name, False, str(exc), status=status))
            if status in STOPPING:
                break
            continue
        if isinstance(found, CheckItem):
            item = found
        elif isinstance(found, tuple):
            item = CheckItem(probe.name, True, found[0], estimate_requests=found[1], status="ok")
        else:
            item = CheckItem(probe.name, True, found, status="ok")
        items.append(item)
    if intro and items:
        items[0].detail = f"{intro}; {items[0].detail}" if items[0].detail else intro
    return items


@dataclass
class WriteResult:
    """What one write-back did (or, in a dry run, would do).

    ``action`` is ``created``, ``exists`` (the correlation id found a record made before:
    nothing was sent) or ``dry_run``; ``requests`` lists every request made or planned as
    ``{"method", "url", "body"}``, so a dry run can print the exact payload.
    """

    action: str
    entity: str
    source_id: str | None = None
    url: str | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)


def described(fields: Mapping[str, Any], notes: list[str]) -> str:
    """The description a writer sends: the fields' own ``description``, and below it the notes
    on the model fields the platform has no place for (written down rather than dropped)."""
    description = str(fields.get("description") or "").strip()
    return "\n\n".join(p for p in (description, "\n".join(notes)) if p)


class Writer(Protocol):
    """Creates one record on the platform from common-model field values.

    ``fields`` uses the common model's names (``name``, ``department``, ``planned_start``, ...)
    plus ``description``; ``correlation_id`` makes the write idempotent (the writer looks for a
    record carrying it before creating one, and stores it on what it creates); ``dry_run``
    sends nothing that changes the platform and returns the requests it would make.
    """

    def __call__(
        self, fields: Mapping[str, Any], *, correlation_id: str, dry_run: bool = False
    ) -> WriteResult: ...


class Resolver(Protocol):
    """Resolves a record a writer created, found by its correlation id, with a note saying why.

    ``action`` in the result is ``resolved``, ``already_resolved`` (nothing sent), ``missing``
    (no record carries the id) or ``dry_run``.
    """

    def __call__(self, correlation_id: str, *, note: str, dry_run: bool = False) -> WriteResult: ...


@dataclass
class Capabilities:
    """What an adapter can read and write; the evaluation reads this."""

    entities: dict[str, list[str]] = field(default_factory=dict)
    """entity -> common-model fields the platform fills."""
    writes: list[str] = field(default_factory=list)
    auth_types: list[str] = field(default_factory=list)
    permissions: list[str] = field(default_factory=list)


def parse_options(source: Any, model: type[BaseModel]) -> BaseModel:
    """A source's platform keys validated by ``model``; a problem is a ConfigError naming them."""
    from pydantic import ValidationError

    from .config import SourceConfig, render_errors

    try:
        return model.model_validate(source.platform_options())
    except ValidationError as exc:
        common = tuple(name for name in SourceConfig.model_fields if name != "name")
        raise ConfigError(
            render_errors(exc, root=model, prefix=("sources", source.name), beside=common)
        ) from None


def takes_options(adapter_class: Any) -> bool:
    """Whether an adapter class accepts its validated options (``options=``) when built."""
    import inspect

    try:
        parameters = inspect.signature(adapter_class).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "options" or p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)


def _time_zone(value: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{value!r} is not an IANA time zone (America/Phoenix)") from None
    return value


TimeZoneName = Annotated[str, AfterValidator(_time_zone)]
"""An options field holding an IANA time zone name (``America/Phoenix``), checked as it is read."""


class PlatformOptions(BaseModel):
    """Base of a platform's options model: the keys of a ``[sources.NAME]`` table beyond the
    common ones, where an unknown key is an error (a typo is named, never ignored)."""

    model_config = ConfigDict(extra="forbid")


class Adapter:
    """Base of every platform adapter. Subclasses set ``platform`` and implement the rest;
    ``class MyAdapter(Adapter, platform="x", options=MyOptions, spec=SPEC)`` sets the three.

    Attributes:
        options_model: the pydantic model of the source's platform keys (the one registered as
            ``config_model``); ``self.options`` is the source's keys validated by it, once: the
            engine validates them with the config file's name in any error and hands them in
            as ``options``; an adapter built without them validates them here.
        spec: the platform's HTTP declaration (:class:`~itcrosswalk.core.client.PlatformSpec`);
            with one, ``self.http`` is the source's :class:`~itcrosswalk.core.client.HttpClient`
            and ``self.base`` its address.
    """

    platform: ClassVar[str] = ""
    options_model: ClassVar[type[BaseModel] | None] = None
    spec: ClassVar[Any] = None
    http: HttpClient | None = None

    def __init_subclass__(
        cls,
        *,
        platform: str | None = None,
        options: type[BaseModel] | None = None,
        spec: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if platform is not None:
            cls.platform = platform
        if options is not None:
            cls.options_model = options
        if spec is not None:
            cls.spec = spec

    def __init__(
        self, source: Any, secrets: Callable[..., str], *, options: BaseModel | None = None
    ) -> None:
        self.source = source
        self.secrets = secrets
        if options is None and self.options_model is not None:
            options = parse_options(source, self.options_model)
        self.options: Any = options
        if self.spec is not None:
            from .client import HttpClient

            self.http = HttpClient(
                source, secrets, self.spec, options=options, hint_values=self.hint_values
            )
            self.base = self.http.base

    def hint_values(self) -> Mapping[str, Any]:
        """More names the spec's credential hints and error messages may use."""
        return {}

    def probes(self) -> list[Probe]:
        """What ``check()`` tests, one probe per stream (see :func:`run_checks`)."""
        raise NotImplementedError

    def preflight(self) -> str | None:
        """What ``check()`` asks before the probes (sign-in, who am I), in words for its first
        line; raises for a failure (see :func:`run_checks`)."""
        return None

    def check(self) -> list[CheckItem]:
        """Reachability, auth and permissions per stream, in plain words: the probes, run by
        :func:`run_checks`, so the same failure has the same status on every platform."""
        return run_checks(self.probes(), preflight=self.preflight)

    def streams(self) -> list[Stream]:
        raise NotImplementedError

    def capabilities(self) -> Capabilities:
        return Capabilities()

    @property
    def writers(self) -> dict[str, Writer]:
        """Write-back operations by what they create: ``work_item:epic``, ``work_item:project``,
        ``demand``, ``ticket:incident``. Each name also appears in ``capabilities().writes``."""
        return {}

    @property
    def resolvers(self) -> dict[str, Resolver]:
        """Resolve operations, keyed as the writers whose records they close (``ticket:incident``)."""
        return {}

    @property
    def http_session(self) -> Any:
        """The session made by :func:`itcrosswalk.core.http.build_session` that the adapter
        sends through, once it has one; its counts and telemetry are the adapter's."""
        return self.http.http_session if self.http is not None else None

    @property
    def requests_made(self) -> int:
        """How many HTTP requests this adapter has sent so far (for manifests and benches)."""
        return int(getattr(getattr(self.http_session, "policy_adapter", None), "sent", 0))

    def telemetry(self) -> dict[str, Any]:
        """What this adapter's requests met so far: ``requests``, ``retries``, ``throttled``,
        ``server_errors``, ``failures``, ``latency_p50_ms``, ``latency_p95_ms`` (those it knows)."""
        from .http import telemetry_of

        return telemetry_of(self.http_session) or {"requests": self.requests_made}

    def close(self) -> None:
        """Release sessions and sockets."""
        if self.http is not None:
            self.http.close()


class Listing(Stream):
    """An ad-hoc paged read (ids, reference data, related rows) driven by the core paging loop:
    the pages ``load(token)`` returns, one request each, under ``paginator``."""

    def __init__(self, name: str, load: Callable[[Any], Page], paginator: Paginator) -> None:
        self.name = name  # type: ignore[misc]
        self.load = load
        self.paginator = paginator

    def fetch(self, token: Any, window: Window) -> Page:
        return self.load(token)


def read_all(
    name: str, load: Callable[[Any], Page], paginator: Paginator
) -> tuple[list[dict[str, Any]], int | None]:
    """Every row of an ad-hoc paged read (see :class:`Listing`), with the platform's count of
    them from the first page if it tells. Paging cycles and runaway reads stop as a stream's do."""
    rows: list[dict[str, Any]] = []
    total: int | None = None
    listing = Listing(name, load, paginator)
    for number, (page, _used, _after) in enumerate(
        paginate(listing, Window(None, None), prefetch=False)
    ):
        if number == 0:
            total = page.total
        rows.extend(page.records)
    return rows, total


def paginate(
    stream: Stream,
    window: Window,
    token: Any = None,
    *,
    max_pages: int = 1_000_000,
    malformed_retries: int = 2,
    prefetch: bool = True,
) -> Iterator[tuple[Page, Any, Any]]:
    """Drive a stream's paginator: yield ``(page, token_used, token_after)``.

    ``token`` resumes from a stored token; None starts afresh. A token seen twice is a
    paging cycle and raises instead of looping; ``max_pages`` caps a runaway read. A body that
    does not parse is asked for again (``malformed_retries`` times) before the read fails.
    With ``prefetch``, the next page is requested on a worker thread while the caller maps
    and writes the current one, so network and platform time overlap with local work; the
    caller still commits pages strictly in order.
    """

    def load(at: Any, first: Future[Any] | None = None) -> Page:
        # A prefetched response is decoded here, on the caller's thread, once the caller is
        # done with the page before; a body that does not parse is asked for again.
        for attempt in range(malformed_retries + 1):
            try:
                if first is not None and attempt == 0:
                    fetched = first.result()
                else:
                    fetched = stream.transport(at, window)
                return stream.decode(fetched, at, window)
            except MalformedResponse:
                if attempt == malformed_retries:
                    raise
            finally:
                fetched = first = None
        raise AssertionError("unreachable")

    seen: set[str] = set()

    def mark(at: Any) -> None:
        marker = repr(at)
        if marker in seen:
            raise PagingLoopError(
                f"stream {stream.name} paged in a cycle (token {marker} came back): "
                "the platform's paging is inconsistent; try again, or report it"
            )
        seen.add(marker)

    if token is None:
        token = stream.paginator.first(window)
    mark(token)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"fetch-{stream.name}") as pool:
        pending: Future[Any] | None = (
            pool.submit(stream.transport, token, window) if prefetch else None
        )
        pages = 0
        while token is not None:
            page = load(token, pending)
            pages += 1
            after = stream.paginator.next(token, page)
            pending = None
            if after is not None:
                mark(after)
                if pages >= max_pages:
                    raise PagingLoopError(
                        f"stream {stream.name} passed the cap of {max_pages} pages"
                    )
                if prefetch:
                    pending = pool.submit(stream.transport, after, window)
            yield page, token, after
            # Not held while the next page decodes: one decoded page at a time, if the caller
            # lets go of it too.
            page = None  # type: ignore[assignment]
            token = after
