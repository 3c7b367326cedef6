"""Enums and small value types shared by every layer."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

# A language code as settings, templates and providers take it: "auto", or ISO 639-1/-3 with
# optional BCP 47 subtags ("en", "pt-BR").
LANGUAGE_RE = re.compile(r"^(?:auto|[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*)$")


def is_language(value: Any) -> bool:
    return isinstance(value, str) and LANGUAGE_RE.fullmatch(value) is not None


class Role(StrEnum):
    ADMIN = "admin"
    USER = "user"


class PlanName(StrEnum):
    FREE = "free"
    PLUS = "plus"
    PRO = "pro"
    ENTERPRISE = "enterprise"


class CredentialKind(StrEnum):
    ZOOM_S2S = "zoom-s2s"
    ZOOM_OAUTH = "zoom-oauth"
    YOUTUBE = "youtube"
    VK = "vk"
    FIREWORKS = "fireworks"
    OPENAI = "openai"
    LLM = "llm"


class CredentialStatus(StrEnum):
    ACTIVE = "active"
    NEEDS_REAUTH = "needs_reauth"


class SourceKind(StrEnum):
    ZOOM = "zoom"
    LOCAL = "local"


class Platform(StrEnum):
    YOUTUBE = "youtube"
    VK = "vk"
    LOCAL = "local"


class RecordingStatus(StrEnum):
    INITIALIZED = "initialized"  # known, nothing done yet
    SKIPPED = "skipped"  # blank record, left alone
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    TRIMMING = "trimming"
    TRIMMED = "trimmed"
    TRANSCRIBING = "transcribing"
    TRANSCRIBED = "transcribed"
    TOPICS = "extracting_topics"
    SUBTITLES = "generating_subtitles"
    PROCESSED = "processed"
    UPLOADING = "uploading"
    READY = "ready"  # every target published
    # The run is over, but a target waits for `leap approve` (docs/approval.md): a gated
    # YouTube video is up as private, a gated VK or folder target has sent nothing.
    AWAITING_APPROVAL = "awaiting_approval"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"  # deleted at the source before download


class Stage(StrEnum):
    DOWNLOAD = "download"
    TRIM = "trim"
    TRANSCRIBE = "transcribe"
    TOPICS = "topics"
    SUBTITLES = "subtitles"
    UPLOAD = "upload"


STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)


class StageStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class RunStatus(StrEnum):
    ACTIVE = "active"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Approval(StrEnum):
    """An output target's approval gate (docs/approval.md); None on a target without one."""

    AWAITING = "awaiting"  # held for `leap approve`
    APPROVED = "approved"


class TargetStatus(StrEnum):
    PENDING = "pending"
    UPLOADING = "uploading"
    DEFERRED = "deferred"  # waiting for a quota reset
    UPLOADED = "uploaded"
    FAILED = "failed"
