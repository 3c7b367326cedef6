"""Publishing metadata: preset < template < recording, deep-merged; pre-flight checks that
repair what YouTube and VK would reject; and the request bodies built from the result."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from leap.domain import is_language
from leap.errors import UsageError
from leap.specs import thumbnails
from leap.specs.processing import resolve
from leap.specs.rendering import TOPICS_DISPLAYS, validate_template
from leap.text.topics import MIN_CHAPTER_S, MIN_CHAPTERS

__all__ = [
    "RENDERED",
    "VK_MAX_DESCRIPTION_CHARS",
    "VK_MAX_NAME_CHARS",
    "YT_MAX_DESCRIPTION_BYTES",
    "YT_MAX_TAGS_CHARS",
    "YT_MAX_TITLE_CHARS",
    "Repair",
    "check_metadata",
    "check_templates",
    "parse_publish_at",
    "preflight_vk",
    "preflight_youtube",
    "resolve_metadata",
    "rfc3339",
    "tags_length",
    "vk_save_params",
    "youtube_body",
]

# Metadata strings rendered from templates (tags are rendered one by one as well).
RENDERED = ("title", "description", "path")

YT_MAX_TITLE_CHARS = 100
YT_MAX_DESCRIPTION_BYTES = 5000
YT_MAX_TAGS_CHARS = 500
# LEAP marks every upload with its target's idempotency key ("leap-" + 24 hex): a tag on
# YouTube, a "\n\n#key" line under a VK description. Pre-flight keeps room for it, so the
# marked request is still within the platform's limits.
MARKER_CHARS = 29
YT_TAGS_BUDGET = YT_MAX_TAGS_CHARS - MARKER_CHARS - 1  # the marker tag and its comma
YT_PRIVACY = ("public", "unlisted", "private")
YT_LICENSES = ("youtube", "creativeCommon")
VK_MAX_NAME_CHARS = 128
VK_MAX_DESCRIPTION_CHARS = 5000
VK_MARKER_CHARS = MARKER_CHARS + 3  # "\n\n#" before the key
VK_FLAGS = ("is_private", "wallpost", "no_comments", "repeat", "compression")
VK_PRIVACY_WORDS = ("all", "friends", "friends_of_friends", "only_me", "nobody")
_VK_PRIVACY_ALIASES = {"public": "all", "private": "only_me", "everyone": "all"}
_VK_PRIVACY_ITEM = re.compile(r"list\d+|-?\d+")
ELLIPSIS = "…"

# A chapter line: a timestamp at the start of the line (§2.9).
_STAMP_LINE = re.compile(r"^\s*(?:(\d{1,2}):)?(\d{1,2}):(\d{2})(?!\d)")


@dataclass(frozen=True)
class Repair:
    field: str
    what: str
    before: Any
    after: Any


def resolve_metadata(
    preset: Mapping[str, Any], template: Mapping[str, Any], override: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Merged values and, per dotted leaf key, the layer that set it."""
    res = resolve([("preset", preset), ("template", template), ("recording", override)])
    return res.values, res.origins


# ---------------------------------------------------------------------------------------------
# Text helpers


def _cut_words(text: str, limit: int) -> str:
    """At most `limit` characters, cut at a word boundary, ending in an ellipsis."""
    if len(text) <= limit:
        return text
    room = text[: limit - len(ELLIPSIS)]
    space = room.rfind(" ")
    if space > 0 and not text[limit - len(ELLIPSIS)].isspace():
        room = room[:space]
    return room.rstrip() + ELLIPSIS


def _fits(text: str, limit: int, measure: str) -> bool:
    size = len(text.encode()) if measure == "bytes" else len(text)
    return size <= limit


def _cut_text(text: str, limit: int, measure: str) -> str:
    """At most `limit` characters or UTF-8 bytes, cut at a line boundary in the last fifth,
    else at a word boundary with an ellipsis, else hard with an ellipsis."""
    if _fits(text, limit, measure):
        return text
    budget = limit - (len(ELLIPSIS.encode()) if measure == "bytes" else len(ELLIPSIS))
    room = text.encode()[:budget].decode(errors="ignore") if measure == "bytes" else text[:budget]
    line = room.rfind("\n")
    if line >= len(room) * 4 // 5:
        return room[:line].rstrip()
    space = room.rfind(" ")
    if space >= len(room) * 4 // 5:
        room = room[:space]
    return room.rstrip() + ELLIPSIS


