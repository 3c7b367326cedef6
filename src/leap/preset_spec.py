"""Output preset files (TOML): a platform, a credential and the platform's metadata defaults."""

from __future__ import annotations

import re
import tomllib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from leap.errors import UsageError
from leap.metadata import check_templates

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

# Keys each platform understands in [metadata]; anything else is a typo caught at save time.
PLATFORM_KEYS: dict[str, set[str]] = {
    "youtube": {
        "title",
        "description",
        "tags",
        "privacy",
        "category_id",
        "made_for_kids",
        "embeddable",
        "license",
        "captions",
        "playlist_id",
        "thumbnail",
        "publish_at",
        "default_language",
        "topics_display",
        "show_timestamps",
    },
    "vk": {
        "title",
        "description",
        "group_id",
        "album_id",
        "privacy_view",
        "privacy_comment",
        "wallpost",
        "no_comments",
        "repeat",
        "thumbnail",
        "topics_display",
        "show_timestamps",
    },
    "local": {"path", "title", "description", "thumbnail", "topics_display", "show_timestamps"},
}


class PresetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    platform: Literal["youtube", "vk", "local"]
    credential: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.fullmatch(v):
            raise ValueError("letters, digits, '.', '_' or '-', at most 64")
        return v


def spec_from_dict(data: dict[str, Any], *, origin: str) -> PresetSpec:
    try:
        spec = PresetSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "preset"
        what = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise UsageError(f"{origin}: {loc}: {what}") from None
    unknown = sorted(set(spec.metadata) - PLATFORM_KEYS[spec.platform])
    if unknown:
        raise UsageError(
            f"{origin}: metadata.{unknown[0]}: not a {spec.platform} setting "
            f"(known: {', '.join(sorted(PLATFORM_KEYS[spec.platform]))})"
        )
    check_templates(spec.metadata, origin)
    if spec.platform != "local" and not spec.credential:
        raise UsageError(f'{origin}: a {spec.platform} preset needs credential = "NAME"')
    return spec


def parse_preset(text: str, *, origin: str) -> PresetSpec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{origin}: malformed TOML: {exc}") from None
    return spec_from_dict(data, origin=origin)
