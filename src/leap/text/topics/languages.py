"""Language names and codes the prompts use, and the intro chapter's title per language."""

from __future__ import annotations

import re

_LANGUAGES = {
    "ar": "Arabic", "be": "Belarusian", "cs": "Czech", "de": "German", "en": "English",
    "es": "Spanish", "fr": "French", "hi": "Hindi", "it": "Italian", "ja": "Japanese",
    "kk": "Kazakh", "ko": "Korean", "nl": "Dutch", "pl": "Polish", "pt": "Portuguese",
    "ru": "Russian", "tr": "Turkish", "uk": "Ukrainian", "uz": "Uzbek", "zh": "Chinese",
}  # fmt: skip
_CODES = {name.lower(): code for code, name in _LANGUAGES.items()}
INTRO = {
    "ru": "Вступление", "uk": "Вступ", "be": "Уводзіны", "en": "Introduction",
    "de": "Einleitung", "fr": "Introduction", "es": "Introducción", "it": "Introduzione",
    "pt": "Introdução", "pl": "Wstęp", "nl": "Inleiding", "cs": "Úvod", "tr": "Giriş",
}  # fmt: skip


def lang_code(language: str | None) -> str | None:
    if not language or not language.strip():
        return None
    text = language.strip().lower()
    if text in _CODES:
        return _CODES[text]
    return re.split(r"[-_]", text, maxsplit=1)[0]


def language_phrase(language: str | None) -> str:
    code = lang_code(language)
    if code is None:
        return "the language the transcript is in"
    name = _LANGUAGES.get(code)
    return f"{name} ({code})" if name else f"the language with code {code!r}"
