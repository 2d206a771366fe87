"""Cross-system compliance controls: controls as YAML, the engine that runs them, the history.

``controls_for(config, pm)`` gathers the controls, ``select`` picks a benchmark's, and
``run_controls(store, controls, config=...)`` runs them on a read-only connection and keeps
every finding in the store's ``findings`` history.
"""

from __future__ import annotations

from .controls import (
    DEFAULT_BENCHMARK,
    SEVERITIES,
    STATUSES,
    Control,
    benchmarks,
    controls_for,
    load_controls,
    select,
)
from .engine import ComplianceRun, ControlResult, run_controls, source_health
from .history import Finding

__all__ = [
    "DEFAULT_BENCHMARK",
    "SEVERITIES",
    "STATUSES",
    "ComplianceRun",
    "Control",
    "ControlResult",
    "Finding",
    "benchmarks",
    "controls_for",
    "load_controls",
    "run_controls",
    "select",
    "source_health",
]
