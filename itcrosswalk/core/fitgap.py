"""The City's requirements against the measured platforms: a fit-gap matrix per role, and how
sensitive each role's ranking is to the criteria's weights.

A requirements file (``requirements.toml`` or an XLSX sheet) lists each requirement with its
id, text, role, priority (must, should, could) and how it is evidenced: model fields filled on
the synced records, metrics the data supports, write-back operations, API behaviour, or a
verdict given by hand with a note. Every cell of the matrix (a requirement on one candidate)
says met, partial or not met, and why, in words; must-haves a candidate misses come first.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .config import render_errors
from .errors import ConfigError
from .evaluate import (
    _API_MEASURES,
    KIND_ENTITIES,
    ROLES,
    Criterion,
    SourceEvaluation,
    _api_score,
    criteria_of_role,
    field_evidence,
    metric_evidence,
    role_totals,
    roles_of,
    write_evidence,
)
from .model import ENTITIES

PRIORITIES = ("must", "should", "could")
PRIORITY_WEIGHT = {"must": 3.0, "should": 2.0, "could": 1.0}
VERDICTS = ("met", "partial", "not met")
COLUMNS = (
    "id",
    "text",
    "role",
    "priority",
    "fields",
    "metrics",
    "writes",
    "api",
    "kinds",
    "min_fill",
    "manual",
)
"""The columns of an XLSX requirements sheet, in this order (a header row names them)."""


class ManualVerdict(BaseModel):
    """A verdict given by hand (a demo, a reference call) for one platform or source."""

    model_config = ConfigDict(extra="forbid")
    verdict: Literal["met", "partial", "not met"]
    note: str = Field(min_length=1)
    """What it rests on: no verdict without its reason."""


class Requirement(BaseModel):
    """One of the City's requirements and how it is evidenced."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1)
    role: str
    priority: Literal["must", "should", "could"]
    fields: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=list)
    writes: list[str] = Field(default_factory=list)
    api: list[str] = Field(default_factory=list)
    kinds: dict[str, list[str]] = Field(default_factory=dict)
    min_fill: float = Field(default=90.0, ge=0, le=100)
    """A field counts as met when filled on at least this share of the records (%)."""
    manual: dict[str, ManualVerdict] = Field(default_factory=dict)
    """Platform or source name -> a verdict given by hand, with its note."""

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if value not in ROLES:
            raise ValueError(f"unknown role {value!r}; choose from {', '.join(ROLES)}")
        return value


class RequirementsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    requirements: list[Requirement]


def _check(requirements: list[Requirement], where: str) -> list[Requirement]:
    seen: set[str] = set()
    for item in requirements:
        at = f"{where}: requirement {item.id}"
        if item.id in seen:
            raise ConfigError(f"{at}: the id is used twice")
        seen.add(item.id)
        if not (item.fields or item.metrics or item.writes or item.api or item.manual):
            raise ConfigError(
                f"{at}: names no evidence (fields, metrics, writes, api, or a manual verdict "
                "with a note)"
            )
        for ref in item.fields:
            entity, _, name = ref.partition(".")
            if entity not in ENTITIES or name not in ENTITIES[entity].model_fields:
                raise ConfigError(
                    f"{at}: fields: {ref!r} is not a field of the common model "
                    "(entity.field, e.g. work_item.budget)"
                )
        bad_api = sorted(set(item.api) - set(_API_MEASURES))
        if bad_api:
            raise ConfigError(
                f"{at}: api: unknown {bad_api}; choose from {', '.join(_API_MEASURES)}"
            )
        for entity in item.kinds:
            if entity not in KIND_ENTITIES:
                raise ConfigError(
                    f"{at}: kinds: {entity!r} has no kinds ({', '.join(KIND_ENTITIES)} do)"
                )
    return requirements


def load_requirements(path: Path) -> list[Requirement]:
    """Requirements from a TOML file (``[[requirements]]`` tables) or an XLSX workbook (its
    first sheet, a header row naming :data:`COLUMNS`); a problem names the row or id and key."""
    if path.suffix.lower() == ".xlsx":
        return _check(_from_xlsx(path), str(path))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the requirements file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        parsed = RequirementsFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(render_errors(exc, path)) from None
    return _check(parsed.requirements, str(path))


def _split(value: Any) -> list[str]:
    if value is None:
        return []
    return [part.strip() for part in str(value).replace("\n", ",").split(",") if part.strip()]


def _manual(text: Any, where: str) -> dict[str, dict[str, str]]:
    """``servicenow=met: shown in the demo; clarity=not met: no API for it``."""
    out: dict[str, dict[str, str]] = {}
    for part in _split_semicolons(text):
        name, sep, rest = part.partition("=")
        verdict, colon, note = rest.partition(":")
        if not sep or not colon:
            raise ConfigError(
                f"{where}: manual: {part!r} is not NAME=VERDICT: NOTE "
                "(e.g. servicenow=met: shown in the demo of 3 March)"
            )
        out[name.strip()] = {"verdict": verdict.strip(), "note": note.strip()}
    return out


def _split_semicolons(value: Any) -> list[str]:
    if value is None:
        return []
    return [p.strip() for p in str(value).split(";") if p.strip()]


