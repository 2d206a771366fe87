"""The portfolio and service reports: the standard metrics of one domain, with breakdowns.

The numbers come from :func:`itcrosswalk.core.metrics.compute_metrics`, so the report says
exactly what ``crosswalk metrics --domain ...`` says, including why a metric the data cannot
support is left out rather than shown as zero.
"""

from __future__ import annotations

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
    registry = all_metrics(pm)
    metrics = []
    for result in results:
        row = result.as_json()
        definition = getattr(registry.get(row["id"]), "definition", "")
        metrics.append({**row, "definition": definition})
    return {
        "report": kind,
        "title": TITLES.get(kind, f"{kind.title()} report"),
        "generated_at": now.isoformat(),
        "filters": {
            "source": source,
            "by": ", ".join(dimensions) or None,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
        },
        "metrics": metrics,
    }
