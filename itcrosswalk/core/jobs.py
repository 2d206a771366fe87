"""Scheduled jobs (``crosswalk run JOBS.toml``): sync, render reports, deliver them.

A job names the sources to sync, the reports to render and where they go: a folder (dated
file names, the last N kept), e-mail over SMTP with STARTTLS and the reports attached, a
webhook (a JSON POST; Teams and Slack incoming webhooks understand their own shapes). One
run of a job name at a time (a lock in the store); a failed sync still sends a report that
says so. ``crosswalk schedule`` turns the jobs' cron schedules into crontab lines or systemd
units. The SMTP password and the webhook URL (incoming webhooks carry their token in the URL)
are secret references, resolved here and never logged.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
import smtplib
import socket
import ssl
import sys
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .config import SecretRef, render_errors
from .errors import ConfigError, CrosswalkError, LockHeld
from .secrets import REDACTOR, redact, resolve_secret

if TYPE_CHECKING:
    from .contract import Registry

log = logging.getLogger("itcrosswalk.jobs")

_STRICT = ConfigDict(extra="forbid", hide_input_in_errors=True, populate_by_name=True)
JOB_NAME = r"^[a-z0-9][a-z0-9_-]*$"
MIME = {
    "html": ("text", "html"),
    "md": ("text", "markdown"),
    "csv": ("text", "csv"),
    "json": ("application", "json"),
    "xlsx": ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}


# -- cron ------------------------------------------------------------------------------------

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_SYSTEMD_DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _names(part: str, index: int) -> str:
    if index == 3:
        for number, name in enumerate(_MONTHS, start=1):
            part = re.sub(name, str(number), part, flags=re.I)
    if index == 4:
        for number, name in enumerate(_DAYS):
            part = re.sub(name, str(number), part, flags=re.I)
    return part


def parse_cron(expression: str) -> list[str]:
    """The five fields of a cron expression (macros expanded, names as numbers), checked."""
    text = _MACROS.get(expression.strip().lower(), expression.strip())
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            "a cron schedule has five fields: minute hour day-of-month month day-of-week"
        )
    out = []
    for index, (raw, (what, low, high)) in enumerate(zip(fields, _FIELDS, strict=True)):
        value = _names(raw, index)
        for item in value.split(","):
            match = re.fullmatch(r"(\*|\d+(?:-\d+)?)(?:/(\d+))?", item)
            if not match:
                raise ValueError(f"the {what} field {raw!r} is not a cron field")
            numbers = [int(n) for n in re.findall(r"\d+", match.group(1))]
            if any(n < low or n > high for n in numbers) or (match.group(2) == "0"):
                raise ValueError(f"the {what} field {raw!r} is outside {low}-{high}")
            if len(numbers) == 2 and numbers[0] > numbers[1]:
                raise ValueError(f"the {what} field {raw!r} runs backwards")
        out.append(value)
    return out


def _calendar_part(value: str, width: int) -> str:
    def one(item: str) -> str:
        base, _, step = item.partition("/")
        if base == "*":
            start = "0" * width if width else "*"
            return f"{start}/{step}" if step else "*"
        if "-" in base:
            a, b = base.split("-")
            text = f"{int(a):0{width}d}..{int(b):0{width}d}"
            return text + (f"/{step}" if step else "")
        return f"{int(base):0{width}d}" + (f"/{step}" if step else "")

    return ",".join(one(i) for i in value.split(","))


def on_calendar(expression: str) -> str:
    """The systemd ``OnCalendar=`` value of a cron expression."""
    minute, hour, dom, month, dow = parse_cron(expression)
    if dom != "*" and dow != "*":
        raise ConfigError(
            f"schedule {expression!r}: cron runs when EITHER the day of month or the day of "
            "week matches, systemd when both do; split it into two jobs"
        )
    days = ""
    if dow != "*":
        parts = []
        for item in dow.split(","):
            if "/" in item:
                raise ConfigError(
                    f"schedule {expression!r}: a stepped day of week has no systemd form"
                )
            if "-" in item:
                a, b = (int(n) for n in item.split("-"))
                parts.append(f"{_SYSTEMD_DAYS[a]}..{_SYSTEMD_DAYS[b]}")
            elif item == "*":
                parts = []
                break
            else:
                parts.append(_SYSTEMD_DAYS[int(item)])
        days = ",".join(parts) + " " if parts else ""
    month_part = "*" if month == "*" else _calendar_part(month, 2)
    dom_part = "*" if dom == "*" else _calendar_part(dom, 2)
    hour_part = "*" if hour == "*" else _calendar_part(hour, 2)
    minute_part = "*" if minute == "*" else _calendar_part(minute, 2)
    return f"{days}*-{month_part}-{dom_part} {hour_part}:{minute_part}:00"


# -- the jobs file -----------------------------------------------------------------------------


def _existing_folder_parent(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    path = value.expanduser()
    return path if path.is_absolute() else Path(base or Path.cwd()) / path


ReportFormat = Literal["html", "md", "csv", "json", "xlsx"]


def _html_only() -> list[ReportFormat]:
    return ["html"]


class ReportSpec(BaseModel):
    """One report a job renders."""

    model_config = _STRICT
    kind: Literal["compliance", "portfolio", "service"] = "compliance"
    formats: list[ReportFormat] = Field(default_factory=_html_only, min_length=1)
    benchmark: str | None = None
    controls: list[str] = Field(default_factory=list)
    by: str | None = None
    """For portfolio and service reports: the dimension to break the metrics down by."""
    open_tickets: bool = True
    """Let controls with ``open_tickets`` open incidents for new alarms."""


class FolderDelivery(BaseModel):
    """Reports written to a folder with dated names; the last ``keep`` of each kind stay."""

    model_config = _STRICT
    path: Path
    keep: int | None = Field(default=None, ge=1)

    @field_validator("path")
    @classmethod
    def _path(cls, value: Path, info: ValidationInfo) -> Path:
        return _existing_folder_parent(value, info)


class EmailDelivery(BaseModel):
    """Reports attached to an e-mail sent through an SMTP relay."""

    model_config = _STRICT
    host: str
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    """``starttls`` (the default: refuses to go on without it), ``ssl`` (port 465), or
    ``none`` for a relay on the same host that takes no credentials."""
    user: str | None = None
    password: SecretRef | None = None
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)
    subject: str = "{job}: {summary}"
    ca_bundle: Path | None = None
    timeout: float = Field(default=60, gt=0)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        try:
            value.format(job="job", summary="summary")
        except (KeyError, IndexError, ValueError):
            raise PydanticCustomError(
                "subject", "may use {job} and {summary} and no other {...}"
            ) from None
        return value

    @field_validator("ca_bundle")
    @classmethod
    def _ca(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        path = _existing_folder_parent(value, info)
        if not path.exists():
            raise PydanticCustomError(
                "path_missing", "file {path} does not exist", {"path": str(path)}
            )
        return path

    @model_validator(mode="after")
    def _credentials_need_tls(self) -> EmailDelivery:
        if self.security == "none" and (self.user or self.password):
            raise PydanticCustomError(
                "smtp_clear", 'credentials are never sent without TLS: use security = "starttls"'
            )
        if bool(self.user) != bool(self.password):
            raise PydanticCustomError("smtp_auth", "give both user and password, or neither")
        return self


class WebhookDelivery(BaseModel):
    """A JSON POST to an incoming webhook; its URL is a secret reference."""

    model_config = _STRICT
    url: SecretRef
    style: Literal["json", "teams", "slack"] = "json"
    ca_bundle: Path | None = None
    timeout: float = Field(default=30, gt=0)

    @field_validator("ca_bundle")
    @classmethod
    def _ca(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _existing_folder_parent(value, info)


class Job(BaseModel):
    """One ``[jobs.NAME]`` table."""

    model_config = _STRICT
    name: str
    schedule: str | None = None
    """A cron expression (``0 7 * * 1``: Mondays at 07:00) or a macro (``@daily``)."""
    config: Path | None = None
    """The crosswalk.toml this job uses (default: the one ``crosswalk`` was given)."""
    sync: bool | list[str] = True
    """``true``: every enabled source; a list: those sources; ``false``: sync nothing."""
    full: bool = False
    reports: list[ReportSpec] = Field(default_factory=lambda: [ReportSpec()])
    folder: FolderDelivery | None = None
    email: EmailDelivery | None = None
    webhook: WebhookDelivery | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.match(JOB_NAME, value):
            raise PydanticCustomError(
                "job_name", "job names use lowercase letters, digits, - and _ (e.g. monday-report)"
            )
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_cron(value)
            except ValueError as exc:
                raise PydanticCustomError("cron", str(exc)) from None
        return value

    @field_validator("config")
    @classmethod
    def _config(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        return None if value is None else _existing_folder_parent(value, info)


class JobsFile(BaseModel):
    """The whole jobs file."""

    model_config = _STRICT
    jobs: dict[Annotated[str, Field(min_length=1)], Job] = Field(min_length=1)
    path: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("jobs"), dict):
            data = {
                **data,
                "jobs": {
                    k: ({**v, "name": k} if isinstance(v, dict) else v)
                    for k, v in data["jobs"].items()
                },
            }
        return data


def load_jobs(path: Path) -> JobsFile:
    """Read and validate a jobs file; every problem is one :class:`ConfigError` naming the key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"no jobs file at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    data["path"] = path.resolve()
    try:
        return JobsFile.model_validate(data, context={"base_dir": path.resolve().parent})
    except ValidationError as exc:
        message = render_errors(exc, path)
        # A bad job name is the table's key; the user never wrote a `name` key.
        raise ConfigError(re.sub(r"(jobs\.[^.:\s]+)\.name:", r"\1:", message)) from None


