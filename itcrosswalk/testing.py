"""The adapter conformance suite every adapter runs, built-in or third-party.

Subclass ``AdapterConformance`` in a test module and provide one fixture,
``conformance``, that yields a ``ConformanceSetup`` pointing at a live platform double
(an emulator on loopback). The suite checks that streams declare keys and cursors, that
every record validates against the common model, that paging terminates, and that a second
sync with saved state asks only for what changed.

Where the plugin registers an emulator, the suite starts it itself (as singer_sdk's
``get_tap_test_class`` gives a tap its tests) and checks, counting requests at the emulator's
WSGI entry rather than through the adapter: more than one page read and every record once;
429s with and without ``Retry-After`` and a 503 ridden out; a malformed body a clear error;
``check()`` with a wrong secret an ``auth`` status; a second sync bounded by what changed; the
secret in no table, store file or output; records edited between two pages of a read neither
lost nor read twice; a record deleted before a full sync tombstoned, and nothing else. Each check is also a plain ``check_*`` function, so
a test can run it against a plugin broken on purpose.
"""

from __future__ import annotations

import base64
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from .core.adapter import Stream
from .core.config import Config, load_config
from .core.errors import ConnectError, CrosswalkError
from .core.model import ENTITIES
from .core.store import Store
from .core.sync import SyncEngine, build_adapter
from .registry import PluginRegistry, make_registry
from .sandbox.faults import Faults
from .sandbox.runner import SANDBOX_USER, _toml
from .sandbox.server import SandboxServer
from .sandbox.world import generate


@dataclass
class ConformanceSetup:
    """A configured source against a platform double, and the store to sync it into."""

    config: Config
    source: str
    store: Store
    pm: PluginRegistry | None = None
    """The registry that knows the platform; by default the built-ins and installed plugins."""
    expected_streams: set[str] | None = None
    """Streams the double serves; others may legitimately be skipped (missing, no access)."""
    setup_requests: int = 0
    """Requests every sync makes before it reads a stream (discovery, a sign-in handshake):
    the platform's fixed cost, allowed on top of what a second sync may ask."""

    def __post_init__(self) -> None:
        if self.pm is None:
            self.pm = make_registry()

    @property
    def registry(self) -> PluginRegistry:
        assert self.pm is not None  # set in __post_init__
        return self.pm


# -- the checks against the plugin's own emulator ---------------------------------------------
#
# Each check is a plain function raising AssertionError with a message naming the fault, so a
# plugin's tests get them as test methods (below) and the suite's own tests can run them against
# plugins broken on purpose.

SECRET = "cw-Conformance-7f3a9Q"
"""The secret the emulator accepts; no store, log or output may ever hold it."""
WRONG_SECRET = "cw-not-the-secret-0000"
PAGE_SIZE = 3
"""Small enough that every stream of the tiny city takes more than one page."""
_WORLD_SEED = 7


@dataclass
class Recorded:
    """One request as the suite's recorder saw it on its way into the emulator."""

    at: float
    method: str
    path: str
    status: str = ""


class _Recorder:
    """Wraps an emulator's WSGI entry: when each request came and what it was answered."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.log: list[Recorded] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        entry = Recorded(time.monotonic(), environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""))
        with self._lock:
            self.log.append(entry)

        def recording_start(status: str, headers: Any, *rest: Any) -> Any:
            entry.status = status
            return start_response(status, headers, *rest)

        return self.app(environ, recording_start)


@dataclass
class EmulatedSource:
    """The plugin's registered emulator on loopback HTTPS, and a source pointing at it."""

    registry: PluginRegistry
    platform: str
    app: Any
    """The emulator; its ``requests`` is the request log the emulators' shared entry keeps."""
    faults: Faults
    recorder: _Recorder
    directory: Path
    secret: str
    source: str
    _write: Callable[..., Config]
    setup_requests: int = 0
    """See :attr:`ConformanceSetup.setup_requests`."""

    def config(self, *, page_size: int | None = PAGE_SIZE, secret: str | None = None) -> Config:
        """A config for a fresh SQLite store in its own folder (``secret`` overrides the one the
        emulator accepts)."""
        return self._write(page_size=page_size, secret=secret)

    def served(self) -> int:
        """Requests the emulator has been sent so far, counted at its WSGI entry (sign-ins
        included), whatever the adapter reports of itself."""
        return len(self.recorder.log)


