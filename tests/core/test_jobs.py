"""Scheduled jobs: the jobs file's validation, schedules as crontab lines and systemd units,
and delivery to a folder, to a real SMTP server (aiosmtpd, STARTTLS with a trustme CA) and to
a local HTTP receiver, all on loopback."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from itcrosswalk.core import jobs
from itcrosswalk.core.errors import ConfigError
from itcrosswalk.core.secrets import REDACTOR
from itcrosswalk.core.store import Store
from itcrosswalk.registry import make_registry
from tests.core.test_compliance_controls import city_store

STAMP = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
PASSWORD = "smtp-Secret-4471"
HOOK_TOKEN = "hook-token-99812"


def _registry() -> Any:
    """The built-in plugins only: installed ones stay out."""
    return make_registry(entry_points_group=None)


# -- the file -----------------------------------------------------------------------------------


def _load(tmp_path: Path, text: str) -> jobs.JobsFile:
    path = tmp_path / "jobs.toml"
    path.write_text(text)
    return jobs.load_jobs(path)


def test_a_bad_jobs_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(
            tmp_path,
            '[jobs.monday]\nschedule = "0 7 * * 8"\nsycn = true\n'
            '[jobs.monday.email]\nhost = "smtp.city.gov"\nfrom = "a@city.gov"\nto = ["b@city.gov"]\n'
            'user = "svc"\npassword = "hunter22"\n'
            "[jobs.Bad]\n",
        )
    message = str(err.value)
    assert "jobs.monday.schedule: the day of week field '8' is outside 0-7" in message
    assert "jobs.monday.sycn: unknown key" in message
    assert "jobs.monday.email.password: a literal secret is not allowed" in message
    assert "jobs.Bad: job names use lowercase" in message
    assert "hunter22" not in message
    with pytest.raises(ConfigError, match=r"jobs.x.email.subject: may use \{job\} and \{summary\}"):
        _load(
            tmp_path, '[jobs.x.email]\nhost = "h"\nfrom = "a@b"\nto = ["c@d"]\nsubject = "{date}"\n'
        )
    with pytest.raises(ConfigError, match="credentials are never sent without TLS"):
        _load(
            tmp_path,
            '[jobs.x.email]\nhost = "h"\nfrom = "a@b"\nto = ["c@d"]\nsecurity = "none"\n'
            'user = "u"\npassword = "env:P"\n',
        )
    with pytest.raises(
        ConfigError, match=r"jobs\.x\.reports\[0\]\.formats\[0\]: Input should be .html."
    ):
        _load(tmp_path, '[jobs.x]\nreports = [{ kind = "compliance", formats = ["pdf"] }]\n')


@pytest.mark.parametrize(
    ("cron", "calendar"),
    [
        ("0 7 * * 1", "Mon *-*-* 07:00:00"),
        ("30 6 * * mon-fri", "Mon..Fri *-*-* 06:30:00"),
        ("*/15 * * * *", "*-*-* *:00/15:00"),
        ("0 2 1 * *", "*-*-01 02:00:00"),
        ("0 8,17 * jan-mar 0", "Sun *-01..03-* 08,17:00:00"),
        ("@daily", "*-*-* 00:00:00"),
        ("5 4 * * 7", "Sun *-*-* 04:05:00"),
    ],
)
def test_cron_schedules_become_systemd_calendars(cron: str, calendar: str) -> None:
    assert jobs.on_calendar(cron) == calendar


def test_schedules_that_do_not_translate_are_refused() -> None:
    with pytest.raises(ConfigError, match="EITHER the day of month or the day of week"):
        jobs.on_calendar("0 7 1 * 1")
    for bad in ("0 7 * *", "61 * * * *", "0 7 * * x", "5-1 * * * *", "*/0 * * * *"):
        with pytest.raises(ValueError):
            jobs.parse_cron(bad)


SCHEDULED = """
[jobs.monday]
schedule = "0 7 * * 1"
sync = true
[jobs.nightly-sync]
schedule = "@daily"
reports = []
[jobs.adhoc]
sync = false
"""


def test_crontab_and_systemd_units(tmp_path: Path) -> None:
    spec = _load(tmp_path, SCHEDULED)
    config = tmp_path / "crosswalk.toml"
    lines = jobs.crontab(spec, config_path=config).splitlines()
    entries = [line for line in lines if not line.startswith("#")]
    assert len(entries) == 2, "the unscheduled job gets no line"
    assert entries[0].startswith("0 7 * * 1 ")
    assert (
        f"--config {config.resolve()} run {tmp_path.resolve() / 'jobs.toml'} --job monday >> "
        in entries[0]
    )
    assert entries[1].startswith("0 0 * * * ") and "--job nightly-sync >> " in entries[1]
    units = jobs.systemd_units(spec, names=["monday"], config_path=config)
    assert "# /etc/systemd/system/crosswalk-job-monday.service" in units
    assert "Type=oneshot" in units and "OnCalendar=Mon *-*-* 07:00:00" in units
    assert "Persistent=true" in units and "WantedBy=timers.target" in units
    assert "ExecStart=" in units and "--job monday" in units
    assert "systemctl enable --now crosswalk-job-monday.timer" in units
    with pytest.raises(ConfigError, match="no job nope"):
        jobs.crontab(spec, names=["nope"])
    with pytest.raises(ConfigError, match="has a schedule"):
        jobs.crontab(spec, names=["adhoc"])


# -- delivery ---------------------------------------------------------------------------------


def _rendered(name: str = "monday-compliance-2026-11-23T0700Z.html") -> list[jobs.Rendered]:
    return [jobs.Rendered(name, name.rsplit(".", 1)[1], b"<p>report</p>", "compliance")]


def test_folder_delivery_keeps_the_last_n(tmp_path: Path) -> None:
    target = jobs.FolderDelivery(path=tmp_path / "out", keep=2)
    for day in ("20", "21", "22", "23"):
        for ext in ("html", "json"):
            jobs.deliver_folder(target, _rendered(f"monday-compliance-2026-11-{day}T0700Z.{ext}"))
    (tmp_path / "out" / "notes.txt").write_text("kept")
    jobs.deliver_folder(target, _rendered("other-compliance-2026-11-01T0700Z.html"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "monday-compliance-2026-11-22T0700Z.html",
        "monday-compliance-2026-11-22T0700Z.json",
        "monday-compliance-2026-11-23T0700Z.html",
        "monday-compliance-2026-11-23T0700Z.json",
        "notes.txt",
        "other-compliance-2026-11-01T0700Z.html",
    ]


class _Inbox:
    """What the SMTP server received, and who logged in."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.envelopes: list[Any] = []
        self.logins: list[tuple[str, str]] = []
        self.tls: list[bool] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.tls.append(session.ssl is not None)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def smtp(ca: trustme.CA, tmp_path: Path) -> Iterator[tuple[_Inbox, int, Path, Any]]:
    """A real SMTP server on loopback that offers STARTTLS and requires it before AUTH."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    inbox = _Inbox()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        login, password = auth_data.login.decode(), auth_data.password.decode()
        inbox.logins.append((login, password))
        return AuthResult(success=login == "svc-reports" and password == PASSWORD, handled=False)

    port = _free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        server_hostname="127.0.0.1",
        tls_context=context,
        require_starttls=True,
        auth_require_tls=True,
        authenticator=authenticator,
    )
    controller.start()
    bundle = tmp_path / "smtp-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    try:
        yield inbox, port, bundle, controller
    finally:
        controller.stop()


def _email(port: int, bundle: Path | None, **kw: Any) -> jobs.EmailDelivery:
    return jobs.EmailDelivery.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "from": "crosswalk@city.example.gov",
            "to": ["security-lead@city.example.gov", "pmo@city.example.gov"],
            "user": "svc-reports",
            "password": "env:CW_SMTP_PASSWORD",
            "ca_bundle": bundle,
            "timeout": 10,
            **kw,
        }
    )


def test_email_goes_through_starttls_with_the_report_attached(
    smtp: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, port, bundle, _controller = smtp
    monkeypatch.setenv("CW_SMTP_PASSWORD", PASSWORD)
    caplog.set_level(logging.DEBUG)
    outcome = jobs.JobOutcome("monday", summary="3 alarms (1 new, 0 fixed)")
    files = _rendered() + [
        jobs.Rendered(
            "monday-compliance-2026-11-23T0700Z.xlsx", "xlsx", b"PK\x03\x04xlsx", "compliance"
        )
    ]
    jobs.deliver_email(_email(port, bundle), files, job="monday", outcome=outcome)
    assert inbox.logins == [("svc-reports", PASSWORD)]
    assert inbox.tls == [True], "the message travelled inside TLS"
    message = inbox.messages[0]
    assert message["Subject"] == "monday: 3 alarms (1 new, 0 fixed)"
    assert inbox.envelopes[0].rcpt_tos == ["security-lead@city.example.gov", "pmo@city.example.gov"]
    parts = {p.get_filename(): p for p in message.walk() if p.get_filename()}
    assert (
        parts["monday-compliance-2026-11-23T0700Z.html"].get_payload(decode=True)
        == b"<p>report</p>"
    )
    assert parts["monday-compliance-2026-11-23T0700Z.xlsx"].get_content_type().endswith("sheet")
    assert PASSWORD not in caplog.text


def test_email_problems_are_clear_and_never_leak_the_password(
    smtp: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    inbox, port, bundle, _controller = smtp
    from itcrosswalk.core.errors import CrosswalkError

    monkeypatch.setenv("CW_SMTP_PASSWORD", "wrong-password-123")
    outcome = jobs.JobOutcome("monday")
    with pytest.raises(
        CrosswalkError, match="refused the login of svc-reports .*env:CW_SMTP_PASSWORD"
    ) as err:
        jobs.deliver_email(_email(port, bundle), _rendered(), job="monday", outcome=outcome)
    assert "wrong-password-123" not in str(err.value)
    # Without the City's CA the relay's certificate is not trusted: nothing is sent.
    monkeypatch.setenv("CW_SMTP_PASSWORD", PASSWORD)
    with pytest.raises(CrosswalkError, match="TLS with the SMTP server .* ca_bundle"):
        jobs.deliver_email(_email(port, None), _rendered(), job="monday", outcome=outcome)
    closed = _free_port()
    with pytest.raises(CrosswalkError, match="could not be reached"):
        jobs.deliver_email(_email(closed, bundle), _rendered(), job="monday", outcome=outcome)
    assert inbox.messages == []


def test_a_server_without_starttls_gets_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from aiosmtpd.controller import Controller

    from itcrosswalk.core.errors import CrosswalkError

    inbox = _Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        monkeypatch.setenv("CW_SMTP_PASSWORD", PASSWORD)
        with pytest.raises(CrosswalkError, match="does not offer STARTTLS"):
            jobs.deliver_email(
                _email(port, None), _rendered(), job="m", outcome=jobs.JobOutcome("m")
            )
        # A local relay without TLS is allowed only without credentials.
        plain = jobs.EmailDelivery.model_validate(
            {
                "host": "127.0.0.1",
                "port": port,
                "from": "a@city.gov",
                "to": ["b@city.gov"],
                "security": "none",
            }
        )
        jobs.deliver_email(plain, _rendered(), job="m", outcome=jobs.JobOutcome("m"))
    finally:
        controller.stop()
    assert len(inbox.messages) == 1 and inbox.tls == [False]


class _Receiver(BaseHTTPRequestHandler):
    posts: list[tuple[str, dict[str, Any]]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 - the http.server name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts.append((self.path, json.loads(body)))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"posts": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/{HOOK_TOKEN}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("style", ["json", "teams", "slack"])
def test_webhook_posts_the_summary(
    receiver: Any, monkeypatch: pytest.MonkeyPatch, style: str
) -> None:
    url, handler = receiver
    monkeypatch.setenv("CW_HOOK", url)
    outcome = jobs.JobOutcome("monday", exit_code=3, summary="3 alarms (1 new, 0 fixed)")
    target = jobs.WebhookDelivery(url="env:CW_HOOK", style=style)
    jobs.deliver_webhook(target, _rendered(), job="monday", outcome=outcome, now=STAMP)
    path, body = handler.posts[0]
    assert path == f"/hooks/{HOOK_TOKEN}"
    if style == "json":
        assert body == {
            "job": "monday",
            "status": "attention",
            "at": "2026-11-23T07:00:00+00:00",
            "summary": "3 alarms (1 new, 0 fixed)",
            "problems": [],
            "reports": ["monday-compliance-2026-11-23T0700Z.html"],
            "sync": [],
        }
    elif style == "teams":
        assert body["@type"] == "MessageCard" and body["title"] == "crosswalk job monday: attention"
    else:
        assert body == {"text": "*crosswalk job monday: attention*\n3 alarms (1 new, 0 fixed)"}


def test_a_failing_webhook_is_named_without_its_url(
    receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from itcrosswalk.core.errors import CrosswalkError

    url, handler = receiver
    handler.status = 404
    monkeypatch.setenv("CW_HOOK", url)
    with pytest.raises(CrosswalkError) as err:
        jobs.deliver_webhook(
            jobs.WebhookDelivery(url="env:CW_HOOK"),
            _rendered(),
            job="monday",
            outcome=jobs.JobOutcome("monday"),
            now=STAMP,
        )
    assert "answered HTTP 404" in str(err.value) and "env:CW_HOOK" in str(err.value)
    assert HOOK_TOKEN not in str(err.value)


# -- whole jobs -------------------------------------------------------------------------------


def _job_file(tmp_path: Path, port: int, bundle: Path, extra: str = "") -> jobs.JobsFile:
    return _load(
        tmp_path,
        f"""