def _selected(spec: JobsFile, names: list[str] | None) -> list[Job]:
    if not names:
        return list(spec.jobs.values())
    unknown = [n for n in names if n not in spec.jobs]
    if unknown:
        raise ConfigError(
            f"no job {', '.join(unknown)} in {spec.path}; jobs: {', '.join(spec.jobs)}"
        )
    return [spec.jobs[n] for n in names]


# -- running -------------------------------------------------------------------------------------


@dataclass
class Rendered:
    """One rendered report: its file name, format and bytes, and the summary line it gives."""

    name: str
    fmt: str
    payload: bytes
    kind: str


@dataclass
class JobOutcome:
    """What one job did; ``exit_code`` follows the CLI's convention."""

    job: str
    outcome: str = "ok"
    exit_code: int = 0
    reports: list[str] = field(default_factory=list)
    delivered: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    summary: str = ""
    sync: list[dict[str, Any]] = field(default_factory=list)

    def as_row(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "summary": self.summary,
            "reports": self.reports,
            "delivered": self.delivered,
            "problems": [redact(p) for p in self.problems],
            "sync": self.sync,
        }

    def fail(self, problem: str) -> None:
        self.problems.append(redact(problem))
        self.exit_code = 1
        log.warning("job %s: %s", self.job, redact(problem))

    def attention(self, problem: str) -> None:
        """A problem that is no failure (exit 3, as the CLI gives it): nothing to judge yet."""
        self.problems.append(redact(problem))
        if self.exit_code != 1:
            self.exit_code = 3
        log.warning("job %s: %s", self.job, redact(problem))


