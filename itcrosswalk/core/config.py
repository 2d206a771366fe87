"""``crosswalk.toml``: finding it, validating it, and explaining what is wrong with it.

Secrets appear in the file only as references (``env:``, ``keyring:``, ``file:``); they are
resolved by :mod:`itcrosswalk.core.secrets` when an adapter needs them, never here. Every
validation problem is rendered as one line starting with its dotted key path, and no
message ever repeats a value from the file.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import tomllib
import types
import typing
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from .errors import ConfigError
from .portfolio.settings import PortfolioConfig
from .secrets import LITERAL_NOT_ALLOWED, is_reference

CONFIG_ENV = "CROSSWALK_CONFIG"
DEFAULT_FILENAME = "crosswalk.toml"
SOURCE_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"


def _secret_ref(value: str) -> str:
    if not is_reference(value):
        raise PydanticCustomError("secret_literal", LITERAL_NOT_ALLOWED)
    return value


SecretRef = Annotated[str, AfterValidator(_secret_ref)]
"""A reference to a secret (``env:NAME``, ``keyring:SERVICE/USER``, ``file:PATH``)."""


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """``value`` made absolute against the config file's folder, and required to exist."""
    path = value.expanduser()
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute():
        path = Path(base or Path.cwd()) / path
    if not path.exists():
        raise PydanticCustomError("path_missing", "file {path} does not exist", {"path": str(path)})
    return path


_STRICT = ConfigDict(extra="forbid", hide_input_in_errors=True)


class BasicAuth(BaseModel):
    """HTTP Basic: a user and the reference to its password."""

    model_config = _STRICT
    type: Literal["basic"]
    user: str
    password: SecretRef


class OAuthPasswordAuth(BaseModel):
    """OAuth 2 resource-owner password grant."""

    model_config = _STRICT
    type: Literal["oauth_password"]
    client_id: str
    client_secret: SecretRef
    user: str
    password: SecretRef
    token_url: str | None = None


class OAuthClientCredentialsAuth(BaseModel):
    """OAuth 2 client-credentials grant (an app registration, a service principal)."""

    model_config = _STRICT
    type: Literal["oauth_client_credentials"]
    client_id: str
    client_secret: SecretRef
    token_url: str | None = None


class BearerAuth(BaseModel):
    """A ready-made bearer token (an API token, a personal access token)."""

    model_config = _STRICT
    type: Literal["bearer"]
    token: SecretRef


class ClientCertificateAuth(BaseModel):
    """An app registration authenticating with a certificate instead of a secret."""

    model_config = _STRICT
    type: Literal["client_certificate"]
    client_id: str
    certificate_path: Path
    certificate_password: SecretRef | None = None

    @field_validator("certificate_path")
    @classmethod
    def _certificate_exists(cls, value: Path, info: ValidationInfo) -> Path:
        return _resolve_path(value, info)


class NtlmAuth(BaseModel):
    """Windows integrated authentication with a user and password (on-premises Project Server)."""

    model_config = _STRICT
    type: Literal["ntlm"]
    user: str
    password: SecretRef


class KerberosAuth(BaseModel):
    """Kerberos with the ticket of the account running crosswalk."""

    model_config = _STRICT
    type: Literal["kerberos"]


AuthConfig = Annotated[
    BasicAuth
    | OAuthPasswordAuth
    | OAuthClientCredentialsAuth
    | BearerAuth
    | ClientCertificateAuth
    | NtlmAuth
    | KerberosAuth,
    Field(discriminator="type"),
]

AUTH_MODELS: dict[str, type[BaseModel]] = {
    "basic": BasicAuth,
    "oauth_password": OAuthPasswordAuth,
    "oauth_client_credentials": OAuthClientCredentialsAuth,
    "bearer": BearerAuth,
    "client_certificate": ClientCertificateAuth,
    "ntlm": NtlmAuth,
    "kerberos": KerberosAuth,
}


