"""Paid work inside a stage under the owner's quota (docs/quotas.md): reserve before the
call, settle what it cost after it, give the unit back when the work did not happen."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from leap.context import open_context
from leap.db.base import utcnow
from leap.errors import QuotaExceeded
from leap.pipeline.stage_api import StageContext, Waiting
from leap.services import metering


def quota_wait(exc: QuotaExceeded) -> QuotaExceeded | Waiting:
    """A period limit reached inside a stage is no failure: the stage waits for the reset
    (leapd parks it; `--now` leaves it queued for leapd). A standing limit fails (exit 4)."""
    if exc.resets_at is None:
        return exc
    return Waiting(exc.message, max(1.0, (exc.resets_at - utcnow()).total_seconds()))


@contextmanager
def reserved(
    sc: StageContext, kind: str, estimate: float, ref: str, **detail: Any
) -> Iterator[Callable[[float], None]]:
    """Reserve `estimate` of `kind` for the work `ref` names, run the body, then settle the
    cost the body reported through the yielded function (the estimate if it reported none).
    An error (not a Waiting: a batch job still running keeps its reservation) releases it."""
    with open_context(sc.runtime, sc.scope) as ctx:
        try:
            metering.reserve(
                ctx,
                sc.scope.user_id or 0,
                kind,
                estimate,
                ref=ref,
                recording_id=sc.recording_id,
                **detail,
            )
        except QuotaExceeded as exc:
            raise quota_wait(exc) from None
    cost = [estimate]
    try:
        yield lambda amount: cost.__setitem__(0, amount)
    except Waiting:
        raise
    except BaseException:
        with open_context(sc.runtime, sc.scope) as ctx:
            metering.release(ctx, ref)
        raise
    with open_context(sc.runtime, sc.scope) as ctx:
        metering.settle(ctx, ref, cost[0])
