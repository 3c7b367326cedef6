"""LEAP's error tree; each class carries the CLI exit code documented in the README.

LeapError (1)                 the operation failed
├── StorageError (1)          a file or folder failed at the OS level (path + reason)
├── ArtifactError (1)         an earlier stage's output is missing or unreadable
├── QueueUnavailable (1)      the queue server could not be reached
├── AuthorizationFailed (1)   an OAuth consent was denied, timed out or came back wrong
├── UsageError (2)            bad arguments or input file
│   └── PermissionDenied (2)  a non-admin acting on another user
├── NotFound (3)              no such user, recording, template, ...
├── QuotaExceeded (4)
├── CredentialDead (5)        re-authenticate the credential
├── ConfigError (6)           leap.toml, database URL, schema behind head, secret key
│   └── BadSetting (6)        a processing setting the pipeline cannot use (key, value)
├── Conflict (7)              locked, already running, name taken
└── PartialFailure (8)        some items failed
"""

from __future__ import annotations

from datetime import datetime

from leap.logs import redact


class LeapError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        # Messages quote provider answers and settings, and end up on terminals, in logs and
        # in the database (stage and target errors): redacted once, here, for all of them.
        message = redact(message)
        super().__init__(message)
        self.message = message


class AuthorizationFailed(LeapError):
    """`leap oauth`: the browser side did not end in a usable code; nothing was stored."""


class UsageError(LeapError):
    exit_code = 2


class PermissionDenied(UsageError):
    pass


class NotFound(LeapError):
    exit_code = 3


class QuotaExceeded(LeapError):
    """Over a limit. `resets_at`: when the limit's period resets (None for a standing limit,
    which frees up only when something is removed); leapd waits for it (docs/quotas.md)."""

    exit_code = 4

    def __init__(self, message: str, resets_at: datetime | None = None) -> None:
        super().__init__(message)
        self.resets_at = resets_at


class CredentialDead(LeapError):
    exit_code = 5


class ConfigError(LeapError):
    exit_code = 6


class Conflict(LeapError):
    exit_code = 7


class PartialFailure(LeapError):
    exit_code = 8


class StorageError(LeapError):
    """A file or folder LEAP reads or writes (the media folder, a workspace, a local source)
    failed at the OS level: permission denied, not a directory, disk full, I/O error. The
    message names the path and the reason."""


class ArtifactError(LeapError):
    """An earlier stage's output is missing, truncated or unreadable; the message names the
    file and the stage that makes it again."""


class QueueUnavailable(LeapError):
    """The queue server could not be reached to send a message. The database already holds
    the work: leapd's reconciler sends it again once the queue answers."""


class BadSetting(ConfigError):
    """A processing setting holds a value the pipeline cannot use (a number of the wrong type,
    a cut point past the recording's end); the message names the key and the value."""


class ScopeError(RuntimeError):
    """A programming error: data access without a tenancy scope, or across scopes."""
