"""The recording status machine: every allowed transition, in one place."""

from __future__ import annotations

from leap.domain import RecordingStatus as S
from leap.domain import Stage

# Stage -> (status while it runs, status once it is done).
STAGE_STATUS: dict[Stage, tuple[S, S]] = {
    Stage.DOWNLOAD: (S.DOWNLOADING, S.DOWNLOADED),
    Stage.TRIM: (S.TRIMMING, S.TRIMMED),
    Stage.TRANSCRIBE: (S.TRANSCRIBING, S.TRANSCRIBED),
    Stage.TOPICS: (S.TOPICS, S.TOPICS),
    Stage.SUBTITLES: (S.SUBTITLES, S.SUBTITLES),
    Stage.UPLOAD: (S.UPLOADING, S.READY),
}

# Where a finished run leaves a recording: published (ready), held for approval, or processed
# without an upload stage.
_FINAL = {S.READY, S.AWAITING_APPROVAL, S.PROCESSED}
_RUNNING = {run for run, _ in STAGE_STATUS.values()}
_DONE = {done for _, done in STAGE_STATUS.values()} | _FINAL
# Where a new run may start from: anything that is not in the middle of work.
_RESTING = {S.INITIALIZED, S.SKIPPED, S.FAILED, S.CANCELLED} | _DONE
_ACTIVE = {S.QUEUED} | _RUNNING | (_DONE - _FINAL)

ALLOWED: dict[S, frozenset[S]] = {}
for _s in S:
    nxt: set[S] = set()
    if _s in _RESTING:
        nxt.add(S.QUEUED)
    if _s in _ACTIVE:
        # Stages move forward, a later stage may be skipped, the run may end or stop.
        nxt |= _RUNNING | _DONE | {S.FAILED, S.CANCELLED}
    if _s in _RUNNING:
        nxt.add(S.QUEUED)  # a lease expired: the stage goes back to the queue
    if _s in (S.INITIALIZED, S.SKIPPED):
        nxt |= {S.INITIALIZED, S.SKIPPED, S.EXPIRED}  # sync's blank verdict, gone at source
    if _s is S.FAILED:
        nxt.add(S.EXPIRED)
    if _s is S.AWAITING_APPROVAL:
        nxt.add(S.READY)  # `leap approve` made the held YouTube videos public: no run needed
    nxt.discard(_s)
    ALLOWED[_s] = frozenset(nxt)


class IllegalTransition(RuntimeError):
    """A programming error: code tried a transition the machine does not have."""


def can(current: str, new: S) -> bool:
    """Whether `current` may move to `new` (an unknown status may move nowhere)."""
    try:
        cur = S(current)
    except ValueError:
        return False
    return cur is new or new in ALLOWED[cur]


def check(current: str, new: S) -> S:
    cur = S(current)
    if cur is new or new in ALLOWED[cur]:
        return new
    raise IllegalTransition(f"recording status {cur.value} -> {new.value} is not allowed")


def running(stage: Stage) -> S:
    return STAGE_STATUS[stage][0]


def done(stage: Stage, *, held: bool = False) -> S:
    """The status a finished stage leaves; `held`: the upload stage kept a target back for
    approval, so the recording is not ready (published) but awaiting approval."""
    if held and stage is Stage.UPLOAD:
        return S.AWAITING_APPROVAL
    return STAGE_STATUS[stage][1]


def finished(*, uploaded: bool, held: bool) -> S:
    """Where a run that ended well leaves its recording: awaiting approval when its upload
    stage held a target back, ready when the upload stage published, else processed."""
    if held:
        return S.AWAITING_APPROVAL
    return S.READY if uploaded else S.PROCESSED
