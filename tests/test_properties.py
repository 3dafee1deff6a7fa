"""Properties that must hold for any input, checked with hypothesis (derandomized, so CI is stable):
the safety check's text normalisation, the SMS composer's GSM 03.38 arithmetic, and the reading of
a time in a citizen's own words."""

from __future__ import annotations

import json
import math
import unicodedata
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from indgang.booking.when import RELATIVE_DAYS, WEEKDAYS, parse_wish
from indgang.dialogue import Button, Reply
from indgang.safety.normalise import clean
from indgang.sms.compose import GSM_CODEC, MAX_BODY_CHARS, compose, for_sms, measure, plain

PROPERTY = settings(
    max_examples=300, derandomize=True, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip

# Any string Python can hold, lone surrogates (a broken client's JSON) included.
any_text = st.text() | st.lists(st.integers(0, 0x10FFFF), max_size=40).map(
    lambda points: "".join(map(chr, points))
)
# Text as people type it: letters with combining marks, format characters, odd spaces, Cyrillic.
tricky_text = st.text(
    st.sampled_from(
        [*"abcdeåæøselvmord .\n", "\u0301", "\u0308", "\u200b", "\u200d", "\u00ad",
        "\u202e", "\u00a0", "\u2028", "\u0435", "\u0430", "\ufb01", "\uff41", "\u1e9b", "\u0323"]
    ),
    max_size=30,
)  # fmt: skip


# --- the safety check's normalisation ---


@PROPERTY
@given(any_text | tricky_text)
def test_normalisation_never_raises_and_is_storable(text: str) -> None:
    cleaned = clean(text)
    cleaned.encode("utf-8")  # storable in Redis: no lone surrogate left
    assert json.loads(json.dumps(cleaned)) == cleaned


@PROPERTY
@given(any_text | tricky_text)
@example("E\u200d\u0323")  # found by hypothesis: the mark composed only on the second pass
def test_normalisation_is_idempotent(text: str) -> None:
    once = clean(text)
    assert clean(once) == once


@PROPERTY
@given(any_text | tricky_text)
def test_normalisation_leaves_no_format_characters(text: str) -> None:
    # a zero-width or bidi character left inside a word would hide the word from the check
    assert not [c for c in clean(text) if unicodedata.category(c) == "Cf"]


# --- the SMS composer (GSM 03.38) ---

GSM_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"  # noqa: E501
GSM_EXTENDED = "^{}\\[~]|€"  # two septets each (an escape and the character)
gsm_text = st.text(st.sampled_from(GSM_BASIC + GSM_EXTENDED), max_size=400)


def _is_gsm(text: str) -> bool:
    try:
        text.encode(GSM_CODEC)
    except UnicodeEncodeError:
        return False
    return True


@PROPERTY
@given(gsm_text)
def test_gsm_text_is_measured_in_septets(text: str) -> None:
    sms = measure(text)
    assert sms.encoding == "GSM-7"
    assert sms.units == len(text) + sum(c in GSM_EXTENDED for c in text)
    _segments_agree(sms.units, sms.segments, single=160, per_segment=153)


@PROPERTY
@given(gsm_text, st.characters(exclude_categories=["Cs"]).filter(lambda c: not _is_gsm(c)), st.data())
def test_one_character_outside_gsm_makes_it_ucs2(text: str, other: str, data: st.DataObject) -> None:
    at = data.draw(st.integers(0, len(text)))
    sms = measure(text[:at] + other + text[at:])
    assert sms.encoding == "UCS-2"
    assert sms.units == len((text[:at] + other + text[at:]).encode("utf-16-le")) // 2
    _segments_agree(sms.units, sms.segments, single=70, per_segment=67)


def _segments_agree(units: int, segments: int, single: int, per_segment: int) -> None:
    """GSM 03.38 with concatenation: one segment up to `single` units, else `per_segment` each;
    an escape or surrogate pair is never split, so a segment may carry one unit less."""
    if units == 0:
        assert segments == 0
    elif units <= single:
        assert segments == 1
    else:
        assert math.ceil(units / per_segment) <= segments <= math.ceil(units / (per_segment - 1))


@PROPERTY
@given(any_text | gsm_text.map(lambda t: t * 8))
def test_sms_bodies_keep_every_character_within_the_limit(text: str) -> None:
    bodies = for_sms(text)
    assert all(0 < len(body.text) <= MAX_BODY_CHARS for body in bodies)
    # nothing lost: the same characters in the same order, only the whitespace between may change
    sent = "".join("".join(body.text.split()) for body in bodies)
    assert sent == "".join(plain(text).split())


one_line = st.text(st.characters(exclude_categories=["Cc", "Zl", "Zp"]), max_size=20).filter(str.strip)
replies = st.lists(
    st.builds(
        Reply,
        text=st.text(st.sampled_from(GSM_BASIC + "–“”…•\u00a0"), max_size=300),
        buttons=st.lists(
            st.builds(Button, title=one_line, payload=st.text(max_size=10)),
            max_size=4,
        ),
        crisis=st.booleans(),
    ),
    min_size=1,
    max_size=4,
)


@PROPERTY
@given(replies, st.sampled_from(["da", "en"]))
def test_a_composed_turn_puts_the_emergency_first_and_numbers_every_choice(
    turn: list[Reply], language: str
) -> None:
    composed = compose(turn, language)
    assert composed.crisis == any(r.crisis for r in turn)
    assert len({b.payload for b in composed.choices}) == len(composed.choices)
    assert {b.payload for b in composed.choices} == {b.payload for r in turn for b in r.buttons}
    for number, button in enumerate(composed.choices, start=1):
        assert f"{number}) {plain(button.title)}" in composed.text
    assert plain(composed.text) == composed.text  # typographic characters already swapped
    crisis_texts = [plain(r.text) for r in turn if r.crisis and plain(r.text)]
    if crisis_texts:
        assert composed.text.startswith(crisis_texts[0].splitlines()[0])


# --- a time in a citizen's own words ---

NOW = datetime(2026, 11, 30, 9, 30, tzinfo=ZoneInfo("Europe/Copenhagen"))


@PROPERTY
@given(any_text | st.lists(st.sampled_from([*"0123456789/.: ", "kl", "den", "maj", "morgen"])).map("".join))
def test_reading_a_time_never_raises(text: str) -> None:
    wish = parse_wish(text, NOW)
    assert wish is None or wish.day or wish.exact or wish.earliest


@PROPERTY
@given(
    st.sampled_from(sorted(RELATIVE_DAYS) + sorted(WEEKDAYS)),
    st.sampled_from(["", "på ", "næste ", "gerne "]),
    st.sampled_from(["", " kl 10", " eftermiddag", " 14:30"]),
)
def test_a_relative_day_or_weekday_is_within_the_coming_two_weeks(day: str, before: str, after: str) -> None:
    wish = parse_wish(f"{before}{day}{after}", NOW)
    assert wish is not None and wish.day is not None
    assert NOW.date() <= wish.day <= NOW.date() + timedelta(days=14)


@PROPERTY
@given(st.dates(min_value=date(2026, 12, 1), max_value=date(2027, 11, 29)), st.sampled_from(["/", "."]))
def test_a_day_and_month_is_read_as_the_next_such_date(when: date, separator: str) -> None:
    wish = parse_wish(f"den {when.day}{separator}{when.month}", NOW)
    assert wish is not None and wish.day == when  # never a date in the past, never beyond a year