def _holder() -> tuple[str, str, int]:
    host = socket.gethostname()
    return f"crosswalk run (pid {os.getpid()} on {host})", host, os.getpid()


def run_jobs(
    spec: JobsFile,
    *,
    names: list[str] | None = None,
    config_path: str | Path | None = None,
    pm: Registry,
    now: datetime | None = None,
) -> list[JobOutcome]:
    """Run the jobs one after the other; a job's failure never stops the next one."""
    outcomes = []
    for job in _selected(spec, names):
        try:
            outcomes.append(run_job(job, config_path=config_path, pm=pm, now=now))
        except CrosswalkError as exc:
            outcome = JobOutcome(job.name, outcome="failed")
            outcome.fail(str(exc))
            outcomes.append(outcome)
    return outcomes


def combined_exit_code(outcomes: list[JobOutcome]) -> int:
    codes = [o.exit_code for o in outcomes]
    return 1 if 1 in codes else max(codes, default=0)


def run_job(
    job: Job,
    *,
    config_path: str | Path | None = None,
    pm: Registry,
    now: datetime | None = None,
) -> JobOutcome:
    """Sync, render and deliver one job, holding its lock throughout."""
    from .config import load_config
    from .store import Store

    config = load_config(job.config or config_path)
    store = Store(config.store.url)
    outcome = JobOutcome(job.name)
    holder, host, pid = _holder()
    lock = f"job:{job.name}"
    try:
        try:
            store.acquire_lock(lock, holder, host=host, pid=pid)
        except LockHeld as exc:
            outcome.outcome = "locked"
            outcome.fail(str(exc).replace(f"source {lock}", f"job {job.name}"))
            return outcome
        try:
            _sync(job, config, store, pm, outcome)
            rendered = _render(job, config, store, pm, outcome, now or datetime.now(UTC))
            _snapshot(job, config, store, pm, outcome, now or datetime.now(UTC))
            _deliver(job, rendered, outcome, now or datetime.now(UTC))
        finally:
            store.release_lock(lock, holder)
    finally:
        store.close()
    if outcome.exit_code == 1:
        outcome.outcome = "failed"
    elif outcome.exit_code == 3:
        outcome.outcome = "attention"
    return outcome


