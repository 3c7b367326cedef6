"""Offline chapter titles (`section_titles`, `simple_topics`): short noun phrases taken from
each section's own sentences, on the shipped sample and on scripted English and Russian
lectures, plus the rules every title keeps whatever the text."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leap.text.topics.offline import section_titles, simple_topics
from leap.text.transcript import Segment, Transcript

ROOT = Path(__file__).resolve().parent.parent

# What the bundled tiny.en model hears in samples/lecture-sample.mp4 (recognition slips kept:
# "travel by Earth", "Ice cream sails right", "A forecast-tridic future male").
SAMPLE_TRANSCRIPT = """\
5.78 8.96 Welcome to this short lecture on time series.
9.56 11.34 Our first topic is the trend.
11.76 16.32 A trend is the slow, long-term movement of a series over many years.
16.6 21.86 For example, the number of people who travel by Earth has grown steadily for decades.
22.4 27.74 To see a trend, we often smooth the data with a moving average, which removes the short
27.74 31.54 ups and downs and leaves the general direction.
33.66 36.3 The second topic is seasonality.
36.58 42.16 Seasonality is a pattern that repeats over a fixed period, such an every week or every
42.16 42.72 year.
43.02 48.54 Ice cream sails right every summer, and the demand for electricity peaks every winter.
49.02 53.9 We can measure the seasonal effect by comparing each month with the yearly average, and
53.91 57.21 then remove it to study what is left.
59.19 61.07 Our final topic is forecasting.
61.71 65.57 A forecast-tridic future male used from the patterns of the past.
66.13 71.83 Simple methods, like exponential smoothing, give more weight to recent observations than
71.83 72.69 told ones.
73.03 78.31 Every forecast should come with an interval that shows its uncertainty, because the future
78.31 79.41 is never certain.
79.85 81.13 Thank you for listening.
"""  # noqa: E501

HASH_TABLES = """\
Good morning everyone. Today we are going to talk about hash tables, one of the most useful data structures in practice. You have all used them, even if you did not know it: a Python dictionary is a hash table. The idea is simple. We want to store pairs of keys and values and find a value by its key in constant time on average.

So how does it work? A hash function turns a key into a number, and that number, taken modulo the size of the array, tells us which bucket to use. A good hash function spreads the keys evenly over the buckets. If it does not, many keys end up in the same bucket and lookups become slow. Designing a good hash function for strings is harder than it looks.

Now, what happens when two keys land in the same bucket? This is called a collision, and collisions are unavoidable. There are two classic ways to handle them. With separate chaining, every bucket holds a small linked list of entries. With open addressing, we probe the next free slot in the array instead, for example with linear probing. Linear probing is friendly to the cache, but it suffers from clustering.

Finally, let us talk about resizing. As the table fills up, collisions become more frequent. The load factor is the number of entries divided by the number of buckets. When the load factor goes above a threshold, say three quarters, we allocate a bigger array and rehash every entry. Resizing is expensive, but it happens rarely, so the amortized cost of an insertion stays constant. That is all for today, next time we will look at balanced trees.
"""  # noqa: E501

GRADIENT_DESCENT_RU = """\
Добрый день. Сегодня мы разберём градиентный спуск — основной метод обучения нейронных сетей. Задача такая: у нас есть функция потерь, которая зависит от параметров модели, и мы хотим найти параметры, при которых потери минимальны. Аналитически это сделать почти никогда не получается, поэтому мы ищем минимум шаг за шагом.

Идея градиента очень простая. Градиент функции показывает направление самого быстрого роста. Значит, если сделать небольшой шаг в противоположную сторону, значение функции уменьшится. Величину этого шага задаёт скорость обучения. Если скорость обучения слишком маленькая, обучение идёт очень долго. Если слишком большая, алгоритм перепрыгивает минимум и может вообще разойтись.

Теперь о стохастическом градиентном спуске. Считать градиент по всей обучающей выборке дорого, особенно когда примеров миллионы. Поэтому на каждом шаге мы берём небольшой случайный пакет примеров, так называемый мини-батч, и считаем градиент только по нему. Оценка получается шумной, но шагов можно сделать гораздо больше, а шум иногда даже помогает выбраться из плохого локального минимума.

Последняя тема сегодняшней лекции — адаптивные методы оптимизации. Метод моментов накапливает скорость и сглаживает колебания. Алгоритм Adam подбирает свой шаг для каждого параметра, используя оценки первого и второго моментов градиента. На практике Adam часто сходится быстрее, но обычный стохастический спуск с хорошо подобранным расписанием скорости обучения иногда даёт лучшее обобщение. На этом всё, спасибо за внимание.
"""  # noqa: E501

# Spoken without announcing its subjects: the titles come from headings, definitions and
# recurring phrases.
OPTIMIZERS = """\
Okay, so, um, let's get started. Last week we ended with the gradient, and I promised you we would see why it matters. So imagine you are standing on a hill in the fog and you want to get down. You feel the slope under your feet and you take a step downhill. That's basically gradient descent. The slope is the gradient, the step size is the learning rate.

