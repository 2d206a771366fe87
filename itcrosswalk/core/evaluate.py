"""Platform evaluation: what each configured source can carry of the standard, measured.

For every source, from its adapter's declared capabilities and from the records actually
synced: model coverage field by field (absent where the platform does not provide a field,
never 0 %), the standard metrics it supports, data quality, the API's behaviour in recent
syncs, and the integration effort. A criteria file weights what the City cares about; each
score is the mean of measured components and carries the evidence behind it.

A platform is judged only within the roles it can fill (:data:`ROLES`: portfolio management,
service management, endpoints and CMDB): a criterion of another role is n/a for it, never 0,
and sources are ranked within each role, never across roles (an endpoint manager is no better
or worse a PPM tool). A criterion's fields are measured over the records of the kinds it
concerns (financial tracking over projects, not over their tasks and portfolios).
"""

from __future__ import annotations

import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import Config, render_errors
from .errors import ConfigError, CrosswalkError
from .metrics import compute_metrics
from .model import ENTITIES
from .store import ENTITY_TABLES, Store, links_table, quarantine, sync_runs

if TYPE_CHECKING:
    from .contract import Registry

# Provenance every record has by construction; coverage is about what the platform fills.
_PROVENANCE = {"source", "platform", "source_id", "extra", "created_at"}
_ENUMS_UNKNOWN = "unknown"
# What a record of each entity is expected to carry for the standard to work on it.
REQUIRED: dict[str, tuple[str, ...]] = {
    "ticket": ("number", "priority", "state", "opened_at"),
    "sla_record": ("ticket_id", "stage"),
    "work_item": ("name", "state", "planned_start", "planned_finish"),
    "demand": ("name", "state", "submitted_at"),
    "device": ("name", "serial_key", "os"),
    "device_compliance": ("device_id", "state"),
    "installed_app": ("name",),
    "person": ("upn", "name"),
    "plan_line": ("investment_id", "plan", "amount", "fiscal_period"),
}
# Fields the core derives from another one: provided wherever that one is.
DERIVED: dict[tuple[str, str], str] = {("device", "serial_key"): "serial"}
WRITE_KINDS = ("demand", "work_item:project", "work_item:epic", "ticket:incident")


@dataclass(frozen=True)
class Role:
    """A part a platform can play for the City, and the platforms that can play it."""

    title: str
    platforms: tuple[str, ...]


ROLES: dict[str, Role] = {
    "ppm": Role(
        "Portfolio and project management",
        ("servicenow", "jira_align", "project_online", "planner_premium", "clarity"),
    ),
    "itsm": Role("IT service management", ("servicenow", "jira")),
    "endpoint": Role("Endpoint management and CMDB", ("intune", "servicenow")),
}
"""ServiceNow fills all three (SPM, ITSM, CMDB); Project Online covers Project Server too;
``jira`` is Jira Service Management."""

KIND_ENTITIES = ("work_item", "ticket")
"""Entities with a ``kind``: a criterion may narrow their denominators to some kinds."""

NOUNS = {
    "project": "projects",
    "incident": "incidents",
    "request": "requests",
    "epic": "epics",
    "work_item": "work items",
    "ticket": "tickets",
    "sla_record": "SLA records",
    "demand": "demands",
    "device": "devices",
    "device_compliance": "policy states",
    "installed_app": "installed apps",
    "person": "people",
    "plan_line": "plan lines",
}


def roles_of(platform: str) -> list[str]:
    """The roles a platform can fill, in :data:`ROLES` order."""
    return [name for name, role in ROLES.items() if platform in role.platforms]


def noun(entity: str, kinds: list[str] | tuple[str, ...] = ()) -> str:
    """``projects``, ``incidents``, ``work items``: what a denominator counts, in words."""
    if kinds:
        return " and ".join(NOUNS.get(k, f"{k}s") for k in kinds)
    return NOUNS.get(entity, entity.replace("_", " ") + "s")