def _from_xlsx(path: Path) -> list[Requirement]:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:
        raise ConfigError(f"cannot read the requirements workbook {path}: {exc}") from None
    try:
        sheet = book.worksheets[0]
        rows = list(sheet.iter_rows(values_only=True))
    finally:
        book.close()
    if not rows:
        raise ConfigError(
            f"{path}: the first sheet is empty; its header row names {', '.join(COLUMNS)}"
        )
    header = [str(c or "").strip().lower() for c in rows[0]]
    missing = [c for c in ("id", "text", "role", "priority") if c not in header]
    if missing:
        raise ConfigError(
            f"{path}: the header row lacks {', '.join(missing)} (columns: {', '.join(COLUMNS)})"
        )
    unknown = [c for c in header if c and c not in COLUMNS]
    if unknown:
        raise ConfigError(
            f"{path}: unknown columns {', '.join(unknown)} (columns: {', '.join(COLUMNS)})"
        )
    out = []
    for number, row in enumerate(rows[1:], start=2):
        cells = dict(zip(header, row, strict=False))
        if not any(v not in (None, "") for v in cells.values()):
            continue
        where = f"{path} row {number}" + (f" ({cells.get('id')})" if cells.get("id") else "")
        item: dict[str, Any] = {
            "id": str(cells.get("id") or "").strip(),
            "text": str(cells.get("text") or "").strip(),
            "role": str(cells.get("role") or "").strip(),
            "priority": str(cells.get("priority") or "").strip().lower(),
        }
        for name in ("fields", "metrics", "writes", "api"):
            item[name] = _split(cells.get(name))
        if cells.get("kinds"):
            kinds: dict[str, list[str]] = {}
            for part in _split_semicolons(cells["kinds"]):
                entity, _, listed = part.partition("=")
                kinds[entity.strip()] = _split(listed)
            item["kinds"] = kinds
        if cells.get("min_fill") not in (None, ""):
            item["min_fill"] = cells["min_fill"]
        item["manual"] = _manual(cells.get("manual"), where)
        try:
            out.append(Requirement.model_validate(item))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"{where}: {problems}") from None
    return out


# -- judging ----------------------------------------------------------------------------------


def _worst(verdicts: list[str]) -> str:
    if all(v == "met" for v in verdicts):
        return "met"
    if any(v in ("met", "partial") for v in verdicts):
        return "partial"
    return "not met"


def judge(requirement: Requirement, ev: SourceEvaluation) -> dict[str, Any]:
    """One cell: the verdict of ``requirement`` on one candidate, and each piece of evidence
    behind it in words."""
    manual = requirement.manual.get(ev.source) or requirement.manual.get(ev.platform)
    if manual is not None:
        return {
            "verdict": manual.verdict,
            "evidence": [
                {
                    "kind": "manual",
                    "verdict": manual.verdict,
                    "why": f"judged by hand: {manual.note}",
                }
            ],
        }
    evidence: list[dict[str, Any]] = []
    for ref in requirement.fields:
        share, why, _filled, records = field_evidence(ev, ref, requirement.kinds)
        verdict = (
            "met"
            if records and share >= requirement.min_fill
            else "partial"
            if share > 0
            else "not met"
        )
        if verdict == "partial":
            why += f" (below the {requirement.min_fill:g}% asked)"
        evidence.append({"kind": "field", "verdict": verdict, "why": why})
    for metric_id in requirement.metrics:
        value, why = metric_evidence(ev, metric_id)
        evidence.append({"kind": "metric", "verdict": "met" if value else "not met", "why": why})
    for write in requirement.writes:
        value, why = write_evidence(ev, write)
        evidence.append({"kind": "write", "verdict": "met" if value else "not met", "why": why})
    for measure in requirement.api:
        value, why = _api_score(measure, ev)
        verdict = "met" if value >= 75 else "partial" if value >= 40 else "not met"
        evidence.append(
            {"kind": "api", "verdict": verdict, "why": f"{why} (scored {value:.0f} of 100)"}
        )
    return {"verdict": _worst([e["verdict"] for e in evidence]), "evidence": evidence}