Right, the learning rate. If it's too small you'll be walking forever. If it's too big you overshoot the valley and bounce around, maybe even diverge. In practice people use a learning rate schedule, so the step size starts big and then decays. Warmup is another trick, where the learning rate grows for the first few thousand steps.

Now the data. Computing the gradient over the entire data set is way too expensive when you have millions of images. So we take a mini batch, say two hundred fifty six images, compute the gradient on that, and update the weights. The mini batch gradient is noisy, but the noise is fine, it even helps generalization a little.

Questions? Yes, in the back. Good question, what about momentum? Momentum keeps a running average of the past gradients, like a heavy ball rolling down the hill. Adam combines momentum with a per parameter step size. Honestly, for most of your homework Adam with default settings will work fine. Okay, see you on Thursday.
"""  # noqa: E501

STATISTICS_RU = """\
Так, ну что, начинаем. В прошлый раз мы остановились на том, что у нас есть выборка, и мы хотим по ней что-то сказать про всю генеральную совокупность. Вот, и первое, что обычно считают, это среднее. Выборочное среднее — это сумма всех наблюдений, делённая на их количество. Оно несмещённое, то есть в среднем попадает в истинное значение.

Хорошо, а насколько мы ему доверяем? Для этого нужна дисперсия. Выборочная дисперсия показывает разброс наблюдений вокруг среднего. Обратите внимание, что делим мы не на эн, а на эн минус один, это поправка Бесселя. Если делить на эн, оценка дисперсии получается смещённой вниз.

Дальше доверительный интервал. Мы берём выборочное среднее и откладываем в обе стороны примерно две стандартные ошибки. Стандартная ошибка — это корень из дисперсии, делённый на корень из размера выборки. Чем больше выборка, тем уже интервал, и это, в общем, интуитивно понятно.

