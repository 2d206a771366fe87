"""The scoring model: each criterion reads one field of every candidate, is normalised to
0-100 and weighted; the weights are given or come from an AHP matrix.

A criterion no candidate has a value for is *unsupported*: it says so with the field it reads,
and its weight is shared among the others only when the model says ``renormalize = true``.
A candidate missing one criterion's value gets 0 for it, and the part says it was missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import ahp as ahp_
from .candidates import Candidate
from .settings import ScoringModel


@dataclass
class CriterionStatus:
    id: str
    field: str
    weight: float
    """The weight applied (after renormalising, when that happened)."""
    given_weight: float
    supported: bool
    reason: str | None = None
    filled: int = 0


@dataclass
class Ranked:
    candidate: Candidate
    score: float
    parts: dict[str, float | None]
    """criterion -> its weighted contribution (None: the candidate has no value for it)."""
    rank: int = 0


@dataclass
class Ranking:
    items: list[Ranked]
    criteria: list[CriterionStatus]
    ahp: ahp_.AhpResult | None = None
    warnings: list[str] = field(default_factory=list)


def read(candidate: Candidate, name: str) -> Any:
    """The value of field ``name`` for a candidate (``extra.X`` reads a native field)."""
    if name.startswith("extra."):
        return (candidate.fields.get("extra") or {}).get(name[6:])
    e = candidate.economics
    if name == "cost":
        return candidate.total_cost
    if name in ("npv", "irr", "bcr", "payback_years", "discounted_payback_years", "tco"):
        return None if e is None else getattr(e, name)
    return candidate.fields.get(name)


def _number(value: Any, goals: Sequence[str], values: Mapping[str, float]) -> float | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get("value", value.get("display_value"))
    if isinstance(value, bool):
        return 100.0 if value else 0.0
    if isinstance(value, list | tuple):
        if goals:
            wanted = {g.lower() for g in goals}
            return float(sum(1 for v in value if str(v).lower() in wanted))
        return float(len(value))
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if text == "":
        return None
    if text in values:
        return values[text]
    lowered = {k.lower(): v for k, v in values.items()}
    if text.lower() in lowered:
        return lowered[text.lower()]
    try:
        return float(text)
    except ValueError:
        return None


def rank(candidates: Sequence[Candidate], model: ScoringModel) -> Ranking:
    """One ranked list across every platform, each score with its parts."""
    warnings: list[str] = []
    result_ahp = None
    if model.ahp is not None:
        result_ahp = ahp_.weights(model.ahp, [c.id for c in model.criteria])
        given = result_ahp.weights
        if result_ahp.warning:
            warnings.append(result_ahp.warning)
    else:
        raw = [c.weight or 0.0 for c in model.criteria]
        total = sum(raw)
        given = [w / total if total else 0.0 for w in raw]
    raw_values: dict[str, list[float | None]] = {}
    statuses: list[CriterionStatus] = []
    for criterion, weight in zip(model.criteria, given, strict=True):
        values = [
            _number(read(c, criterion.field), criterion.goals, criterion.values) for c in candidates
        ]
        raw_values[criterion.id] = values
        filled = sum(1 for v in values if v is not None)
        status = CriterionStatus(
            criterion.id, criterion.field, weight, weight, filled > 0, filled=filled
        )
        if not filled:
            status.reason = (
                f"no candidate has a value for {criterion.field!r} (no platform fills it, or "
                "it is misspelt)"
            )
        statuses.append(status)
    unsupported = [s for s in statuses if not s.supported]
    if unsupported:
        lost = sum(s.given_weight for s in unsupported)
        names = ", ".join(f"{s.id} ({s.field})" for s in unsupported)
        if model.renormalize and lost < 1:
            for s in statuses:
                s.weight = 0.0 if not s.supported else s.given_weight / (1 - lost)
            warnings.append(
                f"unsupported criteria {names}: their weight {lost:.3f} was shared among the others (renormalize = true)"
            )
        else:
            for s in unsupported:
                s.weight = 0.0
            warnings.append(
                f"unsupported criteria {names}: their weight {lost:.3f} is not redistributed, so no score can exceed {100 * (1 - lost):.1f} (set renormalize = true to share it)"
            )
    items = [Ranked(c, 0.0, {}) for c in candidates]
    for criterion, status in zip(model.criteria, statuses, strict=True):
        values = raw_values[criterion.id]
        present = [v for v in values if v is not None]
        if criterion.scale == "range":
            low, high = float(criterion.low or 0), float(criterion.high or 0)
        else:
            low, high = (min(present), max(present)) if present else (0.0, 0.0)
        for item, value in zip(items, values, strict=True):
            if not status.supported:
                continue
            if value is None:
                item.parts[criterion.id] = None
                continue
            if high == low:
                normal = 100.0
            else:
                normal = 100 * (min(max(value, low), high) - low) / (high - low)
            if criterion.better == "lower":
                normal = 100 - normal if high != low else 100.0
            part = status.weight * normal
            item.parts[criterion.id] = part
            item.score += part
    items.sort(key=lambda i: (-i.score, i.candidate.ref))
    for index, item in enumerate(items, start=1):
        item.rank = index
    return Ranking(items, statuses, result_ahp, warnings)
