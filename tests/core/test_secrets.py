"""Secret references (env, file, keyring) and the redactor."""

from __future__ import annotations

import base64
import io
import logging
import os
from pathlib import Path
from urllib.parse import quote

import keyring
import pytest
from keyring.errors import KeyringLocked

from itcrosswalk.core.errors import ConfigError, PlatformError
from itcrosswalk.core.secrets import REDACTOR, Redactor, is_reference, redact, resolve_secret
from tests.keyrings import MemoryKeyring
from tests.leaks import encodings, leaks, store_text

posix_only = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")


class LockedKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise KeyringLocked("the login keyring is locked\nsecond line")


def test_env_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNOW_PASSWORD", "from-the-environment")
    assert (
        resolve_secret("env:SNOW_PASSWORD", key="sources.x.auth.password") == "from-the-environment"
    )
    assert redact("pw=from-the-environment") == "pw=***"


def test_missing_env_variable_names_key_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(ConfigError) as caught:
        resolve_secret("env:NOT_SET_ANYWHERE", key="sources.x.auth.password")
    assert str(caught.value) == (
        "sources.x.auth.password: environment variable NOT_SET_ANYWHERE is not set"
    )


def test_literal_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_secret("hunter2-literal", key="sources.x.auth.password")
    assert str(caught.value) == (
        "sources.x.auth.password: a literal secret is not allowed; "
        "use env:NAME, keyring:SERVICE/USER or file:PATH"
    )


@posix_only
def test_file_reference_strips_one_newline(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("file-secret-value\n\n")
    secret.chmod(0o600)
    assert resolve_secret(f"file:{secret}", key="k") == "file-secret-value\n"


@posix_only
def test_file_reference_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "pw").write_text("home-secret-value")
    (tmp_path / "pw").chmod(0o600)
    assert resolve_secret("file:~/pw") == "home-secret-value"


@posix_only
def test_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("shared-secret-value")
    secret.chmod(0o644)
    with pytest.raises(ConfigError) as caught:
        resolve_secret(f"file:{secret}", key="sources.x.auth.password")
    message = str(caught.value)
    assert message.startswith("sources.x.auth.password: ")
    assert f"chmod 600 {secret}" in message
    assert "shared-secret-value" not in message


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sources.x.auth.password: secret file .* does not exist"):
        resolve_secret(f"file:{tmp_path / 'nope'}", key="sources.x.auth.password")


def test_keyring_reference(memory_keyring: MemoryKeyring) -> None:
    memory_keyring.set_password("itcrosswalk-snow", "svc_crosswalk", "keyring-secret-value")
    assert (
        resolve_secret("keyring:itcrosswalk-snow/svc_crosswalk", key="k") == "keyring-secret-value"
    )
    assert "keyring-secret-value" not in redact("the value keyring-secret-value")


def test_keyring_without_the_entry(memory_keyring: MemoryKeyring) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_secret("keyring:itcrosswalk-snow/nobody", key="sources.x.auth.password")
    message = str(caught.value)
    assert message.startswith("sources.x.auth.password: ")
    assert "'itcrosswalk-snow'" in message and "'nobody'" in message


def test_keyring_backend_failure_gives_its_one_line_reason() -> None:
    previous = keyring.get_keyring()
    keyring.set_keyring(LockedKeyring())
    try:
        with pytest.raises(ConfigError) as caught:
            resolve_secret("keyring:svc/user", key="sources.x.auth.password")
    finally:
        keyring.set_keyring(previous)
    assert str(caught.value) == (
        "sources.x.auth.password: the keyring could not be read for svc/user: "
        "the login keyring is locked"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("env:X", True),
        ("keyring:a/b", True),
        ("file:/p", True),
        ("env:", False),
        ("secret", False),
        ("ENV:X", False),
    ],
)
def test_is_reference(value: str, expected: bool) -> None:
    assert is_reference(value) is expected


def test_redactor_masks_plain_and_url_quoted_forms_and_ignores_short_values() -> None:
    redactor = Redactor()
    redactor.register("p@ss w/rd!")
    redactor.register("abc")
    text = f"a=p@ss w/rd! b={quote('p@ss w/rd!', safe='')} c=abc"
    assert redactor.redact(text) == "a=*** b=*** c=abc"