class StoreConfig(BaseModel):
    """Where the common store lives (a SQLAlchemy URL)."""

    model_config = _STRICT
    url: str = "sqlite:///crosswalk.db"

    @field_validator("url")
    @classmethod
    def _resolve_sqlite(cls, value: str, info: ValidationInfo) -> str:
        scheme, sep, rest = value.partition(":///")
        if not sep or not scheme.split("+")[0] == "sqlite":
            return value
        path, qmark, query = rest.partition("?")
        if not path or path == ":memory:" or path.startswith("file:"):
            return value
        resolved = Path(path).expanduser()
        if not resolved.is_absolute():
            base = (info.context or {}).get("base_dir")
            resolved = Path(base or Path.cwd()) / resolved
        return f"{scheme}:///{resolved}{qmark}{query}"


class SourceConfig(BaseModel):
    """One ``[sources.NAME]`` table: a platform instance to read.

    Keys beyond the common ones belong to the platform; its plugin validates them
    (:meth:`platform_options`).
    """

    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    name: str
    platform: str
    url: str | None = None
    ca_bundle: Path | None = None
    auth: AuthConfig | None = None
    page_size: int | None = Field(None, ge=1, le=10000)
    overlap_seconds: int = Field(300, ge=0)
    timeout: float = Field(60, gt=0)
    connect_timeout: float = Field(10, gt=0)
    max_retries: int = Field(5, ge=0, le=20)
    max_wait: float = Field(300, gt=0)
    """The longest total time one request may spend waiting between retries."""
    deadline: float | None = Field(None, gt=0)
    """The longest one request may take, sending to last byte, retries included but not the
    waits between them (default: five timeouts, at least 30 s)."""
    streams: list[str] | None = None
    """The streams to read; None reads them all."""
    full_sweep_every_days: int | None = Field(None, ge=1)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(SOURCE_NAME_PATTERN, value):
            raise PydanticCustomError(
                "source_name",
                "source names use lowercase letters, digits, - and _, starting with a letter "
                "or digit (e.g. snow-prod)",
            )
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in ("http", "https") or not rest.strip("/"):
            raise PydanticCustomError(
                "url_scheme", "must be an https:// URL (e.g. https://city.service-now.com)"
            )
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _resolve_path(value, info)

    def platform_options(self) -> dict[str, Any]:
        """The keys of this table that only the platform's plugin knows."""
        return dict(self.model_extra or {})


_TARGET = r"^\d+(\.\d+)?(h|bh|bd|d)$"
_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$"


class CalendarConfig(BaseModel):
    """The business-hours calendar SLA clocks run on."""

    model_config = _STRICT
    timezone: str = "UTC"
    """An IANA zone name (America/Phoenix): business hours are local time there."""
    workdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=lambda: [0, 1, 2, 3, 4]
    )
    """Days of the week with business hours, 0 = Monday."""
    start: str = Field(default="08:00", pattern=_HHMM)
    end: str = Field(default="17:00", pattern=_HHMM)
    holidays: list[date] = Field(default_factory=list)
    hours_per_day: float | None = Field(default=None, gt=0, le=24)
    """The hours a person gives a working day, for capacity (``8`` with an unpaid lunch hour
    in 08:00-17:00); default ``end - start``."""

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise PydanticCustomError(
                "timezone", "not a known time zone name (e.g. America/Phoenix, UTC)"
            ) from None
        return value


class MetricsConfig(BaseModel):
    """The City's policy the standard metrics apply (``[metrics]``)."""

    model_config = _STRICT
    sla_targets: dict[
        Annotated[str, Field(pattern=r"^[1-5]$")], Annotated[str, Field(pattern=_TARGET)]
    ] = Field(default_factory=lambda: {"1": "4h", "2": "8h", "3": "3bd", "4": "5bd"})
    """Priority -> resolution target: ``4h`` clock hours, ``6bh`` business hours, ``3bd``
    business days, ``2d`` calendar days. A priority without a target is not measured."""
    calendar: CalendarConfig = Field(default_factory=CalendarConfig)
    stale_days: int = Field(default=30, ge=1)
    """A device that has not checked in for this many days is stale."""
    supported_os: dict[str, str] = Field(default_factory=dict)
    """OS name -> the oldest supported version (``Windows = "10.0.19045"``); empty: built-in list."""
    fiscal_year_start: int = Field(default=7, ge=1, le=12)
    """The month the City's fiscal year begins (7: July, Tucson's); a fiscal year is named by
    the calendar year it ends in (FY2027 runs July 2026 to June 2027)."""
    kb_review_days: int = Field(default=365, ge=1)
    """A published knowledge article not reviewed (republished) for this many days is overdue."""
    kb_unused_days: int = Field(default=90, ge=1)
    """A published article nobody viewed or attached to a task for this many days is unused."""
    threads: int | None = Field(default=None, ge=1, le=16)
    """How many metrics of a pack are computed at once, each on a store connection of its own
    (their queries run side by side, in the database); unset: one per core, at most 4; 1: one
    after the other. Never more than the store's connection pool keeps (5)."""


