"""Staff alerts: who is on duty (a roster in configuration), and the alert itself, by SMS or e-mail.

An alert carries a link to the conversation in the staff console and nothing else: no words,
no number, no name. It leaves the municipality's systems (a phone, a mailbox), and whoever
follows the link meets the console's login and its audit log.

The roster (setting STAFF_ALERT_ROSTER_FILE) is a YAML file:

    on_duty:
      - who: vagt-dag            # a label for the logs and the README; never sent
        hours: mon-fri 08:00-16:00   # the syntax of STAFF_OPENING_HOURS, local time
        channel: sms             # sms (through Twilio) or email (through SMTP_HOST)
        address: "+4512345678"   # E.164 number or e-mail address
        language: da             # optional: da (default) or en
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml

from indgang import keys
from indgang.i18n import normalise_language, t
from indgang.opening_hours import OpeningHours
from indgang.settings import Settings
from indgang.sms import twilio_api
from indgang.sms.sender import RETRYABLE, SendKind, SmsNotSent, SmsSender

log = logging.getLogger(__name__)

Reason = Literal["crisis", "waiting"]
SMTP_TIMEOUT_SECONDS = 15.0


class RosterError(ValueError):
    """The roster file cannot be read."""


class AlertNotSent(Exception):
    """An on-duty person could not be reached now (Twilio or SMTP failing): try again later."""


@dataclass(frozen=True)
class OnDuty:
    who: str
    hours: OpeningHours
    channel: Literal["sms", "email"]
    address: str
    language: str = "da"


@lru_cache
def load_roster(path: Path, timezone: str) -> tuple[OnDuty, ...]:
    """The roster; RosterError (or OpeningHoursError for its hours) when it cannot be used."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    roster = []
    for entry in data.get("on_duty") or []:
        try:
            who, hours, channel, address = (entry[k] for k in ("who", "hours", "channel", "address"))
        except (KeyError, TypeError) as exc:
            raise RosterError(f"each on_duty entry needs who, hours, channel and address: {entry!r}") from exc
        if channel not in ("sms", "email"):
            raise RosterError(f"{who!r}: channel must be sms or email, not {channel!r}")
        language = normalise_language(entry.get("language"))
        parsed = OpeningHours.parse(str(hours), timezone)
        roster.append(OnDuty(str(who), parsed, channel, str(address).strip(), language))
    return tuple(roster)


def on_duty(settings: Settings, moment: datetime) -> list[OnDuty]:
    """Who is on duty at `moment` (nobody without a roster)."""
    if settings.staff_alert_roster_file is None:
        return []
    roster = load_roster(settings.staff_alert_roster_file, settings.booking_timezone)
    return [person for person in roster if person.hours.is_open(moment)]


def conversation_link(settings: Settings, conversation_id: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}/staff/conversations/{conversation_id}"


def alert_text(settings: Settings, reason: Reason, conversation_id: str, language: str) -> str:
    minutes = round(settings.staff_alert_wait_minutes)
    return t(f"alerts.{reason}", language, link=conversation_link(settings, conversation_id), minutes=minutes)


class StaffAlerts:
    def __init__(self, settings: Settings, sms: SmsSender) -> None:
        self.settings = settings
        self.sms = sms

    def check_roster(self) -> None:
        """Read the roster now: RosterError (or OSError) when it cannot be used."""
        if self.settings.staff_alert_roster_file is not None:
            load_roster(self.settings.staff_alert_roster_file, self.settings.booking_timezone)

    async def send(self, reason: Reason, conversation_id: str, request_stamp: str, moment: datetime) -> int:
        """Alert everyone on duty at `moment`; returns how many were alerted. AlertNotSent when
        someone could not be reached now (an SMS that went already is not sent again: its send
        id names the request, the reason and the person)."""
        alerted, failed = 0, []
        for person in on_duty(self.settings, moment):
            text = alert_text(self.settings, reason, conversation_id, person.language)
            send_id = f"alert.{reason}.{keys.pseudonym(conversation_id)}.{request_stamp}.{person.who}"
            try:
                sent = await self._send(person, reason, text, send_id)
            except (OSError, SmsNotSent) as exc:  # SMTPException is an OSError
                log.warning("staff alert not sent", extra={"who": person.who, "error": type(exc).__name__})
                failed.append(person.who)
                continue
            alerted += sent
        if failed:
            raise AlertNotSent(f"not reached: {', '.join(failed)}")
        log.info("staff alerted", extra={"reason": reason, "alerted": alerted})
        return alerted

    async def _send(self, person: OnDuty, reason: Reason, text: str, send_id: str) -> bool:
        if person.channel == "email":
            if not self.settings.smtp_host:
                log.warning("staff alert by e-mail, but SMTP_HOST is unset", extra={"who": person.who})
                return False
            subject = t(f"alerts.subject_{reason}", person.language)
            await asyncio.to_thread(self._mail, person.address, subject, text)
            return True
        if not twilio_api.is_configured(self.settings):
            log.warning("staff alert by SMS, but Twilio is not configured", extra={"who": person.who})
            return False
        # A crisis alert is never held back by the SMS limits; a waiting alert is counted like a reply.
        kind = SendKind.URGENT if reason == "crisis" else SendKind.REPLY
        result = await self.sms.to_number(
            person.address, text, f"staff-{person.who}", kind=kind, track=False, send_id=send_id
        )
        if result.refused in RETRYABLE:
            raise SmsNotSent(f"not sent: {result.refused}")
        return result.refused is None

    def _mail(self, to: str, subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = to
        message["Subject"] = subject
        message.set_content(text)
        assert self.settings.smtp_host is not None
        with smtplib.SMTP(
            self.settings.smtp_host, self.settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS
        ) as smtp:
            smtp.send_message(message)
