"""`leap preset ...` and the template -> preset links, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

YOUTUBE = """name = "youtube-unlisted"
platform = "youtube"
credential = "my-channel"
[metadata]
privacy = "unlisted"
category_id = "27"
made_for_kids = false
"""

TEMPLATE = """name = "ts"
presets = ["youtube-unlisted", "folder"]
[match]
keywords = ["x"]
"""


@pytest.fixture
def ready(
    leap_env: dict[str, str], cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Any:
    assert cli("init", "--yes").code == 0
    token = tmp_path / "authorized_user.json"
    token.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "cid",
                "client_secret": "shh-secret",
                "refresh_token": "1//rt",
            }
        )
    )
    res = cli("credentials", "add", "youtube", "my-channel", "--from-file", str(token))
    assert res.code == 0, res.stderr
    return cli


def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


def test_presets_and_template_links(ready: Any, tmp_path: Path) -> None:
    cli = ready
    assert cli("preset", "add", "--file", write(tmp_path, "y.toml", YOUTUBE)).code == 0
    folder = 'name = "folder"\nplatform = "local"\n[metadata]\npath = "~/Published/{template}"\n'
    assert cli("preset", "add", "--file", write(tmp_path, "f.toml", folder)).code == 0
    rows = cli("--json", "preset", "list").json()
    assert [(r["name"], r["platform"], r["credential"]) for r in rows] == [
        ("folder", "local", None),
        ("youtube-unlisted", "youtube", "my-channel"),
    ]
    assert cli("template", "add", "--file", write(tmp_path, "t.toml", TEMPLATE)).code == 0
    assert cli("--json", "template", "show", "ts").json()["presets"] == [
        "youtube-unlisted",
        "folder",
    ]
    res = cli("preset", "remove", "folder")
    assert res.code == 7 and "used by template" in res.stderr
    shown = cli("credentials", "show", "my-channel")
    assert "shh-secret" not in shown.stdout + shown.stderr and "1//rt" not in shown.stdout


@pytest.mark.parametrize(
    ("text", "fragment", "code"),
    [
        ('name = "a"\nplatform = "tiktok"\n', "platform", 2),
        ('name = "a"\nplatform = "youtube"\n', "needs credential", 2),
        ('name = "a"\nplatform = "youtube"\ncredential = "nope"\n', "credential 'nope'", 3),
        ('name = "a"\nplatform = "vk"\ncredential = "my-channel"\n', "not vk", 2),
        (
            'name = "a"\nplatform = "youtube"\ncredential = "my-channel"\n[metadata]\nprivcy = 1\n',
            "metadata.privcy",
            2,
        ),
        ('name = "a"\nplatform = "local"\ncolour = "red"\n', "unknown key", 2),
        ('name = "a"\n[metadata\n', "malformed TOML", 2),
    ],
)
def test_bad_presets(ready: Any, tmp_path: Path, text: str, fragment: str, code: int) -> None:
    res = ready("preset", "add", "--file", write(tmp_path, "bad.toml", text))
    assert res.code == code, res.stderr
    assert fragment in res.stderr and "Traceback" not in res.stderr


def test_recordings_meta_origins_overrides_and_preview(
    ready: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests import media

    cli = ready
    monkeypatch.setenv("LEAP_SYNC__LOCAL_SETTLE_SECONDS", "0")
    inbox = tmp_path / "inbox"
    media.make_video(inbox / "x lecture 2026-03-05 18-30.mp4", 1)
    preset = YOUTUBE + 'title = "{title} <live>"\ntags = ["лекция", "{template}"]\n'
    assert cli("preset", "add", "--file", write(tmp_path, "y.toml", preset)).code == 0
    tpl = (
        'name = "ts"\npresets = ["youtube-unlisted"]\n[match]\nkeywords = ["x"]\n'
        '[metadata]\ndescription = "Recorded {record_time:DD.MM.YYYY hh:mm}"\n'
    )
    assert cli("template", "add", "--file", write(tmp_path, "t.toml", tpl)).code == 0
    assert cli("source", "add", "local", "in", str(inbox)).code == 0
    assert cli("sync").code == 0
    rid = cli("--json", "recordings", "list").json()[0]["id"]
    [item] = cli("--json", "recordings", "meta", str(rid)).json()
    assert item["origins"]["title"] == "preset" and item["origins"]["description"] == "template"
    assert item["values"]["title"] == "x lecture ‹live›"  # rendered, then repaired
    assert item["values"]["description"] == "Recorded 05.03.2026 18:30"
    assert item["values"]["tags"] == ["лекция", "ts"]
    assert any(r["field"] == "title" for r in item["repairs"])
    [item] = cli("--json", "recordings", "meta", str(rid), "--set", "title=Manual {title}").json()
    assert item["origins"]["title"] == "recording"
    assert item["values"]["title"] == "Manual x lecture"
    [item] = cli("--json", "recordings", "meta", str(rid), "--reset").json()
    assert item["origins"]["title"] == "preset"
    res = cli("recordings", "meta", str(rid), "--set", "title={nope}")
    assert res.code == 2 and "unknown variable" in res.stderr


def test_a_preset_with_an_unknown_variable_is_refused_at_save_time(
    leap_env: dict[str, str], cli: Any, tmp_path: Path
) -> None:
    assert cli("init", "--yes").code == 0
    (tmp_path / "p.toml").write_text(
        'name = "f"\nplatform = "local"\n[metadata]\npath = "/tmp/out/{bogus}"\n'
    )
    res = cli("preset", "add", "--file", str(tmp_path / "p.toml"))
    assert res.code == 2 and "Traceback" not in res.stderr
    assert "unknown variable {bogus}" in res.stderr and "metadata.path" in res.stderr
    assert cli("--json", "preset", "list").json() == []


PRESET_HEAD = 'name = "a"\nplatform = "youtube"\ncredential = "my-channel"\n[metadata]\n'


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        ('privacy = "secret"', "metadata.privacy: 'secret' is not one of public"),
        ('category_id = "music"', "metadata.category_id: expected a number"),
        ("category_id = -27", "metadata.category_id: expected a number"),
        ('made_for_kids = "yes"', "metadata.made_for_kids: expected true or false"),
        ('license = "gpl"', "metadata.license: 'gpl' is not one of youtube"),
        ('default_language = "Russian"', "metadata.default_language: 'Russian' is not a lang"),
        ("captions = 1", "metadata.captions: expected true or false"),
        ("tags = [1, 2]", "metadata.tags: expected a list of strings"),
        ("title = nan", "metadata.title: nan is not allowed"),
        ("title = 99999999999999999999", "metadata.title: 99999999999999999999 is out of range"),
        ('title = "a\\u0000b"', "metadata.title: the NUL character"),
    ],
)
def test_preset_metadata_values_are_checked_at_save(
    ready: Any, tmp_path: Path, meta: str, fragment: str
) -> None:
    res = ready("preset", "add", "--file", write(tmp_path, "bad.toml", PRESET_HEAD + meta + "\n"))
    assert res.code == 2 and fragment in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_vk_metadata_values_are_checked_at_save(ready: Any, tmp_path: Path) -> None:
    head = 'name = "v"\nplatform = "vk"\ncredential = "vk-token"\n[metadata]\n'
    for meta, fragment in (
        ('group_id = "club"', "metadata.group_id: expected a VK id"),
        ('privacy_view = "strangers"', "metadata.privacy_view: 'strangers' is not a VK privacy"),
        ("wallpost = 2", "metadata.wallpost: expected true or false"),
    ):
        res = ready("preset", "add", "--file", write(tmp_path, "v.toml", head + meta + "\n"))
        assert res.code == 2 and fragment in res.stderr, res.stderr


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xff\xfe name", "not UTF-8 text"),
        (b'name = "a"\nx = ' + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b'name = "a"\nplatform = "local"\n[metadata]\ntitle = "a"\n' + b"#" * 1_100_000, "larger"),
        (b'name = "a\\nb"\nplatform = "local"\n', "name"),
    ],
)
def test_hostile_preset_files_are_one_line_usage_errors(
    ready: Any, tmp_path: Path, content: bytes, fragment: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_bytes(content)
    res = ready("preset", "add", "--file", str(path))
    assert res.code == 2 and fragment in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