class AssetsConfig(BaseModel):
    """The City's hardware refresh policy (``[assets]``), for ``crosswalk assets forecast``."""

    model_config = _STRICT
    refresh_years: dict[str, Annotated[int, Field(ge=1, le=20)]] = Field(
        default_factory=lambda: {
            "Laptop": 4,
            "Rugged laptop": 5,
            "Desktop": 5,
            "Phone": 3,
            "Tablet": 3,
        }
    )
    """Model category -> the age in years at which a device is refreshed."""
    default_refresh_years: int = Field(default=4, ge=1, le=20)
    """The refresh age of a category ``refresh_years`` does not name."""
    prices: dict[str, Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: {
            "Laptop": 1450.0,
            "Rugged laptop": 3900.0,
            "Desktop": 1100.0,
            "Phone": 650.0,
            "Tablet": 520.0,
        }
    )
    """Model category -> a replacement's unit price today (the price list)."""
    inflation: float = Field(default=0.03, ge=0, le=1)
    """Yearly price increase applied per fiscal year after the current one."""
    idle_days: int = Field(default=60, ge=1)
    """An asset in use that the device manager has not seen for this many days is idle."""


class ContentConfig(BaseModel):
    """Folders of the City's own content (templates or controls) beside the built-in ones."""

    model_config = _STRICT
    folders: list[Path] = Field(default_factory=list)

    @field_validator("folders")
    @classmethod
    def _folders(cls, value: list[Path], info: ValidationInfo) -> list[Path]:
        return [_resolve_path(folder, info) for folder in value]


class ThresholdConfig(BaseModel):
    """Where a headline KPI turns amber and red (``[dashboard.thresholds."itsm.sla_attainment"]``).

    ``better = "higher"``: green at or above ``green``, amber at or above ``amber``, else red;
    ``"lower"``: green at or below ``green``, amber at or below ``amber``, else red.
    """

    model_config = _STRICT
    green: float
    amber: float
    better: Literal["higher", "lower"] = "higher"

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdConfig:
        if (self.better == "higher" and self.green < self.amber) or (
            self.better == "lower" and self.green > self.amber
        ):
            raise ValueError(
                f"green {self.green:g} must be {'at or above' if self.better == 'higher' else 'at or below'} "
                f"amber {self.amber:g} when {self.better} is better"
            )
        return self


class DashboardConfig(BaseModel):
    """The executive dashboards (``[dashboard]``): the City's currency and the KPI thresholds
    that set each tile's red, amber or green (the built-in ones apply where none is given)."""

    model_config = _STRICT
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    """An ISO 4217 code: amounts read ``-$194,983`` in USD."""
    thresholds: dict[str, ThresholdConfig] = Field(default_factory=dict)


class Config(BaseModel):
    """The whole ``crosswalk.toml``."""

    model_config = _STRICT
    store: StoreConfig = Field(default_factory=StoreConfig)
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    templates: ContentConfig = Field(default_factory=ContentConfig)
    controls: ContentConfig = Field(default_factory=ContentConfig)
    portfolio: PortfolioConfig = Field(default_factory=PortfolioConfig)
    assets: AssetsConfig = Field(default_factory=AssetsConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)
    path: Path | None = None
    """The file this configuration was read from (set by :func:`load_config`)."""

    @model_validator(mode="before")
    @classmethod
    def _names_from_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("sources"), dict):
            sources = {
                key: ({**table, "name": key} if isinstance(table, dict) else table)
                for key, table in data["sources"].items()
            }
            data = {**data, "sources": sources}
        return data


