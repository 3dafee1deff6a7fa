"""Questions about the offers just shown: "hvad koster det?", "hvor ligger det?", "er der ventetid?".

A small classifier, learnt from `examples.yaml`, tells what a question asks (the aspect); the
answer is built from the shown offers' own data (access, next step, phone, web address) and the
texts in locales/<lang>/bot.yaml (`offer_answers`), never a promise the offer's data cannot keep:
what the catalogue does not know (opening hours, today's waiting time) is said plainly, with how
to ask the offer itself.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from sklearn.linear_model import LogisticRegression

from indgang import learned
from indgang.dialogue import OfferCard
from indgang.i18n import lookup, t
from indgang.offer_cards import way_in
from indgang.search.needs import folded

EXAMPLES = Path(__file__).with_name("examples.yaml")
ASPECTS = ("cost", "place", "hours", "waiting", "anonymous", "access")
MIN_CONFIDENCE = 0.35  # below this the question is taken as the general "how do I get in"
MAX_ANSWERED = 3


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
    return t(f"bot.guidance.access.{card.access}", language)


def answer(question: str, shown: list[dict[str, Any]], language: str) -> str:
    """The answer to a question about the offers shown (as stored with the conversation)."""
    aspect = aspect_of(question)
    cards = [OfferCard.model_validate(o) for o in shown[:MAX_ANSWERED]]
    if not cards:  # nothing shown yet: how each kind of offer is reached
        kinds = ("open", "visitation", "referral")
        return "\n".join(t(f"bot.guidance.access.{kind}", language) for kind in kinds)
    return "\n".join(f"• {card.title}: {_about(aspect, card, language)}" for card in cards)