@contextmanager
def emulated_source(
    registry: PluginRegistry, platform: str, directory: Path, *, setup_requests: int = 0
) -> Iterator[EmulatedSource]:
    """Start ``platform``'s registered emulator serving the tiny city, as ``crosswalk demo``
    does, and yield what the checks need."""
    info = registry.sandboxes()[platform]
    faults = Faults()
    app = info.factory(generate(_WORLD_SEED, "tiny"), faults, users={SANDBOX_USER: SECRET})
    recorder = _Recorder(app)
    server = SandboxServer({platform: recorder})
    url = server.start()[platform]
    ca = server.write_ca(directory / "ca.pem")
    source = f"conformance-{platform.replace('_', '-')}"
    made = 0

    def write(*, page_size: int | None, secret: str | None) -> Config:
        nonlocal made
        made += 1
        folder = directory / f"run-{made}"
        folder.mkdir(parents=True)
        secret_file = folder / "secret"
        secret_file.write_text(secret or SECRET)
        secret_file.chmod(0o600)  # the core refuses a secret file others can read
        keys = (
            info.source(SANDBOX_USER, f"file:{secret_file}")
            if info.source
            else {
                "auth": {"type": "basic", "user": SANDBOX_USER, "password": f"file:{secret_file}"}
            }
        )
        lines = [
            "[store]",
            "url = " + _toml("sqlite:///" + str(folder / "crosswalk.db")),
            "",
            f"[sources.{source}]",
            f"platform = {_toml(platform)}",
            f"url = {_toml(url)}",
            f"ca_bundle = {_toml(str(ca))}",
            "max_retries = 3",
        ]
        if page_size is not None:
            lines.append(f"page_size = {page_size}")
        lines += [f"{key} = {_toml(value)}" for key, value in keys.items()]
        path = folder / "crosswalk.toml"
        path.write_text("\n".join(lines) + "\n")
        return load_config(path)

    try:
        yield EmulatedSource(
            registry,
            platform,
            app,
            faults,
            recorder,
            directory,
            SECRET,
            source,
            write,
            setup_requests,
        )
    finally:
        server.stop()


def _sync(emulated: EmulatedSource, config: Config) -> tuple[Any, dict[str, set[str]]]:
    """Sync into the config's store; the result and the stored ids by entity."""
    store = Store(config.store.url)
    try:
        result = SyncEngine(config, store, pm=emulated.registry).sync(emulated.source)
        ids = {
            entity: {str(row["source_id"]) for row in store.export(entity, source=emulated.source)}
            for entity in ENTITIES
        }
    finally:
        store.close()
    return result, {entity: found for entity, found in ids.items() if found}


def _failed(result: Any) -> list[str]:
    return [f"{s.stream}: {s.status} {s.message}" for s in result.streams if s.status != "ok"]


def check_every_page_read_once(emulated: EmulatedSource) -> dict[str, set[str]]:
    """Small pages and the default page size land the same records, each once, and the
    small-page sync really read more than one page."""
    before = emulated.served()
    small, small_ids = _sync(emulated, emulated.config(page_size=PAGE_SIZE))
    small_requests = emulated.served() - before
    assert not _failed(small), f"a sync with {PAGE_SIZE}-record pages failed: {_failed(small)}"
    whole, whole_ids = _sync(emulated, emulated.config(page_size=None))
    assert not _failed(whole), f"a sync with the default page size failed: {_failed(whole)}"
    assert whole_ids, "the emulator served no records"
    for entity, ids in whole_ids.items():
        missing = ids - small_ids.get(entity, set())
        assert not missing, (
            f"{entity}: {len(missing)} of {len(ids)} records never arrived with "
            f"{PAGE_SIZE}-record pages: paging stopped early (on a short page?)"
        )
    reads = {s.stream: s.read for s in whole.streams}
    for outcome in small.streams:
        assert outcome.read <= reads.get(outcome.stream, outcome.read), (
            f"{outcome.stream}: {outcome.read} records read with {PAGE_SIZE}-record pages, "
            f"{reads[outcome.stream]} with the default size: records arrived more than once"
        )
    assert small_requests > len(small.streams), (
        f"{PAGE_SIZE}-record pages took {small_requests} requests for {len(small.streams)} "
        "streams: no stream read a second page"
    )
    return whole_ids