def _sync(job: Job, config: Any, store: Any, pm: Registry, outcome: JobOutcome) -> None:
    from .sync import SyncEngine

    if job.sync is False:
        return
    names = (
        [n for n, s in config.sources.items() if s.enabled] if job.sync is True else list(job.sync)
    )
    unknown = [n for n in names if n not in config.sources]
    if unknown:
        outcome.fail(f"jobs.{job.name}.sync: no source {', '.join(unknown)} in the config")
        names = [n for n in names if n in config.sources]
    engine = SyncEngine(config, store, pm=pm)
    for name in names:
        try:
            result = engine.sync(name, full=job.full)
        except CrosswalkError as exc:
            outcome.sync.append({"source": name, "outcome": "failed"})
            outcome.fail(f"sync of {name} failed: {exc}")
            continue
        outcome.sync.append({"source": name, "outcome": result.outcome})
        if result.exit_code == 1:
            outcome.fail(
                f"sync of {name} ended {result.outcome}: {result.error or 'a stream failed'}"
            )
        elif result.exit_code == 3:
            outcome.exit_code = max(outcome.exit_code, 3)


def _render(
    job: Job, config: Any, store: Any, pm: Registry, outcome: JobOutcome, now: datetime
) -> list[Rendered]:
    from .reports import compliance
    from .reports.render import EXTENSIONS, render

    stamp = now.strftime("%Y-%m-%dT%H%MZ")
    rendered: list[Rendered] = []
    summaries = []
    for spec in job.reports:
        try:
            if spec.kind == "compliance":
                _run, data = compliance.run_and_build(
                    store,
                    config,
                    pm,
                    benchmark=spec.benchmark,
                    control_ids=spec.controls,
                    open_tickets=spec.open_tickets,
                )
                for problem in (data.get("remediation") or {}).get("problems") or []:
                    outcome.fail(f"a ticket was not opened: {problem}")
                s = data["summary"]
                summaries.append(
                    f"{s['alarm']} alarms ({s['new_alarms']} new, {s['fixed']} fixed), "
                    f"{s['unverified']} unverified, pass rate "
                    + ("n/a" if s["pass_rate"] is None else f"{100 * s['pass_rate']:.1f}%")
                )
                if compliance.exit_code(data) and outcome.exit_code != 1:
                    outcome.exit_code = 3
            else:
                from .reports import metrics_report

                data = metrics_report.build(store, config, spec.kind, by=spec.by, pm=pm)
                summaries.append(f"{spec.kind}: {len(data['metrics'])} metrics")
            for fmt in spec.formats:
                name = f"{job.name}-{spec.kind}-{stamp}.{EXTENSIONS[fmt]}"
                rendered.append(Rendered(name, fmt, render(data, fmt), spec.kind))
                outcome.reports.append(name)
        except CrosswalkError as exc:
            if exc.exit_code == 3:
                # What `crosswalk report` exits 3 on (an empty store: nothing to judge, which
                # is no pass) is the same attention in a job, with the same words.
                outcome.attention(f"the {spec.kind} report was not made: {exc}")
            else:
                outcome.fail(f"the {spec.kind} report could not be made: {exc}")
        except Exception as exc:  # one broken report must not stop the others' delivery
            outcome.fail(f"the {spec.kind} report could not be made: {type(exc).__name__}: {exc}")
    sync_failed = [s["source"] for s in outcome.sync if s["outcome"] == "failed"]
    if sync_failed:
        summaries.insert(
            0, f"SYNC FAILED for {', '.join(sync_failed)}: findings on its data are unverified"
        )
    outcome.summary = "; ".join(summaries)
    return rendered