def fit_gap(
    requirements: list[Requirement], results: list[SourceEvaluation]
) -> dict[str, dict[str, Any]]:
    """Per role: its candidates, one row per requirement (must-haves somebody misses first),
    each candidate's must-haves missed, and a fit score (met = 1, partial = 1/2, weighted
    must 3, should 2, could 1)."""
    out: dict[str, dict[str, Any]] = {}
    for role, info in ROLES.items():
        mine = [r for r in requirements if r.role == role]
        candidates = [ev for ev in results if role in roles_of(ev.platform)]
        if not mine:
            continue
        rows = []
        for requirement in mine:
            cells = {ev.source: judge(requirement, ev) for ev in candidates}
            rows.append(
                {
                    "id": requirement.id,
                    "text": requirement.text,
                    "priority": requirement.priority,
                    "cells": cells,
                    "missed_must": requirement.priority == "must"
                    and any(c["verdict"] != "met" for c in cells.values()),
                }
            )
        rank = {p: i for i, p in enumerate(PRIORITIES)}
        rows.sort(key=lambda r: (not r["missed_must"], rank[r["priority"]], r["id"]))
        fit: dict[str, float | None] = {}
        missed: dict[str, list[str]] = {}
        for ev in candidates:
            got = total = 0.0
            for row in rows:
                weight = PRIORITY_WEIGHT[row["priority"]]
                verdict = row["cells"][ev.source]["verdict"]
                got += weight * (1.0 if verdict == "met" else 0.5 if verdict == "partial" else 0.0)
                total += weight
            fit[ev.source] = round(100.0 * got / total, 1) if total else None
            missed[ev.source] = [
                r["id"]
                for r in rows
                if r["priority"] == "must" and r["cells"][ev.source]["verdict"] != "met"
            ]
        out[role] = {
            "role": role,
            "title": info.title,
            "candidates": [ev.source for ev in candidates],
            "platforms": {ev.source: ev.platform for ev in candidates},
            "rows": rows,
            "fit": fit,
            "musts_missed": missed,
        }
    return out


def sensitivity(
    results: list[SourceEvaluation], criteria: dict[str, Criterion]
) -> dict[str, dict[str, Any]]:
    """Per role: the ranking, and for each criterion the weight at which the leader would
    lose first place (the exact break-even, since every candidate shares the weights)."""
    out: dict[str, dict[str, Any]] = {}
    for role, info in ROLES.items():
        totals = role_totals(results, criteria, role)
        ranked = sorted(
            (s for s, t in totals.items() if t is not None), key=lambda s: (-(totals[s] or 0.0), s)
        )
        if len(ranked) < 2:
            if ranked:
                out[role] = {
                    "title": info.title,
                    "ranking": ranked,
                    "flips": [],
                    "note": "one candidate: nothing to rank against",
                }
            continue
        leader = ranked[0]
        scores = {ev.source: ev.scores for ev in results if ev.source in totals}
        chosen = criteria_of_role(criteria, role)
        flips = []
        for name, criterion in chosen.items():
            others = {n: c.weight for n, c in chosen.items() if n != name}

            rest = {
                source: sum(w * float(scores[source][n]["score"]) for n, w in others.items())
                for source in ranked
            }
            best: dict[str, Any] | None = None
            for challenger in ranked[1:]:
                a, b = (
                    float(scores[leader][name]["score"]),
                    float(scores[challenger][name]["score"]),
                )
                if a == b:
                    continue
                # leader's and challenger's totals are equal where rest_a + w a = rest_b + w b
                weight = (rest[leader] - rest[challenger]) / (b - a)
                if weight < 0:
                    continue
                if best is None or abs(weight - criterion.weight) < abs(
                    best["weight"] - criterion.weight
                ):
                    best = {"challenger": challenger, "weight": round(weight, 2)}
            if best is None:
                flips.append(
                    {
                        "criterion": name,
                        "title": criterion.title,
                        "weight": criterion.weight,
                        "flip_at": None,
                        "challenger": None,
                        "words": f"no weight of {criterion.title} alone puts anyone above {leader}",
                    }
                )
                continue
            direction = "raising" if best["weight"] > criterion.weight else "lowering"
            flips.append(
                {
                    "criterion": name,
                    "title": criterion.title,
                    "weight": criterion.weight,
                    "flip_at": best["weight"],
                    "challenger": best["challenger"],
                    "words": f"{direction} the weight of {criterion.title} from {criterion.weight:g} "
                    f"past {best['weight']:g} puts {best['challenger']} above {leader}",
                }
            )
        flips.sort(key=lambda f: (f["flip_at"] is None, abs((f["flip_at"] or 0) - f["weight"])))
        out[role] = {
            "title": info.title,
            "ranking": ranked,
            "totals": {s: round(totals[s] or 0.0, 1) for s in ranked},
            "flips": flips,
        }
    return out


def committee_pack(
    results: list[SourceEvaluation],
    criteria: dict[str, Criterion],
    requirements: list[Requirement] | None,
) -> dict[str, Any]:
    """Everything the committee's pack shows, as one JSON-able mapping."""
    roles = {}
    for role, info in ROLES.items():
        members = sorted(
            (ev for ev in results if role in ev.roles), key=lambda e: e.roles[role]["rank"] or 0
        )
        if not members:
            continue
        names = list(criteria_of_role(criteria, role))
        roles[role] = {
            "title": info.title,
            "criteria": [
                {"key": n, "title": criteria[n].title, "weight": criteria[n].weight} for n in names
            ],
            "ranking": [
                {
                    "rank": ev.roles[role]["rank"],
                    "source": ev.source,
                    "platform": ev.platform,
                    "status": ev.status,
                    "total": ev.roles[role]["total"],
                    "scores": {n: ev.scores[n]["score"] for n in names},
                }
                for ev in members
            ],
        }
    return {
        "report": "evaluation",
        "roles": roles,
        "fit_gap": fit_gap(requirements, results) if requirements else {},
        "sensitivity": sensitivity(results, criteria),
        "sources": [ev.as_json() for ev in results],
    }
