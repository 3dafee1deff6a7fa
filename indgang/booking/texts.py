"""Booking texts in the citizen's language: dates the Danish way, confirmations, SMS."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from indgang.booking.bookings import Booking, Notice
from indgang.booking.tovholdere import MeetingKind
from indgang.i18n import t, t_list
from indgang.phone import display_phone
from indgang.settings import Settings


def _parts(moment: datetime, lang: str, weekdays: str) -> dict[str, object]:
    return {
        "weekday": t_list(f"booking.{weekdays}", lang)[moment.weekday()],
        "day": moment.day,
        "month": t_list("booking.months", lang)[moment.month - 1],
        "month_number": moment.month,
        "hour": moment.hour,
        "minute": moment.minute,
    }


def when(moment: datetime, lang: str) -> str:
    """ "tirsdag d. 25. november kl. 10.00" (in the time zone `moment` carries)."""
    return t("booking.when", lang, **_parts(moment, lang, "weekdays"))


def when_short(moment: datetime, lang: str) -> str:
    """ "tir 25/11 kl. 10.00": fits a button and an SMS line."""
    return t("booking.when_short", lang, **_parts(moment, lang, "weekdays_short"))


def kind_name(kind: MeetingKind, lang: str) -> str:
    return t(f"booking.kinds.{kind.value}", lang)


def ics_url(booking: Booking, settings: Settings) -> str:
    base = settings.public_base_url.rstrip("/")
    return f"{base}/api/v1/bookings/{booking.id}.ics?token={booking.token}"


def values(booking: Booking, settings: Settings, lang: str | None = None) -> dict[str, object]:
    """What a text about the booking can name, in `lang` (default: the booking's language)."""
    start = booking.start.astimezone(ZoneInfo(settings.booking_timezone))
    lang = lang or booking.language
    return {
        "when": when(start, lang),
        "clock": t("booking.clock", lang, hour=start.hour, minute=start.minute),
        "tovholder": booking.tovholder_name,
        "team": booking.team,
        "kind": kind_name(booking.kind, lang),
        "phone": display_phone(booking.phone),
    }


def confirmation(booking: Booking, settings: Settings) -> str:
    """The chat's answer when a booking is made or moved (web: with the calendar link)."""
    lang = booking.language
    named = values(booking, settings)
    if booking.moved_from is not None:
        lines = [t("booking.moved", lang, **named)]
    else:
        detail = t(f"booking.kind_details.{booking.kind.value}", lang, **named)
        lines = [t("booking.confirmed", lang, kind_detail=detail, **named)]
    if booking.channel != "sms":
        lines += [
            t("booking.confirmed_sms_note", lang),
            t("booking.calendar_link", lang, url=ics_url(booking, settings)),
        ]
    return "\n".join(lines)


def cancelled(booking: Booking, settings: Settings) -> str:
    return t("booking.cancelled", booking.language, **values(booking, settings))


def sms_text(kind: Notice, booking: Booking, settings: Settings) -> str:
    key = "moved" if kind == Notice.CONFIRMED and booking.moved_from is not None else kind.value
    return t(f"booking.sms.{key}", booking.language, **values(booking, settings))


def ics_texts(booking: Booking, settings: Settings) -> tuple[str, str]:
    named = values(booking, settings)
    return t("booking.ics.summary", booking.language, **named), t(
        "booking.ics.description", booking.language, **named
    )
