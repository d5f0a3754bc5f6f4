"""One error family for everything dockline raises.

Adapters translate library errors (botocore ``ClientError``, ``sqlite3.Error``, OS
errors) into these with ``raise ... from exc``. Only the CLI turns them into one-line
messages and exit codes; only the Lambda handler turns them into ``batchItemFailures``.
"""

from __future__ import annotations


class DocklineError(Exception):
    """Base of every error dockline raises on purpose.

    ``str(err)`` is always a single line a person can read.
    """

    def __init__(self, message: str) -> None:
        # Keep every message on one line: it ends up in tables, logs and SNS subjects.
        super().__init__(" ".join(str(message).split()))


class PermanentError(DocklineError):
    """The input is bad: retrying the same object version cannot succeed."""


class TransientError(DocklineError):
    """Something outside dockline failed for now (throttling, 5xx, a timeout): retry."""


class ObjectGoneError(PermanentError):
    """The object was deleted (or replaced) before it could be read."""


class SupersededError(ObjectGoneError):
    """The object version was replaced by a newer one before it could be read.

    Not a failure: the version settles as ``superseded`` (no failure notification, no
    dead letter), since the newer version has its own event. ``newer`` names it where
    the store knows it.
    """

    def __init__(self, message: str, *, newer: str | None = None) -> None:
        super().__init__(message)
        self.newer = newer


class ConfigError(DocklineError):
    """The configuration file or the environment is invalid."""


class UsageError(DocklineError):
    """A command was called with arguments it cannot act on (a bad key, a missing file)."""


class OutboxPendingError(TransientError):
    """The file's final state is recorded; only its notification (or dead letter) could
    not go out yet. Never a reason to give up on the file: the outbox sends it later."""


class BusyError(TransientError):
    """Another worker holds the lease on this object version right now."""
