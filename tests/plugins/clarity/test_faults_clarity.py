"""The issue's bad input and faults, one test each, against the HTTPS emulator."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import pytest

from itcrosswalk.core.config import Config
from itcrosswalk.core.errors import AuthError, ConfigError
from itcrosswalk.core.secrets import redact
from itcrosswalk.core.store import Store
from itcrosswalk.core.sync import SyncEngine, build_adapter
from tests.leaks import leaks, store_text

from .conftest import KEY, PASSWORD, Tenant

BASIC = '{ type = "basic", user = "svc_basic", password = "env:CLARITY_PASSWORD" }'


def sync(config: Config, store: Store, pm: Any, **kwargs: Any) -> Any:
    return SyncEngine(config, store, pm=pm).sync("ppm", **kwargs)


def rows(store: Store, entity: str, **kwargs: Any) -> dict[str, dict[str, Any]]:
    return {r["source_id"]: r for r in store.export(entity, source="ppm", **kwargs)}


def check(config: Config, pm: Any) -> dict[str, Any]:
    adapter = build_adapter(config, "ppm", pm)
    try:
        return {item.name: item for item in adapter.check()}
    finally:
        adapter.close()


def project_of(tenant: Tenant, kind: str = "project") -> dict[str, Any]:
    return next(
        p
        for p in tenant.app.data["projects"]
        if not p["isTemplate"] and p["isProgram"] is (kind == "program")
    )


def test_an_expired_api_key_is_an_auth_error_that_says_so(
    tenant_factory: Callable[..., Tenant],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    tenant = tenant_factory(key_expires=datetime.now(UTC) - timedelta(days=1))
    config = make_config(tenant, extra='key_expires = "2026-01-01"')
    store = open_store(config)
    with pytest.raises(AuthError) as caught:
        sync(config, store, pm)
    message = str(caught.value)
    assert "api.apiKeyExpired" in message and "90 days" in message
    assert KEY not in message
    items = check(config, pm)
    assert items["projects"].status == "auth" and "expired" in items["projects"].detail
    run = store.runs("ppm")[0]
    assert run["outcome"] == "failed" and KEY not in (run["error"] or "")


def test_check_warns_of_a_key_near_its_expiry(
    tenant: Tenant, make_config: Callable[..., Config], pm: Any
) -> None:
    soon = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    items = check(make_config(tenant, extra=f'key_expires = "{soon}"'), pm)
    assert items["projects"].ok is False and "in 5 days" in items["projects"].detail
    assert items["ideas"].ok  # the key's expiry is said once, on the first stream's line
    later = (datetime.now(UTC) + timedelta(days=60)).date().isoformat()
    assert check(make_config(tenant, extra=f'key_expires = "{later}"'), pm)["projects"].ok


def test_a_wrong_password_is_an_auth_error_never_zero_records(
    tenant: Tenant,
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CLARITY_PASSWORD", "not-the-password")
    config = make_config(tenant, auth=BASIC, client=False)
    store = open_store(config)
    with pytest.raises(AuthError) as caught:
        sync(config, store, pm)
    assert "HTTP 401" in str(caught.value) and "env:CLARITY_PASSWORD" in str(caught.value)
    assert "not-the-password" not in str(caught.value)
    assert store.count("work_item", source="ppm") == 0


def test_an_html_login_page_answered_with_200_is_an_auth_error(
    tenant_factory: Callable[..., Tenant],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    tenant = tenant_factory(expired_sessions=True)
    config = make_config(tenant, auth=BASIC, client=False, extra="session = true")
    store = open_store(config)
    with pytest.raises(AuthError) as caught:
        sync(config, store, pm)
    assert "HTML page" in str(caught.value)
    logins = [q for m, q in tenant.app.requests if m == "POST" and q.endswith("/auth/login")]
    assert len(logins) == 2  # the session was renewed once before giving up
    assert store.count("work_item", source="ppm") == 0


def test_a_session_login_reads_everything_and_logs_out(
    tenant: Tenant, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(tenant, auth=BASIC, client=False, extra="session = true")
    store = open_store(config)
    assert sync(config, store, pm).exit_code == 0
    methods = [(m, q.split("?")[0].rsplit("/", 2)[-2:]) for m, q in tenant.app.requests]
    assert methods[0] == ("POST", ["auth", "login"]) and methods[-1] == (
        "DELETE",
        ["auth", "logout"],
    )
    assert not tenant.app.sessions  # logged out
    assert PASSWORD not in json.dumps(store.runs("ppm")[0]["manifest"], default=str)


class _Issued(dict[str, str]):
    """The emulator's session table, keeping every token it ever issued."""

    issued: list[str]

    def __setitem__(self, key: str, value: str) -> None:
        self.issued.append(key)
        super().__setitem__(key, value)