def check_faults_are_ridden_out(emulated: EmulatedSource) -> None:
    """A 429 with ``Retry-After``, a 429 without it and a 503: the sync completes, nothing lost;
    the retry after a ``Retry-After`` waits as long as it says."""
    _, reference = _sync(emulated, emulated.config())
    faults = emulated.faults
    for name, switch in (
        ("a 429 with Retry-After", lambda: setattr(faults, "throttle_next", 1)),
        (
            "a 429 without Retry-After",
            lambda: (
                setattr(faults, "throttle_next", 1),
                setattr(faults, "omit_retry_after", True),
            ),
        ),
        ("a 503", lambda: setattr(faults, "server_errors_next", 1)),
    ):
        faults.reset()
        faults.retry_after = 1
        start = len(emulated.recorder.log)
        switch()
        result, ids = _sync(emulated, emulated.config())
        faults.reset()
        assert not _failed(result), f"after {name} the sync failed: {_failed(result)}"
        for entity, wanted in reference.items():
            lost = wanted - ids.get(entity, set())
            assert not lost, f"after {name}: {len(lost)} {entity} records lost"
        if name == "a 429 with Retry-After":
            log = emulated.recorder.log[start:]
            throttled = next((i for i, r in enumerate(log) if r.status.startswith("429")), None)
            assert throttled is not None, "the emulator's throttle switch served no 429"
            after = log[throttled + 1 : throttled + 2]
            assert after, "nothing was asked after the 429"
            waited = after[0].at - log[throttled].at
            assert waited >= 0.9, (
                f"the request after a 429 with Retry-After: 1 came {waited:.2f} s later: "
                "Retry-After was skipped"
            )


def check_malformed_body_is_a_clear_error(emulated: EmulatedSource) -> None:
    """Every list answer cut off mid-body: the sync reports a one-line error, it does not crash."""
    emulated.faults.reset()
    emulated.faults.malformed_next = 10_000
    try:
        result, _ = _sync(emulated, emulated.config())
    except CrosswalkError as exc:
        # The source stopped as a whole (e.g. its first discovery call): fine, if it says so.
        message = str(exc)
        assert not isinstance(exc, ConnectError), (
            f"a malformed body was reported as a connection failure: {message}"
        )
        assert message.strip() and "\n" not in message, (
            f"a malformed body gave no clear one-line error: {message!r}"
        )
        return
    except Exception as exc:  # the point of the check: nothing else escapes the engine
        raise AssertionError(
            f"a malformed body crashed the sync: {type(exc).__name__}: {exc}"
        ) from exc
    finally:
        emulated.faults.reset()
    bad = [s for s in result.streams if s.status != "ok"]
    assert bad, "every list answer was malformed, yet every stream says ok"
    for outcome in bad:
        message = outcome.message or ""
        assert message.strip() and "\n" not in message and "Traceback" not in message, (
            f"{outcome.stream}: a malformed body gave no clear one-line error: {message!r}"
        )


def check_wrong_secret_is_an_auth_status(emulated: EmulatedSource) -> None:
    """``check()`` with a secret the platform refuses says ``auth`` for every item, never ok."""
    config = emulated.config(secret=WRONG_SECRET)
    adapter = build_adapter(config, emulated.source, emulated.registry)
    try:
        items = adapter.check()
    finally:
        adapter.close()
    assert items, "check() with a wrong secret returned nothing"
    wrong = [f"{i.name}: {i.status} {i.message}" for i in items if i.ok or i.status != "auth"]
    assert not wrong, f"check() with a wrong secret did not say auth: {wrong}"


def check_second_sync_bounded(emulated: EmulatedSource) -> None:
    """With nothing changed, each incremental stream's second sync costs at most two requests
    beyond its declared id sweep, counted at the emulator (not through the adapter: an adapter
    that counts nothing cannot pass by counting 0). Each stream syncs alone, so the emulator's
    count is that stream's."""
    config = emulated.config()
    adapter = build_adapter(config, emulated.source, emulated.registry)
    try:
        incremental = [s.name for s in adapter.streams() if s.incremental]
    finally:
        adapter.close()
    store = Store(config.store.url)
    try:
        engine = SyncEngine(config, store, pm=emulated.registry)
        for name in incremental:
            before = emulated.served()
            first = engine.sync(emulated.source, streams=[name])
            first_requests = emulated.served() - before
            if _failed(first) or not first.streams or first.streams[0].status != "ok":
                continue  # a stream the double does not serve (skipped, no access)
            before = emulated.served()
            second = engine.sync(emulated.source, streams=[name])
            second_requests = emulated.served() - before
            assert not _failed(second), f"{name}: the second sync failed: {_failed(second)}"
            [outcome] = second.streams
            # One ask for what changed, one sign-in or count the platform may need.
            bound = emulated.setup_requests + 2 + outcome.sweep_requests
            assert second_requests <= bound, (
                f"{name}: a second sync with nothing changed made {second_requests} requests at "
                f"the emulator (the first made {first_requests}; the bound is {bound}): "
                "the watermark was ignored"
            )
            assert outcome.inserted == 0, (
                f"{name}: a second sync with nothing changed inserted {outcome.inserted} records"
            )
    finally:
        store.close()


