"""Secret references and the redactor that keeps resolved secrets out of logs and messages.

A configuration never holds a secret, only a reference to one: ``env:NAME``,
``keyring:SERVICE/USER`` or ``file:PATH``. Every value resolved here is registered with
:data:`REDACTOR`, which replaces it with ``***`` wherever it would otherwise be printed.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import threading
from pathlib import Path
from urllib.parse import quote, quote_plus

from .errors import ConfigError

PREFIXES = ("env:", "keyring:", "file:")
LITERAL_NOT_ALLOWED = (
    "a literal secret is not allowed; use env:NAME, keyring:SERVICE/USER or file:PATH"
)
MASK = "***"
_MIN_LENGTH = 4


def is_reference(value: str) -> bool:
    """True when ``value`` is a secret reference (a known prefix followed by something)."""
    return isinstance(value, str) and any(
        value.startswith(prefix) and len(value) > len(prefix) for prefix in PREFIXES
    )


def _prefix(key: str) -> str:
    return f"{key}: " if key else ""


def resolve_secret(ref: str, *, key: str = "") -> str:
    """The secret a reference points to; ``key`` (a dotted config path) names it in errors."""
    if not is_reference(ref):
        raise ConfigError(f"{_prefix(key)}{LITERAL_NOT_ALLOWED}")
    scheme, _, rest = ref.partition(":")
    if scheme == "env":
        value = _from_env(rest, key)
    elif scheme == "keyring":
        value = _from_keyring(rest, key)
    else:
        value = _from_file(rest, key)
    REDACTOR.register(value)
    return value


def _from_env(name: str, key: str) -> str:
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(f"{_prefix(key)}environment variable {name} is not set")
    if not value:
        raise ConfigError(f"{_prefix(key)}environment variable {name} is set but empty")
    return value


def _from_keyring(spec: str, key: str) -> str:
    # Service names are often URLs or paths, user names rarely contain a slash.
    service, _, user = spec.rpartition("/")
    if not service or not user:
        raise ConfigError(f"{_prefix(key)}a keyring reference is keyring:SERVICE/USER")
    try:
        import keyring  # deferred: backend discovery is slow and rarely needed

        value = keyring.get_password(service, user)
    except (
        Exception
    ) as exc:  # any backend failure (locked, no D-Bus, no backend) is a config problem
        lines = str(exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        raise ConfigError(
            f"{_prefix(key)}the keyring could not be read for {service}/{user}: {reason}"
        ) from None
    if value is None:
        raise ConfigError(
            f"{_prefix(key)}the keyring has no password for service {service!r}, user {user!r}; "
            f"store it with `keyring set {service} {user}`"
        )
    return value


def _from_file(raw_path: str, key: str) -> str:
    path = Path(raw_path).expanduser()
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{_prefix(key)}secret file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(
            f"{_prefix(key)}secret file {path} cannot be read: {exc.strerror}"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{_prefix(key)}secret file {path} is not a regular file")
    if os.name == "posix" and info.st_mode & 0o077:
        raise ConfigError(
            f"{_prefix(key)}secret file {path} is readable or writable by others "
            f"(mode {stat.S_IMODE(info.st_mode):o}); run `chmod 600 {path}`"
        )
    try:
        value = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"{_prefix(key)}secret file {path} cannot be read: {reason}") from None
    if value.endswith("\r\n"):
        value = value[:-2]
    elif value.endswith("\n"):
        value = value[:-1]
    if not value:
        raise ConfigError(f"{_prefix(key)}secret file {path} is empty")
    return value


def _base64_cores(value: bytes) -> set[str]:
    """The base64 characters that encode ``value`` whatever precedes or follows it.

    Inside a longer encoded string (``user:secret`` in a Basic header, a token in a JWT-like
    blob) the secret starts at one of three byte alignments; for each, the characters that mix
    bits of the neighbouring bytes are dropped and the rest is found verbatim.
    """
    cores = set()
    for pad in range(3):
        encoded = base64.b64encode(b"\0" * pad + value).decode().rstrip("=")
        head = (0, 2, 3)[pad]  # characters that hold bits of the padding bytes
        tail = 1 if (pad + len(value)) % 3 else 0  # the last one holds bits of what follows
        cores.add(encoded[head : len(encoded) - tail])
    return cores


def secret_forms(value: str) -> set[str]:
    """Every form ``value`` can take in a message: raw; stripped of surrounding whitespace;
    escaped as ``repr`` of the text or of its bytes (``b'Bearer tok\\n'``) and as JSON;
    URL-quoted (query strings, form bodies); and base64, alone or inside a longer encoding."""
    forms = set()
    for text in {value, value.strip()}:
        if not text:
            continue
        forms |= {
            text,
            repr(text)[1:-1],
            repr(text.encode())[2:-1],
            json.dumps(text)[1:-1],
            json.dumps(text, ensure_ascii=False)[1:-1],
            quote(text, safe=""),
            quote_plus(text, safe=""),
            quote(text),
            base64.b64encode(text.encode()).decode().rstrip("="),
            base64.urlsafe_b64encode(text.encode()).decode().rstrip("="),
            *_base64_cores(text.encode()),
        }
    return forms


class Redactor(logging.Filter):
    """Replaces every registered secret with ``***`` in text and in log records.

    A secret is masked in every form it takes on the way out (:func:`secret_forms`): raw,
    stripped of the whitespace a token read from a file or a variable often carries, escaped
    by ``repr`` or JSON (exception messages quote header values as bytes), URL-quoted, and
    base64 (a Basic authorization header carries ``user:secret`` encoded, for any user).
    """

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._forms: tuple[str, ...] = ()

    def register(self, value: str | None) -> None:
        """Mask ``value`` from now on; values shorter than 4 characters are ignored."""
        if not value or len(value.strip()) < _MIN_LENGTH:
            return
        with self._lock:
            if value in self._secrets:
                return
            self._secrets.add(value)
            forms = {f for f in secret_forms(value) if len(f) >= _MIN_LENGTH}
            # Longest first, so a secret that contains another is masked whole.
            merged = set(self._forms) | forms
            self._forms = tuple(sorted(merged, key=len, reverse=True))

    def register_basic(self, user: str, password: str) -> None:
        """Also mask the ``Authorization: Basic`` value built from ``user`` and ``password``."""
        self.register(password)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.register(token)

    def redact(self, text: str) -> str:
        """``text`` with every registered secret replaced by ``***``."""
        if not text:
            return text
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._forms:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is logging's problem, not ours
            return True
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True

    def install(self, handler: logging.Handler | None = None) -> None:
        """Attach to ``handler`` (what the CLI does with the handlers it installs), or else to
        the ``itcrosswalk``, ``urllib3`` and ``requests`` loggers.

        A logger's filter sees only records logged on that very logger, not its children's;
        a handler's filter sees every record it emits, so prefer passing the handler.
        """
        targets: list[logging.Filterer] = (
            [handler]
            if handler is not None
            else [logging.getLogger(name) for name in ("itcrosswalk", "urllib3", "requests")]
        )
        for target in targets:
            if self not in target.filters:
                target.addFilter(self)


REDACTOR = Redactor()


def redact(text: str) -> str:
    """``text`` with every secret resolved so far replaced by ``***``."""
    return REDACTOR.redact(text)
