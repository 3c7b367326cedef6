"""Output preset files (TOML): a platform, a credential and the platform's metadata defaults."""

from __future__ import annotations

import re
import tomllib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from leap.errors import UsageError
from leap.specs.approval import GATE_KEY, MISPLACED
from leap.specs.metadata import PLATFORM_KEYS, check_metadata, check_templates
from leap.specs.template import plain_table

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class PresetSpec(BaseModel):
    # strict: TOML has real types, so credential = 5 or name = true is a mistake to report.
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str
    platform: Literal["youtube", "vk", "local"]
    credential: str | None = None
    # Hold what this preset publishes for `leap approve` (docs/approval.md).
    approval: bool = False
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name", "credential")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        # Credentials share the naming rule; a NUL or newline would reach the database query.
        if v is not None and not NAME_RE.fullmatch(v):
            raise ValueError("letters, digits, '.', '_' or '-', at most 64")
        return v


def spec_from_dict(data: dict[str, Any], *, origin: str) -> PresetSpec:
    if not isinstance(data, dict):
        raise UsageError(f"{origin}: expected a table of preset keys")
    try:
        spec = PresetSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or "preset"
        what = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise UsageError(f"{origin}: {loc}: {what}") from None
    spec = spec.model_copy(update={"metadata": plain_table(spec.metadata, "metadata", origin)})
    if GATE_KEY in spec.metadata:  # TOML put a trailing `approval = true` inside [metadata]
        raise UsageError(f"{origin}: metadata.{GATE_KEY}: {MISPLACED}")
    unknown = sorted(set(spec.metadata) - PLATFORM_KEYS[spec.platform])
    if unknown:
        raise UsageError(
            f"{origin}: metadata.{unknown[0]}: not a {spec.platform} setting "
            f"(known: {', '.join(sorted(PLATFORM_KEYS[spec.platform]))})"
        )
    check_templates(spec.metadata, origin)
    check_metadata(spec.metadata, origin)
    if spec.platform != "local" and not spec.credential:
        raise UsageError(f'{origin}: a {spec.platform} preset needs credential = "NAME"')
    return spec


def parse_preset(text: str, *, origin: str) -> PresetSpec:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{origin}: malformed TOML: {exc}") from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise UsageError(f"{origin}: nested too deeply") from None
    return spec_from_dict(data, origin=origin)
