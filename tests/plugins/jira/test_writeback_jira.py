"""Write-back to Jira: JSM requests opened and resolved for compliance findings, epics from
templates; idempotent through the correlation label; dry runs send nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import PlatformError
from itcrosswalk.core.sync import build_adapter
from itcrosswalk.core.templates.apply import apply
from itcrosswalk.core.templates.loader import load_catalog

from .conftest import Site

CID = "itcrosswalk-0123456789abcdef0123456789abcdef01234567"
FIELDS = {
    "title": "[high] Device not encrypted: POL-LT-0042",
    "description": "Finding: not encrypted\nWhat to do: encrypt it",
}


def writes(site: Site) -> list[tuple[str, str, Any]]:
    return [
        (m, p, b)
        for m, p, b in site.app.bodies
        if m in ("POST", "PUT") and not p.endswith("/search/jql")
    ]


@pytest.fixture
def adapter(site: Site, make_config: Callable[..., Config], pm: Any) -> Any:
    made = build_adapter(make_config(site), "jsm", pm)
    yield made
    made.close()


def test_a_finding_opens_one_request_labelled_with_its_correlation_id(
    site: Site, adapter: Any
) -> None:
    writer = adapter.writers["ticket:incident"]
    first = writer(FIELDS, correlation_id=CID)
    assert first.action == "created" and first.url.endswith(
        "/browse/" + site.app.issues[int(first.source_id)].key
    )
    issue = site.app.issues[int(first.source_id)]
    assert issue.labels == [CID] and issue.type_id == "10100" and issue.project == "CSD"
    assert issue.properties["itcrosswalk"]["correlation_id"] == CID
    # The same alarm again: the label finds it (the write is reconciled into search at once).
    site.app.search_lag = 30
    again = writer(FIELDS, correlation_id=CID)
    assert again.action == "exists" and again.source_id == first.source_id
    assert sum(1 for m, p, _b in writes(site) if p.endswith("/issue")) == 1
    reconciled = [b for _m, p, b in site.app.bodies if p.endswith("/search/jql")][-1]
    assert int(first.source_id) in reconciled["reconcileIssues"]


def test_a_dry_run_prints_the_request_and_sends_nothing(site: Site, adapter: Any) -> None:
    result = adapter.writers["ticket:incident"](FIELDS, correlation_id=CID, dry_run=True)
    assert result.action == "dry_run"
    create = result.requests[-1]
    assert create["method"] == "POST" and create["url"].endswith("/rest/api/3/issue")
    assert create["body"]["fields"]["labels"] == [CID]
    assert create["body"]["fields"]["description"]["type"] == "doc"
    assert writes(site) == []


def test_the_resolver_resolves_with_a_comment_once(site: Site, adapter: Any) -> None:
    created = adapter.writers["ticket:incident"](FIELDS, correlation_id=CID)
    resolver = adapter.resolvers["ticket:incident"]
    done = resolver(CID, note="The device is encrypted now.")
    issue = site.app.issues[int(created.source_id)]
    assert done.action == "resolved" and issue.status == "10003" and issue.resolution == "10000"
    assert resolver(CID, note="again").action == "already_resolved"
    assert resolver("itcrosswalk-none", note="x").action == "missing"


def test_a_refused_create_names_jiras_own_reason(site: Site, adapter: Any) -> None:
    with pytest.raises(PlatformError) as caught:
        adapter.writers["ticket:incident"]({**FIELDS, "priority": 9}, correlation_id=CID)
    assert "priority" in str(caught.value)
    with pytest.raises(Exception) as spaced:
        adapter.writers["ticket:incident"](FIELDS, correlation_id="has a space")
    assert "without spaces" in str(spaced.value)


def test_template_apply_creates_an_epic_under_an_initiative(
    site: Site, adapter: Any, pm: Any
) -> None:
    templates = load_catalog(None, pm).templates
    initiative = next(i for i in site.app.issues.values() if i.type_id == "10201")
    values = {
        "name": "Permit kiosk",
        "parent_id": initiative.key,
        "department": "Parks and Recreation",
    }
    dry = apply(templates["agile-epic"], adapter, values, dry_run=True)
    assert dry.result.action == "dry_run" and not writes(site)
    body = dry.result.requests[-1]["body"]["fields"]
    assert body["parent"] == {"key": initiative.key} and body["issuetype"] == {"id": "10200"}
    applied = apply(templates["agile-epic"], adapter, values)
    epic = site.app.issues[int(applied.result.source_id)]
    assert (
        epic.parent == initiative.id and epic.custom["customfield_10060"] == "Parks and Recreation"
    )
    assert apply(templates["agile-epic"], adapter, values).result.action == "exists"
