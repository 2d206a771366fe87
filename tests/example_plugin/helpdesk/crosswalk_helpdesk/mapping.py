"""The crosswalk tables: Helpdesk's native values -> the common model's, and one ticket mapped.

Plain data, so ``crosswalk plugins show helpdesk`` prints the tables as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from itcrosswalk.core.model import Ticket, TicketKind, TicketState

STATUSES: dict[str, TicketState] = {
    "new": TicketState.NEW,
    "open": TicketState.IN_PROGRESS,
    "pending": TicketState.ON_HOLD,
    "solved": TicketState.RESOLVED,
    "closed": TicketState.CLOSED,
    "deleted": TicketState.CANCELLED,
}
PRIORITIES: dict[str, int] = {"urgent": 1, "high": 2, "normal": 3, "low": 4}


def parse_time(value: Any) -> datetime | None:
    """Helpdesk writes ISO 8601 with a ``Z``."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def map_ticket(raw: Mapping[str, Any], *, source: str, base: str) -> Ticket:
    """One Helpdesk ticket as a common-model Ticket; raises (and is quarantined) if malformed."""
    return Ticket(
        source=source,
        platform="helpdesk",
        source_id=str(raw["id"]),
        url=f"{base}/tickets/{raw['id']}",
        kind=TicketKind.REQUEST,
        number=raw.get("ref"),
        title=raw.get("subject"),
        priority=PRIORITIES.get(raw.get("priority") or ""),
        state=STATUSES.get(raw.get("status") or "", TicketState.UNKNOWN),
        opened_at=parse_time(raw.get("created")),
        resolved_at=parse_time(raw.get("solved_at")),
        created_at=parse_time(raw.get("created")),
        updated_at=parse_time(raw.get("updated")),
        assignment_group=raw.get("group"),
        requester=raw.get("requester_email"),
        department=raw.get("department"),
        extra={"channel": raw["channel"]} if raw.get("channel") else {},
    )


def describe() -> dict[str, Any]:
    """The tables, for ``crosswalk plugins show helpdesk``."""
    return {
        "ticket.state": {k: v.value for k, v in STATUSES.items()},
        "ticket.priority": PRIORITIES,
    }
