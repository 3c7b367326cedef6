"""An automation job file (docs/automation.md, "Job files"): a name, a schedule, and what to
do when it fires. Checked here for shape; services.automation checks it against the
owner's sources, templates and the install's minimum interval."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from leap.errors import UsageError
from leap.specs.schedule import Schedule, parse_schedule

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_TOP = {"name", "enabled", "dry_run", "schedule", "action"}
_ACTION = {"sources", "templates", "since_days", "process"}


@dataclass(frozen=True)
class Action:
    sources: tuple[str, ...] = ()  # empty: every enabled source of the owner
    templates: tuple[str, ...] = ()  # empty: whatever matched any template
    since_days: int | None = None  # only recordings that started in the last N days
    process: bool = True  # False: sync only

    def as_dict(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "templates": list(self.templates),
            "since_days": self.since_days,
            "process": self.process,
        }


@dataclass(frozen=True)
class JobSpec:
    name: str
    schedule: Schedule
    action: Action = field(default_factory=Action)
    enabled: bool = True
    dry_run: bool = False


def _names(value: object, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise UsageError(f"{key}: expected a list of names")
    return tuple(dict.fromkeys(value))


def _flag(data: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise UsageError(f"{where}{key}: expected true or false, got {value!r}")
    return value


def parse_job(data: Mapping[str, Any]) -> JobSpec:
    unknown = sorted(set(data) - _TOP)
    if unknown:
        raise UsageError(
            f"{unknown[0]}: not a key of an automation job ({', '.join(sorted(_TOP))})"
        )
    name = data.get("name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise UsageError(f"name: expected letters, digits, '.', '_', '-' (got {name!r})")
    if "schedule" not in data:
        raise UsageError("schedule: missing (a [schedule] table with kind = ...)")
    schedule = parse_schedule(data["schedule"])
    raw = data.get("action", {})
    if not isinstance(raw, Mapping):
        raise UsageError("action: expected a table")
    bad = sorted(set(raw) - _ACTION)
    if bad:
        raise UsageError(f"action.{bad[0]}: not a key of an action ({', '.join(sorted(_ACTION))})")
    since = raw.get("since_days")
    if since is not None and (
        isinstance(since, bool) or not isinstance(since, int) or not 1 <= since <= 3650
    ):
        raise UsageError(f"action.since_days: expected whole days from 1 to 3650, got {since!r}")
    action = Action(
        sources=_names(raw.get("sources"), "action.sources"),
        templates=_names(raw.get("templates"), "action.templates"),
        since_days=since,
        process=_flag(raw, "process", True, "action."),
    )
    return JobSpec(
        name=name,
        schedule=schedule,
        action=action,
        enabled=_flag(data, "enabled", True, ""),
        dry_run=_flag(data, "dry_run", False, ""),
    )


def action_from_row(spec: Mapping[str, Any]) -> Action:
    """The stored action (written by Action.as_dict) back as an Action."""
    since = spec.get("since_days")
    return Action(
        sources=tuple(spec.get("sources") or ()),
        templates=tuple(spec.get("templates") or ()),
        since_days=since if isinstance(since, int) else None,
        process=bool(spec.get("process", True)),
    )
