"""The offline topics provider: sections cut at long pauses, each titled by a noun phrase of its
own sentences (cues, definitions, spoken headings, TF-IDF-weighted phrases; English and Russian),
themes from the words the whole transcript stresses. No model, no network, deterministic."""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from leap.text.topics import (
    MIN_CHAPTER_S,
    MIN_CHAPTERS,
    SENTENCE_END,
    Topic,
    Topics,
    chapters_check,
    clean_themes,
    lang_code,
    number_duplicates,
    transcript_duration,
)
from leap.text.transcript import Segment, Transcript

__all__ = ["section_titles", "simple_topics"]

_PART = {
    "ru": "Часть", "uk": "Частина", "be": "Частка", "en": "Part", "de": "Teil",
    "fr": "Partie", "es": "Parte", "it": "Parte", "pt": "Parte", "pl": "Część",
    "nl": "Deel", "cs": "Část", "tr": "Bölüm",
}  # fmt: skip


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOP_EN = _wordset(
    """a about above after again against all almost also although always am among an and any
    anyone anything are around as at away back be because been before being below between
    both but by can cannot could did do does doing done down during each either else enough
    even ever every everything few first for from further get gets getting go goes going gonna
    got had has have having he her here hers him his how however i if in into is it its itself
    just kind know last let like little look lot lots made make many may maybe me might mine
    more most much must my myself need new next no nor not nothing now of off ok okay on once
    one only or other others our ours out over own part pretty put quite rather really right
    said same say says see seem seems shall she should show since so some something sort still
    such sure take than thank thanks that the their theirs them then there these they thing
    things think this those though through thus to today together too two under until up upon
    us use used using very via want wanna was way we well were what whatever when where whether
    which while who whom whose why will with within without would yeah yes yet you your yours
    actually basically going okay alright let's that's it's don't we're you're i'm can't
    there's here's what's"""
)
_STOP_RU = _wordset(
    """а без более бы был была были было быть в вам вас весь во вот все всего всех вы где да
    даже для до его ее её если есть еще ещё же за здесь и из или им их к как какая какие какой
    когда который которая которое которые кто куда ли либо меня мне мной мы на над надо наш
    наша наше наши не него нее неё нет ни них но ну о об однако он она они оно от очень по под
    после потому почему при про раз с сам свой себя сейчас со так также такие такой там тебя
    тем теперь то тогда того тоже той только том ты у уже хорошо хотя чего чем через что чтобы
    чуть эта эти это этого этой этом этот эту я вообще давайте давай значит можно нужно надо
    будет будем будут буду можем может могу могут должны сказать говорить говорю скажем просто
    вопрос вопросы смотрите смотреть видите знаете понятно конечно например именно сегодня
    поэтому здесь тут какой-то что-то кто-то где-то типа короче ладно ага угу ой эээ ммм
    видим смотрим говорим делаем получаем получается имеем берем берём возьмем возьмём
    слишком почти иногда часто редко гораздо намного особенно всегда никогда довольно вполне
    совсем снова опять сразу потом затем вместе обычно примерно"""
)
_STOPWORDS = _STOP_EN | _STOP_RU
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_RU_ENDINGS = sorted(
    _wordset(
        "ами ями ого его ему ому ыми ими ой ей ий ый ая яя ое ее ие ые ов ев ам ям ах ях ом ем ью"
        " а я о е ы и у ю ь"
    ),
    key=lambda e: (-len(e), e),
)
_CYRILLIC = re.compile(r"[а-яё]")


def _key(word: str) -> str:
    """A crude stem, so that "модели"/"моделью" or "model"/"models" count as one word."""
    if _CYRILLIC.search(word):
        for ending in _RU_ENDINGS:
            if word.endswith(ending) and len(word) - len(ending) >= 3:
                return word[: -len(ending)]
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _words(text: str) -> Iterator[tuple[str, str]]:
    """(stem key, surface form) of each content word; an acronym keeps its capitals."""
    for match in _WORD.finditer(text):
        word = match.group()
        low = word.lower().replace("ё", "е").replace("’", "'")
        if len(low) < 3 or low in _STOPWORDS:
            continue
        surface = word if len(word) > 1 and word.isupper() else low
        yield _key(low), surface


