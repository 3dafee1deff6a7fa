"""Sending one SMS to a citizen: the rules that decide whether it may go (STOP, throttling),
composing it for SMS, the REST call, and recording what happened for staff."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from enum import StrEnum

import aiohttp
import redis.asyncio as aioredis
from twilio.base.exceptions import TwilioException, TwilioRestException

from indgang import keys
from indgang.settings import Settings
from indgang.sms import compose, delivery, optout, recipients, throttle, twilio_api

log = logging.getLogger(__name__)


class SendKind(StrEnum):
    REPLY = "reply"  # an answer, a staff reply, a reminder: not after STOP
    KEYWORD = "keyword"  # the answer to STOP, START, HELP or SLET: always, the citizen just asked
    URGENT = "urgent"  # the emergency reply: even after STOP and past the per-number limit


RETRYABLE = frozenset({"failed", "throttled"})  # refusals that may go through later


class SmsNotSent(Exception):
    """Twilio did not take the message after every attempt (callers that queue may try later)."""


@dataclass(frozen=True)
class SendResult:
    sids: list[str] = field(default_factory=list)
    refused: str | None = None  # opted_out, throttled, no_number, not_configured or failed


class SmsSender:
    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings

    @property
    def ttl(self) -> int:
        return self.settings.conversation_ttl_seconds

    async def to_number(
        self,
        number: str,
        text: str,
        conversation_id: str,
        kind: SendKind = SendKind.REPLY,
        ref: str = "",
        track: bool = True,
        send_id: str = "",
    ) -> SendResult:
        """Send `text` (split into bodies of at most 1600 characters). `track=False` leaves no
        record at all: for the confirmation that a conversation was erased. With a `send_id`
        (the outbox's), a body Twilio already took under that id is not sent again."""
        if kind == SendKind.REPLY and await optout.opted_out(self.redis, conversation_id):
            return await self.refuse(conversation_id, "opted_out", track)
        if not twilio_api.is_configured(self.settings):
            return await self.refuse(conversation_id, "not_configured", track)
        callback = twilio_api.status_callback_url(self.settings, conversation_id) if track else None
        urgent = kind == SendKind.URGENT
        sids: list[str] = []
        for part, body in enumerate(compose.for_sms(text)):
            sent_key = keys.sms_sent(f"{send_id}.{part}") if send_id else ""
            if sent_key and (earlier := await self.redis.get(sent_key)):
                sids.append(earlier)
                continue
            if await throttle.check(self.redis, self.settings, conversation_id, urgent=urgent):
                return await self.refuse(conversation_id, "throttled", track, sids)
            try:
                message = await twilio_api.create_message(self.settings, number, body.text, callback)
            except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
                code = exc.code if isinstance(exc, TwilioRestException) else None
                detail = f"{code or type(exc).__name__}"
                return await self.refuse(conversation_id, "failed", track, sids, detail=detail)
            sid = str(message.sid)
            sids.append(sid)
            if sent_key:
                await self.redis.set(sent_key, sid, ex=keys.SMS_SENT_TTL_SECONDS)
            log.info(
                "sms sent",
                extra={"sid": sid, "kind": kind.value, "encoding": body.encoding, "segments": body.segments},
            )
            if track:
                state = str(message.status or "queued")
                await delivery.record_sent(self.redis, conversation_id, sid, state, ref, self.ttl)
        return SendResult(sids=sids)

    async def send_sms(self, to: str, text: str) -> None:
        """(number, text) -> sent, the shape the booking notifier calls; raises SmsNotSent when
        Twilio would not take it or the throttle held it back, so the notifier tries again later."""
        number = recipients.canonical_number(to)
        result = await self.to_number(number, text, recipients.conversation_id(number, self.settings))
        if result.refused in RETRYABLE:
            raise SmsNotSent(f"not sent: {result.refused}")

    async def refuse(
        self, conversation_id: str, reason: str, track: bool, sids: list[str] | None = None, detail: str = ""
    ) -> SendResult:
        """Not sent: noted for staff in the transcript (or only logged when `track` is off)."""
        if track:
            await delivery.note(self.redis, conversation_id, self.ttl, reason, detail=detail)
        else:
            log.warning("sms not sent", extra={"reason": reason})
        return SendResult(sids=sids or [], refused=reason)
