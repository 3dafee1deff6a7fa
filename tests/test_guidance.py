"""Guidance from a situation: the offers, how to get in, and the SMS form that fits two segments."""

from __future__ import annotations

import pytest

from indgang.dialogue import Reply
from indgang.guidance import OFFERS_SHOWN, Situation, guide
from indgang.i18n import t
from indgang.offer_cards import short_title
from indgang.search import get_offer_search
from indgang.settings import Settings
from indgang.sms.compose import compose, measure

SITUATIONS = [
    Situation(text="Min søn på 17 har autisme og kommer ikke i skolen", relation="child", age=17),
    Situation(text="min mand drikker hver dag, hvor kan han få behandling", relation="partner"),
    Situation(text="jeg har ingen steder at bo og sover på gaden"),
    Situation(text="my daughter has an eating disorder", language="en", relation="child"),
]


@pytest.mark.parametrize("situation", SITUATIONS, ids=lambda s: s.text[:30])
def test_the_sms_answer_fits_two_segments_and_names_every_offer(
    situation: Situation, catalogue_settings: Settings
) -> None:
    brief = Situation(**{**situation.__dict__, "brief": True})
    guidance = guide(get_offer_search(catalogue_settings), brief)
    assert 1 <= len(guidance.offers) <= OFFERS_SHOWN
    sms = compose([Reply(text=guidance.text, offers=guidance.offers)], brief.language).text
    measured = measure(sms)
    assert measured.encoding == "GSM-7" and measured.segments <= 2, sms
    assert all(short_title(o.title).replace("–", "-") in sms for o in guidance.offers), sms


def test_a_relative_hears_about_consent_on_both_channels(catalogue_settings: Settings) -> None:
    for brief in (False, True):
        situation = Situation(text="min mand drikker hver dag", relation="partner", brief=brief)
        text = guide(get_offer_search(catalogue_settings), situation).text
        key = "bot.guidance.brief.relative_consent" if brief else "bot.guidance.relative_consent"
        assert t(key, "da") in text


def test_the_web_answer_explains_how_to_get_in(catalogue_settings: Settings) -> None:
    guidance = guide(
        get_offer_search(catalogue_settings), Situation(text="jeg vil gerne stoppe med at drikke")
    )
    accesses = {o.access for o in guidance.offers}
    assert accesses and all(t(f"bot.guidance.access.{a}", "da") in guidance.text for a in accesses)


def test_short_titles_keep_the_name_before_the_dash() -> None:
    assert short_title("PPR – Pædagogisk Psykologisk Rådgivning") == "PPR"
    assert short_title("Bedre Psykiatri - for pårørende") == "Bedre Psykiatri"
    assert short_title("Alkolinjen") == "Alkolinjen"


@pytest.mark.parametrize(
    "situation",
    [
        Situation(text="min mor på 82 er begyndt at glemme ting og falder tit, jeg bor langt væk", age=82),
        Situation(text="min mor er begyndt at glemme ting og falder tit", relation="parent"),
    ],
    ids=["age", "relation"],
)
def test_an_old_mother_who_falls_gets_no_offer_about_a_child_at_risk(
    situation: Situation, catalogue_settings: Settings
) -> None:
    """A parent or a partner is an adult: offers about a child at risk are not for them."""
    types = [o.type for o in guide(get_offer_search(catalogue_settings), situation).offers]
    assert "bekymring_barn" not in types and {"paaroerendestoette", "hjaelpemidler"} & set(types), types


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("min mor drikker og jeg ved ikke hvad jeg skal gøre", "adult"),
        ("En elev i 3. klasse kommer uden madpakke, og mor sover hele dagen", None),
        ("my boy keeps crying because his dad drinks every night", None),
    ],
)
def test_a_parent_named_beside_a_child_does_not_narrow_the_help(text: str, expected: str | None) -> None:
    # The parent may be the cause; the child is whom the help is for.
    assert Situation(text=text, relation="parent").audience == expected


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("Min datter på 16 har autisme. Hvor kan hun bo, når hun fylder 18 og vil flytte hjemmefra?", 16),
        ("our son is 17 and has cerebral palsy, where can he live once he is an adult?", 17),
    ],
)
def test_a_teenagers_life_as_an_adult_is_asked_about_with_the_adult_offers(
    text: str, age: int, catalogue_settings: Settings
) -> None:
    """Their age now would keep the help to children's; the question is about the years after."""
    situation = Situation(text=text, age=age, relation="child")
    assert situation.audience is None
    types = [o.type for o in guide(get_offer_search(catalogue_settings), situation).offers]
    assert types[0] in {"laengerevarende_botilbud", "midlertidigt_botilbud", "bostoette"}, types
    assert (
        Situation(text="min søn på 17 vil ikke i skole og sidder på sit værelse", age=17).audience == "child"
    )


def test_a_professional_worried_about_a_pupil_and_the_mother_gets_the_child_concern_offer(
    catalogue_settings: Settings,
) -> None:
    situation = Situation(
        text="En elev i 2. klasse er ofte sulten og beskidt, og mor sover hele dagen. Hvad gør jeg?",
        relation="parent",
    )
    assert "bekymring_barn" in [o.type for o in guide(get_offer_search(catalogue_settings), situation).offers]
