"""A Project Web App on loopback: ProjectData and ProjectServer as Project Server answers them.

It serves the city's ``project_online`` work (projects, summary tasks, milestones, with leaf tasks,
assignments, baselines, issues and risks around them) and its people as enterprise resources,
following ``shared/platforms/project_online.md``:

- ``/_api/ProjectData/<Set>``: OData v3 with ``$filter`` (eq ne gt ge lt le, and/or/not,
  ``guid'..'``, ``datetime'..'``, strings, numbers, booleans, null), ``$select``, ``$top``,
  ``$skip``, ``/$count``; a 400 for an unknown property or a literal of the wrong type;
  server-driven paging with a different row limit per entity set and ``$skiptoken`` next links;
- the JSON format chosen by the Accept header: verbose (``{"d": {"results", "__next"}}``,
  ``__metadata``, ``/Date(ms)/``) or light (``{"value", "odata.nextLink"}``, ISO dates); decimals
  as strings, integers as numbers; Atom XML when no JSON is asked for;
- ``/_api/contextinfo`` and ``/_api/ProjectServer``: enterprise project types, custom fields,
  ``Projects/Add``, ``checkOut``, ``Draft/SetCustomFieldValue``, ``Draft/Update``,
  ``Draft/Publish(true)``, ``Draft/CheckIn``, queue jobs, ``deleteObject``; POSTs need a valid
  ``X-RequestDigest``; a project checked out by someone else refuses a checkout with
  ``CICOCheckedOutToOtherUser``;
- authentication: NTLM (a real NTLMv2 challenge/response, :mod:`.sandbox_ntlm`;
  a ``FedAuth`` cookie then carries the session, as SharePoint's Windows claims do), basic, a
  bearer token (a user's secret, or one issued by the emulated Entra endpoints below), and the
  refusal of app-only tokens; a bad or missing credential answers 401, or, with ``signin_trap``,
  SharePoint's HTML sign-in page (``"200"``) or a redirect to it (``"302"``);
- the Entra ID sign-in (device code, refresh token, client credentials for registered ``apps``)
  from :mod:`itcrosswalk.sandbox.entra`, any tenant name accepted;
- faults from :class:`itcrosswalk.sandbox.faults.Faults` (latency, 429 with ``Retry-After``, 503,
  truncated bodies, rows changing between pages).

It is put together from one module per job: :mod:`.sandbox_schema` (the entity sets and their
properties), :mod:`.sandbox_rows` (the world rendered as rows: where new data goes),
:mod:`.sandbox_odata` (``$filter``, formats, paging, ``$metadata``),
:mod:`.sandbox_projectserver` (CSOM), :mod:`.sandbox_auth` and :mod:`.sandbox_ntlm` (sign-in);
this module routes a request to them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from ...sandbox.emulator import Emulator, Response
from ...sandbox.entra import Entra
from ...sandbox.faults import Faults
from ...sandbox.world import World
from .sandbox_auth import PwaAuthentication
from .sandbox_ntlm import NtlmAcceptor
from .sandbox_odata import ODataError, ProjectDataFeed
from .sandbox_projectserver import ProjectServerApi
from .sandbox_rows import ReportingRows, ServerProject
from .sandbox_schema import (
    CUSTOM_FIELDS,
    DEMO_CUSTOM_FIELDS,
    KEYS,
    MODIFIED,
    PAGE_LIMITS,
    SCHEMA,
    guid,
)

__all__ = ["DEMO_CUSTOM_FIELDS", "ProjectServerEmulator", "create_app", "demo_source"]


def demo_source(user: str, secret_ref: str) -> dict[str, Any]:
    """The ``[sources.X]`` keys that point itcrosswalk at this emulator (for ``crosswalk demo``)."""
    return {
        "auth": {"type": "ntlm", "user": f"CITY\\{user}", "password": secret_ref},
        "custom_fields": dict(DEMO_CUSTOM_FIELDS),
    }


class ProjectServerEmulator(
    ReportingRows, ProjectDataFeed, ProjectServerApi, PwaAuthentication, Emulator
):
    """The WSGI app. ``sets`` holds the ProjectData rows, typed (datetimes aware, decimals float)."""

    def __init__(
        self,
        world: World,
        faults: Faults,
        *,
        users: dict[str, str],
        page_limits: dict[str, int] | None = None,
        signin_trap: str | None = None,
        missing_sets: Iterable[str] = (),
        zone: str = "UTC",
        token_lifetime: int = 3600,
        ntlm: bool = True,
        hidden_properties: dict[str, set[str]] | None = None,
        link_host: str | None = None,
        apps: dict[str, str] | None = None,
        cloud: str = "global",
    ) -> None:
        self.world = world
        self.faults = faults
        self.users = dict(users)
        self.page_limits = {**PAGE_LIMITS, **(page_limits or {})}
        self.signin_trap = signin_trap
        self.missing_sets = set(missing_sets)
        self.zone = ZoneInfo(zone)
        self.ntlm = NtlmAcceptor(self.users) if ntlm else None
        # An older or trimmed instance lacks some properties (a 400 when a query names them).
        self.schema = {
            name: {
                k: v
                for k, v in props.items()
                if k not in (hidden_properties or {}).get(name, set())
            }
            for name, props in SCHEMA.items()
        }
        # Alternate access mappings: next links naming the server's internal host.
        self.link_host = link_host
        self.lock = threading.RLock()
        self.sets: dict[str, list[dict[str, Any]]] = {name: [] for name in SCHEMA}
        self.custom_ids = {
            name: "Custom_" + guid("cf", name).replace("-", "") for name in CUSTOM_FIELDS
        }
        self.server_projects: dict[str, ServerProject] = {}
        self.digests: dict[str, float] = {}
        self.sessions: dict[str, str] = {}  # FedAuth cookie -> user
        self.entra = Entra(
            users=self.users, apps=apps or {}, token_lifetime=token_lifetime, cloud=cloud
        )
        """The Entra ID sign-in (any tenant name; ``entra.pending()``/``approve()`` play the
        person at the browser, ``entra.token_lifetime`` how long access tokens really live)."""
        self.jobs: dict[str, int] = {}
        self.fail_actions: dict[str, str] = {}
        """Draft action -> the PJClientCallableException it answers with (a test's switch)."""
        self.requests_seen: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self._build()

    # -- helpers for tests ---------------------------------------------------------------------------

    def project_row(self, name: str) -> dict[str, Any]:
        return next(r for r in self.sets["Projects"] if r["ProjectName"] == name)

    def check_out_as(self, project_id: str, user: str) -> None:
        """Someone else (``CITY\\jsmith``) opens the project in Project Professional."""
        with self.lock:
            self.server_projects[project_id].checked_out_by = user

    def touch(self, set_name: str, row: dict[str, Any], **values: Any) -> None:
        """Change a row as a publish would: new values and a new modified date."""
        with self.lock:
            row.update(values)
            if set_name in MODIFIED:
                row[MODIFIED[set_name]] = datetime.now(UTC).replace(microsecond=0)

    def delete_project(self, project_id: str) -> None:
        with self.lock:
            self.server_projects.pop(project_id, None)
            for name in SCHEMA:
                self.sets[name] = [r for r in self.sets[name] if r.get("ProjectId") != project_id]

    # -- WSGI --------------------------------------------------------------------------------------

    def dispatch(self, environ: dict[str, Any], method: str, path: str, query: str) -> Response:
        try:
            return self.handle(environ)
        except ODataError as exc:
            return self._error(exc, self._verbose(environ))

    def throttled(self, wait: int) -> Response:
        error = {
            "code": "-2147024860, Microsoft.SharePoint.SPQueryThrottledException",
            "message": {
                "lang": "en-US",
                "value": "The request has been throttled. Try again later.",
            },
        }
        headers = [("Content-Type", "application/json;odata=verbose;charset=utf-8")]
        return (
            "429 Too Many Requests",
            [*headers, ("Retry-After", str(wait))],
            json.dumps({"error": error}).encode(),
        )

    def unavailable(self) -> Response:
        page = b"<html><head><title>Service Unavailable</title></head><body><h2>HTTP Error 503. The service is unavailable.</h2></body></html>"
        return "503 Service Unavailable", [("Content-Type", "text/html")], page

    def has(self, native_id: str) -> bool:
        with self.lock:
            return any(
                native_id in (str(r.get(k)) for k in KEYS[name])
                for name, rows in self.sets.items()
                for r in rows
            )

    def forget(self, native_id: str) -> bool:
        with self.lock:
            known = native_id in self.server_projects
        if known:
            self.delete_project(native_id)
        return known

    def handle(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        self.requests_seen.append(f"{method} {path}")
        base = f"https://{environ.get('HTTP_HOST', '127.0.0.1')}"
        if self.entra.handles(path):
            return self.entra.serve(environ, method, path)
        if "/_api/" not in path:
            return (
                "404 Not Found",
                [("Content-Type", "text/html")],
                b"<html><title>404 NOT FOUND</title></html>",
            )
        prefix, _, rest = path.partition("/_api/")
        base += prefix
        fault, answer = self.fault(listing=rest.startswith("ProjectData/"))
        if answer:
            return answer
        user, extra_headers, refusal = self._authenticate(environ, base)
        if refusal is not None:
            return refusal
        assert user is not None
        if rest == "contextinfo" and method == "POST":
            status, headers, body = self._contextinfo(environ, base)
        elif rest.startswith("ProjectData"):
            if method != "GET":
                raise ODataError(405, "The ProjectData service is read-only.")
            status, headers, body = self._feed(
                environ, rest[len("ProjectData") :], query, base, fault
            )
        elif rest.startswith("ProjectServer/"):
            status, headers, body = self._server(
                environ, rest[len("ProjectServer/") :], method, query, user
            )
        else:
            raise ODataError(404, f"Resource not found for the segment '{rest.split('/')[0]}'.")
        return status, headers + extra_headers, body


def create_app(
    world: World, faults: Faults, *, users: dict[str, str], **options: Any
) -> ProjectServerEmulator:
    """The emulator for ``world`` (its ``project_online`` work and its people)."""
    return ProjectServerEmulator(world, faults, users=users, **options)
