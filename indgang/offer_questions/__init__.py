"""Questions about the offers just shown: "hvad koster det?", "hvor ligger det?", "er der ventetid?".

A small classifier, learnt from `examples.yaml`, tells what a question asks (the aspect); the
answer is built from the shown offers' own data (access, next step, phone, web address) and the
texts in locales/<lang>/bot.yaml (`offer_answers`), never a promise the offer's data cannot keep:
what the catalogue does not know (opening hours, today's waiting time) is said plainly, with how
to ask the offer itself. A question that points at one offer ("den første", "nr 2", "1", its name)
is answered about that one; a bare pointer ("den første", "1") tells more about it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sklearn.linear_model import LogisticRegression

from indgang import learned
from indgang.dialogue import OfferCard
from indgang.i18n import lookup, t
from indgang.offer_cards import short_title, way_in
from indgang.search.needs import folded

EXAMPLES = Path(__file__).with_name("examples.yaml")
ASPECTS = ("cost", "place", "hours", "waiting", "anonymous", "access", "more")
MIN_CONFIDENCE = 0.35  # below this the question is taken as the general "how do I get in"
MAX_ANSWERED = 3
POINTER_WORDS = 7  # "tell me more about the second one": a pointer, not a new need

# Which shown offer a message points at, on spelling-folded words ("første" -> "forste"). A word
# ordinal counts after "den/det/nr/the/number" ("en anden" is someone else); a digit after those
# or alone ("1", "2."), as the offers are listed in order.
_ORDINAL = {
    "forste": 0, "first": 0, "1st": 0, "anden": 1, "andet": 1, "second": 1, "2nd": 1,
    "tredje": 2, "third": 2, "3rd": 2, "sidste": -1, "last": -1,
}  # fmt: skip
_LEAD = r"(?:den|det|nr|nummer|the|number|no)"
_POINTER = re.compile(
    rf"\b{_LEAD}\s+(?:({'|'.join(_ORDINAL)})|([1-9]))\b(?:\s+one)?|^([1-9])$|^({'|'.join(_ORDINAL)})$"
)


def aspect_of(question: str) -> str:
    """What a question asks; the general "how do I get in" when the classifier is unsure."""
    p = classifier().probabilities(question)
    best = max(p, key=p.__getitem__)
    return best if p[best] >= MIN_CONFIDENCE else "access"


def _fit() -> learned.TextClassifier:
    doc = yaml.safe_load(EXAMPLES.read_text(encoding="utf-8"))
    texts = [q for aspect in ASPECTS for q in doc[aspect]]
    labels = [aspect for aspect in ASPECTS for _ in doc[aspect]]
    features = learned.text_features(folded)
    model = LogisticRegression(C=10.0, max_iter=5000).fit(features.fit_transform(texts), labels)
    return learned.TextClassifier(features, model)


@lru_cache(maxsize=1)
def classifier() -> learned.TextClassifier:
    return learned.cached("offer_questions", [EXAMPLES, Path(__file__)], _fit)


def _typed(key: str, card: OfferCard, language: str) -> str:
    """The text for this offer's type when there is one, else for its kind of access."""
    text = lookup(f"bot.offer_answers.{key}_type.{card.type}", language)
    return str(text) if text else t(f"bot.offer_answers.{key}.{card.access}", language)


def _reach(card: OfferCard, language: str) -> str:
    contact = card.contact or {}
    if contact.get("phone"):
        return t("bot.offer_answers.reach.phone", language, phone=contact["phone"])
    reach = way_in(card)
    if contact.get("url") or card.url:
        return t("bot.offer_answers.reach.web", language, url=reach)
    return t("bot.offer_answers.reach.ask", language, organisation=reach or card.title)


def _about(aspect: str, card: OfferCard, language: str) -> str:
    if aspect in ("cost", "waiting", "anonymous"):
        return _typed(aspect, card, language)
    if aspect == "place":
        contact = card.contact or {}
        known = contact.get("phone") or contact.get("url") or card.url  # else next_step says it all
        return f"{card.next_step or ''} {_reach(card, language) if known else ''}".strip()
    if aspect == "hours":
        return t("bot.offer_answers.hours", language, reach=_reach(card, language))
    if aspect == "more":
        reach = _reach(card, language)  # "ring 70 ..." follows a colon elsewhere; here a sentence
        reach = reach[:1].upper() + reach[1:]
        return " ".join(part for part in (card.summary, card.next_step, reach) if part)
    return t(f"bot.guidance.access.{card.access}", language)


def pointed_at(text: str, shown: list[dict[str, Any]]) -> int | None:
    """The index of the shown offer `text` points at, by its place in the list or its name."""
    said = folded(text)
    found = _POINTER.search(said)
    if found:
        word, digit = found.group(1) or found.group(4), found.group(2) or found.group(3)
        index = _ORDINAL[word] if word else int(digit) - 1
        index = index % len(shown) if index < 0 and shown else index
        return index if 0 <= index < len(shown) else None
    for index, offer in enumerate(shown):
        name = folded(short_title(str(offer.get("title") or "")))
        if len(name) >= 4 and re.search(rf"\b{re.escape(name)}\b", said):
            return index
    return None


def is_pointer(text: str, shown: list[dict[str, Any]]) -> bool:
    """A short message that points at a shown offer ("den første", "1", "mere om nr 2")."""
    return len(text.split()) <= POINTER_WORDS and pointed_at(text, shown) is not None


def answer(question: str, shown: list[dict[str, Any]], language: str) -> str:
    """The answer to a question about the offers shown (as stored with the conversation): about
    the one it points at, else about each; a bare pointer tells more about that one."""
    index = pointed_at(question, shown)
    bare = index is not None and not _POINTER.sub("", folded(question)).strip()
    aspect = "more" if bare else aspect_of(question)
    cards = [OfferCard.model_validate(o) for o in shown[:MAX_ANSWERED]]
    if index is not None:
        cards = [OfferCard.model_validate(shown[index])]
    if not cards:  # nothing shown yet: how each kind of offer is reached
        kinds = ("open", "visitation", "referral")
        return "\n".join(t(f"bot.guidance.access.{kind}", language) for kind in kinds)
    return "\n".join(f"• {card.title}: {_about(aspect, card, language)}" for card in cards)