def find_config_path(explicit: str | Path | None) -> Path:
    """``explicit``, else ``$CROSSWALK_CONFIG``, else ``./crosswalk.toml``."""
    if explicit:
        return Path(explicit).expanduser()
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env).expanduser()
    return Path.cwd() / DEFAULT_FILENAME


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate the configuration; every problem raises one :class:`ConfigError`."""
    file = find_config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no configuration at {file}: `crosswalk init` writes a starter crosswalk.toml "
            f"(or pass --config PATH, or set {CONFIG_ENV})"
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"{file} is a folder, not a configuration file") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"cannot read configuration {file}: {reason}") from None
    return parse_config(text, file)


def parse_config(text: str, file: Path) -> Config:
    """Validate TOML ``text`` as if it were read from ``file`` (relative paths resolve there)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file} is not valid TOML: {exc}") from None
    data["path"] = file.resolve()
    try:
        return Config.model_validate(data, context={"base_dir": file.resolve().parent})
    except ValidationError as exc:
        raise ConfigError(render_errors(exc, file)) from None


def platform_options(config: Config, source: SourceConfig, model: type[BaseModel]) -> BaseModel:
    """The keys of ``[sources.NAME]`` only the platform knows, validated by its plugin's model.

    A problem is one :class:`ConfigError` in the same words as the rest of the file's: the
    file, the dotted key, and for an unknown key the nearest known one, common or platform's.
    """
    try:
        return model.model_validate(source.platform_options())
    except ValidationError as exc:
        common = tuple(name for name in SourceConfig.model_fields if name != "name")
        raise ConfigError(
            render_errors(
                exc, config.path, root=model, prefix=("sources", source.name), beside=common
            )
        ) from None


def config_digest(config: Config) -> str:
    """A sha256 of the configuration's canonical JSON: references, never resolved secrets."""
    payload = config.model_dump(mode="json", exclude={"path"})
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


# -- rendering pydantic errors ---------------------------------------------------------------

_PATTERN_WORDS = {
    _HHMM: "must be a time of day as HH:MM (08:00)",
    _TARGET: "must be a duration: 4h (clock hours), 6bh (business hours), 3bd (business days) or 2d (days)",
    r"^[1-5]$": "must be a priority from 1 to 5",
}

_MESSAGES = {
    "missing": "required key is missing",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "dict_type": "must be a table",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "list_type": "must be a list",
    "path_type": "must be a file path",
}


