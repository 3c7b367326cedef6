"""Usage accounting: what each recording cost its owner (audio minutes, LLM tokens, ...).
The quota feature builds its limits on these rows."""

from __future__ import annotations

from typing import Any

from leap.context import Context
from leap.db.models import UsageEvent

TRANSCRIPTION_MINUTES = "transcription_minutes"
LLM_TOKENS = "llm_tokens"


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