def _snapshot(
    job: Job, config: Any, store: Any, pm: Registry, outcome: JobOutcome, now: datetime
) -> None:
    """Keep every metric and the compliance summary of this run in the metric history, so
    reports and dashboards can draw a trend; a failure here spoils no report."""
    from .history import record_snapshot

    try:
        record_snapshot(store, config, pm=pm, origin=f"job {job.name}", now=now)
    except CrosswalkError as exc:
        outcome.fail(f"the metric snapshot was not kept: {exc}")
    except Exception as exc:  # the reports are made already; say what went wrong, go on
        outcome.fail(f"the metric snapshot was not kept: {type(exc).__name__}: {exc}")


# -- delivery ------------------------------------------------------------------------------------


def _deliver(job: Job, rendered: list[Rendered], outcome: JobOutcome, now: datetime) -> None:
    for kind, target in (("folder", job.folder), ("email", job.email), ("webhook", job.webhook)):
        if target is None:
            continue
        try:
            if kind == "folder":
                deliver_folder(target, rendered)  # type: ignore[arg-type]
            elif kind == "email":
                deliver_email(target, rendered, job=job.name, outcome=outcome)  # type: ignore[arg-type]
            else:
                deliver_webhook(target, rendered, job=job.name, outcome=outcome, now=now)  # type: ignore[arg-type]
            outcome.delivered.append(kind)
        except CrosswalkError as exc:
            outcome.fail(f"delivery by {kind} failed: {exc}")
        except (OSError, smtplib.SMTPException) as exc:
            outcome.fail(f"delivery by {kind} failed: {type(exc).__name__}: {exc}")


def deliver_folder(target: FolderDelivery, rendered: list[Rendered]) -> list[Path]:
    """Write each report under its dated name; keep the newest ``keep`` of each job, kind and
    format (the names sort by date)."""
    target.path.mkdir(parents=True, exist_ok=True)
    written = []
    for item in rendered:
        path = target.path / item.name
        partial = path.with_name(path.name + ".part")
        partial.write_bytes(item.payload)
        partial.replace(path)
        written.append(path)
    if target.keep:
        for prefix, ext in {
            (item.name.rsplit("-", 3)[0], item.name.rsplit(".", 1)[1]) for item in rendered
        }:
            pattern = re.compile(rf"^{re.escape(prefix)}-\d{{4}}-\d{{2}}-\d{{2}}T\d{{4}}Z\.{ext}$")
            matching = sorted(p for p in target.path.iterdir() if pattern.match(p.name))
            for old in matching[: -target.keep]:
                old.unlink()
    return written