def _section_count(duration: float, target_s: float, min_s: float, max_topics: int) -> int:
    count = max(1, round(duration / max(target_s, 1.0)))
    if count < MIN_CHAPTERS and duration >= MIN_CHAPTERS * min_s:
        count = MIN_CHAPTERS  # three chapters beat none for a recording long enough to hold them
    return max(1, min(count, max_topics, int(duration // min_s)))


def _cuts(transcript: Transcript, duration: float, count: int, min_s: float) -> list[float]:
    """Section starts: 0, then near each k/count of the duration the segment start after the
    longest pause (a pause after a finished sentence counts a little longer)."""
    segs = [s for s in transcript.segments if s.text.strip()]
    candidates: list[tuple[float, float]] = []  # (start, score)
    for prev, seg in itertools.pairwise(segs):
        pause = max(0.0, seg.start - prev.end)
        bonus = 0.75 if prev.text.strip().endswith(SENTENCE_END) else 0.0
        candidates.append((seg.start, pause + bonus))
    cuts = [0.0]
    share = duration / count
    for k in range(1, count):
        ideal = k * share
        earliest = cuts[-1] + min_s
        latest = duration - (count - k) * min_s
        near = [
            c
            for c in candidates
            if max(earliest, ideal - 0.3 * share) <= c[0] <= min(latest, ideal + 0.3 * share)
        ]
        if near:
            best = max(near, key=lambda c: (c[1], -abs(c[0] - ideal)))
        else:
            allowed = [c for c in candidates if earliest <= c[0] <= latest]
            if not allowed:
                break
            best = min(allowed, key=lambda c: abs(c[0] - ideal))
        cuts.append(float(math.floor(best[0])))
    return cuts


# ---------------------------------------------------------------------------------------------
# Offline titles: a short noun phrase from each section's own sentences

# Words that may join the content words of a phrase ("size of the array", "ключи и значения");
# an article only right after another of them, so "smooth the data" stays two phrases.
_GLUE = _wordset(
    "of and for in on with vs versus per и в во на для с со по о об при из от к без под над"
)
_ARTICLES = _wordset("the a an")
# Words a title does without, compared by stem: talk about the lecture itself, vague
# adjectives ("Simple methods", "Последняя тема"), transitions, the verbs of the cues below
# and the closing formulas ("Thank you for listening", "Спасибо за внимание").
_NOT_IN_TITLES = frozenset(
    map(
        _key,
        _wordset(
            """topic topics lecture lectures course lesson today welcome example examples simple
            good important main basic different general small big large various several whole
            entire usual common typical final second third next previous following finally
            listening attention
            тема темы тему лекция лекции лекцию курс урок занятие сегодняшний сегодняшней
            пример примеры простой простые хороший основной основные важный важные большой
            небольшой маленький обычный разные последний последняя следующий следующая первый
            первая второй вторая третий третья дальше далее наконец итак разберем рассмотрим
            обсудим изучим поговорим спасибо внимание"""
        ),
    )
)
# Between a cue ("our first topic is") and the phrase it announces.
_LEAD = _ARTICLES | _wordset("our this these that those its their his her my your some")
# A sentence's opening phrase followed by one of these is being defined: "A trend is …",
# "Градиент — это …". A sentence that is nothing but its opening phrase is a spoken heading:
# "Right, the learning rate.", "Дальше доверительный интервал.", "That's gradient descent."
# At most _OPENING_SKIP words ("So, a …", "Ну, дальше") may come before the phrase.
_COPULAS = _wordset("is are means refers это — – -")
_OPENING_SKIP = 4
_TRANSITIONS = _wordset("now next finally then so right okay дальше далее наконец итак теперь")
# A heading needs one of these before it, or "It works." and "Models fit data." would be ones.
_HEADING_MARKS = _TRANSITIONS | _ARTICLES | _wordset("that's вот , : — – -")
_SENTENCES = re.compile(r"(?<=[.!?…。！？])\s+")
_TOKEN = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*|[^\w\s]")
_TOKEN_PUNCT = re.compile(r"[^\w\s]")
# How lecturers announce a subject, and how much likelier the phrase after one is the title.
# A preposition captured as `prep` stays in the title: "О стохастическом спуске" is a heading,
# the bare prepositional case is not. Naming a term ("so-called X") is weaker: it introduces a
# word, not necessarily the section's subject.
_ANNOUNCE_BONUS = 4.0
_NAMING_BONUS = 2.0
_DEFINITION_BONUS = 2.0
_HEADING_BONUS = 2.0
_MOVE_ON_BONUS = 3.0
_CUE_REACH = 40  # tokens: a phrase of a few words, and the articles and glue around them
_CUES = tuple(
    (re.compile(pattern, re.IGNORECASE), bonus)
    for pattern, bonus in (
        (
            r"\b(?:topic|subject)\s+(?:for\s+today\s+|of\s+today\s+|today\s+)?(?:is|will\s+be)\b",
            _ANNOUNCE_BONUS,
        ),
        (
            r"\b(?:talk|talking|speak|speaking|learn|learning|think|thinking|hear)\s+"
            r"(?:a\s+(?:bit|little)\s+(?:more\s+)?)?about\b",
            _ANNOUNCE_BONUS,
        ),
        (r"\b(?:turn|turning|move\s+on|moving\s+on|switch|switching)\s+to\b", _ANNOUNCE_BONUS),
        (
            r"\b(?:introduce|introducing|discuss|discussing|cover|covering|focus\s+on"
            r"|focusing\s+on)\b",
            _ANNOUNCE_BONUS,
        ),
        (r"\b(?:look|looking)\s+at\b", _NAMING_BONUS),
        (r"\b(?:is|are)\s+called\b|\bknown\s+as\b", _NAMING_BONUS),
        (r"\bтем[аы]\b[^.!?]{0,40}?(?:\s[—–-]\s|:|\bэто\b)", _ANNOUNCE_BONUS),
        (
            r"\b(?:поговорим|поговорить|говорить|говорим|расскажу|рассказать|расскажем"
            r"|речь\s+пойд[её]т|речь\s+ид[её]т|теперь|далее|дальше)\s+(?P<prep>о|об|обо|про)\b",
            _ANNOUNCE_BONUS,
        ),
        (
            r"\b(?:разбер[её]м|рассмотрим|обсудим|изучим|разобрать|рассмотреть|обсудить|изучить"
            r"|познакомимся\s+с)\b",
            _ANNOUNCE_BONUS,
        ),
        (r"\bперей(?:д[её]м|ти)\s+к\b", _ANNOUNCE_BONUS),
        (
            r"\b(?:последн|следующ|заключительн)\w*\b[^.!?—–:]{0,30}?(?:\s[—–-]\s|:)"
            r"|\b(?:last|next|final)\s+(?:thing|point|part|step|one)\b[^.!?—–:]{0,30}?"
            r"(?:\s[—–-]\s|:)",
            _ANNOUNCE_BONUS,
        ),
        (r"\b(?:называется|называются|называют|называем|так\s+называем\w+)\b", _NAMING_BONUS),
    )
)
# Every added word adds weight: without a discount per word a title grows to its limit.
_LENGTH_DISCOUNT = 0.7
_REPEAT_WEIGHT = 0.25


@dataclass(frozen=True)
class _Token:
    surface: str
    low: str
    key: str | None  # the stem of a content word; None for glue, stopwords and punctuation
    at: int  # where it starts in its sentence


def _tokens(text: str) -> list[_Token]:
    out = []
    for match in _TOKEN.finditer(text):
        word = match.group()
        low = word.lower().replace("ё", "е").replace("’", "'")
        key = _key(low)
        content = _WORD.fullmatch(word) is not None and len(low) >= 3 and low not in _STOPWORDS
        out.append(
            _Token(word, low, key if content and key not in _NOT_IN_TITLES else None, match.start())
        )
    return out


def _phrase_ends(tokens: Sequence[_Token], i: int, max_words: int) -> Iterator[int]:
    """Each j for which tokens[i:j] is a phrase: content words joined by at most two glue
    words, at most `max_words` content words, ending on one (tokens[i] must be one)."""
    words = gap = 0
    for j in range(i, len(tokens)):
        token = tokens[j]
        if token.key is not None:
            words, gap = words + 1, 0
            if words > max_words:
                return
            yield j + 1
        elif gap < 2 and (token.low in _GLUE or (gap > 0 and token.low in _ARTICLES)):
            gap += 1
        else:
            return


def _opening(
    tokens: Sequence[_Token], skip: frozenset[str], max_skip: int, max_words: int
) -> tuple[int, int] | None:
    """(start, end) of the longest phrase opening `tokens` after at most `max_skip` words
    from `skip`."""
    i = 0
    while i < min(max_skip, len(tokens)) and tokens[i].key is None and tokens[i].low in skip:
        i += 1
    if i >= len(tokens) or tokens[i].key is None:
        return None
    return i, max(_phrase_ends(tokens, i, max_words))


@dataclass
class _Candidate:
    order: int
    bonus: float = 1.0
    surfaces: Counter[str] = field(default_factory=Counter)


def _candidates(
    text: str, max_words: int
) -> tuple[dict[tuple[str, ...], _Candidate], Counter[tuple[str, ...]]]:
    """Every phrase of a section keyed by its preposition and stems (so the forms of one phrase
    count as one), with the strongest cue or definition that announced it; and how often each
    sequence of stems occurs."""
    found: dict[tuple[str, ...], _Candidate] = {}
    occurs: Counter[tuple[str, ...]] = Counter()

    def add(tokens: Sequence[_Token], prep: str = "", bonus: float = 1.0) -> None:
        stems = tuple(t.key for t in tokens if t.key is not None)
        candidate = found.setdefault((prep.lower(), *stems), _Candidate(len(found)))
        candidate.bonus = max(candidate.bonus, bonus)
        words = " ".join(t.surface for t in tokens)
        title = f"{prep} {words}" if prep else words
        candidate.surfaces[title[:1].upper() + title[1:]] += 1

    opening_skip = _STOPWORDS | _LEAD | _HEADING_MARKS
    for sentence in _SENTENCES.split(text):
        tokens = _tokens(sentence)
        starts = [t.at for t in tokens]
        for i, token in enumerate(tokens):
            if token.key is not None:
                for j in _phrase_ends(tokens, i, max_words):
                    add(tokens[i:j])
                    occurs[tuple(t.key for t in tokens[i:j] if t.key is not None)] += 1
        opening = _opening(tokens, opening_skip, _OPENING_SKIP, max_words)
        if opening:
            after = tokens[opening[1] :]
            if after and after[0].low in _COPULAS:
                add(tokens[opening[0] : opening[1]], bonus=_DEFINITION_BONUS)
            elif _is_heading(tokens[: opening[0]], after):
                # "Next, the bias-variance tradeoff." moves on to a subject: nearly a cue.
                moves_on = any(t.low in _TRANSITIONS for t in tokens[: opening[0]])
                bonus = _MOVE_ON_BONUS if moves_on else _HEADING_BONUS
                add(tokens[opening[0] : opening[1]], bonus=bonus)
        for cue, bonus in _CUES:
            for match in cue.finditer(sentence):
                # Only the words right after the cue can be its phrase; looking no further
                # keeps a long unpunctuated transcript (one "sentence") linear.
                k = bisect.bisect_left(starts, match.end())
                rest = tokens[k : k + _CUE_REACH]
                announced = _opening(rest, _LEAD, 2, max_words)
                if announced:
                    prep = match.groupdict().get("prep") or ""
                    add(rest[announced[0] : announced[1]], prep, bonus)
    return found, occurs


def _is_heading(before: Sequence[_Token], after: Sequence[_Token]) -> bool:
    """Whether a sentence's opening phrase, with these tokens before and after it, is all the
    sentence says: a mark such as "Right," or "the" before it (so "It works." is no heading),
    no preposition right before it ("Теперь о …" is a cue's), nothing but a full stop after."""
    return (
        any(t.low in _HEADING_MARKS for t in before)
        and not (before and before[-1].low in _GLUE)
        and all(_TOKEN_PUNCT.fullmatch(t.surface) and t.low != "?" for t in after)
    )


def _same_stem(a: str, b: str) -> bool:
    # The crude stems keep "forecast" and "forecasting" apart; a title of one after the other
    # would still read as a repeat.
    return a == b or (min(len(a), len(b)) >= 5 and (a.startswith(b) or b.startswith(a)))


def _repeats(stems: Sequence[str], taken: Sequence[Sequence[str]]) -> bool:
    """Whether every stem of a title already appears in one earlier title."""
    return any(all(any(_same_stem(s, t) for t in earlier) for s in stems) for earlier in taken)


def _score(
    stems: Sequence[str],
    bonus: float,
    occurs: int,
    tf: Counter[str],
    idf: dict[str, float],
) -> float:
    # Sublinear in the counts: a word said five times is not five times the title.
    weight = sum((1 + math.log(max(tf[s], 1))) * idf.get(s, 1.0) for s in set(stems))
    repeats = math.pow(max(occurs, 1), _REPEAT_WEIGHT)
    return weight * bonus * repeats / math.pow(len(stems), _LENGTH_DISCOUNT)


def section_titles(texts: Sequence[str], *, max_words: int = 4, max_chars: int = 60) -> list[str]:
    """A chapter title for each section's text, made of its own words: the phrase (content
    words, possibly joined by "of", "и" and the like) scoring highest by the TF-IDF of its words
    over the sections and by how often it recurs, several times higher when a cue ("our next
    topic is …", "поговорим о …"), a definition ("X is …", "X — это …") or a sentence of its own
    ("Now, the learning rate.") announces it. A title has at most `max_words` content words and
    `max_chars` characters and starts with a capital; it repeats no earlier section's title
    unless all the section's phrases do (then it is the best of them, for the caller to
    number); "" for a section with no such phrase. Deterministic: ties go to the earlier
    phrase."""
    max_words = max(1, max_words)
    found = [_candidates(text, max_words) for text in texts]
    counts = [Counter(key for key, _ in _words(text)) for text in texts]
    df = Counter(key for section in counts for key in section)
    idf = {key: math.log((1 + len(texts)) / (1 + n)) + 1.0 for key, n in df.items()}
    titles: list[str] = []
    taken: list[tuple[str, ...]] = []
    for (candidates, occurs), tf in zip(found, counts, strict=True):
        ranked = sorted(
            candidates.items(),
            key=lambda item: (
                -_score(item[0][1:], item[1].bonus, occurs[item[0][1:]], tf, idf),
                item[1].order,
            ),
        )
        fitting = [
            (tuple(stems), surface)
            for (_, *stems), candidate in ranked
            if len(surface := candidate.surfaces.most_common(1)[0][0]) <= max_chars
        ]
        if not fitting:
            titles.append("")
            continue
        # When every phrase repeats an earlier title the section goes on with that subject:
        # its best phrase again (numbered by the caller) says so better than "Part 3".
        stems, title = next((f for f in fitting if not _repeats(f[0], taken)), fitting[0])
        taken.append(stems)
        titles.append(title)
    return titles


def _ranked(counts: Counter[str], weight: dict[str, float], order: dict[str, int]) -> list[str]:
    return sorted(counts, key=lambda k: (-counts[k] * weight.get(k, 1.0), order[k]))


def simple_topics(
    transcript: Transcript,
    *,
    target_section_s: float = 600.0,
    min_section_s: float = 120.0,
    max_topics: int = 12,
    language: str | None = None,
    title_words: int = 4,
    max_title_chars: int = 60,
    max_themes: int = 6,
) -> Topics:
    """Topics without an LLM: about one section per `target_section_s` (at least 3 when the
    recording holds 3 of `min_section_s`, at most `max_topics`), cut at long pauses and titled
    by a phrase of their own (`section_titles`, at most `title_words` content words and
    `max_title_chars` characters); themes are the words with the highest TF-IDF summed over
    the whole recording."""
    lang = language or transcript.language
    duration = transcript_duration(transcript)
    segs = [s for s in transcript.segments if s.text.strip()]
    if not segs or duration <= 0:
        return Topics([], [], False, "the transcript has no speech", "simple")
    # Below 11 s a chapter could fall under YouTube's 10 s once times are rounded down.
    min_s = max(min_section_s, MIN_CHAPTER_S + 1)
    cuts = _cuts(
        transcript, duration, _section_count(duration, target_section_s, min_s, max_topics), min_s
    )
    sections: list[Counter[str]] = [Counter() for _ in cuts]
    by_section: list[list[Segment]] = [[] for _ in cuts]
    surfaces: dict[str, Counter[str]] = {}
    order: dict[str, int] = {}
    total: Counter[str] = Counter()
    for seg in segs:
        index = max(0, bisect.bisect_right(cuts, seg.start) - 1)
        by_section[index].append(seg)
        for key, surface in _words(seg.text):
            sections[index][key] += 1
            total[key] += 1
            surfaces.setdefault(key, Counter())[surface] += 1
            order.setdefault(key, len(order))
    docs = len(sections)
    df = Counter(key for section in sections for key in section)
    idf = {key: math.log((1 + docs) / (1 + n)) + 1.0 for key, n in df.items()}

    def shown(key: str) -> str:
        return surfaces[key].most_common(1)[0][0]

    texts = [" ".join(s.text.strip() for s in section) for section in by_section]
    part = _PART.get(lang_code(lang) or "", _PART["en"])
    titles = section_titles(texts, max_words=title_words, max_chars=max_title_chars)
    topics = [
        Topic(cut, title or f"{part} {i + 1}")
        for i, (cut, title) in enumerate(zip(cuts, titles, strict=True))
    ]
    topics = number_duplicates(topics)
    # Summed TF-IDF: frequent words, discounted when they are everywhere like filler is.
    ranked = _ranked(total, idf, order)
    frequent = [k for k in ranked if total[k] >= 2] or ranked
    themes = clean_themes([shown(k) for k in frequent[:max_themes]])
    ok, reason = chapters_check(topics, duration)
    return Topics(themes, topics, ok, reason, "simple")
