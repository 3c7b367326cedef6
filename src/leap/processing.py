"""Processing config: built-in defaults < user defaults < template (read live) < recording
overrides, deep-merged by one pure function that also says where each value came from."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from leap.domain import STAGE_ORDER, Stage
from leap.errors import UsageError

DEFAULTS: dict[str, Any] = {
    "stages": [s.value for s in STAGE_ORDER],
    "language": "auto",
    "glossary": [],
    "download": {
        # Zoom offers several views of one meeting; the first one present wins.
        "prefer": [
            "shared_screen_with_speaker_view",
            "shared_screen_with_gallery_view",
            "speaker_view",
            "active_speaker",
            "shared_screen",
            "gallery_view",
            "audio_only",
        ],
    },
    "trim": {
        "enabled": True,
        "accurate": False,
        "detect_black": False,
        "noise_db": -35.0,
        "min_silence_s": 2.0,
        "pad_s": 1.5,
        "min_lead_silence_s": 5.0,
        "min_tail_silence_s": 5.0,
        # Never keep less than this, nor cut away more than this fraction: a detection gone
        # wrong must not destroy a lecture.
        "min_keep_s": 30.0,
        "max_cut_fraction": 0.9,
        "start": None,
        "end": None,
    },
    "transcription": {
        # local | fireworks | fireworks-batch | openai | zoom-vtt
        "provider": "local",
        "model": None,  # None: the provider's model from settings
        "fallback": "local",  # zoom-vtt without a Zoom transcript uses this
        "concurrency": 4,  # chunks transcribed at once
        # API providers: audio is sent in chunks of at most this length (cut at silences),
        # so a 3-hour lecture is transcribed `concurrency` chunks at a time.
        "chunk_s": 960.0,
        "poll_seconds": 60.0,  # fireworks-batch: how often to ask for the result
    },
    "topics": {
        "provider": "simple",  # llm | simple (offline) | none
        "model": None,  # llm: None means [llm] model
        "max_topics": 15,
        # simple: sections of about this length, cut at the longest pauses
        "section_s": 600.0,
        "min_section_s": 120.0,
    },
    "cleanup": {"intermediate": False},
    "retries": {"max_attempts": 4, "base_delay_s": 5.0, "max_delay_s": 300.0},
}


@dataclass(frozen=True)
class Resolved:
    values: dict[str, Any]
    origins: dict[str, str]  # dotted key -> layer name

    def get(self, dotted: str) -> Any:
        node: Any = self.values
        for part in dotted.split("."):
            node = node[part]
        return node


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Tables merge key by key; any other value (lists included) replaces the lower one."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _leaves(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(_leaves(value, path + "."))
        else:
            out[path] = value
    return out


def resolve(layers: Sequence[tuple[str, Mapping[str, Any]]]) -> Resolved:
    """Merge layers lowest first; each leaf's origin is the last layer that set it."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for name, layer in layers:
        values = deep_merge(values, layer)
        for path in _leaves(layer):
            origins[path] = name
    leaves = sorted(_leaves(values))
    return Resolved(values, {p: origins.get(p, "default") for p in leaves})


def processing_layers(
    user_defaults: Mapping[str, Any],
    template: Mapping[str, Any] | None,
    overrides: Mapping[str, Any],
) -> list[tuple[str, Mapping[str, Any]]]:
    layers: list[tuple[str, Mapping[str, Any]]] = [("default", DEFAULTS), ("user", user_defaults)]
    if template is not None:
        layers.append(("template", template))
    layers.append(("recording", overrides))
    return layers


def parse_value(raw: str) -> Any:
    """`--set key=VALUE`: JSON when it parses (numbers, true, lists), else the plain string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def set_override(overrides: Mapping[str, Any], assignment: str) -> dict[str, Any]:
    """Apply `a.b.c=VALUE` to a copy of the overrides; the key must exist in the defaults."""
    if "=" not in assignment:
        raise UsageError(f"--set {assignment!r}: expected KEY=VALUE")
    key, raw = assignment.split("=", 1)
    key = key.strip()
    parts = key.split(".")
    node: Any = DEFAULTS
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            known = ", ".join(sorted(_leaves(DEFAULTS)))
            raise UsageError(f"unknown processing setting '{key}' (known: {known})")
        node = node[part]
    value = parse_value(raw)
    check_value(key, value)
    out = copy.deepcopy(dict(overrides))
    cur = out
    for part in parts[:-1]:
        nxt = cur.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            cur[part] = nxt
        cur = nxt
    cur[parts[-1]] = value
    return out


def check_value(key: str, value: Any) -> None:
    if key == "stages":
        if not isinstance(value, list) or not value:
            raise UsageError('stages: a non-empty list such as ["download","trim"]')
        valid = {s.value for s in Stage}
        for s in value:
            if s not in valid:
                raise UsageError(f"stages: unknown stage '{s}' (one of: {', '.join(valid)})")
        return
    default: Any = DEFAULTS
    for part in key.split("."):
        default = default[part]
    if isinstance(default, bool) and not isinstance(value, bool):
        raise UsageError(f"{key}: expected true or false, not {value!r}")
    if (
        isinstance(default, (int, float))
        and not isinstance(default, bool)
        and (isinstance(value, bool) or not isinstance(value, (int, float)))
    ):
        raise UsageError(f"{key}: expected a number, not {value!r}")
    if isinstance(default, list) and not isinstance(value, list):
        raise UsageError(f"{key}: expected a list, not {value!r}")


def parse_stages(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    check_value("stages", names)
    order = [s.value for s in STAGE_ORDER]
    return sorted(set(names), key=order.index)