def _updated(store_url: str, source: str) -> dict[tuple[str, str], Any]:
    """Each stored record's ``updated_at`` (of the entities that have one), by entity and id."""
    store = Store(store_url)
    try:
        return {
            (entity, str(row["source_id"])): row.get("updated_at")
            for entity, model in ENTITIES.items()
            if "updated_at" in model.model_fields
            for row in store.export(entity, source=source)
        }
    finally:
        store.close()


def check_records_changed_between_pages(emulated: EmulatedSource) -> None:
    """Records the platform edits while a multi-page read is under way
    (``faults.mutate_between_pages``): the read loses none and reads none twice, and after the
    next incremental sync the store holds what a fresh read of the platform holds."""
    emulated.faults.reset()
    whole, reference = _sync(emulated, emulated.config(page_size=None))
    assert not _failed(whole), f"a sync with no faults failed: {_failed(whole)}"
    counts = {s.stream: s.read for s in whole.streams}
    config = emulated.config()
    emulated.faults.mutate_between_pages = 2
    try:
        edited, ids = _sync(emulated, config)
    finally:
        emulated.faults.reset()
    for entity, wanted in reference.items():
        lost = wanted - ids.get(entity, set())
        assert not lost, (
            f"{entity}: {len(lost)} of {len(wanted)} records were lost by a read during which "
            f"the platform edited records (e.g. {sorted(lost)[:3]}): the paging skipped them"
        )
    for outcome in edited.streams:
        platform = counts.get(outcome.stream)
        assert platform is None or outcome.read <= platform, (
            f"{outcome.stream}: {outcome.read} records read while records were edited between "
            f"pages, {platform} without edits: records were read twice"
        )
    assert not _failed(edited), f"records edited between pages failed the sync: {_failed(edited)}"
    store = Store(config.store.url)
    try:
        second = SyncEngine(config, store, pm=emulated.registry).sync(emulated.source)
    finally:
        store.close()
    assert not _failed(second), f"the sync after the edits failed: {_failed(second)}"
    fresh = emulated.config(page_size=None)
    _sync(emulated, fresh)
    now, kept = (
        _updated(fresh.store.url, emulated.source),
        _updated(config.store.url, emulated.source),
    )
    stale = sorted(
        f"{e} {i}" for (e, i), at in now.items() if (e, i) in kept and kept[(e, i)] != at
    )
    assert not stale, (
        f"{len(stale)} records edited during a read still hold their old version after the "
        f"next sync (e.g. {stale[:3]}): the watermark passed over the edits"
    )


def _native(source_id: str) -> list[str]:
    """The ids a platform may know a stored record by: its source id, and the source id's last
    segment (a mapping's ``epic-1200`` or ``project:5000001`` is the platform's ``1200``)."""
    tail = re.split(r"[-:/]", source_id)[-1]
    return [source_id] if tail in ("", source_id) else [source_id, tail]


def check_deletion_before_full_sync(emulated: EmulatedSource) -> None:
    """A record deleted on the platform after a sync (the emulator's ``forget`` switch) is
    tombstoned by the next full sync, and nothing the platform still has is."""
    config = emulated.config()
    store = Store(config.store.url)
    try:
        engine = SyncEngine(config, store, pm=emulated.registry)
        first = engine.sync(emulated.source)
        assert not _failed(first), f"the first sync failed: {_failed(first)}"
        stored = [
            (entity, str(row["source_id"]))
            for entity in ENTITIES
            for row in store.export(entity, source=emulated.source)
        ]
        forgotten: tuple[str, str] | None = None
        try:
            for entity, source_id in stored:
                native = next((n for n in _native(source_id) if emulated.app.has(n)), None)
                if native is not None and emulated.app.forget(native):
                    forgotten = (entity, source_id)
                    break
        except NotImplementedError as exc:
            pytest.skip(f"the emulator cannot delete a record or say what it holds: {exc}")
        assert forgotten is not None, (
            "the emulator's forget() knew none of the stored ids: the store's source ids are "
            "not the platform's ids"
        )
        assert not any(emulated.app.has(n) for n in _native(forgotten[1])), (
            "the emulator still holds what it forgot"
        )
        full = engine.sync(emulated.source, full=True)
        assert not _failed(full), f"the full sync after a deletion failed: {_failed(full)}"
        tombstoned = {
            (entity, str(row["source_id"]))
            for entity in ENTITIES
            for row in store.export(entity, source=emulated.source, include_deleted=True)
            if row.get("deleted")
        }
    finally:
        store.close()
    assert forgotten in tombstoned, (
        f"{forgotten[0]} {forgotten[1]}, deleted on the platform, is still live after a full "
        "sync: a full read does not tombstone what the platform no longer has"
    )
    # The platform's word, not the adapter's: a broken adapter cannot vouch for itself.
    held = emulated.app.has
    wrongly = sorted(f"{e} {i}" for e, i in tombstoned if any(held(n) for n in _native(i)))
    assert not wrongly, (
        f"a full sync tombstoned {len(wrongly)} records the platform still has "
        f"(e.g. {wrongly[:3]}): the full read did not read everything"
    )