def test_redactor_filters_log_records_through_a_handler() -> None:
    REDACTOR.register("log-secret-value")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    REDACTOR.install(handler)
    logger = logging.getLogger("itcrosswalk.test-secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("token %s refused", "log-secret-value")
        try:
            raise ValueError("boom log-secret-value")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        handler.close()
    output = stream.getvalue()
    assert "token *** refused" in output
    assert "boom ***" in output
    assert "log-secret-value" not in output


# -- every form a secret takes -------------------------------------------------------------------

TOKEN = "eyJhbGciOiJub25lIn0.city-token_0123456789\n"
"""A token read with its trailing newline (an environment variable set from a file)."""
PASSWORD = " p@ss w/rd&ü\"'\\%+=\t!x "
"""A password with characters that URL-encode, repr- and JSON-escape, and surrounding spaces."""


@pytest.mark.parametrize("secret", [TOKEN, PASSWORD], ids=["token", "password"])
def test_every_encoding_of_a_secret_is_masked(secret: str) -> None:
    redactor = Redactor()
    redactor.register(secret)
    # Each form as it appears on the way out (the secret's part of a Basic header is only ever
    # seen inside the whole header).
    forms = {k: v for k, v in encodings(secret).items() if "part" not in k}
    text = "\n".join(f"{name}: <{form}>" for name, form in forms.items())
    text += f"\nInvalid header value {('Bearer ' + secret).encode()!r}"
    text += f"\nRequest(data={dict(password=secret)!r})"
    redacted = redactor.redact(text)
    assert leaks(redacted, secret) == []
    assert "Invalid header value b'Bearer ***" in redacted


def test_a_basic_header_is_masked_for_any_user() -> None:
    redactor = Redactor()
    redactor.register(PASSWORD)  # the user name was never registered
    for user in ("svc_crosswalk", "x", "xy", "domain\\user"):
        header = "Basic " + base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
        assert leaks(redactor.redact(f"Authorization: {header}"), PASSWORD) == []


def test_short_or_blank_values_are_not_masked_everywhere() -> None:
    redactor = Redactor()
    redactor.register("  ab \n")
    redactor.register("\n\n")
    assert redactor.redact("about a tab") == "about a tab"


def test_errors_are_redacted_when_they_are_made() -> None:
    REDACTOR.register(TOKEN)
    error = PlatformError(f"request failed: Invalid header value {('Bearer ' + TOKEN).encode()!r}")
    assert leaks(str(error), TOKEN) == []
    assert "Bearer ***" in str(error)


def test_messages_stored_in_the_store_hold_no_encoding_of_a_secret(store_url: str) -> None:
    from itcrosswalk.core.store import QuarantineItem, Store, StreamCursor

    REDACTOR.register(TOKEN)
    REDACTOR.register(PASSWORD)
    said = "; ".join(
        f"{name}: {form}"
        for secret in (TOKEN, PASSWORD)
        for name, form in encodings(secret).items()
        if "part" not in name
    )
    store = Store(store_url)
    try:
        run = store.start_run(source="s", full=False, dry_run=False, holder="h", manifest={})
        store.write_page(
            source="s",
            stream="incident",
            entity="ticket",
            records=[],
            quarantined=[QuarantineItem("r1", f"mapping failed: {said}", {"n": 1})],
            cursor=StreamCursor(),
            run_id=run,
        )
        store.save_cursor("s", "incident", "ticket", StreamCursor(message=f"stream failed: {said}"))
        store.finish_run(run, outcome="failed", counts={}, error=f"run failed: {said}", manifest={})
        rows = store.status()
    finally:
        store.close()
    text = store_text(store_url)
    assert "stream failed: " in text and "run failed: " in text and "mapping failed: " in text
    assert leaks(text, TOKEN) == [] and leaks(text, PASSWORD) == []
    assert leaks(repr(rows), TOKEN) == [] and leaks(repr(rows), PASSWORD) == []


@pytest.mark.parametrize("secret", [TOKEN, PASSWORD], ids=["token", "password"])
def test_log_records_hold_no_encoding_of_a_secret(secret: str) -> None:
    REDACTOR.register(secret)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    REDACTOR.install(handler)
    logger = logging.getLogger("itcrosswalk.test-secret-forms")
    logger.addHandler(handler)
    logger.propagate = False
    forms = {k: v for k, v in encodings(secret).items() if "part" not in k}
    try:
        for name, form in forms.items():
            logger.warning("%s form: %s", name, form)
        try:
            raise ValueError(f"Invalid header value {('Bearer ' + secret).encode()!r}")
        except ValueError:
            logger.exception("request failed")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
        handler.close()
    output = stream.getvalue()
    # Each form masked (a Basic header keeps the user's part of its encoding).
    assert sum(1 for line in output.splitlines() if " form: " in line and "***" in line) == len(
        forms
    )
    assert leaks(output, secret) == []