def _model_at(loc: tuple[Any, ...], root: type[BaseModel] = Config) -> type[BaseModel] | None:
    """The model whose keys live at ``loc`` (used to suggest a spelling for unknown keys)."""
    if root is Config and len(loc) == 4 and loc[0] == "sources" and loc[2] == "auth":
        return AUTH_MODELS.get(str(loc[3]))
    model: type[BaseModel] = root
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return None
        annotation = field.annotation
        annotation = _unwrap_optional(annotation)
        if typing.get_origin(annotation) is dict:
            if not parts:
                return None
            parts.pop(0)  # the table's own name (sources.NAME)
            annotation = _unwrap_optional(typing.get_args(annotation)[1])
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _unwrap_optional(annotation: Any) -> Any:
    """``X`` from ``X | None``: an optional table still has the keys of its model."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic marks a bad dict key with a "[key]" step after the key itself.
    loc = tuple(part for part in loc if part != "[key]")
    # A discriminated union puts the tag in the path (auth.basic.password); the file has none.
    if len(loc) >= 4 and loc[0] == "sources" and loc[2] == "auth" and loc[3] in AUTH_MODELS:
        return loc[:3] + loc[4:]
    return loc


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part) if re.match(r"^[A-Za-z0-9_-]+$", str(part)) else json.dumps(str(part))
        out += f".{text}" if out else text
    return out or "(top level)"


def _describe(
    error: ErrorDetails, root: type[BaseModel] = Config, beside: tuple[str, ...] = ()
) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    loc = tuple(error["loc"])
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1], root) if loc else None
        message = "unknown key"
        if model is not None and loc:
            known = [name for name in model.model_fields if name not in ("name", "path")]
            if len(loc) == 1:
                known += list(beside)
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            if close:
                message += f"; did you mean {close[0]!r}?"
        return message
    if kind == "union_tag_invalid":
        expected = ", ".join(repr(tag) for tag in AUTH_MODELS)
        return f"unknown type {ctx.get('tag')!r}; expected one of {expected}"
    if kind == "union_tag_not_found":
        return f"the key 'type' is missing; one of {', '.join(repr(t) for t in AUTH_MODELS)}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"must be at most {bound}" if kind == "less_than_equal" else f"must be below {bound}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return (
            f"must be at least {bound}"
            if kind == "greater_than_equal"
            else f"must be greater than {bound}"
        )
    if kind in _MESSAGES:
        return _MESSAGES[kind]
    if kind == "string_pattern_mismatch":
        return _PATTERN_WORDS.get(str(ctx.get("pattern")), "is not in the expected form")
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def render_errors(
    exc: ValidationError,
    file: Path | None = None,
    *,
    root: type[BaseModel] = Config,
    prefix: tuple[str, ...] = (),
    beside: tuple[str, ...] = (),
) -> str:
    """One readable message listing every problem as ``dotted.key.path: what is wrong``.

    ``root`` is the model validated, found at ``prefix`` in the file (a platform's options sit
    in ``sources.NAME``, beside the common keys ``beside``, which a typo may also be near).
    """
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = _clean_loc(tuple(error["loc"]))
        if error["type"] == "source_name" and loc and loc[-1] == "name":
            loc = loc[:-1]  # the name is the table key; the user never wrote a `name` key
        lines.append(f"{_dotted(prefix + loc)}: {_describe(error, root, beside)}")
    where = f"{file}" if file else "the configuration"
    if len(lines) == 1:
        return f"{where}: {lines[0]}"
    return f"{where} has {len(lines)} problems:\n" + "\n".join(f"  {line}" for line in lines)


STARTER_CONFIG = """\
# crosswalk.toml: which platforms to read, and where to keep the common store.
# Secrets are never written here, only references to them:
#   env:NAME              an environment variable
#   keyring:SERVICE/USER  the operating system's keyring (`keyring set SERVICE USER`)
#   file:PATH             a file only you can read (chmod 600)

[store]
# SQLite next to this file by default; PostgreSQL with
# url = "postgresql+psycopg://crosswalk@db.example.org/crosswalk"
url = "sqlite:///crosswalk.db"

# One table per source; the name (snow-prod) is how commands and the store refer to it.
[sources.snow-prod]
platform = "servicenow"
url = "https://your-instance.service-now.com"
auth = { type = "basic", user = "svc_crosswalk", password = "env:SNOW_PASSWORD" }
# ca_bundle = "/etc/ssl/city-internal-ca.pem"   # an internal CA or a TLS-inspecting proxy
# page_size = 1000
# streams = ["incident", "cmdb_ci_computer"]     # default: every stream the platform has
# timeout = 60          # seconds to wait for an answer
# max_retries = 5       # on 429/502/503/504 and dropped connections
# max_wait = 300        # seconds one request may spend waiting between retries
# deadline = 300        # seconds one request may take in all, however slowly bytes arrive

# [sources.intune]
# platform = "intune"
# tenant_id = "00000000-0000-0000-0000-000000000000"
# auth = { type = "oauth_client_credentials", client_id = "00000000-0000-0000-0000-000000000000", client_secret = "keyring:itcrosswalk-graph/crosswalk" }

# [sources.jira-align]
# platform = "jira_align"
# url = "https://city.jiraalign.com"
# auth = { type = "bearer", token = "env:JIRA_ALIGN_TOKEN" }
# full_sweep_every_days = 7   # items never edited have no update time; re-read all weekly

# [sources.pwa]
# platform = "project_online"
# url = "https://projects.city.gov/pwa"        # Project Server; or https://city.sharepoint.com/sites/pwa
# auth = { type = "ntlm", user = 'CITY\\svc_crosswalk', password = "env:PWA_PASSWORD" }
# Project Online refuses app-only tokens: leave out auth, set
# oauth = { client_id = "00000000-0000-0000-0000-000000000000", tenant_id = "..." }
# and run `crosswalk project-online login pwa` once (the refresh token goes to the OS keyring).
"""