def _tls_context(ca_bundle: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_bundle) if ca_bundle else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def deliver_email(
    target: EmailDelivery, rendered: list[Rendered], *, job: str, outcome: JobOutcome
) -> None:
    """Send one e-mail with every report attached (STARTTLS unless told otherwise)."""
    message = EmailMessage()
    message["From"] = target.sender
    message["To"] = ", ".join(target.to)
    subject = target.subject.format(job=job, summary=outcome.summary or "reports")
    message["Subject"] = " ".join(subject.split())[:200]
    lines = [f"crosswalk job {job}", "", outcome.summary or "", ""]
    if outcome.problems:
        lines += ["Problems:", *[f"- {p}" for p in outcome.problems], ""]
    lines += ["Attached:", *[f"- {r.name}" for r in rendered]]
    message.set_content("\n".join(lines))
    for item in rendered:
        maintype, subtype = MIME[item.fmt]
        message.add_attachment(item.payload, maintype=maintype, subtype=subtype, filename=item.name)
    password = (
        resolve_secret(target.password, key=f"jobs.{job}.email.password")
        if target.password
        else None
    )
    context = _tls_context(target.ca_bundle)
    try:
        if target.security == "ssl":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                target.host, target.port, timeout=target.timeout, context=context
            )
        else:
            client = smtplib.SMTP(target.host, target.port, timeout=target.timeout)
        with client:
            client.ehlo()
            if target.security == "starttls":
                if not client.has_extn("starttls"):
                    raise CrosswalkError(
                        f"the SMTP server {target.host}:{target.port} does not offer STARTTLS; "
                        "the report was not sent in clear"
                    )
                client.starttls(context=context)
                client.ehlo()
            if target.user and password:
                client.login(target.user, password)
            client.send_message(message)
    except ssl.SSLError as exc:
        raise CrosswalkError(
            f"TLS with the SMTP server {target.host}:{target.port} failed ({exc.reason or exc}); "
            "if the relay uses an internal CA, name it in ca_bundle"
        ) from None
    except smtplib.SMTPAuthenticationError as exc:
        raise CrosswalkError(
            f"the SMTP server {target.host} refused the login of {target.user} ({exc.smtp_code}): "
            f"check the password that {target.password} points to"
        ) from None
    except smtplib.SMTPException as exc:
        raise CrosswalkError(f"the SMTP server {target.host} refused the message: {exc}") from None
    except OSError as exc:
        raise CrosswalkError(
            f"the SMTP server {target.host}:{target.port} could not be reached: "
            f"{exc.strerror or type(exc).__name__}"
        ) from None


def webhook_payload(
    style: str, *, job: str, outcome: JobOutcome, rendered: list[Rendered], now: datetime
) -> dict[str, Any]:
    """The JSON a webhook gets: our own shape, or what Teams and Slack incoming webhooks take."""
    status = "failed" if outcome.exit_code == 1 else "attention" if outcome.exit_code == 3 else "ok"
    text = outcome.summary or "reports rendered"
    if outcome.problems:
        text += "\n" + "\n".join(f"- {p}" for p in outcome.problems)
    if style == "teams":
        return {
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": f"crosswalk job {job}: {status}",
            "themeColor": {"ok": "2E7D32", "attention": "EF8F00", "failed": "C62828"}[status],
            "title": f"crosswalk job {job}: {status}",
            "text": text.replace("\n", "<br>"),
        }
    if style == "slack":
        return {"text": f"*crosswalk job {job}: {status}*\n{text}"}
    return {
        "job": job,
        "status": status,
        "at": now.isoformat(),
        "summary": outcome.summary,
        "problems": outcome.problems,
        "reports": [r.name for r in rendered],
        "sync": outcome.sync,
    }


def deliver_webhook(
    target: WebhookDelivery,
    rendered: list[Rendered],
    *,
    job: str,
    outcome: JobOutcome,
    now: datetime,
) -> None:
    """POST the job's summary through the one HTTP policy; the URL never appears in messages."""
    import requests

    from .http import HttpPolicy, build_session

    url = resolve_secret(target.url, key=f"jobs.{job}.webhook.url")
    # The token is in the path or query; HTTP debug logs show those without the host.
    parts = urlsplit(url)
    REDACTOR.register(parts.path if len(parts.path) > 1 else None)
    REDACTOR.register(parts.query or None)
    session = build_session(
        f"jobs.{job}.webhook",
        base_url=url,
        policy=HttpPolicy(read_timeout=target.timeout, max_retries=2, max_wait=60),
        ca_bundle=target.ca_bundle,
    )
    payload = webhook_payload(target.style, job=job, outcome=outcome, rendered=rendered, now=now)
    try:
        response = session.post(url, json=payload)
    except requests.RequestException as exc:
        raise CrosswalkError(
            f"the webhook of job {job} ({target.url}) could not be reached: {type(exc).__name__}"
        ) from None
    finally:
        session.close()
    if response.status_code >= 300:
        raise CrosswalkError(
            f"the webhook of job {job} ({target.url}) answered HTTP {response.status_code}"
        )