class Criterion(BaseModel):
    """One thing the City weighs: its weight and the measured components that make it up."""

    model_config = ConfigDict(extra="forbid")
    title: str
    weight: float = Field(ge=0)
    fields: list[str] = Field(default_factory=list)
    """``entity.field``: scored by the share of synced records that fill it (0 if absent)."""
    metrics: list[str] = Field(default_factory=list)
    """Metric ids: 100 when the source's data supports the metric, else 0."""
    writes: list[str] = Field(default_factory=list)
    """Write-back operations (``demand``, ``work_item:project``): 100 when offered."""
    api: list[str] = Field(default_factory=list)
    """``auth_choices``, ``no_throttling``, ``no_errors``, ``latency``, ``writes``."""
    role: str | None = None
    """The role it belongs to (``ppm``, ``itsm``, ``endpoint``); none: every role."""
    kinds: dict[str, list[str]] = Field(default_factory=dict)
    """Entity -> the kinds its fields are measured over (``work_item = ["project"]``)."""


class Criteria(BaseModel):
    model_config = ConfigDict(extra="forbid")
    criteria: dict[str, Criterion]


DEFAULT_CRITERIA = """\
# What the PMO and the service desk need of a platform; weights are relative.
[criteria.project_intake]
title = "Project intake"
role = "ppm"
weight = 3
fields = ["demand.name", "demand.state", "demand.requester", "demand.department",
          "demand.submitted_at", "demand.decided_at", "demand.score", "demand.business_case_approved"]
metrics = ["ppm.demand_cycle_days", "ppm.demand_backlog"]
writes = ["demand"]

[criteria.resource_planning]
title = "Resource planning"
role = "ppm"
weight = 2
kinds = { work_item = ["project"] }
fields = ["person.name", "person.department", "person.manager", "work_item.manager",
          "work_item.planned_start", "work_item.planned_finish", "work_item.percent_complete"]

[criteria.financial_tracking]
title = "Financial tracking"
role = "ppm"
weight = 3
kinds = { work_item = ["project"] }
fields = ["work_item.budget", "work_item.actual_cost", "work_item.forecast_cost",
          "work_item.planned_value", "work_item.earned_value",
          "plan_line.amount", "plan_line.fiscal_period", "plan_line.cost_type"]
metrics = ["ppm.budget_variance", "ppm.cpi", "ppm.spi", "ppm.eac"]

[criteria.executive_reporting]
title = "Executive reporting"
role = "ppm"
weight = 2
kinds = { work_item = ["project"] }
fields = ["work_item.state", "work_item.phase", "work_item.health", "work_item.department",
          "work_item.strategic_goals"]
metrics = ["ppm.count_by_state", "ppm.health_mix", "ppm.on_time_rate"]
writes = ["work_item:project"]

[criteria.service_desk_slas]
title = "Service desk SLAs"
role = "itsm"
weight = 3
kinds = { ticket = ["incident"] }
fields = ["ticket.priority", "ticket.opened_at", "ticket.resolved_at", "ticket.assignment_group",
          "ticket.reassignment_count", "sla_record.has_breached"]
metrics = ["itsm.sla_attainment", "itsm.mttr_hours", "itsm.fcr_rate", "itsm.platform_sla_attainment"]
writes = ["ticket:incident"]

[criteria.endpoint_compliance]
title = "Endpoint compliance"
role = "endpoint"
weight = 3
fields = ["device.serial_key", "device.compliance", "device.encrypted", "device.last_seen_at",
          "device.os_version", "device_compliance.state"]
metrics = ["endpoint.compliance_rate", "endpoint.encryption_rate", "endpoint.stale_devices",
           "endpoint.cmdb_coverage"]

[criteria.api_openness]
title = "API openness"
weight = 1
# no role: weighed within every role
api = ["writes", "auth_choices", "no_throttling", "no_errors", "latency"]
"""


