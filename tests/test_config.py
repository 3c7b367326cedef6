from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from leap.config import Settings, load_settings
from leap.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_point_at_real_vendors(leap_env: dict[str, str]) -> None:
    s = load_settings()
    assert s.zoom.api_base_url == "https://api.zoom.us/v2"
    assert s.youtube.token_uri == "https://oauth2.googleapis.com/token"
    assert s.queue.backend == "sqlite"
    assert s.queue_path == Path(leap_env["LEAP_DATA_DIR"]) / "queue.db"
    assert s.media_path == Path(leap_env["LEAP_DATA_DIR"]) / "media"


def test_env_overrides_file(
    tmp_path: Path, leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[zoom]\napi_base_url = "http://file/v2"\n[worker]\ncount = 3\n')
    s = load_settings(cfg)
    assert s.zoom.api_base_url == "http://file/v2"
    assert s.worker.count == 3
    monkeypatch.setenv("LEAP_ZOOM__API_BASE_URL", "http://127.0.0.1:8080/v2")
    s = load_settings(cfg)
    assert s.zoom.api_base_url == "http://127.0.0.1:8080/v2"
    assert s.worker.count == 3  # untouched keys keep the file's value
    assert s.config_path == cfg


def test_config_found_through_leap_config(
    tmp_path: Path, leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "elsewhere.toml"
    cfg.write_text('[llm]\nmodel = "deepseek-v4-pro"\n')
    monkeypatch.setenv("LEAP_CONFIG", str(cfg))
    assert load_settings().llm.model == "deepseek-v4-pro"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[zoom]\napi_base_ur = 'x'\n", "unknown setting 'zoom.api_base_ur'"),
        ("[nonsense]\nx = 1\n", "unknown setting 'nonsense'"),
        ("[worker]\ncount = 'many'\n", "setting 'worker.count'"),
        ("[worker]\ncount = 0\n", "setting 'worker.count'"),
        ("[queue]\nbackend = 'kafka'\n", "setting 'queue.backend'"),
        ("[zoom\n", "malformed TOML"),
    ],
)
def test_bad_config_is_one_clear_error(
    tmp_path: Path, leap_env: dict[str, str], content: str, message: str
) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_settings(cfg)
    assert message in err.value.message
    assert str(cfg) in err.value.message