def _encodings(secret: str) -> list[str]:
    raw = secret.encode()
    return [
        secret,
        quote(secret, safe=""),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        raw.hex(),
    ]


def check_secret_never_kept(emulated: EmulatedSource, output: str = "") -> None:
    """Sync, then grep every table of the store, the SQLite file's bytes and ``output`` (the
    captured output and logs) for the secret in any common encoding."""
    config = emulated.config()
    result, _ = _sync(emulated, config)
    assert not _failed(result), f"the sync failed: {_failed(result)}"
    store = Store(config.store.url)
    try:
        with store.engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            dumps = {
                name: "\n".join(
                    repr(tuple(row)) for row in conn.execute(sa.text(f'SELECT * FROM "{name}"'))
                )
                for name in tables
            }
    finally:
        store.close()
    url = sa.engine.make_url(config.store.url)
    database = Path(url.database or "")
    files = [p for p in database.parent.glob(database.name + "*") if p.is_file()]
    for form in _encodings(emulated.secret):
        for name, dump in dumps.items():
            assert form not in dump, f"the secret is stored in the {name} table"
        for path in files:
            assert form.encode() not in path.read_bytes(), (
                f"the secret is in the store file {path.name}"
            )
        assert form not in output, "the secret is in the captured output or logs"


class AdapterConformance:
    """Inherit this in a test class and define the ``conformance`` fixture."""

    @pytest.fixture
    def conformance(self) -> ConformanceSetup:  # pragma: no cover - provided by the subclass
        raise NotImplementedError("define a `conformance` fixture yielding a ConformanceSetup")

    def _streams(self, setup: ConformanceSetup) -> list[Stream]:
        adapter = build_adapter(setup.config, setup.source, setup.registry)
        try:
            return adapter.streams()
        finally:
            adapter.close()

    def test_streams_declare_keys_and_cursors(self, conformance: ConformanceSetup) -> None:
        streams = self._streams(conformance)
        assert streams, "an adapter must declare at least one stream"
        names = [s.name for s in streams]
        assert len(names) == len(set(names)), f"stream names repeat: {names}"
        for stream in streams:
            assert stream.name, "every stream has a name"
            assert stream.entity in ENTITIES, f"{stream.name}: unknown entity {stream.entity!r}"
            assert stream.key, f"{stream.name}: no key"
            assert stream.paginator is not None, f"{stream.name}: no paginator"
            if stream.incremental:
                assert stream.cursor_field, (
                    f"{stream.name}: incremental streams declare a cursor field"
                )

    def test_capabilities_cover_streams(self, conformance: ConformanceSetup) -> None:
        adapter = build_adapter(conformance.config, conformance.source, conformance.registry)
        try:
            caps = adapter.capabilities()
            entities = {s.entity for s in adapter.streams()}
        finally:
            adapter.close()
        assert entities <= set(caps.entities), f"capabilities miss {entities - set(caps.entities)}"
        for entity, fields in caps.entities.items():
            unknown = set(fields) - set(ENTITIES[entity].model_fields)
            assert not unknown, f"{entity}: capabilities name fields the model lacks: {unknown}"
        assert caps.auth_types, "capabilities list the auth types"

    def test_first_sync_reads_valid_records_and_terminates(
        self, conformance: ConformanceSetup
    ) -> None:
        engine = SyncEngine(conformance.config, conformance.store, pm=conformance.registry)
        result = engine.sync(conformance.source)
        by_name = {s.stream: s for s in result.streams}
        expected = conformance.expected_streams or set(by_name)
        for name in expected:
            outcome = by_name[name]
            assert outcome.status == "ok", f"{name}: {outcome.status} {outcome.message}"
            assert outcome.quarantined == 0, f"{name}: {outcome.quarantined} records quarantined"
        assert sum(by_name[n].read for n in expected) > 0, "the double served no records"
        for entity, model in ENTITIES.items():
            for row in conformance.store.export(entity, source=conformance.source):
                row.pop("deleted", None)
                model.model_validate(row)

    def test_second_sync_asks_only_for_what_changed(self, conformance: ConformanceSetup) -> None:
        engine = SyncEngine(conformance.config, conformance.store, pm=conformance.registry)
        engine.sync(conformance.source)
        second = engine.sync(conformance.source)
        expected = conformance.expected_streams or {s.stream for s in second.streams}
        streams = {s.name: s for s in self._streams(conformance)}
        for outcome in second.streams:
            if outcome.stream not in expected or not streams[outcome.stream].incremental:
                continue
            # An id sweep (deletions) is the stream's declared cost on every sync, not a re-read.
            asked = outcome.requests - outcome.sweep_requests
            assert asked <= 1, (
                f"{outcome.stream}: an unchanged incremental stream made {asked} requests"
            )
            assert outcome.inserted == 0, (
                f"{outcome.stream}: a second sync inserted {outcome.inserted} records"
            )

    # -- against the plugin's own registered emulator, started by the suite -------------------

    expected_failures: dict[str, str] = {}
    """Check name (``pages``, ``faults``, ``malformed``, ``wrong_secret``, ``second_sync``,
    ``secret``, ``changed_between_pages``, ``deletion``) -> why this plugin is known to fail
    it; the check then runs as an xfail."""

    @pytest.fixture
    def emulated(self, conformance: ConformanceSetup, tmp_path: Path) -> Iterator[EmulatedSource]:
        if conformance.store.dialect != "sqlite":
            # These checks sync into SQLite stores of their own (the secret grep reads the
            # file's bytes): once per plugin is enough, whatever backend the class runs on.
            pytest.skip("the emulated checks run once, on their own SQLite stores")
        source = conformance.config.sources[conformance.source]
        platform = source.platform
        if platform not in conformance.registry.sandboxes():
            pytest.skip(f"platform {platform!r} registers no emulator")
        with emulated_source(
            conformance.registry,
            platform,
            tmp_path / "emulated",
            setup_requests=conformance.setup_requests,
        ) as emulated:
            yield emulated

    def _expect(self, check: str) -> None:
        reason = self.expected_failures.get(check)
        if reason:
            pytest.xfail(reason)

    def test_every_page_is_read_and_every_record_arrives_once(
        self, emulated: EmulatedSource
    ) -> None:
        self._expect("pages")
        check_every_page_read_once(emulated)

    def test_throttling_and_server_errors_are_ridden_out(self, emulated: EmulatedSource) -> None:
        self._expect("faults")
        check_faults_are_ridden_out(emulated)

    def test_a_malformed_body_is_a_clear_error(self, emulated: EmulatedSource) -> None:
        self._expect("malformed")
        check_malformed_body_is_a_clear_error(emulated)

    def test_check_with_a_wrong_secret_says_auth(self, emulated: EmulatedSource) -> None:
        self._expect("wrong_secret")
        check_wrong_secret_is_an_auth_status(emulated)

    def test_second_sync_requests_are_bounded_at_the_emulator(
        self, emulated: EmulatedSource
    ) -> None:
        self._expect("second_sync")
        check_second_sync_bounded(emulated)

    def test_records_edited_between_pages_are_neither_lost_nor_doubled(
        self, emulated: EmulatedSource
    ) -> None:
        self._expect("changed_between_pages")
        check_records_changed_between_pages(emulated)

    def test_a_record_deleted_before_a_full_sync_is_tombstoned(
        self, emulated: EmulatedSource
    ) -> None:
        self._expect("deletion")
        check_deletion_before_full_sync(emulated)

    def test_the_secret_is_never_stored_or_printed(
        self,
        emulated: EmulatedSource,
        capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        self._expect("secret")
        caplog.set_level(logging.DEBUG)
        check_secret_never_kept(emulated)
        captured = capsys.readouterr()
        check_secret_never_kept(emulated, captured.out + captured.err + caplog.text)
