"""examples/jobs.toml end to end against the sandbox: ServiceNow and Intune emulators on
loopback HTTPS, `crosswalk run` through the CLI, the report e-mailed to a real SMTP server
(aiosmtpd, STARTTLS) and posted to a local webhook receiver; the findings match the world."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from itcrosswalk.cli import make_cli
from itcrosswalk.core.model import normalize_serial
from itcrosswalk.registry import make_registry
from itcrosswalk.sandbox import runner
from itcrosswalk.sandbox.world import generate
from tests.core.test_jobs import PASSWORD, ca, receiver, smtp  # noqa: F401 - fixtures

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "jobs.toml"


def _local(text: str, port: int, bundle: Path) -> str:
    """The example, pointed at the test's SMTP server instead of the City's relay."""
    text, n = re.subn(
        r'host = "smtp\.city\.example\.gov"\nport = 587',
        f'host = "127.0.0.1"\nport = {port}\nca_bundle = "{bundle}"\ntimeout = 20',
        text,
    )
    assert n == 1
    return text.replace('user = "svc-crosswalk"', 'user = "svc-reports"')


def test_the_example_job_runs_end_to_end_against_the_sandbox(
    tmp_path: Path,
    smtp: Any,  # noqa: F811 - the fixture imported above
    receiver: Any,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inbox, port, bundle, _controller = smtp
    url, handler = receiver
    monkeypatch.setenv("CROSSWALK_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("CROSSWALK_TEAMS_WEBHOOK", url)
    pm = make_registry(entry_points_group=None)
    world = generate(7, "tiny")
    with runner.start(world, pm=pm, platforms=["servicenow", "intune"]) as box:
        config = runner.write_config(
            box, tmp_path / "sandbox", store_url=f"sqlite:///{tmp_path / 'store.db'}"
        )
        jobs_file = tmp_path / "jobs.toml"
        jobs_file.write_text(_local(EXAMPLE.read_text(), port, bundle))
        result = CliRunner().invoke(
            make_cli(pm),
            [
                "--config",
                str(config),
                "run",
                str(jobs_file),
                "--job",
                "monday-compliance",
                "--format",
                "json",
            ],
        )
    assert result.exit_code == 3, result.output  # the seeded city has findings
    [row] = json.loads(result.stdout)
    assert row["outcome"] == "attention" and row["problems"] == []
    assert row["delivered"] == ["folder", "email", "webhook"]
    assert [s["outcome"] for s in row["sync"]] == ["ok", "ok"]
    reports = sorted((tmp_path / "reports").iterdir())
    assert [p.suffix for p in reports] == [".html", ".json", ".xlsx"]
    data = json.loads(reports[1].read_text())

    def alarms(control: str) -> set[str]:
        return {
            f["label"]
            for f in data["findings"]
            if f["control_id"] == control and f["status"] == "alarm"
        }

    managed = [d for d in world.devices if d.in_intune]
    assert alarms("endpoint.disk_encryption") == {d.name for d in managed if not d.encrypted}
    cmdb_keys = {normalize_serial(d.serial) for d in world.devices if d.in_cmdb}
    assert alarms("endpoint.intune_in_cmdb") == {
        d.name
        for d in managed
        if normalize_serial(d.serial) and normalize_serial(d.serial) not in cmdb_keys
    }
    assert data["summary"]["controls"] >= 15
    message = inbox.messages[0]
    assert "Weekly compliance (monday-compliance):" in message["Subject"]
    assert sorted(p.get_filename() for p in message.walk() if p.get_filename()) == [
        p.name for p in reports
    ]
    assert handler.posts[0][1]["@type"] == "MessageCard"
