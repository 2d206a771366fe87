"""The portfolio and service reports: the standard metrics of one domain, with breakdowns.

The numbers come from :func:`itcrosswalk.core.metrics.compute_metrics`, so the report says
exactly what ``crosswalk metrics --domain ...`` says, including why a metric the data cannot
support is left out rather than shown as zero.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..contract import Registry

TITLES = {
    "portfolio": "Portfolio report",
    "service": "Service report",
    "endpoint": "Endpoint report",
}


def build(
    store: Any,
    config: Any,
    kind: str,
    *,
    source: str | None = None,
    by: str | list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime | None = None,
    pm: Registry,
) -> dict[str, Any]:
    """The report's data: every metric of the ``kind`` domain, as the metrics engine computes it."""
    from ..metrics import all_metrics, city_moment, compute_metrics

    dimensions = [by] if isinstance(by, str) else list(by or [])
    if not dimensions:
        dimensions = list(DEFAULT_BREAKDOWNS.get(kind, ()))
    now = now or datetime.now(UTC)
    since, until = city_moment(since, config.metrics), city_moment(until, config.metrics)
    results = compute_metrics(
        store,
        config,
        domain=kind,
        source=source,
        by=dimensions,
        since=since,
        until=until,
        now=now,
        pm=pm,
    )
    from ..history import series

    registry = all_metrics(pm)
    trends = series(store, [r.id for r in results], limit=24)
    metrics = []
    for result in results:
        row = result.as_json()
        definition = plain_words(getattr(registry.get(row["id"]), "definition", ""))
        row = {**row, "definition": definition}
        row["trend"] = [
            {"at": p.taken_at.isoformat(), "value": p.value} for p in trends.get(row["id"], [])
        ]
        metrics.append(row)
    data: dict[str, Any] = {
        "report": kind,
        "title": TITLES.get(kind, f"{kind.title()} report"),
        "generated_at": now.isoformat(),
        "timezone": config.metrics.calendar.timezone,
        "currency": config.dashboard.currency,
        "filters": {
            "source": source,
            "by": ", ".join(dimensions) or None,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        },
        "metrics": metrics,
    }
    if kind == "portfolio":
        from .dashboard import project_list

        data["projects"] = project_list(store, now, source=source)
    return data


DEFAULT_BREAKDOWNS = {
    "service": ("month", "platform"),
    "portfolio": ("platform",),
    "endpoint": ("platform", "department"),
}
"""What a report breaks its metrics down by when no ``by`` is asked: months for the service
desk's trend, platforms to compare."""

_FLAGS = (
    (re.compile(r";? ?per project in --explain"), "; per project when explained record by record"),
    (re.compile(r"--since/--until do not apply"), "The report's period does not apply"),
    (re.compile(r"--explain"), "the record-by-record explanation"),
)


def plain_words(text: str) -> str:
    """A metric's definition for a reader of a report: no command-line flags in it."""
    for pattern, words in _FLAGS:
        text = pattern.sub(words, text)
    return text
