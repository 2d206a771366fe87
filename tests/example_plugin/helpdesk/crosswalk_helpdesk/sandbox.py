"""The Helpdesk emulator: the seeded city's service requests in Helpdesk's API shape, served
over loopback HTTPS by the sandbox, honouring the fault switches every emulator honours.

Written from the platform's API description (the guide's "The platform" section), never from
the adapter: it imports neither ``adapter`` nor ``mapping``.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from itcrosswalk.sandbox.emulator import Emulator, Response
from itcrosswalk.sandbox.faults import Faults
from itcrosswalk.sandbox.world import World

API = "/api/v1"
STATUS = {
    "new": "new",
    "in_progress": "open",
    "on_hold": "pending",
    "resolved": "solved",
    "closed": "closed",
    "cancelled": "deleted",
}
PRIORITY = {1: "urgent", 2: "high", 3: "normal", 4: "low", 5: "low"}


def _stamp(value: datetime | None) -> str | None:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


class HelpdeskEmulator(Emulator):
    """``GET /api/v1/me`` and ``GET /api/v1/tickets`` with a bearer token."""

    def __init__(
        self, world: World, faults: Faults | None = None, *, users: dict[str, str] | None = None
    ) -> None:
        self.faults = faults or Faults()
        self.users = dict(users or {"crosswalk": "helpdesk-token"})
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.RLock()
        people = {p.id: p.upn for p in world.people}
        departments = {d.id: d.name for d in world.departments}
        self.tickets: list[dict[str, Any]] = [
            {
                "id": 5000 + n,
                "ref": f"HD-{5000 + n}",
                "subject": t.title,
                "status": STATUS.get(t.state, t.state),
                "priority": PRIORITY[t.priority],
                "group": t.assignment_group,
                "requester_email": people.get(t.caller_id or ""),
                "department": departments.get(t.department, t.department),
                "channel": "portal",
                "created": _stamp(t.opened),
                "updated": _stamp(t.updated),
                "solved_at": _stamp(t.resolved),
            }
            for n, t in enumerate(t for t in world.tickets if t.kind == "request")
        ]

    def _json(self, status: str, body: Any, *headers: tuple[str, str]) -> Response:
        return status, [("Content-Type", "application/json"), *headers], json.dumps(body).encode()

    def dispatch(self, environ: dict[str, Any], method: str, path: str, query: str) -> Response:
        fault = self.faults.take(listing=path == f"{API}/tickets")
        if fault == "throttle":
            wait = ("Retry-After", str(int(self.faults.retry_after)))
            return self._json("429 Too Many Requests", {"message": "rate limit exceeded"}, wait)
        if fault == "error":
            return self._json("503 Service Unavailable", {"message": "try again shortly"})
        scheme, _, token = environ.get("HTTP_AUTHORIZATION", "").partition(" ")
        with self.lock:
            user = next((u for u, t in self.users.items() if t == token.strip()), None)
        if scheme.lower() != "bearer" or user is None:
            return self._json("401 Unauthorized", {"message": "invalid or expired API token"})
        if method == "GET" and path == f"{API}/me":
            return self._json("200 OK", {"name": user})
        if method == "GET" and path == f"{API}/tickets":
            params = {k: v[-1] for k, v in parse_qs(query).items()}
            status, headers, body = self._list(params)
            if fault == "malformed":
                body = body[: len(body) // 2]  # the connection dropped mid-body
            return status, headers, body
        return self._json("404 Not Found", {"message": f"no route {method} {path}"})

    def _list(self, params: dict[str, str]) -> Response:
        try:
            limit = min(int(params.get("limit", "25")), 100)
            offset = int(params.get("offset", "0"))
            since = params.get("updated_since")
            floor = datetime.fromisoformat(since).astimezone(UTC) if since else None
        except ValueError as exc:
            return self._json("400 Bad Request", {"message": f"bad parameter: {exc}"})
        with self.lock:
            rows = [
                row
                for row in self.tickets
                if (floor is None or datetime.fromisoformat(row["updated"]) >= floor)
                and ("group" not in params or row["group"] == params["group"])
            ]
            rows.sort(key=lambda row: (row["updated"], row["id"]))
            page = rows[offset : offset + limit]
            body = {"tickets": [dict(row) for row in page], "total": len(rows)}
            for row in rows[offset + limit :][: self.faults.mutate_between_pages]:
                row["updated"] = _stamp(datetime.now(UTC))  # edited while the client reads
        return self._json("200 OK", body)


def create_app(world: World, faults: Faults | None = None, **kwargs: Any) -> HelpdeskEmulator:
    """The emulator serving ``world`` (``users``: name -> API token)."""
    return HelpdeskEmulator(world, faults, **kwargs)


def sandbox_source(user: str, secret_ref: str) -> dict[str, Any]:
    """The ``[sources.NAME]`` keys that point itcrosswalk at the emulator: its API token."""
    return {"auth": {"type": "bearer", "token": secret_ref}}