def test_explicit_missing_config_is_an_error(tmp_path: Path, leap_env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")


def test_bad_env_value_is_one_clear_error(
    leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAP_WORKER__COUNT", "lots")
    with pytest.raises(ConfigError, match=r"worker\.count"):
        load_settings()


def _setting_paths() -> list[str]:
    paths = []
    for name, field in Settings.model_fields.items():
        if field.exclude:
            continue
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            paths += [f"{name}.{sub}" for sub in ann.model_fields]
        else:
            paths.append(name)
    return paths


def test_example_toml_documents_every_setting() -> None:
    text = (ROOT / "leap.example.toml").read_text()
    section = ""
    documented: set[str] = set()
    for line in text.splitlines():
        if m := re.match(r"^\[(\w+)\]", line):
            section = m.group(1)
        elif m := re.match(r"^#?\s?(\w+) = ", line):
            documented.add(f"{section}.{m.group(1)}" if section else m.group(1))
    missing = [p for p in _setting_paths() if p not in documented]
    assert not missing, f"settings missing from leap.example.toml: {missing}"
    unknown = documented - set(_setting_paths())
    assert not unknown, f"leap.example.toml documents settings that do not exist: {unknown}"


def test_example_toml_loads_as_config(leap_env: dict[str, str]) -> None:
    # Uncommenting every line must still be a valid config.
    lines = []
    for line in (ROOT / "leap.example.toml").read_text().splitlines():
        if re.match(r"^# (\w+) = ", line):
            line = line[2:]
        lines.append(line)
    path = Path(leap_env["LEAP_DATA_DIR"]) / "full.toml"
    path.write_text("\n".join(lines))
    s = load_settings(path)
    assert s.openai.max_upload_mb == 25


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[worker]\nheartbeat_seconds = inf\n", "worker.heartbeat_seconds': Input should be a fin"),
        ("[worker]\nlease_seconds = nan\n", "worker.lease_seconds': Input should be a finite"),
        ("[queue]\nmax_delay = -1\n", "queue.max_delay"),
        ("[sync]\nretry_budget_seconds = -5\n", "sync.retry_budget_seconds"),
        ("[worker]\nshutdown_timeout = 1e300\n", "worker.shutdown_timeout"),
        ('[defaults]\nlanguage = "Russian"\n', "defaults.language"),
        ('[defaults]\ntimezone = "Mars/Olympus"\n', "defaults.timezone"),
        ('[youtube]\ncosts = { "videos.insert" = 99999999999 }\n', "youtube.costs"),
    ],
)
def test_bad_numbers_and_names_in_config(
    tmp_path: Path, leap_env: dict[str, str], text: str, fragment: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert fragment in info.value.message and str(cfg) in info.value.message


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"[worker]\ncount = 2\n\xff\xfe", "not UTF-8 text"),
        (b"a = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b"# " + b"x" * 1_100_000, "larger than"),
    ],
)
def test_unreadable_config_is_a_config_error(
    tmp_path: Path, leap_env: dict[str, str], content: bytes, fragment: str
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_bytes(content)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(cfg)


def test_unknown_leap_variable_is_named(
    leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("LEAP_WORKERS__COUNT", "LEAP_WORKER__COUNTS", "LEAP_DATA_DIR__X", "LEAP_BOGUS"):
        with monkeypatch.context() as m:
            m.setenv(var, "3")
            with pytest.raises(ConfigError, match=f"environment variable {var}: not a LEAP"):
                load_settings()
    # Variables read elsewhere are not settings, and not errors.
    for var in ("LEAP_FFMPEG", "LEAP_FFPROBE", "LEAP_USER", "LEAP_TEST_ANYTHING", "LEAP_ADMIN"):
        monkeypatch.setenv(var, "x")
    load_settings()


def test_bad_env_value_blames_the_variable_not_the_file(
    tmp_path: Path, leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[worker]\ncount = 2\n")
    monkeypatch.setenv("LEAP_WORKER__HEARTBEAT_SECONDS", "nan")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert info.value.message.startswith("environment variable LEAP_WORKER__HEARTBEAT_SECONDS:")
    assert str(cfg) not in info.value.message
    monkeypatch.setenv("LEAP_WORKER__HEARTBEAT_SECONDS", "5")
    monkeypatch.setenv("LEAP_YOUTUBE__COSTS", "{not json")
    with pytest.raises(ConfigError, match="environment"):
        load_settings(cfg)


def test_leap_config_in_a_missing_folder_is_an_error(
    tmp_path: Path, leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAP_CONFIG", str(tmp_path / "typo" / "leap.toml"))
    with pytest.raises(ConfigError, match="LEAP_CONFIG"):
        load_settings()
    monkeypatch.setenv("LEAP_CONFIG", str(tmp_path))
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings()


def test_relative_paths_are_anchored_at_the_config_folder(
    tmp_path: Path, leap_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "etc"
    home.mkdir()
    cfg = home / "leap.toml"
    cfg.write_text(
        'data_dir = "data"\n[media]\ndir = "../media"\n[queue]\nurl = "q/queue.db"\n'
        '[paths]\nroots = ["lectures", "/abs"]\n'
    )
    monkeypatch.delenv("LEAP_DATA_DIR")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    s = load_settings(cfg)
    assert s.data_path == home / "data"
    assert s.media_path == home / ".." / "media"
    assert s.queue_path == home / "q" / "queue.db"
    assert s.paths.roots == [str(home / "lectures"), "/abs"]
