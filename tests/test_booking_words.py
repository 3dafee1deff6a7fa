"""Times, phone numbers and asking for a booking in a citizen's own words."""

from __future__ import annotations

from datetime import date, time

import pytest
from booking_helpers import MONDAY

from indgang.booking.calendar import TimeWish
from indgang.booking.tovholdere import Directory, MeetingKind
from indgang.booking.when import parse_wish
from indgang.booking.words import asks_to_book
from indgang.phone import normalise_phone, phone_hash
from indgang.settings import Settings

TUESDAY, WEDNESDAY, FRIDAY = date(2031, 3, 4), date(2031, 3, 5), date(2031, 3, 7)


@pytest.mark.parametrize(
    ("text", "wish"),
    [
        ("tirsdag eftermiddag", TimeWish(day=TUESDAY, earliest=time(12), latest=time(17))),
        ("i morgen kl 10", TimeWish(day=TUESDAY, exact=time(10))),
        ("I morgen kl. 10.30", TimeWish(day=TUESDAY, exact=time(10, 30))),
        ("på fredag kl 9", TimeWish(day=FRIDAY, exact=time(9))),
        ("i overmorgen", TimeWish(day=WEDNESDAY)),
        ("om formiddagen på onsdag", TimeWish(day=WEDNESDAY, earliest=time(8), latest=time(12))),
        ("næste mandag", TimeWish(day=date(2031, 3, 10))),
        ("den 5.3 kl 13", TimeWish(day=WEDNESDAY, exact=time(13))),
        ("7/3", TimeWish(day=FRIDAY)),
        ("5. marts", TimeWish(day=WEDNESDAY)),
        ("kl 14", TimeWish(exact=time(14))),
        ("tomorrow at 2pm", TimeWish(day=TUESDAY, exact=time(14))),
        ("Wednesday morning", TimeWish(day=WEDNESDAY, earliest=time(7), latest=time(12))),
    ],
)
def test_times_in_words(text: str, wish: TimeWish) -> None:
    assert parse_wish(text, MONDAY) == wish


@pytest.mark.parametrize("text", ["2", "Mette", "det ved jeg ikke", "ja", "hjælp til bolig"])
def test_words_without_a_time_are_not_a_time(text: str) -> None:
    assert parse_wish(text, MONDAY) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20 12 34 56", "+4520123456"),
        ("+45 2012 3456", "+4520123456"),
        ("0045-20123456", "+4520123456"),
        ("+46 70 123 45 67", "+46701234567"),
        ("1234", None),
        ("12345678", None),
        ("ring til mig", None),
    ],
)
def test_phone_numbers_are_validated_and_normalised(text: str, expected: str | None) -> None:
    assert normalise_phone(text) == expected


def test_a_phone_is_remembered_only_as_a_keyed_hash() -> None:
    hashed = phone_hash("+4520123456", "key-1")
    assert "20123456" not in hashed and len(hashed) == 64
    assert hashed != phone_hash("+4520123456", "key-2")


def test_the_default_directory_covers_the_teams_and_picks_by_need(base_settings: Settings) -> None:
    from indgang.booking.tovholdere import load_directory

    directory: Directory = load_directory(base_settings.tovholdere_file)
    teams = {t.team for t in directory.tovholdere}
    assert {"Socialpsykiatri", "Udsatte voksne", "Handicap", "Børn og familie"} <= teams
    assert [t.id for t in directory.candidates({"alkoholbehandling"})] == ["amina"]
    assert {t.id for t in directory.candidates({"familiebehandling"}, kind=MeetingKind.MEETING)} == {"sofie"}
    # Nobody covers an unknown need or municipality: everyone is a candidate, never no one.
    assert len(directory.candidates({"unknown"}, municipality="Aarhus")) == len(directory.tovholdere)


@pytest.mark.parametrize(
    "text",
    [
        "ja tak book mig",
        "JA BOOK",
        "Ja tak, kan jeg få en tid",
        "kan jeg faa en ny tid hos jer",
        "jo tak, bestil en samtale til min far",
        "ok, reserver en tid til mig og min mor",
        "ja gerne et møde med en tovholder",
        "ja tak. en telefontid",
        "yes please, I'd like an appointment",
        "yes, schedule a call",
        "Jeg vil have møde med en person som hjælper os med det hele.",
        "Jeg vil gerne aftale et møde med en person, der kan samle trådene",
        "can I get a meeting with someone who knows both things",
        "kan jeg møde en person fra kommune som hjælper mig med alt",
    ],
)
def test_booking_words(text: str) -> None:
    assert asks_to_book(text)


@pytest.mark.parametrize(
    "text",
    [
        "ja tak",
        "ja det vil jeg gerne",
        "jeg har ikke tid til at passe min mor",
        "jeg har brug for tid for mig selv",
        "hvad er en tovholder",
        "jeg har et møde på jobcentret i morgen",
        "det tager tid",
        "facebook",
        "I have no time for myself",
        "jeg skal have møde med lægen i morgen",
        "I have a meeting with my caseworker tomorrow",
        "kan jeg bare møde op?",
    ],
)
def test_no_booking_words(text: str) -> None:
    assert not asks_to_book(text)
