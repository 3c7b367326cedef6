"""Reading a stage's stored JSON output (transcript, topics) back: a crash, a full disk or a
hand edit can leave it truncated or wrong, and that must be a sentence naming the file, never
a JSON error escaping a command or a stage."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from leap.errors import ArtifactError

T = TypeVar("T")


def load(path: Path, what: str, build: Callable[[dict[str, Any]], T]) -> T:
    """`build` applied to the JSON object in `path`, or ArtifactError naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise TypeError(f"a JSON object was expected, not {type(data).__name__}")
        return build(data)
    except OSError as exc:
        raise ArtifactError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError, KeyError) as exc:  # JSONDecodeError is a ValueError
        reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ArtifactError(f"the {what} {path} is damaged ({reason})") from None