def load_criteria(path: Path | None) -> dict[str, Criterion]:
    """The criteria file (TOML), or the default; problems are named by key."""
    text = DEFAULT_CRITERIA if path is None else _read(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        parsed = Criteria.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(render_errors(exc, path)) from None
    for name, criterion in parsed.criteria.items():
        for ref in criterion.fields:
            entity, _, field_name = ref.partition(".")
            if entity not in ENTITIES or field_name not in ENTITIES[entity].model_fields:
                raise ConfigError(
                    f"{path or 'default criteria'}: criteria.{name}.fields: {ref!r} is not a "
                    "field of the common model (entity.field, e.g. ticket.priority)"
                )
        where = f"{path or 'default criteria'}: criteria.{name}"
        if criterion.role is not None and criterion.role not in ROLES:
            raise ConfigError(
                f"{where}.role: unknown role {criterion.role!r}; choose from {', '.join(ROLES)}"
            )
        for entity, kinds in criterion.kinds.items():
            if entity not in KIND_ENTITIES:
                raise ConfigError(
                    f"{where}.kinds: {entity!r} has no kinds; only {', '.join(KIND_ENTITIES)} do"
                )
            annotation = ENTITIES[entity].model_fields["kind"].annotation
            allowed = [k.value for k in annotation] if isinstance(annotation, type) else []
            bad = [k for k in kinds if allowed and k not in allowed]
            if bad or not kinds:
                raise ConfigError(
                    f"{where}.kinds.{entity}: {bad or 'empty'} is not a list of "
                    f"{entity.replace('_', ' ')} kinds ({', '.join(allowed)})"
                )
        unknown_api = set(criterion.api) - set(_API_MEASURES)
        if unknown_api:
            raise ConfigError(
                f"{path or 'default criteria'}: criteria.{name}.api: unknown {sorted(unknown_api)}; "
                f"choose from {', '.join(_API_MEASURES)}"
            )
    return parsed.criteria


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the criteria file {path}: {exc.strerror}") from None


@dataclass
class SourceEvaluation:
    """Everything measured about one source."""

    source: str
    platform: str
    status: str
    """``ok``; ``failed: ...`` when its last sync failed; ``never synced``; ``error: ...``."""
    coverage: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    api: dict[str, Any] = field(default_factory=dict)
    integration: dict[str, Any] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)
    kind_coverage: dict[str, dict[str, Any]] = field(default_factory=dict)
    """``entity:kind+kind`` -> records of those kinds and each field's filled count."""
    roles: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Role -> its weighted total over the role's criteria and the rank within the role."""
    total: float | None = None
    """Not a ranking across roles: the weighted total of its first role, for one-line views."""
    rank: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "platform": self.platform,
            "status": self.status,
            "rank": self.rank,
            "total": None if self.total is None else round(self.total, 1),
            "roles": self.roles,
            "scores": self.scores,
            "coverage": self.coverage,
            "kind_coverage": self.kind_coverage,
            "metrics": self.metrics,
            "quality": self.quality,
            "api": self.api,
            "integration": self.integration,
        }


def _present(column: Any, annotation: Any) -> Any:
    """A SQL condition: the record fills this field (unknown enums and empty lists do not)."""
    base = annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        base = next(a for a in typing.get_args(annotation) if a is not type(None))
    origin = typing.get_origin(base)
    if origin is list or base is list:
        return sa.and_(column.is_not(None), sa.cast(column, sa.Text) != "[]")
    condition = column.is_not(None)
    if isinstance(base, type) and issubclass(base, str) and base is not str:
        condition = sa.and_(condition, column != _ENUMS_UNKNOWN)
    elif base is str:
        condition = sa.and_(condition, column != "")
    return condition


