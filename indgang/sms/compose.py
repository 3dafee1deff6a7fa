"""Replies composed for SMS.

GSM-7 where the text allows (æ, ø and å are GSM-7 characters; typographic dashes, quotes and
bullets are swapped for their plain forms first, since one such character would turn the whole
SMS into UCS-2 and more than double its segments). Buttons become numbered choices, offers one
short line each, and the segment count is known before anything is sent.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass, field
from typing import Literal

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)

from indgang.dialogue import Button, OfferCard, Reply
from indgang.i18n import lookup, t
from indgang.offer_cards import short_title

GSM_CODEC = "gsm03.38"
MAX_BODY_CHARS = 1600  # Twilio's limit for one message body
TARGET_SEGMENTS = 2  # a reply longer than this is composed compactly
# (single-segment capacity, capacity per segment of a multi-part SMS) in GSM septets / UTF-16 units
_CAPACITY = {"GSM-7": (160, 153), "UCS-2": (70, 67)}
_PLAIN = str.maketrans(
    {
        "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2022": "-", "\u00b7": "-",
        "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u00b4": "'",
        "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
        "\u2026": "...", "\u00a0": " ", "\u202f": " ", "\u2009": " ",
    }
)  # fmt: skip
_CHOICE = re.compile(r"^\s*(\d{1,2})\s*[.)]?\s*$")

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True)
class SmsText:
    text: str
    encoding: Encoding
    units: int  # GSM septets or UTF-16 code units
    segments: int


@dataclass
class Composition:
    text: str
    choices: list[Button] = field(default_factory=list)
    crisis: bool = False


def plain(text: str) -> str:
    """Typographic characters as their GSM-7 forms, spaces collapsed, at most one blank line."""
    lines = [" ".join(line.split()) for line in text.translate(_PLAIN).splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _costs(text: str) -> tuple[Encoding, list[int]]:
    try:
        # one septet per character, two for the escaped ones (€ [ ] { } ^ ~ \ |)
        return "GSM-7", [len(c.encode(GSM_CODEC)) for c in text]
    except UnicodeEncodeError:
        return "UCS-2", [2 if ord(c) > 0xFFFF else 1 for c in text]


def measure(text: str) -> SmsText:
    """How the text travels: its encoding, size and segment count (escapes and surrogate pairs
    are never split across segments, as handsets require)."""
    encoding, costs = _costs(text)
    single, per_segment = _CAPACITY[encoding]
    units = sum(costs)
    if units <= single:
        return SmsText(text, encoding, units, 1 if units else 0)
    segments, used = 1, 0
    for cost in costs:
        if used + cost > per_segment:
            segments, used = segments + 1, 0
        used += cost
    return SmsText(text, encoding, units, segments)


def split(text: str, limit: int = MAX_BODY_CHARS) -> list[str]:
    """Bodies of at most `limit` characters, cut between paragraphs where possible."""
    bodies: list[str] = []
    current = ""
    for paragraph in text.split("\n\n"):
        pieces = [paragraph] if len(paragraph) <= limit else textwrap.wrap(paragraph, limit)
        for piece in pieces:
            joined = f"{current}\n\n{piece}" if current else piece
            if len(joined) <= limit:
                current = joined
            else:
                bodies.append(current)
                current = piece
    return [*bodies, current] if current else bodies


def for_sms(text: str) -> list[SmsText]:
    """Any text (a staff reply, a reminder) as the SMS bodies that carry it."""
    return [measure(body) for body in split(plain(text))]


def numbered(buttons: list[Button], language: str) -> str:
    """1) ... 2) ... and "Svar 1, 2 eller 3." """
    numbers = [str(i) for i in range(1, len(buttons) + 1)]
    spoken = numbers[0]
    if len(numbers) > 1:
        spoken = f"{', '.join(numbers[:-1])} {t('sms.choices.or', language)} {numbers[-1]}"
    lines = [f"{n}) {b.title}" for n, b in zip(numbers, buttons, strict=True)]
    return "\n".join([*lines, t("sms.choices.reply", language, numbers=spoken)])


def fitting(head: str, lines: list[str]) -> list[str]:
    """As many of `lines`, in order, as fit after `head` within TARGET_SEGMENTS (at least one:
    a way in matters more than a third segment)."""
    for count in range(len(lines), 1, -1):
        if measure(plain("\n".join([head, *lines[:count]]))).segments <= TARGET_SEGMENTS:
            return lines[:count]
    return lines[:1]


def choice_index(text: str, count: int) -> int | None:
    """A reply of "2" (or "2." or " 2) ") -> index 1, when there are that many choices."""
    found = _CHOICE.match(text)
    number = int(found.group(1)) if found else 0
    return number - 1 if 1 <= number <= count else None


def _offer_line(offer: OfferCard, language: str, compact: bool) -> str:
    if not compact and offer.next_step:
        return f"- {offer.title}: {offer.next_step}"
    access = lookup(f"bot.guidance.access_short.{offer.access}", language) if offer.access else None
    return f"- {offer.title} ({access})" if access else f"- {offer.title}"


def _access_explanations(language: str) -> set[str]:
    """The guidance's one-line explanations of how access works (open, visitation, referral)."""
    kinds = ("open", "visitation", "referral")
    return {str(lookup(f"bot.guidance.access.{kind}", language) or "").strip() for kind in kinds} - {""}


def _block(reply: Reply, language: str, compact: bool) -> str:
    """The reply's text, plus one line for each offer the text does not already name. Compact:
    offers as title and access kind only, and without the general access explanations (each
    offer's line already says "bare mød op" or "kommunen vurderer")."""
    lines = reply.text.strip().splitlines()
    if compact and reply.offers:
        explanations = _access_explanations(language)
        lines = [line for line in lines if line.strip() not in explanations]
    named = reply.text.casefold()
    lines += [
        _offer_line(o, language, compact)
        for o in reply.offers
        if short_title(o.title).casefold() not in named
    ]
    return "\n".join(lines)


def compose(replies: list[Reply], language: str, after: list[Reply] | None = None) -> Composition:
    """One turn's replies as one SMS text (SMS may arrive out of order, so a turn is one message):
    the emergency reply first, buttons numbered across the turn; `after` (a question the gateway
    adds, answered in words) comes last, after the numbers, and counts in the size."""
    ordered = sorted(replies, key=lambda r: not r.crisis)
    choices = list({b.payload: b for r in ordered for b in r.buttons}.values())

    def render(compact: bool) -> str:
        blocks = [_block(r, language, compact) for r in ordered]
        if choices:
            blocks.append(numbered(choices, language))
        blocks += [r.text for r in after or []]
        return plain("\n\n".join(b for b in blocks if b))

    text = render(compact=False)
    if measure(text).segments > TARGET_SEGMENTS:
        text = render(compact=True)
    return Composition(text=text, choices=choices, crisis=any(r.crisis for r in replies))