def _angles(text: str) -> str:
    return text.replace("<", "‹").replace(">", "›")


def _to_bool(value: Any, key: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    raise UsageError(f"{key}: expected true or false, not {value!r}")


def tags_length(tags: list[str]) -> int:
    """YouTube's count: characters, a comma between tags, +2 for a tag with a space (quoted)."""
    return sum(len(t) + (2 if " " in t else 0) for t in tags) + max(0, len(tags) - 1)


def _chapter_seconds(line: str) -> int | None:
    m = _STAMP_LINE.match(line)
    if m is None:
        return None
    h, mi, s = int(m.group(1) or 0), int(m.group(2)), int(m.group(3))
    return h * 3600 + mi * 60 + s


def _chapters_problem(stamps: list[int], duration_s: float | None) -> str | None:
    if len(stamps) < MIN_CHAPTERS:
        return f"{len(stamps)} chapter line(s); YouTube needs at least {MIN_CHAPTERS}"
    if stamps[0] != 0:
        return "the first chapter is not at 0:00"
    ends = [*stamps[1:], *([duration_s] if duration_s is not None else [])]
    for start, end in zip(stamps, ends, strict=False):
        if end <= start:
            return "chapters are not in ascending order"
        if end - start < MIN_CHAPTER_S:
            return f"a chapter is shorter than {MIN_CHAPTER_S:.0f} s"
    return None


# ---------------------------------------------------------------------------------------------
# YouTube


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def preflight_youtube(meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[Repair]]:
    """Repair what videos.insert would reject (§2.3, §2.9); idempotent.

    Keys: title, description, tags, category_id, privacy, publish_at, made_for_kids,
    embeddable, license, default_language, duration_s (optional, for the last chapter)."""
    out = copy.deepcopy(dict(meta))
    repairs: list[Repair] = []

    def fix(key: str, what: str, after: Any) -> None:
        repairs.append(Repair(key, what, out.get(key), after))
        out[key] = after

    title = str(out.get("title") or "")
    description = str(out.get("description") or "")
    if "title" in out and not isinstance(out["title"], str):
        fix("title", "converted to text", title)
    if "description" in out and not isinstance(out["description"], str):
        fix("description", "converted to text", description)
    for key, text in (("title", title), ("description", description)):
        if "<" in text or ">" in text:
            fix(key, "replaced < > with ‹ ›", _angles(text))
    title = str(out.get("title") or "")
    description = str(out.get("description") or "")

    if len(title) > YT_MAX_TITLE_CHARS:
        fix(
            "title",
            f"cut to {YT_MAX_TITLE_CHARS} characters",
            _cut_words(title, YT_MAX_TITLE_CHARS),
        )
        description = f"{title}\n\n{description}" if description else title
        fix("description", "full title put at the top", description)

    # Cut to size, then check chapters; bullets add bytes, so cut again after them. Bulleted
    # lines are no longer chapter lines, so the second pass settles it.
    while True:
        if not _fits(description, YT_MAX_DESCRIPTION_BYTES, "bytes"):
            description = _cut_text(description, YT_MAX_DESCRIPTION_BYTES, "bytes")
            fix("description", f"cut to {YT_MAX_DESCRIPTION_BYTES} bytes", description)
        lines = description.split("\n")
        stamps = [s for s in (_chapter_seconds(line) for line in lines) if s is not None]
        # One timestamped line is text, not an attempt at chapters; two or more are checked.
        if len(stamps) < 2:
            break
        duration = out.get("duration_s")
        problem = _chapters_problem(stamps, float(duration) if duration is not None else None)
        if problem is None:
            break
        # Not chapters, but still a useful list (YouTube links every timestamp): a bullet in
        # front keeps each line and stops YouTube reading them as broken chapters.
        description = "\n".join(
            f"• {line.lstrip()}" if _chapter_seconds(line) is not None else line for line in lines
        )
        fix("description", f"timestamps kept as a list, not chapters: {problem}", description)

    if "tags" in out:
        raw = out["tags"]
        items = raw.split(",") if isinstance(raw, str) else list(raw or [])
        tags = [_angles(str(t).strip()) for t in items if str(t).strip()]
        if tags != raw:
            fix("tags", "normalised to a list of non-empty text tags", tags)
        dropped = 0
        while tags and tags_length(tags) > YT_TAGS_BUDGET:
            tags = tags[:-1]
            dropped += 1
        if dropped:
            fix(
                "tags",
                f"dropped {dropped} tag(s) past {YT_TAGS_BUDGET} characters "
                f"({YT_MAX_TAGS_CHARS} less LEAP's marker tag)",
                tags,
            )

    if "privacy" in out and out["privacy"] not in YT_PRIVACY:
        fix("privacy", f"not one of {', '.join(YT_PRIVACY)}; made private", "private")
    if out.get("publish_at") is not None:
        parse_publish_at(out["publish_at"], "publish_at")
        if out.get("privacy") != "private":
            fix("privacy", "publish_at needs private until the scheduled time", "private")

    if "category_id" in out:
        cat = out["category_id"]
        if not isinstance(cat, str) or cat != cat.strip():
            fix("category_id", "converted to a string id", str(cat).strip())
        if not str(out["category_id"]).isdigit():
            raise UsageError(f"category_id: expected a number such as 27, not {cat!r}")
    for key in ("made_for_kids", "embeddable"):
        if key in out and not isinstance(out[key], bool):
            fix(key, "converted to true/false", _to_bool(out[key], key))
    if "license" in out and out["license"] not in YT_LICENSES:
        lic = str(out["license"]).lower().replace("_", "").replace("-", "").replace(" ", "")
        after = "creativeCommon" if lic.startswith(("creativecommon", "cc")) else "youtube"
        fix("license", f"not one of {', '.join(YT_LICENSES)}", after)
    return out, repairs


def youtube_body(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The videos.insert resource (§2.3); runs preflight_youtube first (a no-op when done)."""
    fixed, _ = preflight_youtube(meta)
    snippet: dict[str, Any] = {
        "title": fixed.get("title") or "",
        "description": fixed.get("description") or "",
    }
    if fixed.get("tags"):
        snippet["tags"] = list(fixed["tags"])
    if fixed.get("category_id"):
        snippet["categoryId"] = fixed["category_id"]
    if fixed.get("default_language"):
        snippet["defaultLanguage"] = str(fixed["default_language"])
    if fixed.get("default_audio_language"):
        snippet["defaultAudioLanguage"] = str(fixed["default_audio_language"])
    status: dict[str, Any] = {"privacyStatus": fixed.get("privacy") or "private"}
    if fixed.get("publish_at") is not None:
        status["publishAt"] = rfc3339(parse_publish_at(fixed["publish_at"], "publish_at"))
    if "made_for_kids" in fixed:
        status["selfDeclaredMadeForKids"] = fixed["made_for_kids"]
    if "embeddable" in fixed:
        status["embeddable"] = fixed["embeddable"]
    if "license" in fixed:
        status["license"] = fixed["license"]
    return {"snippet": snippet, "status": status}


# ---------------------------------------------------------------------------------------------
# VK


def _vk_privacy(value: Any) -> str:
    items = value.split(",") if isinstance(value, str) else [str(v) for v in value or []]
    out: list[str] = []
    for item in (i.strip() for i in items):
        item = _VK_PRIVACY_ALIASES.get(item.lower(), item)
        if (item in VK_PRIVACY_WORDS or _VK_PRIVACY_ITEM.fullmatch(item)) and item not in out:
            out.append(item)
    return ",".join(out) or "only_me"


def preflight_vk(meta: Mapping[str, Any]) -> tuple[dict[str, Any], list[Repair]]:
    """Repair what video.save would reject (§3.2); idempotent. `name` falls back to `title`."""
    out = copy.deepcopy(dict(meta))
    repairs: list[Repair] = []

    def fix(key: str, what: str, after: Any) -> None:
        repairs.append(Repair(key, what, out.get(key), after))
        out[key] = after

    if "name" not in out and "title" in out:
        out["name"] = out["title"]
    name = str(out.get("name") or "")
    description = str(out.get("description") or "")
    if len(name) > VK_MAX_NAME_CHARS:
        fix("name", f"cut to {VK_MAX_NAME_CHARS} characters", _cut_words(name, VK_MAX_NAME_CHARS))
        description = f"{name}\n\n{description}" if description else name
        fix("description", "full name put at the top", description)
    budget = VK_MAX_DESCRIPTION_CHARS - VK_MARKER_CHARS
    if len(description) > budget:
        cut = _cut_text(description, budget, "chars")
        fix("description", f"cut to {budget} characters (room for LEAP's marker line)", cut)
    for key in ("privacy_view", "privacy_comment"):
        if key in out:
            after = _vk_privacy(out[key])
            if after != out[key]:
                fix(key, "kept only valid VK privacy items", after)
    for key in VK_FLAGS:
        if key in out and (isinstance(out[key], bool) or out[key] not in (0, 1)):
            fix(key, "converted to 0/1", int(_to_bool(out[key], key)))
    for key in ("group_id", "album_id"):
        if key in out and out[key] is not None:
            value = out[key]
            try:
                number = int(str(value).strip())
            except ValueError:
                raise UsageError(f"{key}: expected a number, not {value!r}") from None
            if key == "group_id" and number < 0:
                number = -number
            if number < 0 or value != number or isinstance(value, bool):
                fix(key, "converted to a positive number", number)
    return out, repairs


def vk_save_params(meta: Mapping[str, Any]) -> dict[str, str]:
    """The video.save parameters (§3.2), strings only; runs preflight_vk first. Privacy
    settings are left out for community videos, where VK ignores them."""
    fixed, _ = preflight_vk(meta)
    params = {
        "name": str(fixed.get("name") or ""),
        "description": str(fixed.get("description") or ""),
    }
    for key in ("group_id", "album_id", *VK_FLAGS):
        if fixed.get(key) is not None:
            params[key] = str(fixed[key])
    if fixed.get("group_id") is None:
        for key in ("privacy_view", "privacy_comment"):
            if fixed.get(key):
                params[key] = str(fixed[key])
    return params


def check_templates(meta: Mapping[str, Any], origin: str) -> None:
    """Save-time check of a metadata table: every rendered string names known variables with
    valid time formats, topics_display is one of the five, and a relative thumbnail name stays
    inside the thumbnail folders. UsageError naming the key; nothing waits for the upload."""
    for key in RENDERED:
        if isinstance(meta.get(key), str):
            validate_template(meta[key], where=f"{origin}: metadata.{key}")
    tags = meta.get("tags")
    if isinstance(tags, list):
        for tag in tags:
            validate_template(str(tag), where=f"{origin}: metadata.tags")
    display = meta.get("topics_display")
    if display is not None and display not in TOPICS_DISPLAYS:
        raise UsageError(
            f"{origin}: metadata.topics_display: {display!r} is not one of "
            + ", ".join(TOPICS_DISPLAYS)
        )
    if "publish_at" in meta and meta["publish_at"] not in (None, ""):
        where = f"{origin}: metadata.publish_at"
        if not isinstance(meta["publish_at"], str):  # stored as JSON: text, not a TOML time
            raise UsageError(f"{where}: write it as a quoted ISO 8601 string with an offset")
        parse_publish_at(meta["publish_at"], where)
    thumb = meta.get("thumbnail")
    if isinstance(thumb, str) and thumb:
        try:
            thumbnails.candidates(Path(), 0, thumb)
        except UsageError as exc:
            raise UsageError(f"{origin}: metadata.{exc.message}") from None


# Keys each platform understands in [metadata]; anything else is a typo caught at save time.
PLATFORM_KEYS: dict[str, frozenset[str]] = {
    "youtube": frozenset(
        {
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
            "default_audio_language",
            "topics_display",
            "show_timestamps",
        }
    ),
    "vk": frozenset(
        {
            "title",
            "description",
            "group_id",
            "album_id",
            "privacy_view",
            "privacy_comment",
            *VK_FLAGS,
            "thumbnail",
            "topics_display",
            "show_timestamps",
        }
    ),
    "local": frozenset(
        {"path", "title", "description", "thumbnail", "topics_display", "show_timestamps"}
    ),
}
# Every key a template's [metadata] may set, whatever the platform (a preset file narrows
# this to its platform's keys).
METADATA_KEYS = frozenset().union(*PLATFORM_KEYS.values())
_BOOLEANS = ("made_for_kids", "embeddable", "captions", "show_timestamps")
_TEXTS = ("title", "description", "playlist_id", "thumbnail", "path")
_ID_INT_MAX = 2**63 - 1


def _metadata_problem(key: str, value: Any) -> str | None:
    """Why `value` cannot be the metadata `key`, or None. Pre-flight repairs what the platforms
    would reject in rendered text; a wrong type or an unknown choice is the user's to fix."""
    if key in _TEXTS:
        return None if isinstance(value, str) else f"expected a string, not {value!r}"
    if key == "tags":
        if isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(t, str) for t in value)
        ):
            return None
        return f"expected a list of strings, not {value!r}"
    if key in _BOOLEANS:
        return None if isinstance(value, bool) else f"expected true or false, not {value!r}"
    if key in VK_FLAGS:
        ok = isinstance(value, bool) or (isinstance(value, int) and value in (0, 1))
        return None if ok else f"expected true or false, not {value!r}"
    if key == "privacy":
        return None if value in YT_PRIVACY else f"{value!r} is not one of {', '.join(YT_PRIVACY)}"
    if key == "license":
        return None if value in YT_LICENSES else f"{value!r} is not one of {', '.join(YT_LICENSES)}"
    if key == "category_id":
        text = str(value) if isinstance(value, int) and not isinstance(value, bool) else value
        if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 9:
            return None
        return f"expected a number such as 27, not {value!r}"
    if key in ("default_language", "default_audio_language"):
        if is_language(value) and value != "auto":
            return None
        return f"{value!r} is not a language code (like ru, en, pt-BR)"
    if key in ("group_id", "album_id"):
        if isinstance(value, int) and not isinstance(value, bool):
            number: int | None = value
        elif isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,19}", value.strip()):
            number = int(value.strip())
        else:
            number = None
        if number is None or abs(number) > _ID_INT_MAX or number == 0:
            return f"expected a VK id (a non-zero number), not {value!r}"
        if key == "album_id" and number < 0:
            return f"expected a positive number, not {value!r}"
        return None
    if key in ("privacy_view", "privacy_comment"):
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            return f"expected a VK privacy such as 'all', not {value!r}"
        for item in items:
            word = str(item).strip() if isinstance(item, str | int) else None
            word = _VK_PRIVACY_ALIASES.get((word or "").lower(), word)
            if word is None or not (word in VK_PRIVACY_WORDS or _VK_PRIVACY_ITEM.fullmatch(word)):
                return (
                    f"{item!r} is not a VK privacy item ({', '.join(VK_PRIVACY_WORDS)}, "
                    "listN or a user id)"
                )
        return None
    return None  # topics_display and publish_at: check_templates