def _coverage(
    store: Store, source: str, provided: dict[str, list[str]]
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with store.engine.connect() as conn:
        for entity, model in ENTITIES.items():
            table = ENTITY_TABLES[entity]
            names = [n for n in model.model_fields if n not in _PROVENANCE]
            sums = [sa.func.count().label("total")] + [
                sa.func.sum(
                    sa.case((_present(table.c[n], model.model_fields[n].annotation), 1), else_=0)
                ).label(n)
                for n in names
            ]
            row = conn.execute(
                sa.select(*sums).where(table.c.source == source, table.c.deleted.is_(False))
            ).one()
            total = int(row.total or 0)
            declared = set(provided.get(entity, ()))
            declared |= {f for (e, f), base in DERIVED.items() if e == entity and base in declared}
            fields: dict[str, Any] = {}
            counts: dict[str, int] = {}
            for name in names:
                if entity not in provided or (
                    name not in declared and name not in ("url", "updated_at")
                ):
                    fields[name] = None  # absent: the platform does not provide it
                else:
                    filled = int(row._mapping[name] or 0)
                    counts[name] = filled
                    fields[name] = round(100.0 * filled / total, 1) if total else 0.0
            out[entity] = {
                "provided": entity in provided,
                "records": total,
                "fields": fields,
                "filled": counts,
            }
    return out


def kind_key(entity: str, kinds: list[str] | tuple[str, ...]) -> str:
    return f"{entity}:{'+'.join(kinds)}"


def _kind_coverage(
    store: Store, source: str, entity: str, kinds: list[str], coverage: dict[str, Any]
) -> dict[str, Any]:
    """The fields of ``entity`` filled over its records of ``kinds`` only (a platform's
    stand-ins included: Jira Align's epics are its projects)."""
    from .metrics import kind_condition

    table = ENTITY_TABLES[entity]
    model = ENTITIES[entity]
    shares = coverage.get(entity, {}).get("fields", {})
    names = [n for n, share in shares.items() if share is not None]
    sums = [sa.func.count().label("total")] + [
        sa.func.sum(
            sa.case((_present(table.c[n], model.model_fields[n].annotation), 1), else_=0)
        ).label(n)
        for n in names
    ]
    with store.engine.connect() as conn:
        row = conn.execute(
            sa.select(*sums).where(
                table.c.source == source,
                table.c.deleted.is_(False),
                kind_condition(table, kinds),
            )
        ).one()
    total = int(row.total or 0)
    filled = {n: int(row._mapping[n] or 0) for n in names}
    return {
        "kinds": kinds,
        "records": total,
        "fields": {
            n: (
                None
                if shares.get(n) is None
                else round(100.0 * filled[n] / total, 1)
                if total
                else 0.0
            )
            for n in shares
        },
        "filled": filled,
    }


def _quality(store: Store, source: str, coverage: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Required fields missing, values mapped to unknown, dangling references, duplicate
    identities, quarantined records; only over the fields the platform provides."""

    def provided(entity: str, name: str) -> bool:
        return coverage.get(entity, {}).get("fields", {}).get(name) is not None

    result: dict[str, Any] = {"required_missing": {}, "unknown_values": {}}
    with store.engine.connect() as conn:
        for entity, required in REQUIRED.items():
            table = ENTITY_TABLES[entity]
            model = ENTITIES[entity]
            live = [table.c.source == source, table.c.deleted.is_(False)]
            for name in required:
                if not provided(entity, name):
                    continue
                missing = conn.execute(
                    sa.select(sa.func.count()).where(
                        *live, sa.not_(_present(table.c[name], model.model_fields[name].annotation))
                    )
                ).scalar_one()
                if missing:
                    result["required_missing"][f"{entity}.{name}"] = int(missing)
            for name, info in model.model_fields.items():
                annotation = info.annotation
                enum = isinstance(annotation, type) and issubclass(annotation, str)
                if enum and annotation is not str and provided(entity, name):
                    unknown = conn.execute(
                        sa.select(sa.func.count()).where(*live, table.c[name] == _ENUMS_UNKNOWN)
                    ).scalar_one()
                    if unknown:
                        result["unknown_values"][f"{entity}.{name}"] = int(unknown)
        result["dangling_references"] = _dangling(conn, source)
        devices = ENTITY_TABLES["device"]
        people = ENTITY_TABLES["person"]
        result["duplicate_serials"] = _duplicates(conn, devices, devices.c.serial_key, source)
        result["duplicate_emails"] = _duplicates(conn, people, people.c.email, source)
        result["quarantined"] = int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    quarantine.c.source == source, quarantine.c.resolved.is_(False)
                )
            ).scalar_one()
        )
    return result


def _dangling(conn: Any, source: str) -> int:
    """Links whose target this source's store does not hold: a parent missing or deleted, an
    SLA record of a ticket that is not there. (CI references point into the whole CMDB, not
    only its computers, so they are not counted.)"""
    dangling = 0
    for target_entity, relation in (("work_item", "parent"), ("ticket", "measures")):
        target = ENTITY_TABLES[target_entity]
        exists = sa.exists().where(
            target.c.source == links_table.c.source,
            target.c.source_id == links_table.c.target_ref,
            target.c.deleted.is_(False),
        )
        dangling += int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    links_table.c.source == source,
                    links_table.c.target_entity == target_entity,
                    links_table.c.relation == relation,
                    sa.not_(exists),
                )
            ).scalar_one()
        )
    return dangling


def _duplicates(conn: Any, table: sa.Table, column: Any, source: str) -> int:
    """How many values are held by more than one live record of the source."""
    grouped = (
        sa.select(column)
        .where(table.c.source == source, table.c.deleted.is_(False), column.is_not(None))
        .group_by(column)
        .having(sa.func.count() > 1)
        .subquery()
    )
    return int(conn.execute(sa.select(sa.func.count()).select_from(grouped)).scalar_one())


def _api(store: Store, source: str, recent: int = 10) -> tuple[dict[str, Any], str]:
    with store.engine.connect() as conn:
        runs = conn.execute(
            sa.select(sync_runs)
            .where(sync_runs.c.source == source, sync_runs.c.dry_run.is_(False))
            .order_by(sync_runs.c.id.desc())
            .limit(recent)
        ).all()
    if not runs:
        return {"runs": 0}, "never synced"
    last = runs[0]
    status = "ok" if last.outcome in ("ok", "partial") else f"failed: {last.error or last.outcome}"
    requests = records = 0
    seconds = 0.0
    throttled = server_errors = failures = 0
    p50: list[float] = []
    p95: list[float] = []
    for run in runs:
        manifest = run.manifest or {}
        telemetry = manifest.get("telemetry") or {}
        requests += int(telemetry.get("requests", manifest.get("requests", 0)) or 0)
        throttled += int(telemetry.get("throttled", 0) or 0)
        server_errors += int(telemetry.get("server_errors", 0) or 0)
        failures += int(telemetry.get("failures", 0) or 0)
        if telemetry.get("latency_p50_ms") is not None:
            p50.append(float(telemetry["latency_p50_ms"]))
            p95.append(float(telemetry["latency_p95_ms"]))
        records += sum(int(s.get("read", 0) or 0) for s in (manifest.get("streams") or {}).values())
        if run.ended_at and run.started_at:
            seconds += (run.ended_at - run.started_at).total_seconds()
    return {
        "runs": len(runs),
        "last_outcome": last.outcome,
        "last_error": last.error,
        "failed_runs": sum(1 for r in runs if r.outcome == "failed"),
        "requests": requests,
        "records": records,
        "records_per_second": round(records / seconds, 1) if seconds > 0 else None,
        "latency_p50_ms": round(sorted(p50)[len(p50) // 2], 1) if p50 else None,
        "latency_p95_ms": round(max(p95), 1) if p95 else None,
        "throttled": throttled,
        "server_errors": server_errors,
        "failures": failures,
    }, status


def _api_score(name: str, ev: SourceEvaluation) -> tuple[float, str]:
    api, integration = ev.api, ev.integration
    if name == "writes":
        offered = [w for w in WRITE_KINDS if w in integration.get("writes", [])]
        return 100.0 * len(offered) / len(
            WRITE_KINDS
        ), f"write-back: {', '.join(offered) or 'none'}"
    if name == "auth_choices":
        kinds = integration.get("auth_types", [])
        return min(100.0, 50.0 * len(kinds)), f"auth: {', '.join(kinds) or 'unknown'}"
    if not api.get("runs"):
        return 0.0, "no sync recorded"
    if name == "no_throttling":
        return (100.0 if not api["throttled"] else 50.0), f"{api['throttled']} throttled answers"
    if name == "no_errors":
        bad = api["failed_runs"] + api["server_errors"] + api["failures"]
        return (100.0 if not bad else max(0.0, 100.0 - 20.0 * bad)), (
            f"{api['failed_runs']} failed runs, {api['server_errors']} server errors, "
            f"{api['failures']} dropped connections"
        )
    if name == "latency":
        p95 = api.get("latency_p95_ms")
        if p95 is None:
            return 0.0, "no latency recorded"
        # 100 at or under 500 ms at the 95th percentile, falling to 0 at 5 s.
        score = max(0.0, min(100.0, 100.0 * (5000.0 - p95) / 4500.0))
        return score, f"p95 latency {p95} ms"
    raise ValueError(name)


_API_MEASURES = ("writes", "auth_choices", "no_throttling", "no_errors", "latency")


WRITE_WORDS = {
    "demand": "create a demand",
    "work_item:project": "create a project from a template",
    "work_item:epic": "create an epic",
    "ticket:incident": "open an incident",
}


def field_evidence(
    ev: SourceEvaluation, ref: str, kinds: dict[str, list[str]]
) -> tuple[float, str, int, int]:
    """A field's score (its filled share) with the words behind it, and (filled, records)."""
    entity, _, field_name = ref.partition(".")
    wanted = kinds.get(entity, [])
    cover = ev.kind_coverage.get(kind_key(entity, wanted)) if wanted else ev.coverage.get(entity)
    what = field_name.replace("_", " ")
    share = (cover or {}).get("fields", {}).get(field_name)
    if share is None:
        if not ev.coverage.get(entity, {}).get("provided"):
            return 0.0, f"{what}: the platform keeps no {noun(entity)} it could come from", 0, 0
        return 0.0, f"{what}: the platform does not provide it for {noun(entity, wanted)}", 0, 0
    records = int(cover.get("records", 0)) if cover else 0
    filled = int((cover or {}).get("filled", {}).get(field_name, round(share * records / 100)))
    counted = noun(entity, wanted)
    if not records:
        return 0.0, f"{what}: provided, but no {counted} are synced to measure it on", 0, 0
    return float(share), f"{what} filled on {filled} of {records} {counted}", filled, records


def metric_evidence(ev: SourceEvaluation, metric_id: str) -> tuple[float, str]:
    info = ev.metrics.get(metric_id, {})
    if info.get("supported"):
        return 100.0, f"{metric_id} can be computed (over {info.get('n', 0)} records)"
    return 0.0, f"{metric_id} cannot be computed: {info.get('why') or 'no data'}"


def write_evidence(ev: SourceEvaluation, write: str) -> tuple[float, str]:
    what = WRITE_WORDS.get(write, write)
    if write in ev.integration.get("writes", []):
        return 100.0, f"can {what} through its API"
    return 0.0, f"cannot {what} through its API (the adapter offers no such write)"


def criteria_of_role(criteria: dict[str, Criterion], role: str) -> dict[str, Criterion]:
    """The criteria weighed within ``role``: its own and those of every role."""
    return {n: c for n, c in criteria.items() if c.role in (None, role)}


def score(ev: SourceEvaluation, criteria: dict[str, Criterion]) -> None:
    """Each criterion's score (the mean of its components, 0-100) with its evidence in plain
    words, n/a for a criterion outside every role the platform fills; and the weighted total
    of each role it fills."""
    mine = roles_of(ev.platform) or list(ROLES)
    for name, criterion in criteria.items():
        if criterion.role is not None and criterion.role not in mine:
            ev.scores[name] = {
                "title": criterion.title,
                "weight": criterion.weight,
                "role": criterion.role,
                "score": None,
                "applies": False,
                "evidence": [
                    {
                        "measure": "role",
                        "score": None,
                        "why": f"n/a: {ev.platform} is not a candidate for "
                        f"{ROLES[criterion.role].title} (role {criterion.role})",
                    }
                ],
            }
            continue
        components: list[tuple[str, float, str]] = []
        for ref in criterion.fields:
            value, why, _filled, _records = field_evidence(ev, ref, criterion.kinds)
            components.append((ref, value, why))
        for metric_id in criterion.metrics:
            value, why = metric_evidence(ev, metric_id)
            components.append((metric_id, value, why))
        for write in criterion.writes:
            value, why = write_evidence(ev, write)
            components.append((f"write {write}", value, why))
        for measure in criterion.api:
            value, why = _api_score(measure, ev)
            components.append((f"api {measure}", value, why))
        value = sum(c[1] for c in components) / len(components) if components else 0.0
        ev.scores[name] = {
            "title": criterion.title,
            "weight": criterion.weight,
            "role": criterion.role,
            "score": round(value, 1),
            "applies": True,
            "evidence": [{"measure": m, "score": round(s, 1), "why": w} for m, s, w in components],
        }
    ev.roles = {}
    for role in roles_of(ev.platform):
        weighted = weights = 0.0
        for name, criterion in criteria_of_role(criteria, role).items():
            weighted += criterion.weight * float(ev.scores[name]["score"])
            weights += criterion.weight
        ev.roles[role] = {
            "title": ROLES[role].title,
            "total": round(weighted / weights, 1) if weights else None,
            "rank": None,
        }
    first = next(iter(ev.roles.values()), None)
    ev.total = None if first is None else first["total"]


def role_totals(
    results: list[SourceEvaluation],
    criteria: dict[str, Criterion],
    role: str,
    weights: dict[str, float] | None = None,
) -> dict[str, float | None]:
    """Each source's weighted total within ``role`` (other ``weights`` for a what-if)."""
    chosen = criteria_of_role(criteria, role)
    out: dict[str, float | None] = {}
    for ev in results:
        if role not in roles_of(ev.platform):
            continue
        top = bottom = 0.0
        for name, criterion in chosen.items():
            weight = (weights or {}).get(name, criterion.weight)
            top += weight * float(ev.scores[name]["score"])
            bottom += weight
        out[ev.source] = top / bottom if bottom else None
    return out


def rank_roles(results: list[SourceEvaluation]) -> None:
    """Rank the sources within each role, best first; a source's ``rank`` is its first role's."""
    for role in ROLES:
        members = [ev for ev in results if role in ev.roles]
        members.sort(key=lambda e: (-(e.roles[role]["total"] or 0.0), e.source))
        for position, ev in enumerate(members, start=1):
            ev.roles[role]["rank"] = position
    for ev in results:
        first = next(iter(ev.roles.values()), None)
        ev.rank = None if first is None else first["rank"]


def evaluate(
    config: Config,
    store: Store,
    sources: list[str] | None = None,
    *,
    criteria: dict[str, Criterion] | None = None,
    pm: Registry,
    now: datetime | None = None,
) -> list[SourceEvaluation]:
    """Measure and score every source (or those named); ranked by total, best first."""
    from .sync import build_adapter

    criteria = criteria if criteria is not None else load_criteria(None)
    names = sources or list(config.sources)
    unknown = [n for n in names if n not in config.sources]
    if unknown:
        raise ConfigError(
            f"no source named {', '.join(unknown)} in the config "
            f"(sources: {', '.join(config.sources) or 'none'})"
        )
    results: list[SourceEvaluation] = []
    for name in names:
        source = config.sources[name]
        ev = SourceEvaluation(source=name, platform=source.platform, status="ok")
        provided: dict[str, list[str]] = {}
        try:
            adapter = build_adapter(config, name, pm)
            try:
                caps = adapter.capabilities()
            finally:
                adapter.close()
            provided = caps.entities
            ev.integration = {
                "auth_types": caps.auth_types,
                "configured_auth": source.auth.type if source.auth else None,
                "permissions": caps.permissions,
                "writes": caps.writes,
                "streams": sorted(caps.entities),
            }
        except CrosswalkError as exc:
            ev.status = f"error: {exc}"
            ev.integration = {"auth_types": [], "permissions": [], "writes": [], "streams": []}
        ev.api, sync_status = _api(store, name)
        if not ev.status.startswith("error"):
            ev.status = sync_status
        ev.coverage = _coverage(store, name, provided)
        for criterion in criteria.values():
            for entity, kinds in criterion.kinds.items():
                key = kind_key(entity, kinds)
                if key not in ev.kind_coverage:
                    ev.kind_coverage[key] = _kind_coverage(store, name, entity, kinds, ev.coverage)
        ev.quality = _quality(store, name, ev.coverage)
        for result in compute_metrics(
            store, config, source=name, now=now or datetime.now(UTC), pm=pm
        ):
            ev.metrics[result.id] = {
                "supported": result.unsupported is None and result.n > 0,
                "value": None if result.value is None else round(result.value, 4),
                "n": result.n,
                "why": result.unsupported or ("no records in scope" if result.n == 0 else None),
            }
        score(ev, criteria)
        results.append(ev)
    rank_roles(results)
    order = {role: i for i, role in enumerate(ROLES)}
    return sorted(
        results,
        key=lambda e: (
            min((order[r] for r in e.roles), default=len(order)),
            e.rank or 0,
            e.source,
        ),
    )
