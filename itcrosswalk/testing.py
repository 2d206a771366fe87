"""The adapter conformance suite every adapter runs, built-in or third-party.

Subclass ``AdapterConformance`` in a test module and provide one fixture,
``conformance``, that yields a ``ConformanceSetup`` pointing at a live platform double
(an emulator on loopback). The suite checks that streams declare keys and cursors, that
every record validates against the common model, that paging terminates, and that a second
sync with saved state asks only for what changed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from .core.adapter import Stream
from .core.config import Config
from .core.model import ENTITIES
from .core.store import Store
from .core.sync import SyncEngine, build_adapter
from .registry import PluginRegistry, make_registry


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

    def __post_init__(self) -> None:
        if self.pm is None:
            self.pm = make_registry()

    @property
    def registry(self) -> PluginRegistry:
        assert self.pm is not None  # set in __post_init__
        return self.pm


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
