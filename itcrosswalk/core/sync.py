"""The sync engine: reads a source's streams into the store without losing or doubling a record.

What it guarantees (DESIGN.md, "Sync semantics"):

- incremental by a per-stream watermark, re-reading an overlap window; upserts are idempotent;
- a ceiling taken when the sync starts: the watermark never passes data that may be in flight;
- each page is committed together with the stream's cursor, so a killed sync resumes from the
  last committed page with the same window (and the same full-sweep token);
- records outside the window are re-checked on the client (platforms ignore some filters);
- a record that fails mapping goes to quarantine with its payload, and the read goes on;
- ``full`` re-reads everything and tombstones what the platform no longer has;
- ``dry_run`` fetches and maps, and writes nothing;
- one sync per source at a time, and every run is recorded with its manifest.
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets as _secrets
import signal
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .adapter import Adapter, Stream, Window, paginate, takes_options
from .config import Config, SourceConfig, config_digest, platform_options
from .contract import Registry
from .derive import derive_departments
from .errors import (
    AccessDenied,
    AuthError,
    ConfigError,
    ConnectError,
    CrosswalkError,
    NotFound,
)
from .model import Record
from .secrets import redact, resolve_secret
from .store import QuarantineItem, Store, StreamCursor, one_line

log = logging.getLogger("itcrosswalk.sync")

ProgressCallback = Callable[[str, int, int | None], None]


class Terminated(KeyboardInterrupt):
    """SIGTERM during a sync, raised where the sync stands so its run is recorded and its lock
    released, as for Ctrl-C (a KeyboardInterrupt, so callers treat both as an interruption)."""


def _raise_terminated(signum: int, _frame: Any) -> None:
    raise Terminated(f"terminated by signal {signal.Signals(signum).name}")


def unexpected(exc: BaseException) -> str:
    """One line naming an unexpected exception, its secrets redacted."""
    return f"unexpected {type(exc).__name__}: {redact(one_line(str(exc)))}"


@dataclass
class StreamResult:
    """What one stream's read did."""

    stream: str
    entity: str
    status: str = "ok"  # ok, no_access, missing, incomplete, error, interrupted, skipped
    full: bool = False
    read: int = 0
    inserted: int = 0
    updated: int = 0
    quarantined: int = 0
    outside_window: int = 0
    unchanged: int = 0
    tombstoned: int = 0
    pages: int = 0
    requests: int = 0
    sweep_requests: int = 0
    """Of ``requests``, those of the id sweep that finds deletions (``Stream.id_sweep``)."""
    remote_total: int | None = None
    synced_total: int | None = None
    message: str = ""
    watermark: str | None = None


@dataclass
class SyncResult:
    """What one source's sync did; ``exit_code`` follows the CLI's convention."""

    source: str
    run_id: int | None = None
    dry_run: bool = False
    outcome: str = "ok"
    error: str | None = None
    streams: list[StreamResult] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.outcome == "failed" or any(s.status == "error" for s in self.streams):
            return 1
        if any(s.quarantined for s in self.streams) or any(
            s.status in ("no_access", "missing", "incomplete") for s in self.streams
        ):
            return 3
        return 0

    def counts(self) -> dict[str, Any]:
        return {s.stream: asdict(s) for s in self.streams}


def secret_resolver(source_name: str) -> Callable[[str], str]:
    """A resolver that names the key of the secret it could not resolve."""

    def resolve(ref: str, key: str = "") -> str:
        return resolve_secret(
            ref, key=f"sources.{source_name}.{key}" if key else f"sources.{source_name}"
        )

    return resolve


