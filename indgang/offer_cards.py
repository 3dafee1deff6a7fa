"""How an offer is shown to a citizen: as a card in a reply, or as a search result."""

from __future__ import annotations

from datetime import date
from typing import Any

from indgang.catalogue import Catalogue, Offer
from indgang.dialogue import OfferCard
from indgang.i18n import lookup, t
from indgang.search import OfferHit


def long_date(day: date, language: str) -> str:
    """ "2. december 2026" / "2 December 2026"."""
    months = lookup("offers.months", language)
    return t("offers.date", language, day=day.day, month=months[day.month - 1], year=day.year)


def offer_card(offer: Offer, language: str, stale_days: int, today: date | None = None) -> OfferCard:
    """`stale_days`: an offer not checked for longer asks the citizen to confirm it."""
    checked = offer.assured_date
    stale = offer.stale(stale_days, today or date.today())
    return OfferCard(
        id=offer.id,
        type=offer.type,
        title=offer.text("title", language),
        summary=offer.text("summary", language),
        access=offer.access,
        next_step=offer.text("next_step", language),
        municipality=offer.municipality,
        url=offer.url,
        contact=offer.contact.model_dump(exclude_none=True) if offer.contact else None,
        assured_date=checked.isoformat() if checked else None,
        checked=t("offers.checked", language, date=long_date(checked, language)) if checked else None,
        confirm=t("offers.stale", language) if stale else None,
    )


def short_title(title: str) -> str:
    """The name before a dash explanation ("PPR – Pædagogisk Psykologisk Rådgivning" -> "PPR"),
    for SMS, where every character counts."""
    for dash in (" – ", " — ", " - "):
        title = title.split(dash, 1)[0]
    return title


def way_in(card: OfferCard) -> str:
    """How to reach an offer in a few characters, for SMS: its phone, else its web address
    without the scheme, else the organisation that runs it ("" when none is known)."""
    contact = card.contact or {}
    if contact.get("phone"):
        return str(contact["phone"])
    url = contact.get("url") or card.url
    if url:
        return str(url).removeprefix("https://").removeprefix("http://").removeprefix("www.").rstrip("/")
    return str(contact.get("organisation") or "").split(" (")[0]  # "Din kommune (borgerservice)"


def offer_line(card: OfferCard, language: str, brief: bool) -> str:
    """One offer as a line of guidance: its name and access kind; brief (SMS): the short name,
    and how to reach it, since an SMS has no card to tap."""
    access = t(f"bot.guidance.access_short.{card.access}", language)
    reach = way_in(card) if brief else ""
    title = short_title(card.title) if brief else card.title
    return f"• {title} ({access}{': ' + reach if reach else ''})"


def offer_result(hit: OfferHit, language: str, stale_days: int) -> dict[str, Any]:
    card = offer_card(hit.offer, language, stale_days)
    return {**card.model_dump(), "contact": card.contact or {}, "score": round(hit.score, 4)}


def offers_of_type(catalogue: Catalogue, offer_type: str, language: str, limit: int = 2) -> list[OfferCard]:
    """The catalogue's offers of one type, national ones first (e.g. how to report a concern)."""
    offers = catalogue.of_type(offer_type)
    offers.sort(key=lambda o: (o.municipality != "national", o.id))
    return [offer_card(o, language, catalogue.stale_days) for o in offers[:limit]]
