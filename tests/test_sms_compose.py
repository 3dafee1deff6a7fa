"""Composing for SMS: GSM-7 where the text allows, segments counted as handsets count them,
buttons as numbered choices, offers as short lines; and the keywords, however they are typed."""

from __future__ import annotations

import pytest

from indgang.dialogue import Button, OfferCard, Reply
from indgang.i18n import t
from indgang.sms import keywords
from indgang.sms.compose import (
    TARGET_SEGMENTS,
    choice_index,
    compose,
    fitting,
    for_sms,
    measure,
    numbered,
    plain,
    split,
)
from indgang.sms.keywords import Keyword

BUTTONS = [
    Button(title="Hjælp til mig selv", payload="Jeg har brug for hjælp til mig selv"),
    Button(title="Jeg er pårørende", payload="/relative"),
    Button(title="Tal med en medarbejder", payload="/request_human"),
]


def test_danish_letters_are_gsm7_and_one_septet_each() -> None:
    sms = measure("Hej Søren, æbler og åer. ÆØÅ é Ü ñ")
    assert (sms.encoding, sms.units, sms.segments) == ("GSM-7", 34, 1)


def test_escaped_characters_take_two_septets() -> None:
    assert measure("10 € [x]").units == 11  # €, [ and ] are escape + character


@pytest.mark.parametrize(
    ("length", "segments"), [(0, 0), (1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)]
)
def test_gsm7_segments(length: int, segments: int) -> None:
    assert measure("a" * length).segments == segments


