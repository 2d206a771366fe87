"""A ServiceNow Table API double for the benches: ``incident`` only, read-only, over HTTPS.

Written from the platform notes (``platforms/servicenow.md`` of the shared folder), independent
of the project's emulator, adapter and mapping (it imports nothing of itcrosswalk), so a bench
measures the client against a server that shares none of its code:

- ``GET /api/now/table/incident`` with basic auth; every value a string; with
  ``sysparm_display_value=all`` every field is ``{"display_value", "value"}`` (reference fields
  add ``link`` unless ``sysparm_exclude_reference_link=true``), dates shown in the calling user's
  time zone (US/Pacific) while the stored value is UTC;
- ``sysparm_query``: ``sys_updated_on`` with ``>= > = <= <``, ``sys_id>``, ``ORDERBY`` and
  ``ORDERBYDESC`` of ``sys_updated_on``/``sys_id`` (the rows are kept in that order); a term on
  another field is ignored, as the platform ignores a misspelt one;
- ``sysparm_limit``/``sysparm_offset``, ``X-Total-Count``, and the ``Link`` header (``first``,
  ``prev``, ``next``, ``last``) unless ``sysparm_suppress_pagination_header=true``;
- ``sysparm_fields``; 401 without the credentials, 400 for another table.

The rows are made from their index, so any number of them costs no memory: row ``i`` was last
updated ``i // 3`` seconds after the base time (three rows share each second, as bulk updates
do), and its ``sys_id`` starts with ``i`` in hex, so ``(sys_updated_on, sys_id)`` order is index
order. Run: ``python bench/snow_double.py --incidents N --ca ca.pem``; it prints its URL.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import ssl
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

BASE = datetime(2025, 1, 6, 8, 0, 0, tzinfo=UTC)
PER_SECOND = 3
PACIFIC = timedelta(hours=-8)
STATES = [("1", "New"), ("2", "In Progress"), ("3", "On Hold"), ("6", "Resolved"), ("7", "Closed"), ("8", "Canceled")]  # fmt: skip
PRIORITIES = [("1", "1 - Critical"), ("2", "2 - High"), ("3", "3 - Moderate"), ("4", "4 - Low"), ("5", "5 - Planning")]  # fmt: skip
CATEGORIES = [("inquiry", "Inquiry / Help"), ("software", "Software"), ("hardware", "Hardware"), ("network", "Network"), ("database", "Database")]  # fmt: skip
GROUPS = [(hashlib.md5(f"group{g}".encode()).hexdigest(), f"Service Desk {g}") for g in range(20)]
USERS = [(hashlib.md5(f"user{u}".encode()).hexdigest(), f"User {u:03d}") for u in range(300)]
CIS = [(hashlib.md5(f"ci{c}".encode()).hexdigest(), f"PC-{c:05d}") for c in range(2000)]
DEPARTMENTS = [(hashlib.md5(f"dept{d}".encode()).hexdigest(), f"Department {d}") for d in range(12)]
REFERENCE = {"assignment_group": "sys_user_group", "assigned_to": "sys_user", "caller_id": "sys_user",
             "opened_by": "sys_user", "resolved_by": "sys_user", "closed_by": "sys_user",
             "cmdb_ci": "cmdb_ci", "department": "cmn_department", "company": "core_company",
             "location": "cmn_location", "sys_domain": "sys_user_group", "business_service": "cmdb_ci_service",
             "parent": "task", "problem_id": "problem", "rfc": "change_request", "caused_by": "change_request"}  # fmt: skip
# The incident's other columns (what a baseline instance sends), as (name, stored, display).
STATIC = [
    ("active", "true", "true"), ("activity_due", "", "UNKNOWN"), ("additional_assignee_list", "", ""),
    ("approval", "not requested", "Not Yet Requested"), ("approval_history", "", ""),
    ("approval_set", "", ""), ("business_duration", "", ""), ("business_impact", "", ""),
    ("business_stc", "", ""), ("calendar_duration", "", ""), ("calendar_stc", "", ""),
    ("cause", "", ""), ("child_incidents", "0", "0"), ("close_code", "", ""), ("close_notes", "", ""),
    ("comments", "", ""), ("comments_and_work_notes", "", ""), ("company", "", ""),
    ("contact_type", "email", "Email"), ("contract", "", ""), ("correlation_display", "", ""),
    ("correlation_id", "", ""), ("delivery_plan", "", ""), ("delivery_task", "", ""),
    ("description", "", ""), ("due_date", "", ""), ("escalation", "0", "Normal"),
    ("expected_start", "", ""), ("follow_up", "", ""), ("group_list", "", ""),
    ("hold_reason", "", ""), ("impact", "2", "2 - Medium"), ("incident_state", "", ""),
    ("knowledge", "false", "false"), ("location", "", ""), ("made_sla", "true", "true"),
    ("notify", "1", "Do Not Notify"), ("order", "", ""), ("origin_id", "", ""), ("origin_table", "", ""),
    ("parent", "", ""), ("parent_incident", "", ""), ("problem_id", "", ""), ("reopened_by", "", ""),
    ("reopened_time", "", ""), ("resolved_by", "", ""), ("rfc", "", ""), ("route_reason", "", ""),
    ("service_offering", "", ""), ("severity", "3", "3 - Low"), ("sla_due", "", "UNKNOWN"),
    ("subcategory", "", ""), ("sys_class_name", "incident", "Incident"), ("sys_created_by", "admin", "admin"),
    ("sys_domain", "global", "global"), ("sys_domain_path", "/", "/"), ("sys_tags", "", ""),
    ("sys_updated_by", "system", "system"), ("task_effective_number", "", ""), ("time_worked", "", ""),
    ("universal_request", "", ""), ("upon_approval", "proceed", "Proceed to Next Task"),
    ("upon_reject", "cancel", "Cancel all future Tasks"), ("urgency", "2", "2 - Medium"),
    ("user_input", "", ""), ("watch_list", "", ""), ("work_end", "", ""), ("work_notes", "", ""),
    ("work_notes_list", "", ""), ("work_start", "", ""), ("business_service", "", ""),
    ("caused_by", "", ""), ("closed_by", "", ""),
]  # fmt: skip


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def updated(i: int) -> datetime:
    return BASE + timedelta(seconds=i // PER_SECOND)


def sys_id(i: int) -> str:
    return f"{i:010x}" + hashlib.md5(str(i).encode()).hexdigest()[:22]


def _fields(i: int) -> dict[str, tuple[str, str]]:
    """The columns of incident ``i`` that vary, as ``name -> (stored, display)``."""
    h = int(hashlib.md5(str(i).encode()).hexdigest()[:12], 16)
    state, state_label = STATES[h % len(STATES)]
    opened = updated(i) - timedelta(minutes=(h >> 4) % 20000)
    resolved = opened + timedelta(minutes=(h >> 8) % 5000) if state in ("6", "7") else None
    closed = resolved + timedelta(days=3) if state == "7" and resolved else None
    if resolved and resolved > updated(i):
        resolved = closed = None
        state, state_label = "2", "In Progress"
    number = f"INC{i + 10_000_000:010d}"
    values: dict[str, tuple[str, str]] = {
        "sys_id": (sys_id(i), sys_id(i)),
        "number": (number, number),
        "task_effective_number": (number, number),
        "short_description": (f"Cannot reach shared drive {i % 97}",) * 2,
        "state": (state, state_label),
        "priority": PRIORITIES[(h >> 12) % 5],
        "category": CATEGORIES[(h >> 16) % 5],
        "assignment_group": GROUPS[(h >> 20) % len(GROUPS)],
        "assigned_to": USERS[(h >> 24) % len(USERS)] if state != "1" else ("", ""),
        "caller_id": USERS[(h >> 28) % len(USERS)],
        "opened_by": USERS[(h >> 32) % len(USERS)],
        "department": DEPARTMENTS[(h >> 36) % len(DEPARTMENTS)],
        "cmdb_ci": CIS[(h >> 40) % len(CIS)] if h % 3 else ("", ""),
        "reassignment_count": (str((h >> 6) % 4),) * 2,
        "reopen_count": (str(int(h % 17 == 0)),) * 2,
        "sys_mod_count": (str((h >> 10) % 9),) * 2,
    }
    for name, moment in (
        ("sys_created_on", opened),
        ("opened_at", opened),
        ("sys_updated_on", updated(i)),
        ("resolved_at", resolved),
        ("closed_at", closed),
    ):
        values[name] = (_stamp(moment), _stamp(moment + PACIFIC)) if moment else ("", "")
    return values


def _field(name: str, stored: str, shown: str, base_url: str, links: bool) -> dict[str, str]:
    field = {"display_value": shown, "value": stored}
    if links and name in REFERENCE and stored:
        field["link"] = f"{base_url}/api/now/table/{REFERENCE[name]}/{stored}"
    return field


_STATIC_JSON: dict[tuple[str, bool], str] = {}


def row_json(i: int, base_url: str, links: bool) -> str:
    """Incident ``i`` as the Table API's JSON with ``sysparm_display_value=all`` (the fixed
    columns serialised once, the varying ones per row: the double must not be the bottleneck)."""
    values = _fields(i)
    static = _STATIC_JSON.get((base_url, links))
    if static is None:
        fixed = {n: _field(n, v, d, base_url, links) for n, v, d in STATIC if n not in values}
        static = _STATIC_JSON[(base_url, links)] = json.dumps(fixed)[1:-1]
    varying = json.dumps({n: _field(n, v, d, base_url, links) for n, (v, d) in values.items()})
    return "{" + static + ", " + varying[1:]


def row(i: int, base_url: str, links: bool) -> dict[str, object]:
    """Incident ``i`` as the Table API gives it with ``sysparm_display_value=all``."""
    return json.loads(row_json(i, base_url, links))


def plain(full: dict[str, object], mode: str) -> dict[str, object]:
    """The row in ``sysparm_display_value`` ``false`` (stored) or ``true`` (labels) mode."""
    key = "display_value" if mode == "true" else "value"
    return {name: field[key] for name, field in full.items()}  # type: ignore[index]


_TERM = re.compile(r"^(sys_updated_on|sys_id)(>=|<=|!=|>|<|=)(.*)$")


def _seconds(text: str) -> int:
    moment = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return int((moment - BASE).total_seconds())


def select(query: str, total: int) -> tuple[int, int, bool]:
    """The rows ``[lo, hi)`` an encoded query matches, and whether it asks for newest first."""
    lo, hi, descending = 0, total, False
    for term in filter(None, query.split("^")):
        if term.startswith("ORDERBYDESC"):
            descending = True
            continue
        if term.startswith("ORDERBY"):
            continue
        match = _TERM.match(term)
        if not match:
            continue  # the platform ignores what it does not know (a misspelt field widens)
        field, op, operand = match.groups()
        if field == "sys_updated_on":
            s = _seconds(operand)
            first, past = s * PER_SECOND, (s + 1) * PER_SECOND  # the rows of that second
            bounds = {">=": (first, None), ">": (past, None), "<": (None, first), "<=": (None, past), "=": (first, past)}  # fmt: skip
            if op == "!=":
                continue
            low, high = bounds[op]
        else:
            index = int(operand[:10], 16) if re.fullmatch(r"[0-9a-f]{32}", operand) else -1
            if op not in (">", ">=", "="):
                continue
            low = index + (op == ">") if index >= 0 else 0
            high = index + 1 if op == "=" else None
        if low is not None:
            lo = max(lo, low)
        if high is not None:
            hi = min(hi, high)
    lo, hi = max(0, min(lo, total)), max(0, min(hi, total))
    return lo, max(lo, hi), descending


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ServiceNow"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for key, val in (headers or {}).items():
            self.send_header(key, val)
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, detail: str = "") -> None:
        body = {"error": {"message": message, "detail": detail}, "status": "failure"}
        self._send(status, json.dumps(body).encode())

    def do_GET(self) -> None:  # noqa: N802
        server: Double = self.server  # type: ignore[assignment]
        if self.headers.get("Authorization") != server.expected_auth:
            self._error(401, "User Not Authenticated", "Required to provide Auth information")
            return
        parts = urlsplit(self.path)
        match = re.fullmatch(r"/api/now/(v[12]/)?table/([A-Za-z0-9_]+)", parts.path)
        if not match:
            self._error(400, "Requested URI does not represent any resource")
            return
        if match.group(2) != "incident":
            self._error(400, "Invalid table " + match.group(2))
            return
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        limit = int(params.get("sysparm_limit") or 10000)
        offset = int(params.get("sysparm_offset") or 0)
        mode = params.get("sysparm_display_value", "false").lower()
        links = params.get("sysparm_exclude_reference_link", "false").lower() != "true"
        wanted = [f for f in params.get("sysparm_fields", "").split(",") if f]
        lo, hi, descending = select(params.get("sysparm_query", ""), server.total)
        count = hi - lo
        indexes = range(lo, hi)[::-1] if descending else range(lo, hi)
        chosen = indexes[offset : offset + limit]
        rows: list[str] = []
        for i in chosen:
            if mode == "all" and not wanted:
                rows.append(row_json(i, server.url, links))
                continue
            full = row(i, server.url, links)
            out = full if mode == "all" else plain(full, mode)
            if wanted:
                out = {f: out[f] for f in wanted if f in out}
            rows.append(json.dumps(out))
        if not rows and match.group(1) != "v2/" and count == 0:
            self._error(404, "No Record found", "Records matching query not found. Check query parameter or offset parameter")  # fmt: skip
            return
        headers = {"X-Total-Count": str(count)}
        if params.get("sysparm_suppress_pagination_header", "false").lower() != "true":
            headers["Link"] = self._links(parts.path, params, offset, limit, count)
        self._send(200, ('{"result": [' + ", ".join(rows) + "]}").encode(), headers)

    def _links(self, path: str, params: dict[str, str], offset: int, limit: int, count: int) -> str:
        server: Double = self.server  # type: ignore[assignment]

        def at(where: int) -> str:
            query = urlencode({**params, "sysparm_offset": str(where), "sysparm_limit": str(limit)})
            return f"<{server.url}{path}?{query}>"

        last = max(0, (count - 1) // limit * limit) if limit else 0
        out = [f'{at(0)};rel="first"']
        if offset > 0:
            out.append(f'{at(max(0, offset - limit))};rel="prev"')
        if offset + limit < count:
            out.append(f'{at(offset + limit)};rel="next"')
        out.append(f'{at(last)};rel="last"')
        return ",".join(out)


class Double(ThreadingHTTPServer):
    daemon_threads = True
    url = ""
    total = 0
    expected_auth = ""


def serve(total: int, ca_path: Path, user: str, password: str) -> Double:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    server = Double(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.url = f"https://127.0.0.1:{server.server_address[1]}"
    server.total = total
    server.expected_auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=100_000)
    parser.add_argument(
        "--ca", type=Path, default=Path(tempfile.gettempdir()) / "snow-double-ca.pem"
    )
    parser.add_argument("--user", default="bench")
    parser.add_argument("--password", default="bench-password")
    args = parser.parse_args()
    server = serve(args.incidents, args.ca, args.user, args.password)
    print(server.url, args.incidents, flush=True)
    try:
        sys.stdin.read()  # until the bench closes our stdin (or the process is ended)
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