И последнее на сегодня — проверка гипотез. Формулируем нулевую гипотезу, например, что среднее равно нулю. Считаем статистику и смотрим, насколько она необычна, если гипотеза верна. Если p-значение маленькое, гипотезу отвергаем. Только не путайте: большое p-значение не доказывает, что гипотеза верна. Всё, на сегодня хватит.
"""  # noqa: E501


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in text.strip().split("\n\n")]


def spoken(text: str, language: str) -> Transcript:
    """A transcript of a script: a segment per sentence at 0.4 s a word, half a second
    between sentences and two more between paragraphs."""
    segs: list[Segment] = []
    t = 0.0
    for para in paragraphs(text):
        for sentence in re.split(r"(?<=[.!?])\s+", para):
            length = 0.4 * len(sentence.split())
            segs.append(Segment(round(t, 2), round(t + length, 2), sentence))
            t += length + 0.5
        t += 2.0
    return Transcript(language, round(t, 2), tuple(segs))


def sample_script() -> list[str]:
    readme = (ROOT / "samples" / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Script\n.*?^```text\n(?P<body>.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert m is not None
    return paragraphs(m.group("body"))


def assert_titles_read_as_titles(titles: Sequence[str], max_chars: int = 60) -> None:
    for title in titles:
        assert 0 < len(title) <= max_chars, title
        assert title[0].isupper(), title
        assert "," not in title, title  # a phrase, not a keyword list
        assert re.search(r"[\w]$", title), title  # no trailing punctuation
    assert len({t.casefold() for t in titles}) == len(titles)


# ---------------------------------------------------------------------------------------------
# Lectures: the sample, and scripts in English and Russian


def test_titles_of_the_shipped_sample_script() -> None:
    titles = section_titles(sample_script())
    assert titles == ["Trend", "Seasonality", "Forecasting"]


def test_titles_of_the_shipped_sample_as_transcribed() -> None:
    # The local chain's settings (tests/test_local_chain.py): four sections of about 25 s.
    rows = (line.split(" ", 2) for line in SAMPLE_TRANSCRIPT.splitlines())
    segments = tuple(Segment(float(a), float(b), text) for a, b, text in rows)
    result = simple_topics(Transcript("en", 88.0, segments), target_section_s=25, min_section_s=15)
    assert [t.title for t in result.topics] == [
        "Trend",
        "Seasonality",
        "Forecasting",
        "Exponential smoothing",  # was "Simple, methods, exponential"
    ]
    assert result.chapters_ok


@pytest.mark.parametrize(
    ("script", "language", "titles"),
    [
        (HASH_TABLES, "en", ["Hash tables", "Hash function", "Linear probing", "Resizing"]),
        (
            GRADIENT_DESCENT_RU,
            "ru",
            [
                "Градиентный спуск",
                "О стохастическом градиентном спуске",
                "Адаптивные методы оптимизации",
            ],
        ),
        (OPTIMIZERS, "en", ["Slope", "Learning rate", "Data", "Momentum"]),
        (
            STATISTICS_RU,
            "ru",
            ["Выборочное среднее", "Доверительный интервал", "Проверка гипотез"],
        ),
    ],
)
def test_titles_of_scripted_lectures(script: str, language: str, titles: list[str]) -> None:
    tr = spoken(script, language)
    result = simple_topics(tr, target_section_s=30, min_section_s=15)
    assert [t.title for t in result.topics] == titles
    assert result.chapters_ok
    assert_titles_read_as_titles(titles)


@pytest.mark.parametrize(
    ("script", "titles"),
    [
        (HASH_TABLES, ["Hash tables", "Hash function", "Linear probing", "Resizing"]),
        (
            GRADIENT_DESCENT_RU,
            [
                "Градиентный спуск",
                "Скорость обучения",
                "О стохастическом градиентном спуске",
                "Адаптивные методы оптимизации",
            ],
        ),
        (OPTIMIZERS, ["Slope", "Learning rate", "Data", "Momentum"]),
        (
            STATISTICS_RU,
            ["Выборочное среднее", "Дисперсия", "Доверительный интервал", "Проверка гипотез"],
        ),
    ],
)
def test_titles_of_scripted_paragraphs(script: str, titles: list[str]) -> None:
    assert section_titles(paragraphs(script)) == titles


def test_titles_are_deterministic() -> None:
    texts = paragraphs(HASH_TABLES) + paragraphs(STATISTICS_RU)
    assert section_titles(texts) == section_titles(list(texts))


# ---------------------------------------------------------------------------------------------
# One sentence at a time: what announces a title


@pytest.mark.parametrize(
    ("text", "title"),
    [
        # cues
        ("Our first topic is the trend.", "Trend"),
        ("The subject for today is hash tables.", "Hash tables"),
        (
            "Today we are going to talk about hash tables, one of the most useful ones.",
            "Hash tables",
        ),
        ("Let us talk a little more about the bias-variance tradeoff.", "Bias-variance tradeoff"),
        ("Let us move on to linear probing.", "Linear probing"),
        ("Now we turn to the central limit theorem.", "Central limit theorem"),
        ("Next we discuss open addressing.", "Open addressing"),
        ("This is called a collision.", "Collision"),
        ("A tree without cycles is known as a forest.", "Forest"),
        ("Now let us look at the correlogram of the residuals.", "Correlogram of the residuals"),
        ("The last thing for today: regularization.", "Regularization"),
        ("Сегодня мы разберём градиентный спуск.", "Градиентный спуск"),
        ("Теперь о стохастическом градиентном спуске.", "О стохастическом градиентном спуске"),
        ("Давайте поговорим про регуляризацию.", "Про регуляризацию"),
        ("Последняя тема — адаптивные методы оптимизации.", "Адаптивные методы оптимизации"),
        ("Тема лекции: линейная регрессия.", "Линейная регрессия"),
        ("И последнее на сегодня — проверка гипотез.", "Проверка гипотез"),
        ("Следующий шаг: нормализация данных.", "Нормализация данных"),
        ("Такой пакет называется мини-батч.", "Мини-батч"),
        # definitions
        ("A trend is the slow movement of a series.", "Trend"),
        ("So, the load factor is the number of entries per bucket.", "Load factor"),
        ("Градиент — это направление роста.", "Градиент"),
        ("Выборочное среднее — это сумма, делённая на количество.", "Выборочное среднее"),
        # spoken headings
        ("Right, the learning rate.", "Learning rate"),
        ("That's basically gradient descent.", "Gradient descent"),
        ("Next, the bias-variance tradeoff.", "Bias-variance tradeoff"),
        ("Finally: regularization.", "Regularization"),
        ("Дальше доверительный интервал.", "Доверительный интервал"),
        ("Итак, регрессия.", "Регрессия"),
        # phrases: glue words join, acronyms keep their capitals, recurring phrases win
        ("We need the size of the array, and the size of the array grows.", "Size of the array"),
        ("The ARIMA model is a classic. Models fit data.", "ARIMA model"),
        ("Ключи и значения хранятся вместе, ключи и значения.", "Ключи и значения"),
        ("Questions? Momentum keeps a running average. Momentum helps.", "Momentum"),
        # nothing a title could be
        ("Thank you for listening.", ""),
        ("Спасибо за внимание.", ""),
        ("Okay, so that is it. Thanks.", ""),
        ("и вот так это", ""),
        ("", ""),
    ],
)
def test_title_of_one_section(text: str, title: str) -> None:
    assert section_titles([text]) == [title]


@pytest.mark.parametrize(
    ("text", "title"),
    [
        # a heading is a statement: a question only asks
        ("Now, questions. Momentum and velocity.", "Questions"),
        ("Now, questions? Momentum and velocity.", "Momentum and velocity"),
        # a heading has a mark before it, or "It works." would be one
        ("It works. The momentum.", "Momentum"),
        ("It works. Momentum.", "Works"),
    ],
)
def test_what_makes_a_heading(text: str, title: str) -> None:
    assert section_titles([text]) == [title]


def test_vague_and_lecture_words_stay_out_of_titles() -> None:
    texts = [
        "Simple methods, like exponential smoothing, give weight to recent observations.",
        "Our next lecture topic is the main example.",  # all of it is talk about the lecture
    ]
    assert section_titles(texts) == ["Exponential smoothing", ""]


# ---------------------------------------------------------------------------------------------
# Knobs, repeats and the rules every title keeps


def test_max_words_shortens_a_title() -> None:
    text = "Our topic is the central limit theorem of probability."
    assert section_titles([text]) == ["Central limit theorem of probability"]
    assert section_titles([text], max_words=2) == ["Central limit"]
    assert section_titles([text], max_words=0) == ["Central"]  # at least one word


def test_max_chars_passes_over_a_long_phrase() -> None:
    text = "Our topic is heteroskedasticity-consistent covariance estimation. Covariance."
    assert section_titles([text]) == ["Heteroskedasticity-consistent covariance estimation"]
    assert section_titles([text], max_chars=20) == ["Covariance"]
    assert section_titles([text], max_chars=5) == [""]


def test_a_later_section_does_not_repeat_an_earlier_title() -> None:
    texts = [
        "Our topic is the trend. The trend.",
        "Our topic is trends again. Trends and moving averages.",
        "Today we talk about forecasting. Forecast intervals.",
        "Our topic is the forecast. Forecast errors.",
    ]
    # "Trends" and "Forecast" would repeat "Trend" and "Forecasting"
    assert section_titles(texts) == [
        "Trend",
        "Trends and moving averages",
        "Forecasting",
        "Forecast errors",
    ]


def test_a_section_with_nothing_new_repeats_its_best_phrase() -> None:
    # simple_topics numbers the repeat: "Lakes (2)" says the lakes go on.
    assert section_titles(["Lakes. Lakes.", "Lakes. Lakes."]) == ["Lakes", "Lakes"]
    tr = Transcript(
        "en",
        900.0,
        tuple(Segment(float(t), t + 4.0, "Lakes and rivers.") for t in range(0, 900, 5)),
    )
    titles = [t.title for t in simple_topics(tr, target_section_s=300).topics]
    assert titles == ["Lakes and rivers", "Lakes and rivers (2)", "Lakes and rivers (3)"]


def test_simple_topics_title_knobs() -> None:
    tr = spoken(HASH_TABLES, "en")
    result = simple_topics(tr, target_section_s=30, min_section_s=15, title_words=1)
    assert [t.title for t in result.topics] == ["Hash", "Function", "Collision", "Resizing"]
    result = simple_topics(tr, target_section_s=30, min_section_s=15, max_title_chars=8)
    assert all(len(t.title) <= 8 for t in result.topics)


WORDS = st.sampled_from(
    str.split(
        "the a of and is trend seasonality Forecasting ARIMA model models hash table tables "
        "collision our topic next talk about called — : , . ? ! Градиент градиентный спуск это "
        "тема о теперь и разберём модели модель данные data 42 x-ray мини-батч"
    )
)


@given(st.lists(st.lists(WORDS, max_size=40).map(" ".join), max_size=6))
def test_every_title_keeps_the_rules(texts: list[str]) -> None:
    titles = section_titles(texts, max_chars=40)
    assert len(titles) == len(texts)
    for text, title in zip(texts, titles, strict=True):
        if not title:
            continue
        assert len(title) <= 40
        assert title[0] == title[0].upper()
        assert re.search(r"\w$", title)
        # its words, in its order: the section's own phrase
        words = title.split()
        rest = text.lower()
        for word in words:
            at = rest.find(word.lower())
            assert at >= 0, (title, text)
            rest = rest[at + len(word) :]


def test_a_long_unpunctuated_section_stays_linear() -> None:
    # One 45,000-word "sentence" full of cues: looking at everything after each cue made this
    # quadratic (minutes); only the words right after one can be its phrase.
    text = " ".join(["let us look at the data and talk about models"] * 5000)
    assert section_titles([text, "Other words entirely."])[0] == "Models"
