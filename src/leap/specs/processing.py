"""Processing config: built-in defaults < user defaults < template (read live) < recording
overrides, deep-merged by one pure function that also says where each value came from."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from leap.domain import STAGE_ORDER, is_language
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
    except RecursionError:  # thousands of nested brackets: no setting nests like that
        raise UsageError("--set: the value is nested too deeply") from None


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
            raise UsageError(_known(key))
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


# ---------------------------------------------------------------- validation
# Every value that reaches the pipeline passed these checks, at the edge where it entered
# (template file, `recordings config --set`): the stages then trust `float(cfg[...])`.

TRANSCRIPTION_PROVIDERS = ("local", "fireworks", "fireworks-batch", "openai", "zoom-vtt")
# The fallback replaces zoom-vtt when a meeting has no Zoom transcript, so it cannot be zoom-vtt.
FALLBACK_PROVIDERS = ("local", "fireworks", "fireworks-batch", "openai")
TOPICS_PROVIDERS = ("llm", "simple", "none")
# Durations and delays become timedelta and ffmpeg arguments; a week bounds every sane value
# and keeps timedelta(seconds=...) from overflowing.
MAX_SECONDS = 7 * 24 * 3600.0


# "auto", or a BCP 47-like code: "ru", "en", "pt-BR", "zh-Hans".
def _number(value: Any, lo: float, hi: float, *, integer: bool = False) -> str | None:
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected {kind}, not {value!r}"
    if integer and not isinstance(value, int):
        return f"expected {kind}, not {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not allowed; use a finite number"
    if not lo <= value <= hi:
        return f"{value!r} is out of range ({lo:g} to {hi:g})"
    return None


def _seconds(lo: float = 0.0, *, positive: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        problem = _number(value, lo, MAX_SECONDS)
        if problem is None and positive and value <= 0:
            return f"{value!r} must be more than 0"
        return problem

    return check


def _count(lo: int, hi: int) -> Callable[[Any], str | None]:
    return lambda value: _number(value, lo, hi, integer=True)


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"expected true or false, not {value!r}"


def _one_of(choices: Sequence[str]) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, str) and value in choices:
            return None
        return f"{value!r} is not one of {', '.join(choices)}"

    return check


def _text_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.strip() and len(value) <= 200):
        return None
    return f"expected a non-empty name, not {value!r}"


def _texts(value: Any) -> str | None:
    if not isinstance(value, list):
        return f"expected a list, not {value!r}"
    for item in value:
        if not isinstance(item, str) or not item.strip():
            return f"expected a list of non-empty strings, not {item!r}"
    return None


def _stages(value: Any) -> str | None:
    if not isinstance(value, list) or not value:
        return 'a non-empty list such as ["download","trim"]'
    valid = [s.value for s in STAGE_ORDER]
    for s in value:
        if s not in valid:
            return f"unknown stage {s!r} (one of: {', '.join(valid)})"
    return None


def _language(value: Any) -> str | None:
    if is_language(value):
        return None
    return f"{value!r} is not a language code (auto, or like ru, en, pt-BR)"


def _cut_point(value: Any) -> str | None:
    # None (no explicit cut) is allowed from --set "null"; TOML cannot write null.
    return None if value is None else _number(value, 0, MAX_SECONDS)


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "stages": _stages,
    "language": _language,
    "glossary": _texts,
    "download.prefer": _texts,
    "trim.enabled": _boolean,
    "trim.accurate": _boolean,
    "trim.detect_black": _boolean,
    # silencedetect's threshold in dBFS: 0 is full scale, so a threshold is never positive.
    "trim.noise_db": lambda v: _number(v, -200, 0),
    "trim.min_silence_s": _seconds(positive=True),
    "trim.pad_s": _seconds(),
    "trim.min_lead_silence_s": _seconds(),
    "trim.min_tail_silence_s": _seconds(),
    "trim.min_keep_s": _seconds(),
    "trim.max_cut_fraction": lambda v: _number(v, 0, 1),
    "trim.start": _cut_point,
    "trim.end": _cut_point,
    "transcription.provider": _one_of(TRANSCRIPTION_PROVIDERS),
    "transcription.model": _text_or_none,
    "transcription.fallback": _one_of(FALLBACK_PROVIDERS),
    "transcription.concurrency": _count(1, 64),
    "transcription.chunk_s": _seconds(positive=True),
    "transcription.poll_seconds": _seconds(positive=True),
    "topics.provider": _one_of(TOPICS_PROVIDERS),
    "topics.model": _text_or_none,
    "topics.max_topics": _count(1, 1000),
    "topics.section_s": _seconds(positive=True),
    "topics.min_section_s": _seconds(positive=True),
    "cleanup.intermediate": _boolean,
    "retries.max_attempts": _count(1, 100),
    "retries.base_delay_s": _seconds(),
    "retries.max_delay_s": _seconds(),
}


def _known(key: str) -> str:
    # repr: the key is user text and may hold a newline; the error stays one line.
    return f"unknown processing setting {key!r} (known: {', '.join(sorted(_CHECKS))})"


def check_value(key: str, value: Any) -> None:
    """Refuse a value the pipeline could not use; UsageError naming the key."""
    check = _CHECKS.get(key)
    if check is None:
        raise UsageError(_known(key))
    problem = check(value)
    if problem is not None:
        raise UsageError(f"{key}: {problem}")


def check_processing(section: Mapping[str, Any], origin: str, prefix: str = "") -> None:
    """Check a whole [processing] table (a template's): every key known, every value valid."""
    for key, value in section.items():
        dotted = f"{prefix}{key}"
        if dotted in _CHECKS:
            problem = _CHECKS[dotted](value)
            if problem is not None:
                raise UsageError(f"{origin}: processing.{dotted}: {problem}")
        elif not prefix and isinstance(DEFAULTS.get(key), dict):
            if not isinstance(value, Mapping):
                raise UsageError(f"{origin}: processing.{dotted}: expected a table, not {value!r}")
            check_processing(value, origin, f"{dotted}.")
        else:
            raise UsageError(f"{origin}: processing.{dotted}: {_known(dotted)}")


def parse_stages(text: str) -> list[str]:
    """`--stages a,b`: known names, in pipeline order, each once; empty is an error."""
    names = [s.strip() for s in text.split(",") if s.strip()]
    problem = _stages(names)
    if problem is not None:
        raise UsageError(f"--stages: {problem}")
    order = [s.value for s in STAGE_ORDER]
    return sorted(set(names), key=order.index)