# -- schedules -----------------------------------------------------------------------------------


ENV_FILE = "crosswalk.env"
"""The file beside the config that cron sources and systemd reads for ``env:`` secrets."""


def _executable() -> list[str]:
    """The absolute command that runs this crosswalk (cron and systemd have no useful PATH)."""
    script = Path(sys.executable).parent / "crosswalk"
    if script.exists():
        return [str(script)]
    return [str(Path(sys.executable).absolute()), "-m", "itcrosswalk.cli"]


def _config_file(job: Job, config_path: str | Path | None) -> Path:
    from .config import find_config_path

    return Path(job.config or find_config_path(config_path)).expanduser().resolve()


def _command(spec: JobsFile, job: Job, config_path: str | Path | None) -> list[str]:
    assert spec.path is not None
    return _executable() + [
        "--config",
        str(_config_file(job, config_path)),
        "run",
        str(spec.path),
        "--job",
        job.name,
    ]


def _references(value: Any, scheme: str) -> list[str]:
    """Every ``scheme:`` secret reference in a dumped config or job, in order, once each."""
    found: list[str] = []
    if isinstance(value, str) and value.startswith(scheme + ":"):
        found.append(value[len(scheme) + 1 :])
    elif isinstance(value, dict):
        for item in value.values():
            found += _references(item, scheme)
    elif isinstance(value, list | tuple):
        for item in value:
            found += _references(item, scheme)
    return list(dict.fromkeys(found))


@dataclass
class _Secrets:
    """How a scheduled job's secrets reach it: ``env:`` names from a file, ``file:`` paths."""

    env_file: Path
    names: list[str]
    files: list[str]
    keyrings: list[str]


def _secrets(job: Job, config_path: str | Path | None) -> _Secrets:
    from .config import load_config

    config_file = _config_file(job, config_path)
    dumped: list[Any] = [job.model_dump(mode="json")]
    try:
        dumped.append(load_config(config_file).model_dump(mode="json"))
    except ConfigError:
        pass  # the run itself will say what is wrong with it
    return _Secrets(
        env_file=config_file.parent / ENV_FILE,
        names=_references(dumped, "env"),
        files=_references(dumped, "file"),
        keyrings=_references(dumped, "keyring"),
    )


def _cron_escape(command: str) -> str:
    # cron turns an unescaped % into a newline.
    return command.replace("%", "\\%")


def _systemd_escape(command: str) -> str:
    # systemd expands % specifiers and $VARIABLES in ExecStart=.
    return command.replace("%", "%%").replace("$", "$$")


def _scheduled(spec: JobsFile, names: list[str] | None) -> list[Job]:
    jobs = [j for j in _selected(spec, names) if j.schedule]
    if not jobs:
        raise ConfigError(f'no job in {spec.path} has a schedule (schedule = "0 7 * * 1")')
    return jobs


def _secret_notes(secrets: _Secrets, *, systemd: bool) -> list[str]:
    notes = []
    if secrets.names:
        state = "" if secrets.env_file.exists() else " (create it, chmod 600)"
        notes.append(
            f"# {secrets.env_file}{state} gives the env: secrets, one NAME=value a line: "
            + ", ".join(secrets.names)
        )
    if secrets.files:
        notes.append(
            "# file: secrets are read as the account running the job: " + ", ".join(secrets.files)
        )
        if systemd:
            notes.append(
                "# (to hand them over with LoadCredential=NAME:PATH instead, point the reference "
                "at file:/run/credentials/UNIT.service/NAME)"
            )
    if secrets.keyrings:
        notes.append(
            "# keyring: secrets need a keyring this account can open without a login session; "
            "file: or env: is safer for a schedule: " + ", ".join(secrets.keyrings)
        )
    return notes