def build_adapter(config: Config, source_name: str, pm: Registry) -> Adapter:
    """The adapter for one configured source, its platform-specific keys validated."""
    try:
        source = config.sources[source_name]
    except KeyError:
        known = ", ".join(sorted(config.sources)) or "none"
        raise ConfigError(
            f"no source named {source_name!r} in the config (sources: {known})"
        ) from None
    platforms = pm.platforms()
    info = platforms.get(source.platform)
    if info is None:
        errors = dict(pm.errors)
        hint = f"; plugin errors: {errors}" if errors else ""
        raise ConfigError(
            f"sources.{source_name}.platform: no plugin provides platform {source.platform!r} "
            f"(installed: {', '.join(sorted(platforms)) or 'none'}){hint}"
        )
    if info.config_model is None:
        return info.adapter(source, secret_resolver(source_name))
    options = platform_options(config, source, info.config_model)
    if takes_options(info.adapter):  # validated once: the adapter gets these, not the keys
        return info.adapter(source, secret_resolver(source_name), options=options)
    return info.adapter(source, secret_resolver(source_name))


def _holder() -> tuple[str, str, int]:
    host = socket.gethostname()
    pid = os.getpid()
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{host} pid {pid}", host, pid


def _cursor_json(cursor: StreamCursor | None) -> dict[str, Any] | None:
    if cursor is None:
        return None
    out: dict[str, Any] = {}
    for key, value in asdict(cursor).items():
        out[key] = value.isoformat() if isinstance(value, datetime) else value
    return out


