"""Microsoft Graph (Intune and Entra ID) on loopback, as the real service answers.

It serves the sandbox city's Intune slice under ``/v1.0`` following
``shared/platforms/intune.md``: managed devices (1000 per page at most, ``$top``, ``$select``,
absolute ``@odata.nextLink`` with an opaque ``$skiptoken``), compliance policies and their
``deviceStatuses`` (ids ``{user}_{policy}_{device}``, as real tenants return them), detected
apps and the devices they were found on, Entra ID users (``department`` and ``accountEnabled``
only when ``$select``-ed, ``$expand=manager``), and ``POST /$batch`` (20 requests at most, JSON
bodies as objects). The traps are kept: ``$filter`` on managed devices is honoured only for
``lastSyncDateTime``/``enrolledDateTime`` with ``gt``/``lt`` and silently ignored otherwise,
except ``deviceName`` which answers Intune's 500 with its own JSON inside ``error.message``;
serials ``""``, ``"0"`` and firmware placeholders; ``0001-01-01T00:00:00Z`` for "never" and
``9999-12-31T23:59:59Z`` for "no end"; seven fractional digits.

Errors use Graph's body (``{"error": {"code", "message", "innerError"}}``); 429 carries
``Retry-After``. An Entra ID token endpoint (``/{tenant}/oauth2/v2.0/token`` and the OpenID
configuration MSAL reads first) runs the client-credentials grant with a secret or a signed
certificate assertion, so azure-identity's real credentials are exercised. Faults come from
:class:`itcrosswalk.sandbox.faults.Faults`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from ...sandbox.emulator import Emulator
from ...sandbox.entra import Entra
from ...sandbox.faults import Faults
from ...sandbox.world import World

SANDBOX_TENANT = "0c1e7a5e-5a1d-4c17-9e0a-c17a0f5a4d80"
DEVICES_READ = "DeviceManagementManagedDevices.Read.All"
CONFIG_READ = "DeviceManagementConfiguration.Read.All"
USERS_READ = "User.Read.All"
ALL_PERMISSIONS = frozenset({DEVICES_READ, CONFIG_READ, USERS_READ})
NEVER = "0001-01-01T00:00:00Z"
NO_END = "9999-12-31T23:59:59Z"
DEVICE_PAGE = 1000
USER_PAGE_DEFAULT = 100
USER_PAGE_MAX = 999
# Properties Graph returns for a user when no $select names others.
USER_DEFAULT_PROPERTIES = (
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)
POLICY_NAMES = {
    "Windows": [
        "Windows - BitLocker required",
        "Windows - Defender and firewall",
        "Windows - minimum OS 10.0.19045",
    ],
    "macOS": ["macOS - FileVault required", "macOS - firewall", "macOS - minimum OS 13"],
    "iOS": ["iOS - passcode", "iOS - not jailbroken", "iOS - minimum OS 16"],
    "Android": [
        "Android - device encryption",
        "Android - not rooted",
        "Android - security patch level",
    ],
}
ENROLLMENT = {
    "Windows": "windowsAzureADJoin",
    "macOS": "appleUserEnrollment",
    "iOS": "appleBulkWithUser",
    "Android": "androidEnterpriseFullyManaged",
}


def guid(*parts: str) -> str:
    """A stable GUID for a world object."""
    digest = hashlib.sha256("/".join(parts).encode()).hexdigest()
    return str(uuid.UUID(digest[:32]))


def _ts(moment: datetime | None, *, fraction: bool = False) -> str:
    if moment is None:
        return NEVER
    moment = moment.astimezone(UTC)
    if fraction:  # Graph's DateTimeOffset with seven fractional digits
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}1Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(code: str, message: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    request_id = str(uuid.uuid4())
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {"date": now, "request-id": request_id, "client-request-id": request_id},
        }
    }


Response = tuple[str, list[tuple[str, str]], bytes]


class GraphEmulator(Emulator):
    """The WSGI application. Tests reach in to change the tenant while it runs.

    Args:
        world: the city to serve.
        faults: the switchable faults.
        users: client id -> client secret of the app registrations it accepts.
        tenant: the tenant id the token endpoint serves.
        certificates: client id -> PEM certificate whose key signs that app's assertions.
        permissions: client id -> Graph application permissions granted (default: all three).
        status_page: rows per page of ``deviceStatuses`` (Graph's own page size varies).
        cloud: the national cloud (``global``, ``usgov``, ``dod``, ``china``) the sign-in says it is in.
    """

    def __init__(
        self,
        world: World,
        faults: Faults | None = None,
        *,
        users: dict[str, str] | None = None,
        tenant: str = SANDBOX_TENANT,
        certificates: dict[str, bytes] | None = None,
        permissions: dict[str, set[str]] | None = None,
        status_page: int = 1000,
        app_page: int = 50,
        cloud: str = "global",
    ) -> None:
        self.world = world
        self.faults = faults or Faults()
        self.tenant = tenant
        self.entra = Entra(
            tenant=tenant, apps=users or {}, certificates=certificates or {}, cloud=cloud
        )
        """The Entra ID sign-in (``entra.issue_token``, ``expire_tokens``, ``revoke_tokens``,
        ``expired_secrets`` are the tests' switches)."""
        self.permissions = {k: set(v) for k, v in (permissions or {}).items()}
        self.status_page = status_page
        self.app_page = app_page
        self.break_next_links = False
        """When set, every request carrying a ``$skiptoken`` answers Intune's 500."""
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str]] = []
        self.devices: list[dict[str, Any]] = []
        self.policies: list[dict[str, Any]] = []
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.apps: list[dict[str, Any]] = []
        self.app_devices: dict[str, list[str]] = {}
        self.users_: list[dict[str, Any]] = []
        self._render()

    # -- the tenant ---------------------------------------------------------------------------

    def _render(self) -> None:
        w = self.world
        person = {p.id: p for p in w.people}
        departments = {d.id: d.name for d in w.departments}
        for i, p in enumerate(w.people):
            manager = person.get(p.manager_id) if p.manager_id else None
            self.users_.append(
                {
                    "id": guid("user", p.id),
                    "businessPhones": [],
                    "displayName": p.name,
                    "givenName": p.first_name,
                    "surname": p.last_name,
                    "jobTitle": p.title,
                    # Directories hold some addresses in other cases; a few users have no mailbox.
                    "mail": None if i % 13 == 5 else p.upn,
                    "mobilePhone": None,
                    "officeLocation": p.office,
                    "preferredLanguage": "en-US" if i % 3 else None,
                    "userPrincipalName": p.upn.title() if i % 9 == 4 else p.upn,
                    "department": departments.get(p.department),
                    "accountEnabled": p.active,
                    "createdDateTime": _ts(p.created),
                    "_manager": guid("user", manager.id) if manager else None,
                }
            )
        by_os: dict[str, list[dict[str, Any]]] = {}
        for os_name, names in POLICY_NAMES.items():
            for n, name in enumerate(names):
                policy: dict[str, Any] = {
                    "@odata.type": "#microsoft.graph."
                    + {
                        "Windows": "windows10CompliancePolicy",
                        "macOS": "macOSCompliancePolicy",
                        "iOS": "iosCompliancePolicy",
                        "Android": "androidCompliancePolicy",
                    }[os_name],
                    "id": guid("policy", os_name, str(n)),
                    "displayName": name,
                    "description": "",
                    "createdDateTime": _ts(w.now - timedelta(days=700), fraction=True),
                    "lastModifiedDateTime": _ts(w.now - timedelta(days=90 + n), fraction=True),
                    "version": n + 1,
                }
                self.policies.append(policy)
                by_os.setdefault(os_name, []).append(policy)
                self.statuses[policy["id"]] = []
        for i, d in enumerate(w.devices):
            if not d.in_intune:
                continue
            owner = person.get(d.owner_id) if d.owner_id else None
            device_id = guid("device", d.id)
            user_id = guid("user", owner.id) if owner else ""
            upn = owner.upn if owner else ""
            if owner and i % 11 == 3:
                upn = owner.upn.title()  # Intune reports the UPN as the user typed it at enrolment
            grace = d.compliance == "inGracePeriod"
            raw: dict[str, Any] = {
                "@odata.type": "#microsoft.graph.managedDevice",
                "id": device_id,
                "userId": user_id,
                "deviceName": d.name,
                "managedDeviceOwnerType": d.ownership,
                "enrolledDateTime": _ts(d.enrolled),
                "lastSyncDateTime": _ts(d.last_seen, fraction=i % 4 == 0),
                "operatingSystem": d.os,
                "complianceState": d.compliance,
                "jailBroken": "Unknown" if d.os in ("Windows", "macOS") else "False",
                "managementAgent": "configurationManagerClientMdm" if i % 17 == 2 else "mdm",
                "osVersion": d.os_version,
                "easActivated": False,
                "easDeviceId": "",
                "easActivationDateTime": NEVER,
                "azureADRegistered": True,
                "deviceEnrollmentType": ENROLLMENT.get(d.os, "unknown"),
                "activationLockBypassCode": None,
                "emailAddress": upn,
                "azureADDeviceId": guid("aad", d.id),
                "deviceRegistrationState": "registered",
                "deviceCategoryDisplayName": "Unknown",
                "isSupervised": d.os == "iOS",
                "exchangeLastSuccessfulSyncDateTime": NEVER,
                "exchangeAccessState": "none",
                "exchangeAccessStateReason": "none",
                "remoteAssistanceSessionUrl": None,
                "remoteAssistanceSessionErrorDetails": None,
                "isEncrypted": d.encrypted,
                "userPrincipalName": upn,
                "model": d.model,
                "manufacturer": d.manufacturer,
                "imei": "",
                "complianceGracePeriodExpirationDateTime": _ts(d.last_seen + timedelta(days=3))
                if grace
                else NO_END,
                "serialNumber": d.serial,
                "phoneNumber": "",
                "androidSecurityPatchLevel": "2026-09-01" if d.os == "Android" else "",
                "userDisplayName": owner.name if owner else "",
                "configurationManagerClientEnabledFeatures": None,
                "wiFiMacAddress": "",
                "deviceHealthAttestationState": None,
                "subscriberCarrier": "",
                "meid": "",
                "totalStorageSpaceInBytes": 255_369_297_920,
                "freeStorageSpaceInBytes": 101_874_302_976 + i,
                "managedDeviceName": f"{(upn or 'device').split('@')[0]}_{d.os}_{d.enrolled:%m/%d/%Y_%I:%M %p}",
                "partnerReportedThreatState": "unknown",
                "deviceActionResults": [],
                "_updated": d.updated,
            }
            self.devices.append(raw)
            for n, policy in enumerate(by_os.get(d.os, [])):
                self.statuses[policy["id"]].append(
                    self._status(raw, policy, n, d.encrypted, owner is not None)
                )
        devices_by_world = {d.id: guid("device", d.id) for d in w.devices if d.in_intune}
        for app in w.apps:
            on = [devices_by_world[x] for x in app.device_ids if x in devices_by_world]
            app_id = hashlib.sha256(f"app/{app.id}".encode()).hexdigest()[:44]
            self.apps.append(
                {
                    "@odata.type": "#microsoft.graph.detectedApp",
                    "id": app_id,
                    "displayName": app.name,
                    "version": app.version,
                    "sizeInByte": 1_048_576 * (len(app.name) + 3),
                    "deviceCount": len(on),
                    "publisher": app.publisher,
                    "platform": "windows",
                }
            )
            self.app_devices[app_id] = on

    def _status(
        self,
        device: dict[str, Any],
        policy: dict[str, Any],
        n: int,
        encrypted: bool,
        has_user: bool,
    ) -> dict[str, Any]:
        state = device["complianceState"]
        if state == "compliant":
            status = (
                "compliant" if n != 1 or device["freeStorageSpaceInBytes"] % 7 else "remediated"
            )
        elif state == "noncompliant":
            status = "nonCompliant" if (n == 0 and not encrypted) or n == 2 else "compliant"
        elif state == "inGracePeriod":
            status = "nonCompliant" if n == 0 else "compliant"
        elif state in ("conflict", "error"):
            status = state if n == 0 else "compliant"
        else:
            status = "unknown"
        user = device["userId"] or "00000000-0000-0000-0000-000000000000"
        return {
            "@odata.type": "#microsoft.graph.deviceComplianceDeviceStatus",
            "id": f"{user}_{policy['id']}_{device['id']}",
            "deviceDisplayName": device["deviceName"],
            "userName": device["userDisplayName"] or "System account",
            "deviceModel": None,
            "platform": 0,
            "complianceGracePeriodExpirationDateTime": device[
                "complianceGracePeriodExpirationDateTime"
            ].replace("59Z", "59.9999999Z"),
            "status": status,
            "lastReportedDateTime": device["lastSyncDateTime"]
            if "." in device["lastSyncDateTime"]
            else device["lastSyncDateTime"].replace("Z", ".1234567Z"),
            "userPrincipalName": device["userPrincipalName"] or "System account",
        }

    def retire(self, device_id: str) -> None:
        """A device retired or wiped: it vanishes from every list, as in Intune."""
        with self.lock:
            self.devices = [d for d in self.devices if d["id"] != device_id]
            for policy_id, rows in self.statuses.items():
                self.statuses[policy_id] = [r for r in rows if not r["id"].endswith(device_id)]

    def has(self, native_id: str) -> bool:
        with self.lock:
            kinds = (self.devices, self.users_, self.policies, self.apps)
            return any(r.get("id") == native_id for rows in kinds for r in rows)

    def forget(self, native_id: str) -> bool:
        with self.lock:
            if not any(d["id"] == native_id for d in self.devices):
                return False
        self.retire(native_id)
        return True

    def add_device(self, **fields: Any) -> dict[str, Any]:
        """Enrol a device with exactly these fields (tests use it for odd records)."""
        with self.lock:
            raw = {"@odata.type": "#microsoft.graph.managedDevice", **fields}
            self.devices.append(raw)
            return raw

    # -- HTTP ---------------------------------------------------------------------------------

    content_type = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

    def json(
        self, status: str | int, payload: Any, extra: list[tuple[str, str]] | None = None
    ) -> Response:
        return super().json(status, payload, [("request-id", str(uuid.uuid4())), *(extra or [])])

    def throttled(self, wait: int) -> Response:
        return self._fail(
            "429 Too Many Requests",
            "TooManyRequests",
            "Too many requests from Identifier:" + self.tenant + " under category:throttled.",
            [("Retry-After", str(wait))],
        )

    def unavailable(self) -> Response:
        return self._fail(
            "503 Service Unavailable", "ServiceUnavailable", "Service is unavailable, retry later."
        )

    def _fail(
        self, status: str, code: str, message: str, extra: list[tuple[str, str]] | None = None
    ) -> Response:
        return self.json(status, _error(code, message), extra)

    def _origin(self, environ: dict[str, Any]) -> str:
        return f"https://{environ.get('HTTP_HOST') or environ.get('SERVER_NAME', '127.0.0.1')}"

    def dispatch(self, environ: dict[str, Any], method: str, path: str, query: str) -> Response:
        if self.entra.handles(path):
            return self.entra.serve(environ, method, path)
        fault, answer = self.fault(listing=method == "GET")
        if answer:
            return answer
        client = self._client(environ)
        if client is None:
            header = environ.get("HTTP_AUTHORIZATION", "")
            if self.entra.revoked(environ):
                claims = base64.b64encode(
                    json.dumps(
                        {
                            "access_token": {
                                "nbf": {"essential": True, "value": str(int(time.time()))}
                            }
                        }
                    ).encode()
                ).decode()
                return self._fail(
                    "401 Unauthorized",
                    "InvalidAuthenticationToken",
                    "Continuous access evaluation resulted in challenge with result: InteractionRequired and code: TokenIssuedBeforeRevocationTimestamp",
                    [
                        (
                            "WWW-Authenticate",
                            'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
                            f'client_id="00000003-0000-0000-c000-000000000000", error="insufficient_claims", claims="{claims}"',
                        )
                    ],
                )
            message = (
                "Access token is empty."
                if not header
                else "Lifetime validation failed, the token is expired."
            )
            return self._fail(
                "401 Unauthorized",
                "InvalidAuthenticationToken",
                message,
                [
                    (
                        "WWW-Authenticate",
                        'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"',
                    )
                ],
            )
        if not path.startswith("/v1.0/"):
            return self._fail("400 Bad Request", "BadRequest", "Invalid version.")
        resource = path[len("/v1.0") :]
        params = self.params(query)
        if method == "POST" and resource == "/$batch":
            return self._batch(environ, client)
        if method != "GET":
            return self._fail(
                "405 Method Not Allowed",
                "Request_BadRequest",
                "The requested method is not supported.",
            )
        status, headers, body = self._get(environ, client, resource, params)
        if fault == "malformed" and status.startswith("200"):
            return self.cut((status, headers, body))
        return status, headers, body

    def _client(self, environ: dict[str, Any]) -> str | None:
        grant = self.entra.bearer(environ)
        return None if grant is None or grant.expired else grant.client_id

    def _allowed(self, client: str, permission: str) -> bool:
        granted = self.permissions.get(client)
        return permission in (ALL_PERMISSIONS if granted is None else granted)

    def _denied(self, permission: str) -> Response:
        if permission == USERS_READ:
            return self._fail(
                "403 Forbidden",
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
            )
        detail = json.dumps(
            {
                "_version": 3,
                "Message": f"Application is not authorized to perform this operation. Application must have one of the following scopes: {permission}, {permission.replace('.Read.', '.ReadWrite.')} - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: {uuid.uuid4()} - Url: https://fef.msub01.manage.microsoft.com/",
                "CustomApiErrorPhrase": "",
                "RetryAfter": None,
                "ErrorSourceService": "",
                "HttpHeaders": "{}",
            }
        )
        return self._fail("403 Forbidden", "Forbidden", detail)

    def _get(
        self, environ: dict[str, Any], client: str, resource: str, params: dict[str, str]
    ) -> Response:
        parts = [p for p in resource.split("/") if p]
        if parts[:1] == ["deviceManagement"]:
            rest = parts[1:]
            need = CONFIG_READ if rest[:1] == ["deviceCompliancePolicies"] else DEVICES_READ
            if not self._allowed(client, need):
                return self._denied(need)
            if rest == ["managedDevices"]:
                return self._devices(environ, resource, params)
            if len(rest) == 2 and rest[0] == "managedDevices":
                found = next((d for d in self.devices if d["id"] == rest[1]), None)
                if found is None:
                    return self._fail("404 Not Found", "ResourceNotFound", "Resource not found")
                return self.json("200 OK", self._shape(found, params.get("$select")))
            if rest == ["deviceCompliancePolicies"]:
                return self._page(environ, resource, params, self.policies, 100)
            if (
                len(rest) == 3
                and rest[0] == "deviceCompliancePolicies"
                and rest[2] == "deviceStatuses"
            ):
                rows = self.statuses.get(rest[1])
                if rows is None:
                    return self._fail("404 Not Found", "ResourceNotFound", "Resource not found")
                return self._page(environ, resource, params, rows, self.status_page)
            if rest == ["detectedApps"]:
                return self._page(environ, resource, params, self.apps, self.app_page)
            if len(rest) == 3 and rest[0] == "detectedApps" and rest[2] == "managedDevices":
                ids = self.app_devices.get(rest[1])
                if ids is None:
                    return self._fail("404 Not Found", "ResourceNotFound", "Resource not found")
                wanted = set(ids)
                rows = [d for d in self.devices if d["id"] in wanted]
                return self._page(environ, resource, params, rows, 100)
            return self._fail(
                "400 Bad Request",
                "BadRequest",
                f"Resource not found for the segment '{rest[-1] if rest else 'deviceManagement'}'.",
            )
        if parts[:1] == ["users"]:
            if not self._allowed(client, USERS_READ):
                return self._denied(USERS_READ)
            if parts == ["users"]:
                return self._users(environ, resource, params)
            if len(parts) == 3 and parts[2] == "manager":
                user = next(
                    (u for u in self.users_ if parts[1] in (u["id"], u["userPrincipalName"])), None
                )
                manager = next(
                    (u for u in self.users_ if user and u["id"] == user["_manager"]), None
                )
                if manager is None:
                    return self._fail(
                        "404 Not Found",
                        "Request_ResourceNotFound",
                        "Resource 'manager' does not exist or one of its queried reference-property objects are not present.",
                    )
                return self.json(
                    "200 OK", {"@odata.type": "#microsoft.graph.user", **self._user(manager, None)}
                )
        return self._fail(
            "400 Bad Request",
            "BadRequest",
            f"Resource not found for the segment '{parts[0] if parts else ''}'.",
        )

    # -- collections --------------------------------------------------------------------------

    @staticmethod
    def _shape(raw: dict[str, Any], select: str | None) -> dict[str, Any]:
        if select:
            fields = [f.strip() for f in select.split(",") if f.strip()]
            return {f: raw.get(f) for f in fields if not f.startswith("_")}
        return {k: v for k, v in raw.items() if not k.startswith("_")}

    def _page(
        self,
        environ: dict[str, Any],
        resource: str,
        params: dict[str, str],
        rows: list[dict[str, Any]],
        default: int,
        maximum: int | None = None,
        shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        edit: Callable[[dict[str, Any]], None] | None = None,
    ) -> Response:
        """One page of ``rows``; ``edit`` is how a row the read has not reached yet changes
        while it pages (``faults.mutate_between_pages``)."""
        token = params.get("$skiptoken")
        if token is not None and self.break_next_links:
            return self._intune_500(environ, resource)
        offset = 0
        if token is not None:
            try:
                offset = int(json.loads(base64.urlsafe_b64decode(token + "==").decode())["o"])
            except (ValueError, KeyError, TypeError):
                return self._fail("400 Bad Request", "BadRequest", "Invalid $skiptoken.")
        try:
            size = int(params.get("$top", default))
        except ValueError:
            return self._fail("400 Bad Request", "BadRequest", "Invalid value for $top.")
        size = max(1, min(size, maximum or default))
        chunk = rows[offset : offset + size]
        make = shape or (lambda r: self._shape(r, params.get("$select")))
        body: dict[str, Any] = {
            "@odata.context": f"{self._origin(environ)}/v1.0/$metadata#{resource.strip('/')}",
            "value": [make(r) for r in chunk],
        }
        if offset + size < len(rows):
            kept = {k: v for k, v in params.items() if k != "$skiptoken"}
            skip = (
                base64.urlsafe_b64encode(
                    json.dumps({"o": offset + size, "n": secrets.token_hex(4)}).encode()
                )
                .decode()
                .rstrip("=")
            )
            kept["$skiptoken"] = skip
            body["@odata.nextLink"] = f"{self._origin(environ)}/v1.0{resource}?" + urlencode(
                kept, quote_via=quote, safe="$,()=' "
            )
        ahead = rows[offset + size :][::-1] if edit else []  # the last ones check in first
        with self.lock:
            self.page_served(ahead, edit or (lambda row: None))
        return self.json("200 OK", body)

    def _intune_500(self, environ: dict[str, Any], resource: str) -> Response:
        inner = json.dumps(
            {
                "_version": 3,
                "Message": f"An internal server error has occurred - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: {uuid.uuid4()} - Url: https://fef.msub01.manage.microsoft.com/DeviceFE/StatelessDeviceFEService{resource}?api-version=2023-10-19",
                "CustomApiErrorPhrase": "",
                "RetryAfter": None,
                "ErrorSourceService": "",
                "HttpHeaders": "{}",
            }
        )
        return self._fail("500 Internal Server Error", "InternalServerError", inner)

    def _devices(self, environ: dict[str, Any], resource: str, params: dict[str, str]) -> Response:
        rows = list(self.devices)
        text = params.get("$filter")
        if text:
            terms = re.findall(r"(\w+)\s+(eq|ne|gt|lt|ge|le)\s+('(?:[^']|'')*'|[\w:.\-]+)", text)
            names = {t[0] for t in terms}
            if "deviceName" in names:
                return self._intune_500(environ, resource)
            honoured = {"lastSyncDateTime", "enrolledDateTime"}
            if (
                terms
                and names <= honoured
                and all(op in ("gt", "lt") for _n, op, _v in terms)
                and " or " not in text
            ):
                for name, op, value in terms:
                    bound = value.strip("'")
                    rows = (
                        [r for r in rows if (r.get(name) or NEVER) > bound]
                        if op == "gt"
                        else [r for r in rows if (r.get(name) or NEVER) < bound]
                    )
            # Any other filter is silently ignored: every device comes back.
        # Devices the read has not reached yet check in while it pages.
        return self._page(environ, resource, params, rows, DEVICE_PAGE, edit=self._checked_in)

    @staticmethod
    def _checked_in(row: dict[str, Any]) -> None:
        row["lastSyncDateTime"] = _ts(datetime.now(UTC), fraction=True)

    def _user(self, raw: dict[str, Any], select: str | None) -> dict[str, Any]:
        if select:
            return self._shape(raw, select)
        return {k: raw.get(k) for k in USER_DEFAULT_PROPERTIES}

    def _users(self, environ: dict[str, Any], resource: str, params: dict[str, str]) -> Response:
        select = params.get("$select")
        expand = params.get("$expand", "")
        match = re.fullmatch(r"manager(?:\(\$select=([^)]*)\))?", expand) if expand else None
        if expand and match is None:
            return self._fail(
                "400 Bad Request",
                "Request_BadRequest",
                f"Could not find a property named '{expand}' on type 'microsoft.graph.user'.",
            )
        by_id = {u["id"]: u for u in self.users_}

        def shape(raw: dict[str, Any]) -> dict[str, Any]:
            out = self._user(raw, select)
            if match is not None:
                manager = by_id.get(raw["_manager"]) if raw["_manager"] else None
                if manager is not None:
                    picked = self._user(manager, match.group(1))
                    out["manager"] = {"@odata.type": "#microsoft.graph.user", **picked}
            return out

        return self._page(
            environ, resource, params, self.users_, USER_PAGE_DEFAULT, USER_PAGE_MAX, shape
        )

    # -- $batch -------------------------------------------------------------------------------

    def _batch(self, environ: dict[str, Any], client: str) -> Response:
        try:
            payload = self.json_body(environ, {})
            requests = payload["requests"]
            assert isinstance(requests, list)
        except (ValueError, KeyError, AssertionError):
            return self._fail("400 Bad Request", "BadRequest", "Invalid batch payload format.")
        if len(requests) > 20:
            return self._fail(
                "400 Bad Request",
                "BadRequest",
                "The number of batch requests exceeds the limit of 20.",
            )
        answers = []
        for item in requests:
            url = str(item.get("url", ""))
            split = urlsplit(url if url.startswith("/") else "/" + url)
            if str(item.get("method", "GET")).upper() != "GET":
                status, headers, body = self._fail(
                    "405 Method Not Allowed", "BadRequest", "Only GET in this emulator's $batch."
                )
            else:
                fault = self.faults.take(listing=False)
                if fault == "throttle":
                    status, headers, body = self._fail(
                        "429 Too Many Requests",
                        "TooManyRequests",
                        "Too many requests.",
                        # An item's headers ride in the JSON: omitted here, not on the way out.
                        []
                        if self.faults.omit_retry_after
                        else [("Retry-After", str(int(self.faults.retry_after)))],
                    )
                else:
                    params = self.params(split.query)
                    status, headers, body = self._get(environ, client, split.path, params)
            answers.append(
                {
                    "id": item.get("id"),
                    "status": int(status.split()[0]),
                    "headers": {
                        k: v for k, v in headers if k.lower() in ("content-type", "retry-after")
                    },
                    # JSON bodies are embedded as objects (what kiota-python#737 drops).
                    "body": json.loads(body) if body else None,
                }
            )
        return self.json("200 OK", {"responses": answers})


def create_app(world: World, faults: Faults | None = None, **kwargs: Any) -> GraphEmulator:
    """The emulator for ``world`` (the ``register_sandboxes`` factory)."""
    return GraphEmulator(world, faults, **kwargs)
