"""LEAP's error tree; each class carries the CLI exit code documented in the README.

LeapError (1)                 the operation failed
├── UsageError (2)            bad arguments or input file
│   └── PermissionDenied (2)  a non-admin acting on another user
├── NotFound (3)              no such user, recording, template, ...
├── QuotaExceeded (4)
├── CredentialDead (5)        re-authenticate the credential
├── ConfigError (6)           leap.toml, database URL, schema behind head, secret key
├── Conflict (7)              locked, already running, name taken
└── PartialFailure (8)        some items failed
"""

from __future__ import annotations


class LeapError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(LeapError):
    exit_code = 2


class PermissionDenied(UsageError):
    pass


class NotFound(LeapError):
    exit_code = 3


class QuotaExceeded(LeapError):
    exit_code = 4


class CredentialDead(LeapError):
    exit_code = 5


class ConfigError(LeapError):
    exit_code = 6


class Conflict(LeapError):
    exit_code = 7


class PartialFailure(LeapError):
    exit_code = 8


class ScopeError(RuntimeError):
    """A programming error: data access without a tenancy scope, or across scopes."""
