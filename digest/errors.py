"""The exception hierarchy: one base, a few kinds a user can cause or meet.

Low-level errors (sqlite3, smtplib, OSError, pydantic) are translated into these at the edge
where they happen; the CLI maps each kind to a one-line message and an exit code. Anything else
is a bug and keeps its traceback.
"""

from collections.abc import Mapping


class DigestError(Exception):
    """Base of every error that is the user's environment's fault, not a bug."""

    exit_code = 1


class ConfigError(DigestError):
    """The configuration file or profile is invalid: names the file, key and problem."""

    exit_code = 2


class SourceError(DigestError):
    """A source could not be read or returned a payload that could not be parsed."""

    exit_code = 3


class SourceDeadlineError(SourceError):
    """A source's own deadline (all its requests and waits together) came before it was done:
    what it read so far may still be kept, with a warning."""


class StoreError(DigestError):
    """The SQLite store could not be opened, migrated or written."""

    exit_code = 4


class DeliveryError(DigestError):
    """A digest could not be delivered.

    `permanent` is True when retrying the same message cannot help (5xx replies, refused login);
    transient failures (4xx, timeouts, dropped connections) leave the outbox row pending.
    """

    exit_code = 5

    def __init__(
        self,
        message: str,
        *,
        permanent: bool = False,
        ambiguous: bool = False,
        refused: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        # The connection was lost after the message data was sent: it may have been delivered.
        self.ambiguous = ambiguous
        # Recipients the server refused at RCPT before the failure (address → reply).
        self.refused: Mapping[str, str] = dict(refused or {})


class LockedError(DigestError):
    """Another process holds the scheduler lock on this database."""

    exit_code = 6


class UnchangedError(ConfigError):
    """An edit that would change nothing: the profile already says it (a repeated command, or
    two clicks of one link at once). Callers that replay on purpose take it as "already done"."""