[jobs.monday]
schedule = "0 7 * * 1"
sync = false
reports = [{{ kind = "compliance", formats = ["html", "json", "xlsx"] }}]
{extra}
[jobs.monday.folder]
path = "out"
keep = 4

[jobs.monday.email]
host = "127.0.0.1"
port = {port}
from = "crosswalk@city.example.gov"
to = ["security-lead@city.example.gov"]
user = "svc-reports"
password = "env:CW_SMTP_PASSWORD"
ca_bundle = "{bundle}"

[jobs.monday.webhook]
url = "env:CW_HOOK"
""",
    )


def _config(tmp_path: Path, store_url: str, sources: str = "") -> Path:
    config = tmp_path / "crosswalk.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n{sources}')
    return config


def test_a_job_renders_and_delivers_everywhere(
    tmp_path: Path,
    smtp: Any,
    receiver: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox, port, bundle, _controller = smtp
    url, handler = receiver
    monkeypatch.setenv("CW_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("CW_HOOK", url)
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(REDACTOR)  # as the CLI's log handler does, in --debug too
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    city_store(store_url).close()
    spec = _job_file(tmp_path, port, bundle)
    [outcome] = jobs.run_jobs(
        spec, config_path=_config(tmp_path, store_url), now=STAMP, pm=_registry()
    )
    assert outcome.problems == []
    assert (outcome.outcome, outcome.exit_code) == ("attention", 3)
    assert outcome.delivered == ["folder", "email", "webhook"]
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "monday-compliance-2026-11-23T0700Z.html",
        "monday-compliance-2026-11-23T0700Z.json",
        "monday-compliance-2026-11-23T0700Z.xlsx",
    ]
    data = json.loads((tmp_path / "out" / names[1]).read_text())
    assert outcome.summary.startswith(f"{data['summary']['alarm']} alarms")
    attachments = [p.get_filename() for p in inbox.messages[0].walk() if p.get_filename()]
    assert attachments == names
    assert handler.posts[0][1]["status"] == "attention"
    assert PASSWORD not in caplog.text and HOOK_TOKEN not in caplog.text
    assert jobs.combined_exit_code([outcome]) == 3


def test_one_job_name_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    store = city_store(store_url)
    # Another host's run holds the lock (a live holder: never taken over).
    store.acquire_lock("job:monday", "crosswalk run (pid 1 on ops-2)", host="ops-2", pid=1)
    store.close()
    spec = _load(tmp_path, '[jobs.monday]\nsync = false\n[jobs.monday.folder]\npath = "out"\n')
    [outcome] = jobs.run_jobs(
        spec, config_path=_config(tmp_path, store_url), now=STAMP, pm=_registry()
    )
    assert (outcome.outcome, outcome.exit_code) == ("locked", 1)
    assert "job monday is being synced by crosswalk run (pid 1 on ops-2)" in outcome.problems[0]
    assert not (tmp_path / "out").exists()


def test_a_failed_sync_still_sends_a_report_that_says_so(
    tmp_path: Path, smtp: Any, receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox, port, bundle, _controller = smtp
    url, handler = receiver
    monkeypatch.setenv("CW_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("CW_HOOK", url)
    monkeypatch.setenv("CW_SNOW_PASSWORD", "irrelevant-pass")
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    city_store(store_url).close()
    dead = _free_port()
    config = _config(
        tmp_path,
        store_url,
        f'[sources.snow]\nplatform = "servicenow"\nurl = "https://127.0.0.1:{dead}"\n'
        'auth = { type = "basic", user = "svc", password = "env:CW_SNOW_PASSWORD" }\n'
        "max_retries = 0\nconnect_timeout = 2\n",
    )
    spec = _job_file(tmp_path, port, bundle).model_copy()
    spec.jobs["monday"] = spec.jobs["monday"].model_copy(update={"sync": ["snow"]})
    [outcome] = jobs.run_jobs(spec, config_path=config, now=STAMP, pm=_registry())
    assert (outcome.outcome, outcome.exit_code) == ("failed", 1)
    assert outcome.sync == [{"source": "snow", "outcome": "failed"}]
    assert outcome.problems[0].startswith("sync of snow failed")
    assert outcome.summary.startswith("SYNC FAILED for snow")
    assert outcome.delivered == ["folder", "email", "webhook"], "the report still goes out"
    data = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert "last sync failed" in data["sources"]["snow"]["problems"]
    sync_rows = [
        f
        for f in data["findings"]
        if f["control_id"] == "data.source_sync" and f["source"] == "snow"
    ]
    assert sync_rows and {f["status"] for f in sync_rows} == {"alarm"}
    ok_from_snow = [f for f in data["findings"] if f["source"] == "snow" and f["status"] == "ok"]
    assert ok_from_snow == [], "nothing read from a failed source is ok"
    assert "SYNC FAILED" in inbox.messages[0]["Subject"]
    assert handler.posts[0][1]["status"] == "failed"


def test_unknown_job_names_are_refused(tmp_path: Path) -> None:
    spec = _load(tmp_path, SCHEDULED)
    with pytest.raises(ConfigError, match="no job nope .* jobs: monday, nightly-sync, adhoc"):
        jobs.run_jobs(spec, names=["nope"], pm=_registry())


def test_store_is_left_unlocked(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    city_store(store_url).close()
    spec = _load(tmp_path, "[jobs.monday]\nsync = false\nreports = []\n")
    [outcome] = jobs.run_jobs(
        spec, config_path=_config(tmp_path, store_url), now=STAMP, pm=_registry()
    )
    assert outcome.exit_code == 0 and outcome.outcome == "ok"
    store = Store(store_url)
    try:
        assert store.lock_holder("job:monday") is None
    finally:
        store.close()


def test_a_job_may_name_its_own_config_relative_to_the_jobs_file(tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'city' / 'store.db'}"
    city_store(store_url).close()
    (tmp_path / "city").mkdir(exist_ok=True)
    (tmp_path / "city" / "crosswalk.toml").write_text(f'[store]\nurl = "{store_url}"\n')
    spec = _load(
        tmp_path,
        '[jobs.city]\nconfig = "city/crosswalk.toml"\nsync = false\nschedule = "@weekly"\n'
        'reports = [{ formats = ["json"], controls = ["endpoint.primary_user"] }]\n'
        '[jobs.city.folder]\npath = "out"\n',
    )
    # The job's own config wins over the one crosswalk was given (which does not even exist).
    [outcome] = jobs.run_jobs(
        spec, config_path=tmp_path / "missing.toml", now=STAMP, pm=_registry()
    )
    assert outcome.exit_code == 3 and outcome.problems == []
    [report] = (tmp_path / "out").iterdir()
    assert json.loads(report.read_text())["summary"]["alarm"] == 1
    line = jobs.crontab(spec, config_path=tmp_path / "missing.toml").splitlines()[-1]
    # The line names the job's own config, never the missing one it was printed with.
    assert f"--config {(tmp_path / 'city' / 'crosswalk.toml').resolve()} run" in line
    assert "missing.toml" not in line and line.startswith("0 0 * * 0 ")
