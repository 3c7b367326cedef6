from __future__ import annotations

import pytest

from leap.domain import RecordingStatus as S
from leap.domain import Stage
from leap.states import ALLOWED, IllegalTransition, check, done, running


def test_every_status_has_an_entry() -> None:
    assert set(ALLOWED) == set(S)


@pytest.mark.parametrize(
    "start",
    [
        S.INITIALIZED,
        S.SKIPPED,
        S.FAILED,
        S.CANCELLED,
        S.READY,
        S.PROCESSED,
        S.DOWNLOADED,
        S.TRIMMED,
    ],
)
def test_a_run_may_start_from_rest(start: S) -> None:
    assert check(start.value, S.QUEUED) is S.QUEUED


@pytest.mark.parametrize("busy", [S.DOWNLOADING, S.TRIMMING, S.UPLOADING, S.TRANSCRIBING])
def test_busy_recordings_can_fail_cancel_or_requeue(busy: S) -> None:
    for target in (S.FAILED, S.CANCELLED, S.QUEUED):
        assert check(busy.value, target) is target


def test_a_full_pipeline_walks_the_machine() -> None:
    cur = S.INITIALIZED
    cur = check(cur.value, S.QUEUED)
    for stage in Stage:
        cur = check(cur.value, running(stage))
        cur = check(cur.value, done(stage))
    assert cur is S.READY


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (S.INITIALIZED, S.DOWNLOADING),  # work needs a run (queued) first
        (S.READY, S.DOWNLOADING),
        (S.SKIPPED, S.TRIMMED),
        (S.EXPIRED, S.QUEUED),  # gone at the source: nothing to process
        (S.CANCELLED, S.FAILED),
        (S.PROCESSED, S.FAILED),
        (S.QUEUED, S.INITIALIZED),
    ],
)
def test_illegal_transitions(a: S, b: S) -> None:
    with pytest.raises(IllegalTransition):
        check(a.value, b)


def test_same_status_is_a_no_op() -> None:
    for s in S:
        assert check(s.value, s) is s
