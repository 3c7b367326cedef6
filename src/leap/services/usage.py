"""Usage accounting: what each recording cost its owner (audio minutes, LLM tokens, ...).
The quota feature builds its limits on these rows."""

from __future__ import annotations

from typing import Any

from leap.context import Context
from leap.db.models import UsageEvent

# The kinds of metered event (usage_events.kind). A quota limit sums some of them
# (specs/quota.py: COUNTS); local transcription and folder exports are free and only shown.
RECORDINGS = "recordings"  # a recording processed: once per recording per period
TRANSCRIPTION_MINUTES = "transcription_minutes"  # audio minutes sent to a paid API
LOCAL_TRANSCRIPTION_MINUTES = "local_transcription_minutes"
LLM_TOKENS = "llm_tokens"
YOUTUBE_UPLOADS = "youtube_uploads"
VK_UPLOADS = "vk_uploads"
KINDS = (
    RECORDINGS,
    TRANSCRIPTION_MINUTES,
    LOCAL_TRANSCRIPTION_MINUTES,
    LLM_TOKENS,
    YOUTUBE_UPLOADS,
    VK_UPLOADS,
)


def upload_kind(platform: str) -> str | None:
    """The metered kind of an upload to `platform`; None for an export to a folder."""
    return {"youtube": YOUTUBE_UPLOADS, "vk": VK_UPLOADS}.get(platform)


def record(
    ctx: Context,
    user_id: int,
    kind: str,
    amount: float,
    *,
    recording_id: int | None = None,
    **detail: Any,
) -> None:
    ctx.repos.usage.add(
        UsageEvent(
            user_id=user_id, kind=kind, amount=amount, recording_id=recording_id, detail=detail
        )
    )


def totals(ctx: Context, recording_id: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for ev in ctx.repos.usage.list(recording_id=recording_id):
        out[ev.kind] = out.get(ev.kind, 0.0) + ev.amount
    return out
