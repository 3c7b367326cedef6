"""Settings: built-in defaults < leap.toml < LEAP_* environment variables.

One `Settings` object is built at the edge (CLI, daemon, test) and passed down; nothing reads
a global. Every key here is documented in `leap.example.toml` (a test enforces it).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from leap.errors import ConfigError

APP_NAME = "leap"
ENV_CONFIG = "LEAP_CONFIG"


class _Section(BaseModel):
    # Unknown keys are typos that would silently do nothing: refuse them.
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    url: str = ""  # empty: sqlite file "leap.db" in data_dir
    echo: bool = False


class QueueSettings(_Section):
    backend: Literal["sqlite", "postgres", "redis", "memory"] = "sqlite"
    url: str = ""  # sqlite: file path (default data_dir/queue.db); postgres/redis: DSN
    name: str = "leap"
    # Idle pickup latency of SqliteHuey is bounded by its polling back-off (ENGINEERING_NOTES).
    max_delay: float = 0.25


class MediaSettings(_Section):
    dir: str = ""  # empty: data_dir/media


class WorkerSettings(_Section):
    count: int = Field(default=2, ge=1, le=64)
    shutdown_timeout: float = Field(default=8.0, ge=0)
    heartbeat_seconds: float = Field(default=60.0, gt=0)
    # How often the reconciler re-reads the database for stages a crash left behind.
    reconcile_seconds: float = Field(default=15.0, gt=0)
    # A running stage renews its lease this often; a lease unrenewed for lease_seconds is
    # taken back (a worker on another host died or hangs).
    stage_heartbeat_seconds: float = Field(default=5.0, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0)


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class ZoomSettings(_Section):
    api_base_url: str = "https://api.zoom.us/v2"
    oauth_base_url: str = "https://zoom.us"


class YouTubeSettings(_Section):
    api_base_url: str = "https://www.googleapis.com/youtube/v3"
    upload_base_url: str = "https://www.googleapis.com/upload/youtube/v3"
    token_uri: str = "https://oauth2.googleapis.com/token"
    # The Google project's daily quota (units) and LEAP's own cap on uploads per project and
    # Pacific day; a publish that would not fit waits for midnight Pacific.
    daily_units: int = Field(default=10_000, ge=0)
    daily_uploads: int = Field(default=6, ge=0)
    # Resumable-upload chunk in MiB (YouTube wants multiples of 256 KiB; whole MiB always are).
    # The confirmed offset is committed after every chunk, so a crash re-sends at most one
    # chunk; chunks stream from disk, so memory does not grow with it. Bigger chunks mean
    # fewer round trips (see benchmarks/bench_upload.py).
    upload_chunk_mb: int = Field(default=32, ge=1, le=1024)
    # Quota units per call. Google's figures changed in 2025-2026 and the docs disagree on
    # videos.insert (1,600 units, or a call in a separate uploads bucket: then set it to 0);
    # set what your project's quota page shows. A publish is charged the insert plus the
    # extras it uses (thumbnail, playlist item, captions).
    costs: dict[str, int] = Field(
        default_factory=lambda: {
            "videos.insert": 1600,
            "thumbnails.set": 50,
            "playlistItems.insert": 50,
            "captions.insert": 400,
        }
    )

    @field_validator("costs")
    @classmethod
    def _known_calls(cls, value: dict[str, int]) -> dict[str, int]:
        known = ("videos.insert", "thumbnails.set", "playlistItems.insert", "captions.insert")
        for call, units in value.items():
            if call not in known:
                raise ValueError(f"unknown call {call!r}; known: {', '.join(known)}")
            if units < 0:
                raise ValueError(f"{call}: a cost cannot be negative")
        return value


class VKSettings(_Section):
    api_base_url: str = "https://api.vk.com/method"
    id_base_url: str = "https://id.vk.com"
    api_version: str = "5.199"


class FireworksSettings(_Section):
    # The host must match the model (audio-turbo <-> whisper-v3-turbo); the client swaps the
    # first host label to follow the model.
    base_url: str = "https://audio-turbo.api.fireworks.ai/v1"
    batch_base_url: str = "https://audio-batch.link.fireworks.ai/v1"
    model: str = "whisper-v3-turbo"
    # Install-wide key for users without a fireworks credential (prefer the environment:
    # LEAP_FIREWORKS__API_KEY). Never printed.
    api_key: SecretStr = SecretStr("")


class OpenAISettings(_Section):
    base_url: str = "https://api.openai.com/v1"
    model: str = "whisper-1"
    max_upload_mb: int = Field(default=25, ge=1)
    api_key: SecretStr = SecretStr("")


class LLMSettings(_Section):
    base_url: str = "https://api.deepseek.com"
    model: str = "deepseek-flash"  # deepseek-chat was retired on 2026-07-24 (HTTP 400)
    api_key: SecretStr = SecretStr("")


class LocalWhisperSettings(_Section):
    model: str = "small"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "int8"


class SyncSettings(_Section):
    # Zoom keeps cloud recordings for months; the first sync of a source looks this far back.
    initial_days: int = Field(default=30, ge=1, le=3650)
    # Later syncs start this many days before the previous window's end, to catch late files.
    overlap_days: int = Field(default=2, ge=0, le=60)
    # A local file whose size changes across this pause is still being written: skip it.
    local_settle_seconds: float = Field(default=2.0, ge=0)
    # Zoom API calls: total seconds a sync may spend waiting on 429/5xx before giving up.
    retry_budget_seconds: float = Field(default=120.0, ge=0)


class PathsSettings(_Section):
    """Folders users may read (local sources) and write (local export) outside their own.

    Every user may use their own `<data_dir>/imports/user_<id>/` and `<data_dir>/exports/user_<id>/`.
    `roots` extends that for every user; `leap user set-roots` per user. Admins with no roots of
    their own may use any folder. Nothing ever reaches inside LEAP's data or media directory
    (docs/paths.md)."""

    roots: list[str] = Field(default_factory=list)


class DefaultsSettings(_Section):
    """Processing defaults given to new users (each user may then change their own)."""

    language: str = "auto"
    timezone: str = "UTC"
    blank_min_duration_minutes: float = Field(default=20, ge=0)
    blank_min_size_mb: float = Field(default=25, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEAP_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: str = ""  # empty: the platform's user data dir
    database: DatabaseSettings = DatabaseSettings()
    queue: QueueSettings = QueueSettings()
    media: MediaSettings = MediaSettings()
    worker: WorkerSettings = WorkerSettings()
    log: LogSettings = LogSettings()
    zoom: ZoomSettings = ZoomSettings()
    youtube: YouTubeSettings = YouTubeSettings()
    vk: VKSettings = VKSettings()
    fireworks: FireworksSettings = FireworksSettings()
    openai: OpenAISettings = OpenAISettings()
    llm: LLMSettings = LLMSettings()
    local_whisper: LocalWhisperSettings = LocalWhisperSettings()
    sync: SyncSettings = SyncSettings()
    defaults: DefaultsSettings = DefaultsSettings()
    paths: PathsSettings = PathsSettings()

    # Where this object came from; not a setting.
    config_path: Path | None = Field(default=None, exclude=True)

    @property
    def data_path(self) -> Path:
        if self.data_dir:
            return Path(self.data_dir).expanduser()
        return Path(platformdirs.user_data_dir(APP_NAME))

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite:///{self.data_path / 'leap.db'}"

    @property
    def media_path(self) -> Path:
        return Path(self.media.dir).expanduser() if self.media.dir else self.data_path / "media"

    @property
    def queue_path(self) -> Path:
        return Path(self.queue.url).expanduser() if self.queue.url else self.data_path / "queue.db"


class _DictSource(PydanticBaseSettingsSource):
    """Feeds an already-parsed TOML document to pydantic-settings at file priority."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP_NAME)) / "leap.toml"


def resolve_config_path(explicit: str | Path | None, env: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if env is None else env
    if explicit:
        return Path(explicit).expanduser()
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    return default_config_path()


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def _describe(exc: ValidationError, path: Path | None) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    where = f"{path}: " if path else ""
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if err["type"] == "extra_forbidden":
        return f"{where}unknown setting '{loc}'{more}"
    return f"{where}setting '{loc}': {err['msg']}{more}"


def load_settings(explicit: str | Path | None = None, *, must_exist: bool = False) -> Settings:
    """Build Settings from the config file (if any) and the environment."""
    path = resolve_config_path(explicit)
    data: dict[str, Any] = {}
    if path.exists():
        data = read_toml(path)
    elif must_exist or explicit:
        raise ConfigError(f"config file {path} does not exist")

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings, env_settings, _DictSource(settings_cls, data))

    try:
        loaded = _Loaded(config_path=path if path.exists() else None)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path if path.exists() else None)) from None
    return loaded