def check_metadata(meta: Mapping[str, Any], origin: str) -> None:
    """Save-time check of a [metadata] table's keys and value types; UsageError naming the key
    (check_templates checks the rendered strings)."""
    for key, value in meta.items():
        if key not in METADATA_KEYS:
            raise UsageError(
                f"{origin}: metadata.{key}: unknown key (known: {', '.join(sorted(METADATA_KEYS))})"
            )
        problem = _metadata_problem(key, value)
        if problem is not None:
            raise UsageError(f"{origin}: metadata.{key}: {problem}")


def parse_publish_at(value: Any, where: str, tz: tzinfo | None = None) -> datetime:
    """publish_at as an aware datetime: ISO 8601 text ("Z" allowed) or a datetime, with its
    UTC offset. With `tz` (the user's timezone, for a time typed on the command line), a time
    without an offset is that zone's wall-clock time; without `tz` it is refused."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise UsageError(
                f"{where}: {value!r} is not an ISO 8601 time (e.g. 2026-05-01T18:00:00+03:00)"
            ) from None
    else:
        raise UsageError(f"{where}: write it as a quoted ISO 8601 string with an offset")
    if moment.tzinfo is None:
        if tz is None:
            raise UsageError(f"{where}: {value!r} needs a UTC offset (e.g. +03:00 or Z)")
        local = moment.replace(tzinfo=tz)  # fold=0: an hour that repeats means its first time
        if local.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != moment:
            raise UsageError(
                f"{where}: {value!r} does not exist in {tz} (the clocks skip it); "
                "give another time or an offset"
            )
        return local
    return moment