def test_a_session_token_never_appears_in_sync_output_or_the_store(
    tenant_factory: Callable[..., Tenant],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = tenant_factory()
    tenant.app.sessions = _Issued()
    tenant.app.sessions.issued = []
    config = make_config(tenant, auth=BASIC, client=False, extra="session = true")
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0
    tokens = tenant.app.sessions.issued
    assert tokens
    messages = json.dumps([(s.stream, s.message) for s in result.streams])
    for token in tokens:
        assert redact(f"authToken: {token}") == "authToken: ***"
        assert leaks(caplog.text, token) == [] and leaks(messages, token) == []
        assert leaks(store_text(config.store.url), token) == []


def test_no_change_is_lost_at_the_boundary_seven_hours_from_utc(
    tenant_factory: Callable[..., Tenant],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    tenant = tenant_factory(timezone="America/Phoenix")  # UTC-7, no daylight saving
    config = make_config(tenant, extra='server_timezone = "America/Phoenix"\noverlap_seconds = 0')
    store = open_store(config)
    assert sync(config, store, pm).exit_code == 0
    first = rows(store, "work_item")
    # A project edited now, and another whose edit landed in the very second the watermark
    # stands on, committed after the first read (the closed lower bound must still see it).
    edited = tenant.app.touch("projects", project_of(tenant)["_internalId"], name="Renamed now")
    stamps = [p["lastUpdatedDate"] for p in tenant.app.data["projects"] if not p["isTemplate"]]
    boundary = max(s for s in stamps if s != edited["lastUpdatedDate"])
    late = next(
        p for p in tenant.app.data["projects"]
        if not p["isTemplate"] and p["lastUpdatedDate"] != boundary and p is not edited
    )  # fmt: skip
    late.update(name="Late in the same second", lastUpdatedDate=boundary)
    second = sync(config, store, pm)
    assert second.exit_code == 0
    after = rows(store, "work_item")
    assert after[f"project-{edited['_internalId']}"]["name"] == "Renamed now"
    assert after[f"project-{late['_internalId']}"]["name"] == "Late in the same second"
    # The bound went out as Phoenix local time (a UTC literal would be seven hours ahead).
    literals = [
        unquote_plus(q).split("lastUpdatedDate >= '")[1][:19]
        for m, q in tenant.app.requests
        if "lastUpdatedDate >= '" in unquote_plus(q) and "/projects?" in q
    ]
    assert literals and literals[-1] == boundary
    stored = first[f"project-{late['_internalId']}"]["updated_at"]
    assert stored.utcoffset() == timedelta(0)


def test_a_custom_attribute_that_is_not_api_enabled_is_named_in_check_and_absent_in_sync(
    tenant: Tenant, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    extra = 'custom_fields = { department = "c_department", sponsor = "c_businessOwner" }'
    config = make_config(tenant, extra="")
    text = config.path.read_text().replace('custom_fields = { department = "c_department" }', extra)
    config.path.write_text(text)
    from itcrosswalk.core.config import load_config

    config = load_config(config.path)
    items = check(config, pm)
    flagged = items["projects"]
    assert not flagged.ok and flagged.status == "missing"
    assert "c_businessOwner (sponsor) is not API-enabled" in flagged.detail
    assert "c_department" not in flagged.detail  # API-enabled: not named
    assert "c_businessOwner" in items["ideas"].detail  # configured for ideas too, absent there
    assert items["tasks"].ok and items["resources"].ok
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0
    projects = [r for r in rows(store, "work_item").values() if r["kind"] == "project"]
    assert projects and all(r["sponsor"] is None and r["department"] for r in projects)


def test_a_lookup_value_the_mapping_does_not_know_is_kept_as_unknown(
    tenant: Tenant, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    project = project_of(tenant)
    tenant.app.touch(
        "projects",
        project["_internalId"],
        statusIndicator={"displayValue": "Purple", "_type": "lookup", "id": "99"},
        progress={"displayValue": "Paused by council", "_type": "lookup", "id": "7"},
    )
    config = make_config(tenant)
    store = open_store(config)
    assert sync(config, store, pm).exit_code == 0
    row = rows(store, "work_item")[f"project-{project['_internalId']}"]
    assert row["health"] == "unknown" and row["state"] == "unknown" and row["phase"] == "unknown"
    assert row["extra"]["native_health"] == {"id": "99", "label": "Purple"}
    assert row["extra"]["native_progress"] == "7"


def test_a_project_deleted_between_syncs_is_tombstoned_by_the_id_sweep(
    tenant: Tenant, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(tenant)
    store = open_store(config)
    assert sync(config, store, pm).exit_code == 0
    project = project_of(tenant)
    idea = tenant.app.data["ideas"][0]
    tenant.app.delete("projects", project["_internalId"])
    tenant.app.delete("ideas", idea["_internalId"])
    second = sync(config, store, pm)
    assert second.exit_code == 0
    by_stream = {s.stream: s for s in second.streams}
    assert not by_stream["projects"].full and by_stream["projects"].tombstoned == 1
    assert by_stream["ideas"].tombstoned == 1
    everything = rows(store, "work_item", include_deleted=True)
    assert everything[f"project-{project['_internalId']}"]["deleted"] is True
    assert f"project-{project['_internalId']}" not in rows(store, "work_item")
    assert f"idea-{idea['_internalId']}" not in rows(store, "demand")
    sweeps = [q for m, q in tenant.app.requests if "fields=_internalId&" in unquote_plus(q)]
    assert sweeps  # ids only


def test_a_malformed_next_link_is_never_followed(
    tenant_factory: Callable[..., Tenant],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    tenant = tenant_factory(broken_next=True)
    config = make_config(tenant, extra="page_size = 50")
    store = open_store(config)
    result = sync(config, store, pm)
    assert result.exit_code == 0
    assert store.count("person", source="ppm") == len(tenant.world.people)
    offsets = [
        q.split("offset=")[1].split("&")[0]
        for m, q in tenant.app.requests
        if "/resources?" in q and "fields" not in q
    ]
    assert offsets == [str(n) for n in range(0, len(tenant.world.people), 50)]
    assert not any("instSecObjCodes" in q for _m, q in tenant.app.requests)


def test_a_missing_functional_right_closes_one_stream_not_the_source(
    tenant_factory: Callable[..., Tenant],
    make_config: Callable[..., Config],
    open_store: Any,
    pm: Any,
) -> None:
    tenant = tenant_factory(missing_rights={"Resource - Navigate"})
    config = make_config(tenant)
    items = check(config, pm)
    assert (
        items["resources"].status == "no_access"
        and "Resource - Navigate" in items["resources"].detail
    )
    store = open_store(config)
    result = sync(config, store, pm)
    by_stream = {s.stream: s for s in result.streams}
    assert by_stream["resources"].status == "no_access"
    assert by_stream["projects"].status == "ok" and by_stream["projects"].read > 0
    assert result.exit_code == 3


def test_no_api_access_right_is_named(
    tenant_factory: Callable[..., Tenant], make_config: Callable[..., Config], pm: Any
) -> None:
    tenant = tenant_factory(missing_rights={"API - Access"})
    items = check(make_config(tenant), pm)
    assert items["projects"].status == "auth" and "API - Access" in items["projects"].detail


def test_sso_tenants_use_the_tokens_path_and_refuse_basic_auth(
    tenant: Tenant, make_config: Callable[..., Config], open_store: Any, pm: Any
) -> None:
    config = make_config(tenant, extra="sso = true")
    store = open_store(config)
    assert sync(config, store, pm, streams=["ideas"]).exit_code == 0
    assert all(q.startswith("/tokens/rest/v1/") for _m, q in tenant.app.requests)
    basic = make_config(tenant, auth=BASIC, client=False, extra="sso = true")
    with pytest.raises(ConfigError, match="single sign-on"):
        build_adapter(basic, "ppm", pm).session  # noqa: B018


def test_an_api_key_without_its_client_id_is_a_config_error(
    tenant: Tenant, make_config: Callable[..., Config], pm: Any
) -> None:
    with pytest.raises(ConfigError, match="client_id"):
        build_adapter(make_config(tenant, client=False), "ppm", pm).session  # noqa: B018
