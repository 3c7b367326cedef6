from __future__ import annotations

from typing import Any

import pytest

from leap.errors import UsageError
from leap.specs.processing import (
    DEFAULTS,
    deep_merge,
    parse_stages,
    parse_value,
    processing_layers,
    resolve,
    set_override,
)


@pytest.mark.parametrize(
    ("base", "over", "expected"),
    [
        ({}, {}, {}),
        ({"a": 1}, {}, {"a": 1}),
        ({}, {"a": 1}, {"a": 1}),
        ({"a": 1}, {"a": 2}, {"a": 2}),
        ({"t": {"x": 1, "y": 2}}, {"t": {"y": 3}}, {"t": {"x": 1, "y": 3}}),
        ({"t": {"x": 1}}, {"t": 5}, {"t": 5}),  # a scalar replaces a table
        ({"t": 5}, {"t": {"x": 1}}, {"t": {"x": 1}}),
        ({"l": [1, 2]}, {"l": [3]}, {"l": [3]}),  # lists replace, never concatenate
        ({"t": {"u": {"v": 1, "w": 2}}}, {"t": {"u": {"w": 9}}}, {"t": {"u": {"v": 1, "w": 9}}}),
        ({"a": None}, {"a": 0}, {"a": 0}),
        ({"a": 1}, {"a": None}, {"a": None}),
    ],
)
def test_deep_merge(base: dict[str, Any], over: dict[str, Any], expected: dict[str, Any]) -> None:
    before = repr(base), repr(over)
    assert deep_merge(base, over) == expected
    assert (repr(base), repr(over)) == before  # inputs untouched


def test_deep_merge_copies_nested_values() -> None:
    over = {"t": {"l": [1]}}
    merged = deep_merge({}, over)
    merged["t"]["l"].append(2)
    assert over == {"t": {"l": [1]}}


def test_resolve_origins_per_leaf() -> None:
    r = resolve(
        processing_layers(
            {"language": "ru"},
            {"trim": {"accurate": True}, "stages": ["download", "trim"]},
            {"trim": {"pad_s": 0.5}},
        )
    )
    assert r.get("language") == "ru" and r.origins["language"] == "user"
    assert r.get("trim.accurate") is True and r.origins["trim.accurate"] == "template"
    assert r.get("trim.pad_s") == 0.5 and r.origins["trim.pad_s"] == "recording"
    assert r.get("trim.enabled") is True and r.origins["trim.enabled"] == "default"
    assert r.get("stages") == ["download", "trim"] and r.origins["stages"] == "template"


def test_resolve_without_template_and_overrides_is_the_defaults() -> None:
    r = resolve(processing_layers({}, None, {}))
    assert r.values == DEFAULTS
    assert set(r.origins.values()) == {"default"}


def test_template_is_read_live_not_copied() -> None:
    template = {"language": "en"}
    overrides: dict[str, Any] = {}
    assert resolve(processing_layers({}, template, overrides)).get("language") == "en"
    template["language"] = "de"
    assert resolve(processing_layers({}, template, overrides)).get("language") == "de"


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("true", True),
        ("3", 3),
        ("2.5", 2.5),
        ('["a","b"]', ["a", "b"]),
        ("ru", "ru"),
        ("null", None),
        ("", ""),
    ],
)
def test_parse_value(raw: str, value: Any) -> None:
    assert parse_value(raw) == value


def test_set_override_builds_nested_tables_and_validates() -> None:
    out = set_override({}, "trim.accurate=true")
    assert out == {"trim": {"accurate": True}}
    out = set_override(out, "trim.pad_s=0.5")
    assert out == {"trim": {"accurate": True, "pad_s": 0.5}}
    out = set_override(out, 'stages=["download","trim"]')
    assert out["stages"] == ["download", "trim"]
    assert set_override(out, "language=de")["language"] == "de"


@pytest.mark.parametrize(
    ("assignment", "fragment"),
    [
        ("trim.bogus=1", "unknown processing setting 'trim.bogus'"),
        ("nothing", "expected KEY=VALUE"),
        ("trim.accurate=maybe", "expected true or false"),
        ("trim.pad_s=lots", "expected a number"),
        ("trim.pad_s=true", "expected a number"),
        ('stages=["download","sing"]', "unknown stage 'sing'"),
        ("stages=[]", "non-empty list"),
        ("glossary=ARIMA", "expected a list"),
    ],
)
def test_set_override_rejects(assignment: str, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment.replace("[", r"\[")):
        set_override({}, assignment)


def test_parse_stages_orders_and_dedups() -> None:
    assert parse_stages("trim, download,trim") == ["download", "trim"]
    with pytest.raises(UsageError):
        parse_stages("download,fly")


@pytest.mark.parametrize(
    ("assignment", "fragment"),
    [
        ("trim.pad_s=Infinity", "trim.pad_s: inf is not allowed"),
        ("trim.pad_s=NaN", "trim.pad_s: nan is not allowed"),
        ("trim.pad_s=-1", "trim.pad_s: -1 is out of range"),
        ("trim.pad_s=1e300", "trim.pad_s: 1e+300 is out of range"),
        ("retries.max_delay_s=99999999999", "retries.max_delay_s: 99999999999 is out of range"),
        ("retries.max_attempts=0", "retries.max_attempts: 0 is out of range"),
        ("retries.max_attempts=2.5", "retries.max_attempts: expected an integer"),
        ("topics.max_topics=99999999999999999999", "topics.max_topics: 99999999999999999999 is"),
        ("transcription.chunk_s=0", "transcription.chunk_s: 0 must be more than 0"),
        ("trim.max_cut_fraction=1.5", "trim.max_cut_fraction: 1.5 is out of range"),
        ("trim.noise_db=10", "trim.noise_db: 10 is out of range"),
        ("transcription.provider=whisperx", "'whisperx' is not one of local, fireworks"),
        ("transcription.fallback=zoom-vtt", "'zoom-vtt' is not one of local"),
        ("topics.provider=gpt", "'gpt' is not one of llm, simple, none"),
        ("language=Russian", "language: 'Russian' is not a language code"),
        ("glossary=[1]", "glossary: expected a list of non-empty strings"),
        ("trim=1", "unknown processing setting 'trim'"),
        ("a\nb=1", "unknown processing setting 'a\\nb'"),
        ("stages=" + "[" * 100_000, "nested too deeply"),
    ],
)
def test_set_override_refuses_values_the_pipeline_cannot_use(
    assignment: str, fragment: str
) -> None:
    with pytest.raises(UsageError) as info:
        set_override({}, assignment)
    assert fragment in info.value.message
    assert "\n" not in info.value.message


def test_set_override_accepts_valid_values() -> None:
    out = set_override({}, "trim.noise_db=-50")
    out = set_override(out, "trim.start=12.5")
    out = set_override(out, "transcription.provider=fireworks-batch")
    out = set_override(out, "language=pt-BR")
    assert out == {
        "trim": {"noise_db": -50, "start": 12.5},
        "transcription": {"provider": "fireworks-batch"},
        "language": "pt-BR",
    }


def test_parse_stages_refuses_empty() -> None:
    for text in ("", " , ", ","):
        with pytest.raises(UsageError, match="--stages: a non-empty list"):
            parse_stages(text)
