"""Remediation, opt-in per control: ``open_tickets = "SOURCE"`` opens one incident per alarm.

Each alarm gets a correlation id made from its control and resource, so the platform's
writer finds the incident it opened before instead of opening another (idempotent even if
this history is lost). When the alarm clears, the platform's resolver (``resolvers`` beside
the writers) resolves the incident with a note saying why, the clearing is recorded here, and
the report lists it.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import ConfigError, CrosswalkError
from . import history
from .engine import ComplianceRun

if TYPE_CHECKING:
    from ..contract import Registry

log = logging.getLogger("itcrosswalk.compliance")

WRITER = "ticket:incident"


def correlation_id(control_id: str, resource: str) -> str:
    """A stable id (at most 100 characters, as ServiceNow's correlation_id) for one alarm."""
    digest = hashlib.sha256(f"{control_id}\x00{resource}".encode()).hexdigest()[:40]
    return f"itcrosswalk-{digest}"


@dataclass
class Remediation:
    """What remediation did in one run."""

    opened: list[dict[str, Any]] = field(default_factory=list)
    existing: list[dict[str, Any]] = field(default_factory=list)
    cleared: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _fields(control: Any, finding: Any) -> dict[str, Any]:
    label = finding.dimensions.get("label") or finding.resource
    lines = [
        f"itcrosswalk compliance control {control.id}: {control.title}",
        f"Resource: {label} ({finding.resource})",
        f"Finding: {finding.reason}",
    ]
    if finding.url:
        lines.append(f"Record: {finding.url}")
    lines += [
        "",
        f"Why it matters: {control.rationale.strip()}",
        "",
        f"What to do: {control.remediation.strip()}",
    ]
    title = f"[{control.severity}] {control.title}: {label}"
    return {"title": title[:160], "description": "\n".join(lines)}


def remediate(
    store: Any, config: Any, run: ComplianceRun, *, pm: Registry, dry_run: bool = False
) -> Remediation:
    """Open an incident for each alarm of the opted-in controls; note the ones that cleared."""
    from ..sync import build_adapter

    done = Remediation()
    wanted = [r for r in run.results if r.control.open_tickets and not r.error]
    if not wanted:
        return done
    engine: sa.Engine = store.engine
    history.ensure_tables(engine)
    table = history.remediations
    with engine.connect() as conn:
        known = {
            (row.control_id, row.resource): row
            for row in conn.execute(sa.select(table).where(table.c.resolved_at.is_(None)))
        }
    adapters: dict[str, Any] = {}
    try:
        for result in wanted:
            control = result.control
            target = str(control.open_tickets)
            try:
                if target not in adapters:
                    adapters[target] = build_adapter(config, target, pm)
                writer = adapters[target].writers.get(WRITER)
                if writer is None:
                    raise ConfigError(
                        f"control {control.id}: open_tickets names source {target}, whose "
                        f"platform cannot open incidents"
                    )
            except CrosswalkError as exc:
                done.problems.append(str(exc))
                continue
            statuses = {f.resource: f.status for f in result.findings}
            for finding in result.findings:
                if finding.status != "alarm" or (control.id, finding.resource) in known:
                    continue
                cid = correlation_id(control.id, finding.resource)
                try:
                    written = writer(_fields(control, finding), correlation_id=cid, dry_run=dry_run)
                except CrosswalkError as exc:
                    done.problems.append(f"{control.id} {finding.resource}: {exc}")
                    continue
                entry = {
                    "control_id": control.id,
                    "resource": finding.resource,
                    "source": target,
                    "correlation_id": cid,
                    "ticket_id": written.source_id,
                    "url": written.url,
                    "action": written.action,
                }
                (done.opened if written.action in ("created", "dry_run") else done.existing).append(
                    entry
                )
                if dry_run:
                    continue
                with engine.begin() as conn:
                    conn.execute(
                        table.delete().where(
                            table.c.control_id == control.id, table.c.resource == finding.resource
                        )
                    )
                    conn.execute(
                        table.insert().values(
                            control_id=control.id,
                            resource=finding.resource[:512],
                            target=target,
                            correlation_id=cid,
                            ticket_id=written.source_id,
                            ticket_url=written.url,
                            opened_at=datetime.now(UTC),
                        )
                    )
            # An alarm that is now ok, or gone, has cleared; an unverified one has not.
            resolver = adapters[target].resolvers.get(WRITER)
            for (control_id, resource), row in known.items():
                if control_id != control.id or statuses.get(resource) in ("alarm", "unverified"):
                    continue
                now = statuses.get(resource, "gone")
                entry = {
                    "control_id": control_id,
                    "resource": resource,
                    "ticket_id": row.ticket_id,
                    "url": row.ticket_url,
                    "now": now,
                    "action": "noted",
                }
                if resolver is not None:
                    note = (
                        f"Resolved by itcrosswalk: control {control_id} no longer finds "
                        f"{resource} out of line (now {now})."
                    )
                    try:
                        entry["action"] = resolver(
                            row.correlation_id, note=note, dry_run=dry_run
                        ).action
                    except CrosswalkError as exc:
                        done.problems.append(f"{control_id} {resource}: resolving: {exc}")
                        continue
                done.cleared.append(entry)
                if not dry_run:
                    with engine.begin() as conn:
                        conn.execute(
                            table.update()
                            .where(table.c.control_id == control_id, table.c.resource == resource)
                            .values(resolved_at=datetime.now(UTC))
                        )
    finally:
        for adapter in adapters.values():
            adapter.close()
    for problem in done.problems:
        log.warning("remediation: %s", problem)
    return done
