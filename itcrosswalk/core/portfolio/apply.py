"""Decisions back to the platforms: approving the funded demands through each platform's
approver, where the adapter offers one (``adapter.approvers["demand"]``).

An approver is called ``approver(source_id, note=..., dry_run=...)`` and returns a
:class:`~itcrosswalk.core.adapter.WriteResult` whose action is ``approved``,
``already_approved`` (nothing sent: applying twice changes nothing) or ``dry_run``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import CrosswalkError


def approve(
    funded: Sequence[Mapping[str, Any]],
    adapter_for: Callable[[str], Any],
    *,
    note: str,
    dry_run: bool = True,
) -> list[dict[str, Any]]:
    """One row per funded candidate: what was (or would be) done on its platform."""
    rows: list[dict[str, Any]] = []
    adapters: dict[str, Any] = {}
    try:
        for item in funded:
            row = {"candidate": item["candidate"], "platform": item["platform"],
                   "entity": item["entity"], "action": None, "detail": ""}  # fmt: skip
            rows.append(row)
            if item["entity"] != "demand":
                row["action"] = "skipped"
                row["detail"] = (
                    "not a demand: a funded proposal is approved in its platform's own stage gate"
                )
                continue
            source = item["source"]
            if source not in adapters:
                adapters[source] = adapter_for(source)
            approvers = getattr(adapters[source], "approvers", None) or {}
            approver = approvers.get("demand")
            if approver is None:
                row["action"] = "no_writer"
                row["detail"] = f"the {item['platform']} adapter cannot approve a demand"
                continue
            try:
                result = approver(item["source_id"], note=note, dry_run=dry_run)
            except CrosswalkError as exc:
                row["action"] = "error"
                row["detail"] = str(exc)
                continue
            row["action"] = result.action
            row["detail"] = "; ".join(
                f"{r['method']} {r['url']}" for r in result.requests if r["method"] != "GET"
            )
    finally:
        for adapter in adapters.values():
            adapter.close()
    return rows