def crontab(spec: JobsFile, *, names: list[str] | None = None, config_path: Any = None) -> str:
    """Crontab lines for the scheduled jobs (for ``crontab -e`` of the service account).

    Each line works as printed: cron starts it in ``$HOME`` with a bare environment, so it
    changes to the config's folder, sources the ``env:`` secrets from ``crosswalk.env`` there,
    runs the absolute executable with the absolute config and appends to a log file.
    """
    assert spec.path is not None
    lines = [f"# itcrosswalk jobs from {spec.path}"]
    for job in _scheduled(spec, names):
        assert job.schedule is not None
        when = " ".join(parse_cron(job.schedule))
        secrets = _secrets(job, config_path)
        folder = _config_file(job, config_path).parent
        log_file = folder / f"crosswalk-{job.name}.log"
        steps = [f"cd {shlex.quote(str(folder))}"]
        if secrets.names:
            steps.append(f"set -a && . {shlex.quote(str(secrets.env_file))} && set +a")
        steps.append(
            f"{shlex.join(_command(spec, job, config_path))} >> {shlex.quote(str(log_file))} 2>&1"
        )
        lines.append(f"# {job.name}: exit 1 = failed, 3 = failed controls or unverified data")
        lines.append(f"# its output goes to {log_file}")
        lines += _secret_notes(secrets, systemd=False)
        lines.append(f"{when} {_cron_escape(' && '.join(steps))}")
    return "\n".join(lines) + "\n"


def systemd_units(
    spec: JobsFile, *, names: list[str] | None = None, config_path: Any = None
) -> str:
    """A service and a timer unit per scheduled job, each preceded by the file it goes in.

    The service runs as the account that printed it, in the config's folder, with the
    ``env:`` secrets from ``crosswalk.env`` (``EnvironmentFile=``); its output goes to the
    journal (``journalctl -u UNIT``).
    """
    import getpass

    assert spec.path is not None
    blocks = []
    for job in _scheduled(spec, names):
        assert job.schedule is not None
        unit = f"crosswalk-job-{job.name}"
        command = _systemd_escape(
            " ".join(shlex.quote(part) for part in _command(spec, job, config_path))
        )
        secrets = _secrets(job, config_path)
        folder = _config_file(job, config_path).parent
        service = [
            f"# /etc/systemd/system/{unit}.service",
            *_secret_notes(secrets, systemd=True),
            "[Unit]",
            f"Description=itcrosswalk job {job.name}",
            "Wants=network-online.target",
            "After=network-online.target",
            "",
            "[Service]",
            "Type=oneshot",
            f"User={getpass.getuser()}",
            f"WorkingDirectory={folder}",
            # Environment= splits on spaces: the assignment is quoted whole.
            f'Environment="CROSSWALK_CONFIG={_config_file(job, config_path)}"',
        ]
        if secrets.names:
            service.append(f"EnvironmentFile={secrets.env_file}")
        service += [
            f"ExecStart={command}",
            "# output goes to the journal: journalctl -u " + unit,
            "# exit 3 (failed controls, unverified data) marks the unit failed, so monitoring sees it",
        ]
        blocks.append(
            "\n".join(service) + "\n\n" + f"# /etc/systemd/system/{unit}.timer\n"
            "[Unit]\n"
            f"Description=itcrosswalk job {job.name} ({job.schedule})\n"
            "\n"
            "[Timer]\n"
            f"OnCalendar={on_calendar(job.schedule)}\n"
            "Persistent=true\n"
            "\n"
            "[Install]\n"
            "WantedBy=timers.target\n"
        )
    footer = "# then: systemctl daemon-reload && systemctl enable --now " + " ".join(
        f"crosswalk-job-{j.name}.timer" for j in _scheduled(spec, names)
    )
    return "\n".join(blocks) + "\n" + footer + "\n"
