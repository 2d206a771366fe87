"""The check every plugin that builds its records without validation (``core.model.built``)
shares: each record its streams map from the emulator is the model validation would build."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from itcrosswalk.core.adapter import Window, paginate
from itcrosswalk.core.model import unlike_validated


def mapped_as_validated(adapter: Any, streams: Collection[str] | None = None) -> dict[str, int]:
    """Map every record of the adapter's streams (or of ``streams``) in one full read, assert
    each record it makes equals what validation makes, and return how many each stream made.
    The adapter is closed afterwards."""
    seen: dict[str, int] = {}
    try:
        for stream in adapter.streams():
            if streams is not None and stream.name not in streams:
                continue
            for page, _used, _after in paginate(stream, Window(None, None, True)):
                stream.prepare(page.records)
                for raw in page.records:
                    mapped = stream.map(raw)
                    for record in mapped if isinstance(mapped, list) else [mapped]:
                        assert unlike_validated(record) == [], raw
                        seen[stream.name] = seen.get(stream.name, 0) + 1
    finally:
        adapter.close()
    return seen
