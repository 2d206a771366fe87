"""The one error tree. Every message says what happened and what to do next."""

from __future__ import annotations


class CrosswalkError(Exception):
    """Base of every error itcrosswalk raises on purpose; the CLI prints it as one line.

    Its message is redacted when the error is made: it is printed, logged and stored (the
    run's error, the stream's message), and each of those must be free of secrets.
    """

    exit_code = 1

    def __init__(self, *args: object) -> None:
        from .secrets import redact  # deferred: secrets imports this module

        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class ConfigError(CrosswalkError):
    """The configuration is malformed or names something that does not exist."""


class PluginLoadError(CrosswalkError):
    """A plugin failed to import or register."""


class AuthError(CrosswalkError):
    """The platform refused the credentials (HTTP 401, a bad token, an expired refresh)."""


class AccessDenied(CrosswalkError):
    """The credentials are valid but may not read or write this resource (HTTP 403, ACLs)."""


class NotFound(CrosswalkError):
    """The resource (a table, an entity set) does not exist on this instance."""


class RetriableError(CrosswalkError):
    """A transient failure (throttling, 5xx, timeouts) that outlasted the retry budget."""


class ConnectError(CrosswalkError):
    """The platform could not be reached: DNS, refused connection, TLS verification."""


class PlatformError(CrosswalkError):
    """The platform answered with an error or a body that is not what its API promises."""


class RecordError(CrosswalkError):
    """One record could not be mapped or validated; it is quarantined and counted."""


class StoreError(CrosswalkError):
    """The store refused a read or a write; the message names the store and the cause only."""


class LockHeld(CrosswalkError):
    """Another sync of the same source holds the lock."""


class MalformedResponse(PlatformError):
    """A response body that does not parse (truncated JSON, an HTML error page); worth one retry."""


class PagingLoopError(PlatformError):
    """A paginator produced a token it had already produced: the platform paged in a cycle."""
