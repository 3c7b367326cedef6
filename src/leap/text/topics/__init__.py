"""Topics and YouTube chapters of a transcript, one module per job: the model (`model`),
clock stamps and title cleaning (`times`), languages (`languages`), windows and prompts
(`prompts`), tolerant answer parsing (`parsing`), snapping and chapter rules (`chapters`),
the LLM map-reduce (`llm`) and the offline extractor (`offline`, imported by name: it needs
nothing of the LLM). The public names are re-exported here."""

from leap.text.topics.chapters import (
    anchor_start,
    boundaries,
    chapters_check,
    finalize,
    intro_title,
    number_duplicates,
    snap,
)
from leap.text.topics.languages import (
    lang_code,
    language_phrase,
)
from leap.text.topics.llm import (
    extract_with_llm,
)
from leap.text.topics.model import (
    LEAD_IN_S,
    MIN_CHAPTER_S,
    MIN_CHAPTERS,
    SENTENCE_END,
    ChatJSON,
    Partial,
    RawTopic,
    Topic,
    Topics,
    TopicsParseError,
)
from leap.text.topics.parsing import (
    parse_answer,
)
from leap.text.topics.prompts import (
    build_messages,
    build_reduce_messages,
    windows,
)
from leap.text.topics.times import (
    MAX_THEMES,
    MAX_TITLE_CHARS,
    chapter_stamp,
    clean_themes,
    clean_title,
    hms,
    parse_time,
    transcript_duration,
)

__all__ = [
    "LEAD_IN_S",
    "MAX_THEMES",
    "MAX_TITLE_CHARS",
    "MIN_CHAPTERS",
    "MIN_CHAPTER_S",
    "SENTENCE_END",
    "ChatJSON",
    "Partial",
    "RawTopic",
    "Topic",
    "Topics",
    "TopicsParseError",
    "anchor_start",
    "boundaries",
    "build_messages",
    "build_reduce_messages",
    "chapter_stamp",
    "chapters_check",
    "clean_themes",
    "clean_title",
    "extract_with_llm",
    "finalize",
    "hms",
    "intro_title",
    "lang_code",
    "language_phrase",
    "number_duplicates",
    "parse_answer",
    "parse_time",
    "snap",
    "transcript_duration",
    "windows",
]