class SyncEngine:
    """Reads configured sources into a store.

    Args:
        config: the validated configuration.
        store: where records, cursors, runs and quarantine go.
        pm: the plugins' registry (a fresh one per test), which knows the platforms.
        progress: called as ``progress(stream, records_so_far, platform_total)``.
        clock: the time source for the ceiling; injectable for tests.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        *,
        pm: Registry,
        progress: ProgressCallback | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.config = config
        self.store = store
        self.pm = pm
        self.progress = progress
        self.clock = clock

    def sync(
        self,
        source_name: str,
        *,
        full: bool = False,
        dry_run: bool = False,
        streams: list[str] | None = None,
    ) -> SyncResult:
        """Sync one source. Raises only for what stops the whole source (config, lock)."""
        source = self.config.sources.get(source_name)
        if source is None:
            known = ", ".join(sorted(self.config.sources)) or "none"
            raise ConfigError(f"no source named {source_name!r} in the config (sources: {known})")
        adapter = build_adapter(self.config, source_name, self.pm)
        result = SyncResult(source=source_name, dry_run=dry_run)
        holder, host, pid = _holder()
        manifest: dict[str, Any] = {
            "config_digest": config_digest(self.config),
            "platform": source.platform,
            "full": full,
            "streams": {},
        }
        run_id = None
        previous_term = None
        if threading.current_thread() is threading.main_thread():
            # Without a handler SIGTERM ends the process on the spot: no run recorded, the
            # lock left behind until the next sync finds it stale.
            previous_term = signal.signal(signal.SIGTERM, _raise_terminated)
        current: StreamResult | None = None
        try:
            if not dry_run:
                self.store.acquire_lock(source_name, holder, host=host, pid=pid)
        except BaseException:
            if previous_term is not None:
                signal.signal(signal.SIGTERM, previous_term)
            adapter.close()
            raise
        try:
            if not dry_run:
                run_id = self.store.start_run(
                    source=source_name, full=full, dry_run=dry_run, holder=holder, manifest=manifest
                )
                result.run_id = run_id
            selected = self._select(adapter, source, streams)
            for stream in selected:
                before = self.store.get_cursor(source_name, stream.name)
                requests_before = adapter.requests_made
                # Made here so that a read failing mid-way still reports what it committed.
                current = outcome = StreamResult(stream.name, stream.entity)
                try:
                    self._sync_stream(
                        source_name, source, stream, before, full, dry_run, run_id, outcome
                    )
                    if stream.id_sweep and not outcome.full and not dry_run:
                        swept_from = adapter.requests_made
                        outcome.tombstoned += self._sweep_ids(source_name, stream, outcome)
                        outcome.sweep_requests = adapter.requests_made - swept_from
                except (AuthError, ConnectError, ConfigError) as exc:
                    outcome.status, outcome.message = "error", str(exc)
                    raise
                except AccessDenied as exc:
                    outcome.status, outcome.message = "no_access", str(exc)
                    self._mark(source_name, stream, before, "no_access", str(exc), dry_run)
                except NotFound as exc:
                    outcome.status, outcome.message = "missing", str(exc)
                    self._mark(source_name, stream, before, "missing", str(exc), dry_run)
                except CrosswalkError as exc:
                    outcome.status, outcome.message = "error", str(exc)
                    self._mark(source_name, stream, before, "error", str(exc), dry_run)
                current = None
                outcome.requests = adapter.requests_made - requests_before
                result.streams.append(outcome)
                manifest["streams"][stream.name] = {
                    "before": _cursor_json(before),
                    "after": _cursor_json(self.store.get_cursor(source_name, stream.name)),
                    "status": outcome.status,
                    "read": outcome.read,
                    "requests": outcome.requests,
                }
            if not dry_run:
                derive_departments(self.store, source_name)
            if any(s.status == "error" for s in result.streams):
                result.outcome = "partial"
            elif any(s.status in ("no_access", "missing", "incomplete") for s in result.streams):
                result.outcome = "partial"
        except CrosswalkError as exc:
            result.outcome = "failed"
            result.error = str(exc)
            raise
        except KeyboardInterrupt as exc:
            result.outcome = "interrupted"
            result.error = str(exc) if isinstance(exc, Terminated) else "interrupted (SIGINT)"
            raise
        except Exception as exc:
            result.outcome = "failed"
            result.error = unexpected(exc)
            raise
        finally:
            # A second signal must not cut the bookkeeping short: held until the run is recorded
            # and the lock released (then delivered).
            blocked = _block_signals()
            try:
                if current is not None:
                    # The stream the failure or the signal stopped, with what it committed.
                    if current.status == "ok":
                        current.status = "error" if result.outcome == "failed" else "interrupted"
                        current.message = current.message or result.error or ""
                    result.streams.append(current)
                self._finish(source_name, holder, adapter, result, manifest, run_id, dry_run)
            finally:
                if previous_term is not None:
                    signal.signal(signal.SIGTERM, previous_term)
                _unblock_signals(blocked)
        return result

    def _finish(
        self,
        source_name: str,
        holder: str,
        adapter: Adapter,
        result: SyncResult,
        manifest: dict[str, Any],
        run_id: int | None,
        dry_run: bool,
    ) -> None:
        """Record the run and release the lock, whatever ended the sync; each step is tried
        even when one before it fails (a lock must not outlive a failed bookkeeping write)."""
        try:
            manifest["requests"] = adapter.requests_made
            manifest["telemetry"] = adapter.telemetry()
        finally:
            try:
                adapter.close()
            finally:
                if not dry_run:
                    try:
                        if run_id is not None:
                            errors = "; ".join(
                                f"{s.stream}: {s.message}"
                                for s in result.streams
                                if s.status in ("error", "incomplete")
                            )
                            self.store.finish_run(
                                run_id,
                                outcome=result.outcome,
                                counts=result.counts(),
                                error=result.error or errors or None,
                                manifest=manifest,
                            )
                    finally:
                        self.store.release_lock(source_name, holder)

    def _select(
        self, adapter: Adapter, source: SourceConfig, names: list[str] | None
    ) -> list[Stream]:
        available = adapter.streams()
        wanted = names or source.streams
        if not wanted:
            return available
        by_name = {s.name: s for s in available}
        unknown = [n for n in wanted if n not in by_name]
        if unknown:
            raise ConfigError(
                f"sources.{source.name}.streams: unknown stream(s) {', '.join(unknown)} "
                f"(the {source.platform} plugin offers: {', '.join(by_name)})"
            )
        return [by_name[n] for n in wanted]

    def _mark(
        self,
        source: str,
        stream: Stream,
        before: StreamCursor | None,
        access: str,
        message: str,
        dry_run: bool,
    ) -> None:
        if dry_run:
            return
        # The stored cursor, not the one from before the read: pages committed before the
        # failure keep their resume token, so the next run goes on from them.
        cursor = self.store.get_cursor(source, stream.name) or before or StreamCursor()
        cursor.access = access
        cursor.message = message
        self.store.save_cursor(source, stream.name, stream.entity, cursor)

    def _window(
        self,
        source: SourceConfig,
        stream: Stream,
        cursor: StreamCursor | None,
        full: bool,
        now: datetime,
    ) -> tuple[Window, str | None, Any, bool]:
        """The window to read, the sweep token, the resume token, and whether this resumes."""
        if cursor is not None and cursor.window_until is not None:
            resumable_full = cursor.sweep is not None
            if not full or resumable_full:
                window = Window(
                    since=cursor.window_since,
                    until=cursor.window_until,
                    full=resumable_full,
                    change_token=None if resumable_full else cursor.change_token,
                )
                return window, cursor.sweep, cursor.resume_token, True
        sweep_due = False
        if source.full_sweep_every_days and cursor is not None:
            last = cursor.last_full_at
            sweep_due = last is None or now - last >= timedelta(days=source.full_sweep_every_days)
        is_full = (
            full
            or not stream.incremental
            or cursor is None
            or cursor.watermark is None
            or sweep_due
        )
        since = None
        if not is_full and cursor is not None and cursor.watermark is not None:
            since = cursor.watermark - timedelta(seconds=source.overlap_seconds)
        sweep = _secrets.token_hex(8) if is_full else None
        change_token = cursor.change_token if cursor is not None and not is_full else None
        return Window(since, now, is_full, change_token), sweep, None, False

    def _sync_stream(
        self,
        source_name: str,
        source: SourceConfig,
        stream: Stream,
        cursor: StreamCursor | None,
        full: bool,
        dry_run: bool,
        run_id: int | None,
        result: StreamResult,
    ) -> StreamResult:
        now = self.clock()
        window, sweep, token, resuming = self._window(source, stream, cursor, full, now)
        result.full = window.full
        watermark = cursor.watermark if cursor else None
        watermark_key = cursor.watermark_key if cursor else None
        if resuming:
            log.info(
                "source %s: resuming %s from its last committed page", source_name, stream.name
            )
        working = StreamCursor(
            watermark=watermark,
            watermark_key=watermark_key,
            resume_token=token,
            window_since=window.since,
            window_until=window.until,
            sweep=sweep,
            last_full_at=cursor.last_full_at if cursor else None,
            # The count of the last full read stays until the next full read ends; an
            # incremental window's own count is kept apart (it counts the window only).
            remote_total=cursor.remote_total if cursor else None,
            remote_total_at=cursor.remote_total_at if cursor else None,
            window_total=cursor.window_total if (cursor and resuming) else None,
            access="ok",
            change_token=cursor.change_token if cursor else None,
        )
        # A read that ends replaces the change token with the one it was given (or none).
        next_change_token: str | None = None
        full_read = window.full
        previous_full_at = working.last_full_at
        # The count this read's first page gave: a resumed read keeps the one it began with.
        read_total: int | None = None
        if resuming and cursor is not None:
            read_total = cursor.remote_total if window.full else cursor.window_total
        if not dry_run:
            self.store.save_cursor(source_name, stream.name, stream.entity, working)
        fresh = token is None
        for page, _used, after in paginate(stream, window, token):
            result.pages += 1
            if page.restart and not full_read:
                # The platform refused the change token: this read is a full one now, and what it
                # does not return by its end is tombstoned.
                full_read = result.full = True
                sweep = working.sweep = _secrets.token_hex(8)
            if page.change_token is not None:
                next_change_token = page.change_token
            if fresh and result.pages == 1 and page.total is not None:
                read_total = page.total
                if window.full:
                    working.remote_total = page.total
                    working.remote_total_at = window.until
                else:
                    working.window_total = page.total
            records: list[Record] = []
            quarantined: list[QuarantineItem] = []
            links: list[tuple[str, str, str, str, str, str]] = []
            known: dict[str, str | None] = {}
            if not full_read and page.records:
                ids = [i for i in (stream.record_id(raw) for raw in page.records) if i]
                known = self.store.known_versions(stream.entity, source_name, ids)
            versions: dict[str, str] = {}
            to_map: list[tuple[dict[str, Any], str | None]] = []
            # The window's bounds as locals: this loop runs once per record.
            since = (
                window.since if not full_read and window.change_token is None else None
            )  # fmt: skip
            until = window.until
            cursor_value, record_id_of, version_of = (
                stream.cursor_value, stream.record_id, stream.version
            )  # fmt: skip
            for raw in page.records:
                try:
                    stamp = cursor_value(raw)
                except (
                    Exception
                ):  # a bad timestamp fails the record's mapping, which quarantines it
                    stamp = None
                if stamp is not None:
                    if since is not None and stamp < since:
                        # The platform ignored the filter; this record is older than the window.
                        result.outside_window += 1
                        continue
                    # Records past the ceiling are kept (they moved during the read), but the
                    # watermark stops at the ceiling: data written just before it may be in
                    # flight.
                    if until is not None and stamp > until:
                        stamp = until
                result.read += 1
                record_id = record_id_of(raw)
                if stamp is not None and (working.watermark is None or stamp > working.watermark):
                    working.watermark = stamp
                    working.watermark_key = record_id
                version = version_of(raw)
                if record_id is not None:
                    if known and known.get(record_id) == version:
                        # Re-read in the overlap window, and the same version as stored (its
                        # change counter or its content, not its update time): nothing to map
                        # or write.
                        result.unchanged += 1
                        continue
                    versions[record_id] = version
                to_map.append((raw, record_id))
            if to_map:
                stream.prepare([raw for raw, _id in to_map])
            map_record, links_of = stream.map, stream.links
            entity = stream.entity
            for raw, record_id in to_map:
                try:
                    record = map_record(raw)
                except Exception as exc:  # any mapping failure quarantines the one record
                    quarantined.append(
                        QuarantineItem(record_id, f"{type(exc).__name__}: {exc}", dict(raw))
                    )
                    continue
                records.append(record)
                for relation, target_entity, target_ref in links_of(record):
                    links.append(
                        (
                            source_name,
                            entity,
                            record.source_id,
                            relation,
                            target_entity,
                            target_ref,
                        )
                    )
            # Tokens a platform binds to one query or expires are not kept: a killed read
            # starts its window again (the upserts make that idempotent).
            working.resume_token = after if getattr(stream.paginator, "resumable", True) else None
            done = after is None
            if done:
                working.window_since = working.window_until = None
                working.resume_token = None
                if full_read:
                    working.last_full_at = window.until
                working.sweep = None
                working.change_token = next_change_token
            if not dry_run:
                written = self.store.write_page(
                    source=source_name,
                    stream=stream.name,
                    entity=stream.entity,
                    records=records,
                    quarantined=quarantined,
                    links=links,
                    cursor=working,
                    run_id=run_id,
                    sweep=sweep,
                    versions={
                        r.source_id: versions[r.source_id]
                        for r in records
                        if r.source_id in versions
                    },
                )
                result.inserted += written.inserted
                result.updated += written.updated
                if page.deleted:
                    result.tombstoned += self.store.tombstone_ids(
                        source=source_name, stream=stream.name, entity=stream.entity,
                        ids=page.deleted,
                    )  # fmt: skip
            result.quarantined += len(quarantined)
            if self.progress:
                self.progress(stream.name, result.read, read_total)
            # The page is written: let it go before the next one is decoded, so a sync holds
            # one decoded page, not two (test_sync.py holds it to that).
            del page, records, quarantined, links, to_map, known, versions
        result.remote_total = read_total
        if full_read and not dry_run and sweep is not None:
            seen = self.store.count_sweep(
                source=source_name, stream=stream.name, entity=stream.entity, sweep=sweep
            ) + self._quarantined_count(source_name, stream.name)
            if read_total is not None and seen < read_total:
                # The platform counts rows this read did not return: a count that lies, a
                # read cut short, rows hidden from the account. Tombstoning now could mark
                # live records deleted, so the records are kept and the gap reported.
                self._refuse_sweep(source_name, stream, result, read_total, seen, previous_full_at)
                result.watermark = working.watermark.isoformat() if working.watermark else None
                return result
            result.tombstoned += self.store.tombstone(
                source=source_name, stream=stream.name, entity=stream.entity, sweep=sweep
            )
        if full_read and not dry_run:
            result.synced_total = self.store.count(
                stream.entity, source=source_name, stream=stream.name
            )
        result.watermark = working.watermark.isoformat() if working.watermark else None
        return result

    def _refuse_sweep(
        self,
        source_name: str,
        stream: Stream,
        result: StreamResult,
        total: int,
        seen: int,
        previous_full_at: datetime | None,
    ) -> None:
        result.status = "incomplete"
        result.synced_total = self.store.count(
            stream.entity, source=source_name, stream=stream.name
        )
        result.message = (
            f"full read not trusted: the platform counts {total} rows but the read returned "
            f"{seen} ({total - seen} missing), so nothing was tombstoned and every stored "
            "record is kept; the count may be wrong, the read cut short, or rows hidden from "
            "this account (ACLs); the next full sweep tries again"
        )
        final = self.store.get_cursor(source_name, stream.name) or StreamCursor()
        final.message = result.message
        final.access = "incomplete"
        # Not a completed sweep: the next scheduled one is still due.
        final.last_full_at = previous_full_at
        self.store.save_cursor(source_name, stream.name, stream.entity, final)
        log.warning("source %s: %s: %s", source_name, stream.name, result.message)

    def _sweep_ids(self, source_name: str, stream: Stream, result: StreamResult) -> int:
        """Tombstone the stream's records whose ids the platform no longer lists; refuse when
        the listing is shorter than the platform's own count (a partial listing is no proof)."""
        listed, total = stream.live_ids()
        ids = set(listed)
        if not ids and self.store.count(stream.entity, source=source_name, stream=stream.name):
            # Every record gone at once is likelier a listing that saw nothing (an ACL change,
            # a filter) than a platform emptied: keep them, and say so.
            self._sweep_refused(
                source_name,
                stream,
                result,
                "the id sweep listed no ids while the store holds records: nothing was "
                "tombstoned; a full sweep (--full) decides",
            )
            return 0
        if total is not None and len(ids) < total:
            self._sweep_refused(
                source_name,
                stream,
                result,
                f"the id sweep listed {len(ids)} of the {total} ids the platform counts; "
                "nothing was tombstoned",
            )
            return 0
        gone = self.store.tombstone_absent(
            source=source_name,
            stream=stream.name,
            entity=stream.entity,
            present=ids,
            key=stream.sweep_key,
        )
        # The listing is the platform's whole count now: status compares the store with it,
        # not with a full read's count from before the deletions it just found.
        cursor = self.store.get_cursor(source_name, stream.name)
        if cursor is not None:
            cursor.remote_total = total if total is not None else len(ids)
            cursor.remote_total_at = self.clock()
            self.store.save_cursor(source_name, stream.name, stream.entity, cursor)
        return gone

    def _sweep_refused(
        self, source_name: str, stream: Stream, result: StreamResult, message: str
    ) -> None:
        """An id sweep that proved nothing: the stream is incomplete, and says why, in the
        run's result and in the stream's state (so status and the controls see it)."""
        result.status, result.message = "incomplete", message
        cursor = self.store.get_cursor(source_name, stream.name) or StreamCursor()
        cursor.access, cursor.message = "incomplete", message
        self.store.save_cursor(source_name, stream.name, stream.entity, cursor)
        log.warning("source %s: %s: %s", source_name, stream.name, message)

    def _quarantined_count(self, source: str, stream: str) -> int:
        return len(self.store.quarantine_rows(source, stream))


_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _block_signals() -> bool:
    if not hasattr(signal, "pthread_sigmask") or (
        threading.current_thread() is not threading.main_thread()
    ):
        return False
    signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    return True


def _unblock_signals(blocked: bool) -> None:
    if blocked:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
