"""What every platform shares: a target's state committed at once, a thumbnail found
under the user's roots, and the publisher signature."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from leap.context import open_context
from leap.db.models import OutputPreset, OutputTarget, Recording
from leap.pipeline.stage_api import StageContext
from leap.services.publishing import Metadata
from leap.services.users import path_policy
from leap.specs import thumbnails

# Keys a target keeps in sent_metadata across attempts (the stage keeps them when it renders
# the metadata again).
STEPS_KEY = "youtube_steps"  # in sent_metadata: the extras done after the upload
RESERVED_KEY = "quota_reserved"  # in sent_metadata: the Pacific day the publish was charged

Publisher = Callable[[StageContext, Recording, OutputTarget, OutputPreset, Metadata], str]


def thumbnail_path(sc: StageContext, rec: Recording, name: str) -> Path:
    with open_context(sc.runtime, sc.scope) as ctx:
        policy = path_policy(ctx, ctx.repos.users.require(rec.user_id))
    return thumbnails.locate(sc.runtime.settings.media_path, rec.user_id, name, policy=policy)


def save_target(sc: StageContext, target_id: int, **values: Any) -> None:
    """Commit upload state at once: the session URI before the first byte, then each offset."""
    with open_context(sc.runtime, sc.scope) as ctx:
        target = ctx.repos.targets.require(target_id)
        for key, value in values.items():
            setattr(target, key, value)