@pytest.mark.parametrize(("length", "segments"), [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_ucs2_segments(length: int, segments: int) -> None:
    sms = measure("ç" * length)  # ç (small) is not in GSM-7: the SMS becomes UCS-2
    assert (sms.encoding, sms.segments) == ("UCS-2", segments)


def test_an_emoji_makes_ucs2_counts_two_units_and_is_never_split() -> None:
    sms = measure("a" * 66 + "😀")
    assert (sms.encoding, sms.units, sms.segments) == ("UCS-2", 68, 1)
    # 134 units would fill two segments of 67, but the pair cannot straddle them: three
    assert measure("a" * 66 + "😀" + "a" * 66).segments == 3


def test_an_escape_is_never_split_across_segments() -> None:
    assert measure("a" * 152 + "€" + "a" * 10).segments == 2  # 152 + 2 does not fit in 153
    assert measure("a" * 152 + "€" + "a" * 152).segments == 3  # 306 septets, yet three segments


def test_typographic_characters_become_plain_so_the_sms_stays_gsm7() -> None:
    text = "“Citat” – en ‘god’ idé… • punkt"
    assert measure(text).encoding == "UCS-2"
    assert plain(text) == "\"Citat\" - en 'god' idé... - punkt"
    assert measure(plain(text)).encoding == "GSM-7"


def test_long_text_is_split_between_paragraphs_into_bodies_of_at_most_1600() -> None:
    paragraphs = [f"Afsnit {i}. " + "ord " * 100 for i in range(6)]
    bodies = split("\n\n".join(paragraphs))
    assert len(bodies) == 2 and all(len(b) <= 1600 for b in bodies)
    assert all(b.startswith("Afsnit") for b in bodies)
    assert [s.text for s in for_sms("kort")] == ["kort"]


def test_buttons_become_numbered_choices() -> None:
    assert numbered(BUTTONS, "da").splitlines() == [
        "1) Hjælp til mig selv",
        "2) Jeg er pårørende",
        "3) Tal med en medarbejder",
        "Svar 1, 2 eller 3.",
    ]
    assert numbered(BUTTONS[:2], "en").endswith("Reply 1 or 2.")
    assert numbered(BUTTONS[:1], "da").endswith("Svar 1.")


@pytest.mark.parametrize(
    ("text", "index"), [("2", 1), (" 3. ", 2), ("1)", 0), ("4", None), ("0", None), ("2 tak", None)]
)
def test_a_numbered_reply_picks_a_choice(text: str, index: int | None) -> None:
    assert choice_index(text, 3) == index


def _offer(title: str, access: str, next_step: str | None = None) -> OfferCard:
    return OfferCard(id=title.lower(), type="x", title=title, access=access, next_step=next_step)


def test_a_turn_is_one_sms_with_the_emergency_reply_first_and_buttons_numbered_across_replies() -> None:
    replies = [
        Reply(text="Vil du tale med en?", buttons=BUTTONS[2:]),
        Reply(text="Ring 112 nu.", crisis=True),
        Reply(text="Eller:", buttons=BUTTONS[:1]),
    ]
    composed = compose(replies, "da")
    assert composed.crisis
    assert composed.text.startswith("Ring 112 nu.")
    assert [b.payload for b in composed.choices] == ["/request_human", "Jeg har brug for hjælp til mig selv"]
    assert composed.text.endswith("1) Tal med en medarbejder\n2) Hjælp til mig selv\nSvar 1 eller 2.")


def test_offers_the_text_does_not_name_get_one_line_each_with_the_next_step() -> None:
    reply = Reply(
        text="Det her kan måske hjælpe:\n• Jobstien (via henvisning)",
        offers=[_offer("Jobstien", "referral"), _offer("Headspace", "open", "Skriv eller ring til dem.")],
    )
    text = compose([reply], "da").text
    assert text.splitlines() == [
        "Det her kan måske hjælpe:",
        "- Jobstien (via henvisning)",
        "- Headspace: Skriv eller ring til dem.",
    ]
    assert measure(text).encoding == "GSM-7"


def test_offers_fall_back_to_title_and_access_when_next_steps_would_pass_two_segments() -> None:
    long_step = "Ring til rådgivningen på hverdage mellem ni og femten, eller skriv til dem på nettet."
    offers = [_offer(f"Tilbud {i}", "open", long_step) for i in range(4)]
    composed = compose([Reply(text="Det her kan måske hjælpe:", offers=offers)], "da")
    assert long_step not in composed.text
    assert "- Tilbud 3 (bare mød op)" in composed.text
    assert measure(composed.text).segments <= 2


@pytest.mark.parametrize(
    ("text", "keyword", "language"),
    [
        ("STOP", Keyword.STOP, None),
        (" stop! ", Keyword.STOP, None),
        ("Stopp", Keyword.STOP, "da"),
        ("start", Keyword.START, None),
        ("HJÆLP", Keyword.HELP, "da"),
        ("hjælp", Keyword.HELP, "da"),
        ("Hjaelp", Keyword.HELP, "da"),
        ("hjalp", Keyword.HELP, "da"),
        ("HJÄLP", Keyword.HELP, "da"),
        ("Help?", Keyword.HELP, "en"),
        ("SLET", Keyword.ERASE, "da"),
        ("slet.", Keyword.ERASE, "da"),
        ("Delete", Keyword.ERASE, "en"),
    ],
)
def test_keywords_in_any_case_and_with_or_without_accents(
    text: str, keyword: Keyword, language: str | None
) -> None:
    assert keywords.match(text) == (keyword, language)


@pytest.mark.parametrize("text", ["jeg har brug for hjælp", "stop med at skrive til ham", "", "2", "slettet"])
def test_a_keyword_counts_only_as_the_whole_message(text: str) -> None:
    assert keywords.match(text) is None


@pytest.mark.parametrize(
    ("text", "answer"),
    [("JA", True), ("ja!", True), ("Yes", True), ("nej", False), ("No.", False), ("måske", None)],
)
def test_the_erase_question_takes_yes_and_no(text: str, answer: bool | None) -> None:
    assert keywords.confirmation(text) is answer


def test_a_guidance_reply_with_three_offers_fits_two_gsm7_segments() -> None:
    """As `indgang.guidance` writes it: six UCS-2 segments as is (bullets, dashes), two composed."""
    lines = [
        t("bot.guidance.intro", "da"),
        "• Jobstien (via henvisning)",
        "• Headspace Aarhus (bare mød op)",
        "• Pårørenderådgivning (bare mød op)",
        t("bot.guidance.access.referral", "da"),
        t("bot.guidance.access.open", "da"),
        t("bot.guidance.example_note", "da"),
        t("bot.guidance.ask_municipality", "da"),
    ]
    shown = [("Jobstien", "referral"), ("Headspace Aarhus", "open"), ("Pårørenderådgivning", "open")]
    offers = [_offer(title, access) for title, access in shown]
    reply = Reply(text="\n".join(lines), offers=offers)
    assert measure(reply.text).segments > 4
    composed = measure(compose([reply], "da").text)
    assert (composed.encoding, composed.segments) == ("GSM-7", 2)
    for kept in ("- Headspace Aarhus (bare mød op)", t("bot.guidance.example_note", "da"), "Hvilken kommune"):
        assert kept in composed.text
    assert t("bot.guidance.access.open", "da") not in composed.text


def test_a_short_reply_keeps_its_access_explanation() -> None:
    text = "\n".join([t("bot.guidance.intro", "da"), "• Jobstien", t("bot.guidance.access.referral", "da")])
    composed = compose([Reply(text=text, offers=[_offer("Jobstien", "referral")])], "da")
    assert t("bot.guidance.access.referral", "da") in composed.text


def test_offer_lines_are_kept_to_what_fits_the_segment_budget_but_at_least_one() -> None:
    head = "Tak. Din besked er givet videre til en medarbejder. Du er nummer 2 i køen."
    lines = [f"• Tilbud nummer {n} med et langt navn (bare mød op: 70 20 30 4{n})" for n in range(6)]
    kept = fitting(head, lines)
    assert 1 < len(kept) < len(lines) and kept == lines[: len(kept)]
    assert measure(plain("\n".join([head, *kept]))).segments <= TARGET_SEGMENTS
    assert measure(plain("\n".join([head, *lines[: len(kept) + 1]]))).segments > TARGET_SEGMENTS
    assert fitting("x" * 400, lines) == lines[:1]
