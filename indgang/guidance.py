"""From a citizen's situation to an answer: the offers that fit, how to get in, and at most one
follow-up question when its answer would change the offers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from indgang.dialogue import OfferCard
from indgang.i18n import t
from indgang.insight import UNKNOWN_THEME
from indgang.offer_cards import offer_card, offer_line, offers_of_type
from indgang.search import OfferHit, OfferSearch

OFFERS_SHOWN = 3
RELATIVE_TYPES = frozenset({"paaroerendestoette", "familieraadgivning"})
RELATIONS_OTHER = frozenset({"child", "partner", "parent", "sibling", "friend", "other"})
ADULT_RELATIONS = frozenset({"partner", "parent"})
# A child named in the message: a parent or partner named beside it may be the cause, while the
# child is whom the help is for ("en elev i 3. klasse ... mor sover hele dagen", "min dreng på 9
# er ked af at far drikker"), so the audience is not narrowed to adults.
_CHILD_NAMED = re.compile(
    r"\b(?:barn|barnet|børn|boern|børnene|boernene|elev|eleven|elever|pige|pigen|piger|dreng|drengen|"
    r"drenge|baby|babyen|spædbarn|teenager|\d{1,2}\.\s*klasse|kid|kids|child|children|pupil|pupils|"
    r"boy|girl|toddler|teen)\b",
    re.IGNORECASE,
)

# A teenager's life as an adult asked about ("hvor skal han bo, når han bliver voksen", "once she
# turns 18"): the help asked for is an adult's, so their age now does not narrow it to children's.
_AS_AN_ADULT = re.compile(
    r"\b(?:bliver|blir|fylder|fyldt|er)\s+(?:voksen|18)\b|\bflytte[rs]?\s+hjemmefra|\bsom\s+voksen\b|"
    r"\b(?:turns?|turning|becomes?|becoming|is|are)\s+(?:an?\s+)?(?:adults?|18)\b|\bgrown[- ]up\b|"
    r"\bmoves?\s+out\b",
    re.IGNORECASE,
)
AS_AN_ADULT_FROM = 15  # younger than this, life as an adult is too far off to change the offers


@dataclass(frozen=True)
class Situation:
    text: str
    language: str = "da"
    relation: str | None = None
    age: int | None = None
    municipality: str | None = None
    about_other: bool = False
    urgent: bool | None = None  # danger now, when the safety check already ran (None: search runs it)
    followup_allowed: bool = True
    brief: bool = False  # on SMS: short texts and titles, at most OFFERS_SHOWN offers in all

    @property
    def is_relative(self) -> bool:
        return self.about_other or self.relation in RELATIONS_OTHER

    @property
    def audience(self) -> str | None:
        """A known age narrows the audience, and so does a relation that is always an adult (a
        parent, a partner); a child's relation alone does not (a son may be 40), and a teenager's
        life as an adult asked about widens it again."""
        if self.age is None:
            adult = self.relation in ADULT_RELATIONS and not _CHILD_NAMED.search(self.text)
            return "adult" if adult else None
        if self.age >= 18:
            return "adult"
        return None if self.age >= AS_AN_ADULT_FROM and _AS_AN_ADULT.search(self.text) else "child"


@dataclass
class Guidance:
    text: str
    offers: list[OfferCard] = field(default_factory=list)
    followup: str | None = None  # which question was asked: relation, age or municipality
    # No offer fitted well (none found, or the need classifier did not know the need): its theme,
    # the classifier's best guess of the type or UNKNOWN_THEME, for the insight page
    unmet: str | None = None


# Words around a number that make it someone's age ("min søn på 9", "jeg er 17", "9 år", "aged 9")
# or something else ("nr 9", "om 3 uger", "3 gange om ugen").
_AGE_BEFORE = re.compile(r"\b(?:på|paa|er|is|am|i'?m|aged?|of|fylder|fyldt|bliver|turned|turns|alder)\W*$")
_AGE_AFTER = re.compile(r"^\s*-?\s*(?:år|aar|års|aars|årig|aarig|years?|yrs?|yo|y/o)\b")
_NOT_AGE_AFTER = re.compile(
    r"^\s*(?:uger?|dage?|døgn|doegn|måneder|maaneder|mdr|timer?|minutter|gange|kr|kroner|stk|"
    r"weeks?|days?|months?|hours?|minutes?|times)\b"
)
SHORT_REPLY_WORDS = 3  # "17", "han er 17": an answer to "how old?" is little more than the number


def states_age(text: str, start: int, end: int) -> bool:
    """Whether the number at text[start:end] is said as someone's age, not as a house number, a
    time or a count (the NLU tags any number it sees as an age)."""
    before, after = text[:start].lower(), text[end:].lower()
    if _NOT_AGE_AFTER.match(after):
        return False
    if _AGE_AFTER.match(after) or _AGE_BEFORE.search(before[-16:]):
        return True
    return len(text.split()) <= SHORT_REPLY_WORDS


def parse_age(value: object) -> int | None:
    try:
        age = int(float(str(value)))
    except (TypeError, ValueError):
        return None
    return age if 0 <= age <= 120 else None


def _followup(situation: Situation, hits: list[OfferHit]) -> str | None:
    if not situation.followup_allowed:
        return None
    if situation.municipality is None and any(h.offer.municipality != "national" for h in hits):
        return "municipality"
    audiences = {a for h in hits for a in h.offer.audience}
    if situation.age is None and "child" in audiences and audiences & {"adult", "family"}:
        return "age"
    return None


def guide(search: OfferSearch, situation: Situation) -> Guidance:
    lang = situation.language
    hits = search.search(
        situation.text,
        limit=OFFERS_SHOWN,
        audience=situation.audience,
        municipality=situation.municipality,
        language=lang,
        urgent=situation.urgent,
    )
    guess, known = search.need_guess(situation.text)
    unmet = None if hits and known else guess or UNKNOWN_THEME
    if not hits:
        return Guidance(text=t("bot.guidance.none_found", lang), unmet=unmet)
    if situation.brief and situation.is_relative:
        hits = hits[: OFFERS_SHOWN - 1]  # room for the relatives' own offer
    stale_days = search.catalogue.stale_days
    cards = [offer_card(h.offer, lang, stale_days) for h in hits]
    if situation.is_relative and not any(c.type in RELATIVE_TYPES for c in cards):
        cards += offers_of_type(search.catalogue, "paaroerendestoette", lang, limit=1)

    def text(key: str) -> str:
        return t(f"bot.guidance.brief.{key}" if situation.brief else f"bot.guidance.{key}", lang)

    lines = [text("intro_relative" if situation.is_relative else "intro")]
    lines += [offer_line(c, lang, situation.brief) for c in cards]
    if not situation.brief:  # on SMS each offer's line already says how to get in
        for access in dict.fromkeys(c.access for c in cards):
            lines.append(t(f"bot.guidance.access.{access}", lang))
    if any(h.offer.example for h in hits):
        lines.append(text("example_note"))
    if situation.is_relative:
        lines.append(text("relative_consent"))
    followup = _followup(situation, hits)
    if followup:
        lines.append(text(f"ask_{followup}"))
    return Guidance(text="\n".join(lines), offers=cards, followup=followup, unmet=unmet)
