"""OData v3 as ProjectData speaks it: ``$filter`` parsed and applied, rows rendered in the verbose
or light JSON format (or Atom when no JSON is asked for), server-driven paging with ``$skiptoken``
next links, ``$count``, ``$metadata`` and the OData error bodies."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from .sandbox_schema import (
    CUSTOM_FIELDS,
    KEYS,
    MODIFIED,
    NAVIGATION,
    SCHEMA,
    TYPES,
    B,
    D,
    G,
    N,
    S,
    T,
)

Response = tuple[str, list[tuple[str, str]], bytes]


class ODataError(Exception):
    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


# -- $filter --------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<guid>guid'[0-9a-fA-F-]{36}')|(?P<dt>datetime'[^']*')"
    r"|(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?[mMdDfFlL]?)"
    r"|(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<word>[A-Za-z_][\w]*))",
    re.UNICODE,
)
_OPS = {"eq", "ne", "gt", "ge", "lt", "le"}


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise ODataError(400, f"Syntax error at position {position} in '{text}'.")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind), match.start(kind)))
        position = match.end()
    return out


class FilterParser:
    """OData v3 ``$filter`` over one entity type: comparisons joined by and/or/not."""

    def __init__(self, text: str, schema: dict[str, str], type_name: str, zone: tzinfo) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0
        self.schema = schema
        self.type_name = type_name
        self.zone = zone

    def parse(self) -> Callable[[dict[str, Any]], bool]:
        expr = self._or()
        if self.pos != len(self.tokens):
            raise ODataError(
                400, f"Syntax error at position {self.tokens[self.pos][2]} in '{self.text}'."
            )
        return expr

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise ODataError(
                400, f"Expression expected at position {len(self.text)} in '{self.text}'."
            )
        self.pos += 1
        return token

    def _or(self) -> Callable[[dict[str, Any]], bool]:
        left = self._and()
        while (t := self._peek()) and t[0] == "word" and t[1] == "or":
            self.pos += 1
            right = self._and()
            left = (lambda a, b: lambda r: a(r) or b(r))(left, right)
        return left

    def _and(self) -> Callable[[dict[str, Any]], bool]:
        left = self._unary()
        while (t := self._peek()) and t[0] == "word" and t[1] == "and":
            self.pos += 1
            right = self._unary()
            left = (lambda a, b: lambda r: a(r) and b(r))(left, right)
        return left

    def _unary(self) -> Callable[[dict[str, Any]], bool]:
        token = self._peek()
        if token and token[0] == "word" and token[1] == "not":
            self.pos += 1
            inner = self._unary()
            return lambda r: not inner(r)
        if token and token[0] == "lp":
            self.pos += 1
            inner = self._or()
            closing = self._take()
            if closing[0] != "rp":
                raise ODataError(
                    400, f"')' or operator expected at position {closing[2]} in '{self.text}'."
                )
            return inner
        return self._comparison()

    def _comparison(self) -> Callable[[dict[str, Any]], bool]:
        kind, name, at = self._take()
        if kind != "word":
            raise ODataError(400, f"Syntax error at position {at} in '{self.text}'.")
        if name in ("substringof", "startswith", "endswith", "year", "month", "day"):
            raise ODataError(400, f"Unknown function '{name}' at position {at}.")
        if name not in self.schema:
            raise ODataError(
                400,
                f"No property '{name}' exists in type 'ReportingData.{self.type_name}' at position {at}.",
            )
        op_kind, op, op_at = self._take()
        if op_kind != "word" or op not in _OPS:
            raise ODataError(400, f"Syntax error at position {op_at} in '{self.text}'.")
        lit_kind, literal, lit_at = self._take()
        edm = self.schema[name]
        value = self._literal(lit_kind, literal, lit_at, edm, op)

        def compare(row: dict[str, Any]) -> bool:
            actual = row.get(name)
            if edm == T and isinstance(actual, datetime):
                actual = actual.astimezone(self.zone).replace(tzinfo=None, microsecond=0)
            if value is None or actual is None:
                return (
                    (op == "eq") == (value is None and actual is None)
                    if op in ("eq", "ne")
                    else False
                )
            if edm == G:
                actual = str(actual).lower()
            return {
                "eq": actual == value,
                "ne": actual != value,
                "gt": actual > value,
                "ge": actual >= value,
                "lt": actual < value,
                "le": actual <= value,
            }[op]

        return compare

    def _literal(self, kind: str, literal: str, at: int, edm: str, op: str) -> Any:
        if kind == "word" and literal == "null":
            return None
        expected = {G: "guid", T: "dt", S: "str", B: "word"}.get(edm, "num")
        if kind != expected or (edm == B and literal not in ("true", "false")):
            clr = {
                G: "System.Guid",
                T: "System.DateTime",
                S: "System.String",
                B: "System.Boolean",
            }.get(edm, "System.Decimal")
            raise ODataError(
                400,
                f"Operator '{op}' incompatible with operand types 'System.Nullable`1[{clr}]' and "
                f"the literal at position {at}.",
            )
        if kind == "guid":
            return literal[5:-1].lower()
        if kind == "dt":
            try:
                return datetime.fromisoformat(literal[9:-1])
            except ValueError:
                raise ODataError(
                    400, f"Unrecognized 'Edm.DateTime' literal '{literal}' at position {at}."
                ) from None
        if kind == "str":
            return literal[1:-1].replace("''", "'")
        if edm == B:
            return literal == "true"
        return float(literal.rstrip("mMdDfFlL"))


class ProjectDataFeed:
    """The ``/_api/ProjectData`` side of the emulator (mixed into it)."""

    sets: dict[str, list[dict[str, Any]]]
    schema: dict[str, dict[str, str]]
    page_limits: dict[str, int]
    missing_sets: set[str]
    link_host: str | None
    zone: tzinfo
    lock: threading.RLock
    faults: Any
    page_served: Callable[..., int]
    cut: Callable[[Response], Response]

    # -- rendering ---------------------------------------------------------------------------------

    def _local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone).replace(tzinfo=None)

    def _value(self, edm: str, value: Any, verbose: bool) -> Any:
        if value is None:
            return None
        if edm == D:
            return f"{float(value):.6f}"
        if edm == T:
            local = self._local(value) if isinstance(value, datetime) else value
            if verbose:
                ms = int((local - datetime(1970, 1, 1)).total_seconds() * 1000)
                return f"/Date({ms})/"
            return local.replace(microsecond=0).isoformat()
        if edm == N:
            return int(value)
        return value

    def _render(
        self,
        set_name: str,
        row: dict[str, Any],
        select: list[str] | None,
        verbose: bool,
        base: str,
        explicit: bool = False,
    ) -> dict[str, Any]:
        schema = SCHEMA[set_name]
        names = select or [*schema, *(CUSTOM_FIELDS.values() if set_name == "Projects" else ())]
        out: dict[str, Any] = {}
        if verbose:
            keys = ",".join(
                f"{k}=guid'{row[k]}'" if schema[k] == G else f"{k}={row[k]}" for k in KEYS[set_name]
            )
            keys = keys.split("=", 1)[1] if len(KEYS[set_name]) == 1 else keys
            uri = f"{base}/_api/ProjectData/{set_name}({keys})"
            out["__metadata"] = {"id": uri, "uri": uri, "type": f"ReportingData.{TYPES[set_name]}"}
        for name in names:
            out[name] = self._value(schema.get(name, S), row.get(name), verbose)
        if verbose and not explicit:
            # Verbose rows carry their navigation properties as deferred links.
            for nav in NAVIGATION.get(set_name, ()):
                out[nav] = {"__deferred": {"uri": f"{out['__metadata']['uri']}/{nav}"}}
        return out

    @staticmethod
    def _verbose(environ: dict[str, Any]) -> bool:
        return "odata=verbose" in environ.get("HTTP_ACCEPT", "")

    def _error(self, exc: ODataError, verbose: bool) -> tuple[str, list[tuple[str, str]], bytes]:
        message = {"lang": "en-US", "value": exc.message}
        body = (
            {"error": {"code": exc.code, "message": message}}
            if verbose
            else {"odata.error": {"code": exc.code, "message": message}}
        )
        reason = {
            400: "Bad Request",
            403: "Forbidden",
            404: "Not Found",
            500: "Internal Server Error",
        }
        return (
            f"{exc.status} {reason.get(exc.status, 'Error')}",
            [
                (
                    "Content-Type",
                    "application/json;odata=verbose;charset=utf-8"
                    if verbose
                    else "application/json;odata=minimalmetadata;charset=utf-8",
                )
            ],
            json.dumps(body).encode(),
        )

    # -- ProjectData -------------------------------------------------------------------------------

    def _feed(
        self,
        environ: dict[str, Any],
        rest: str,
        query: dict[str, list[str]],
        base: str,
        fault: str | None,
    ) -> tuple[str, list[tuple[str, str]], bytes]:
        accept = environ.get("HTTP_ACCEPT", "")
        parts = [p for p in rest.split("/") if p]
        if not parts:
            listing = {"d": {"EntitySets": sorted(s for s in SCHEMA if s not in self.missing_sets)}}
            return (
                "200 OK",
                [("Content-Type", "application/json;odata=verbose;charset=utf-8")],
                json.dumps(listing).encode(),
            )
        set_name = parts[0]
        if set_name == "$metadata":
            return "200 OK", [("Content-Type", "application/xml;charset=utf-8")], self._metadata()
        if set_name not in SCHEMA or set_name in self.missing_sets:
            raise ODataError(404, f"Resource not found for the segment '{set_name}'.")
        schema = dict(self.schema[set_name])
        if set_name == "Projects":
            schema.update({prop: S for prop in CUSTOM_FIELDS.values()})
        with self.lock:
            rows = sorted(
                self.sets[set_name], key=lambda r: tuple(str(r[k]) for k in KEYS[set_name])
            )
        if "$filter" in query:
            predicate = FilterParser(
                query["$filter"][0], schema, TYPES[set_name], self.zone
            ).parse()
            rows = [r for r in rows if predicate(r)]
        if len(parts) > 1 and parts[1] == "$count":
            return "200 OK", [("Content-Type", "text/plain;charset=utf-8")], str(len(rows)).encode()
        select = None
        if "$select" in query and query["$select"][0] not in ("", "*"):
            select = [s.strip() for s in query["$select"][0].split(",") if s.strip()]
            for name in select:
                if name not in schema:
                    raise ODataError(
                        400,
                        f"Could not find a property named '{name}' on type 'ReportingData.{TYPES[set_name]}'.",
                    )
        skip = int(query.get("$skip", ["0"])[0] or 0)
        top = int(query["$top"][0]) if "$top" in query else None
        token = query.get("$skiptoken", [None])[0]
        if token:
            after = tuple(re.findall(r"guid'([0-9a-fA-F-]{36})'|(-?\d+)", token))
            marker = tuple(g or n for g, n in after)
            rows = [r for r in rows if tuple(str(r[k]) for k in KEYS[set_name]) > marker]
        rows = rows[skip:]
        remaining = top if top is not None else None
        if token and "$toptotal" in query:
            remaining = int(query["$toptotal"][0])
        limit = self.page_limits[set_name]
        page = rows[: min(limit, remaining) if remaining is not None else limit]
        more = len(rows) > len(page) and (remaining is None or remaining > len(page))
        link = None
        if more:
            last = page[-1]
            skiptoken = ",".join(
                f"guid'{last[k]}'" if schema[k] == G else str(last[k]) for k in KEYS[set_name]
            )
            params = {
                k: v[0]
                for k, v in query.items()
                if k not in ("$skiptoken", "$skip", "$top", "$toptotal")
            }
            if remaining is not None:
                params["$toptotal"] = str(remaining - len(page))
            params["$skiptoken"] = skiptoken
            encoded = urlencode(params, quote_via=quote, safe="$',")
            link_base = (
                urlsplit(base)._replace(scheme="http", netloc=self.link_host).geturl()
                if self.link_host
                else base
            )
            link = f"{link_base}/_api/ProjectData/{set_name}?{encoded}"
        if page:
            with self.lock:
                modified = MODIFIED.get(set_name)
                self.page_served(
                    rows[len(page) :] if modified else [],
                    lambda row: row.update({modified: datetime.now(UTC).replace(microsecond=0)}),
                )
        if "json" not in accept:
            xml = f'<?xml version="1.0" encoding="utf-8"?><feed xml:base="{base}/_api/ProjectData/" xmlns="http://www.w3.org/2005/Atom"><title type="text">{set_name}</title></feed>'
            return (
                "200 OK",
                [("Content-Type", "application/atom+xml;type=feed;charset=utf-8")],
                xml.encode(),
            )
        verbose = "odata=verbose" in accept
        rendered = [
            self._render(set_name, r, select or list(schema), verbose, base, select is not None)
            for r in page
        ]
        if verbose:
            payload: dict[str, Any] = {"d": {"results": rendered}}
            if link:
                payload["d"]["__next"] = link
            content_type = "application/json;odata=verbose;charset=utf-8"
        else:
            payload = {}
            if "nometadata" not in accept:
                payload["odata.metadata"] = f"{base}/_api/ProjectData/$metadata#{set_name}"
            payload["value"] = rendered
            if link:
                payload["odata.nextLink"] = link
            content_type = (
                "application/json;odata="
                + ("nometadata" if "nometadata" in accept else "minimalmetadata")
                + ";streaming=true;charset=utf-8"
            )
        body = json.dumps(payload, ensure_ascii=False).encode()
        answer = "200 OK", [("Content-Type", content_type)], body
        return self.cut(answer) if fault == "malformed" else answer

    def _metadata(self) -> bytes:
        """The CSDL of the served sets: where a client reads which properties exist."""
        types = []
        for name, props in self.schema.items():
            if name in self.missing_sets:
                continue
            if name == "Projects":
                props = {**props, **{p: S for p in CUSTOM_FIELDS.values()}}
            keys = "".join(f'<PropertyRef Name="{k}"/>' for k in KEYS[name])
            fields = "".join(
                f'<Property Name="{p}" Type="Edm.{t}" Nullable="{str(p not in KEYS[name]).lower()}"/>'
                for p, t in props.items()
            )
            types.append(f'<EntityType Name="{TYPES[name]}"><Key>{keys}</Key>{fields}</EntityType>')
        sets = "".join(
            f'<EntitySet Name="{n}" EntityType="ReportingData.{TYPES[n]}"/>'
            for n in self.schema
            if n not in self.missing_sets
        )
        return (
            '<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="1.0" '
            'xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx"><edmx:DataServices '
            'm:DataServiceVersion="3.0" xmlns:m="http://schemas.microsoft.com/ado/2007/08/'
            'dataservices/metadata"><Schema Namespace="ReportingData" '
            'xmlns="http://schemas.microsoft.com/ado/2009/11/edm">'
            + "".join(types)
            + f'<EntityContainer Name="ReportingData" m:IsDefaultEntityContainer="true">{sets}'
            "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>"
        ).encode()
