"""What offers are found by: each offer's own words (both languages), and for each type the words
citizens use for it (catalogue/type_terms.yaml). The lexical index keeps the two apart; the
embedding model reads both as short phrases."""

from __future__ import annotations

from dataclasses import dataclass

from indgang.catalogue import Offer, offer_types, type_terms


@dataclass(frozen=True)
class OfferDocument:
    offer: Offer
    text: str  # the offer's own words, for BM25
    phrases: tuple[str, ...]  # own and type phrases for embeddings, each short enough to read whole


def type_phrases(type_id: str) -> list[str]:
    kind = offer_types()[type_id]
    terms = type_terms()[type_id]
    return [kind.da, kind.en, *terms.da, *terms.en]


def type_texts() -> dict[str, str]:
    """One text per taxonomy type, for the type index."""
    return {type_id: "\n".join(type_phrases(type_id)) for type_id in offer_types()}


def build(offer: Offer) -> OfferDocument:
    own = [offer.title.da, offer.title.en, offer.summary.da, offer.summary.en]
    if offer.eligibility:
        own += [offer.eligibility.da, offer.eligibility.en]
    searched = [*offer.search_terms.da, *offer.search_terms.en]
    phrases = (
        f"{offer.title.da}. {offer.summary.da}",
        f"{offer.title.en}. {offer.summary.en}",
        *searched,
        *type_phrases(offer.type),
    )
    return OfferDocument(
        offer=offer, text="\n".join([*own, *searched]), phrases=tuple(dict.fromkeys(phrases))
    )
