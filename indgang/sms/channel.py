"""One inbound SMS, from Twilio's webhook to the answers: keywords first (STOP, START, HELP,
SLET; a "stop" inside the booking form first asks whether every SMS is meant), pictures and
empty messages politely answered, a numbered reply mapped back to its
button, and everything else through the one inbound path (`Inbound.handle`, channel "sms").

`receive` does the work that must happen before Twilio gets its answer (storing, the safety
check, the bot); `answer` queues the replies durably (indgang/sms/outbox.py), and the outbox
worker sends them through the REST API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from indgang import conversation, followup, handoff, keys, transcript
from indgang.booking import in_booking_form
from indgang.erasure import erase_conversation
from indgang.i18n import normalise_language, t
from indgang.inbound import Inbound, offline_reply
from indgang.safety import crisis_lines
from indgang.settings import Settings
from indgang.sms import choices, keywords, optout, recipients
from indgang.sms.compose import compose
from indgang.sms.keywords import Keyword
from indgang.sms.outbox import QueuedSms, SmsOutbox
from indgang.sms.sender import SendKind, SmsSender
from indgang.spool import Spool, SpooledMessage

log = logging.getLogger(__name__)

ERASE_CONFIRM_SECONDS = 15 * 60  # how long a SLET waits for its JA
STOP_CONFIRM_SECONDS = 15 * 60  # how long a "stop" inside a form waits for its JA or NEJ


@dataclass(frozen=True)
class InboundSms:
    """The fields of Twilio's webhook that matter here, already validated."""

    message_sid: str
    sender: str
    body: str
    media_count: int = 0


@dataclass(frozen=True)
class Outgoing:
    text: str
    kind: SendKind = SendKind.REPLY
    track: bool = True  # False only after an erasure: nothing may be written again


@dataclass
class SmsTurn:
    conversation_id: str
    number: str
    send_id: str  # the inbound MessageSid: the replies' ids in the outbox
    outgoing: list[Outgoing] = field(default_factory=list)


def _emergency_numbers(lang: str) -> str:
    """112 and the suicide line, from the configured crisis lines (the one place they are kept)."""
    lines = crisis_lines(lang)
    emergency = next(line for line in lines if line.emergency)
    suicide = ", ".join(f"{line.name} {line.number}" for line in lines if "suicide" in line.categories)
    return t("sms.emergency", lang, number=emergency.number, lines=suicide)


SEEN_TTL_SECONDS = 2 * 24 * 60 * 60  # Twilio retries a webhook within minutes; keep ids two days


class SmsChannel:
    def __init__(
        self, redis: aioredis.Redis, settings: Settings, inbound: Inbound, sender: SmsSender
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.inbound = inbound
        self.sender = sender

    @property
    def ttl(self) -> int:
        return self.settings.conversation_ttl_seconds

    async def receive_once(self, sms: InboundSms) -> SmsTurn | None:
        """`receive` and `answer`, once per Twilio MessageSid: Twilio retries a webhook it got no answer to,
        and a retry of a handled message is None. A message that fails is forgotten, so
        Twilio's retry tries it again."""
        seen = keys.idempotency("twilio-sms", sms.message_sid)
        if not await self.redis.set(seen, "1", nx=True, ex=SEEN_TTL_SECONDS):
            log.info("twilio retry of a processed message", extra={"sid": sms.message_sid})
            return None
        try:
            turn = await self.receive(sms)
            await self.answer(turn)  # queued before Twilio gets its answer: a failure here is retried
            return turn
        except Exception:
            await self.redis.delete(seen)
            raise

    async def receive(self, sms: InboundSms) -> SmsTurn:
        number = recipients.canonical_number(sms.sender)
        conv = recipients.conversation_id(number, self.settings)
        turn = SmsTurn(conversation_id=conv, number=number, send_id=sms.message_sid)
        known = await conversation.get(self.redis, conv)
        lang = known.language if known else "da"
        text = sms.body.strip()

        if await self.redis.getdel(keys.sms_erase_pending(conv)):
            answer = keywords.confirmation(text)
            if answer is not None:
                turn.outgoing = await self._erase_answer(conv, text, answer, lang)
                log.info("sms erase answered", extra={"erased": answer})
                return turn
        await recipients.remember(self.redis, conv, number, self.ttl)

        found = keywords.match(text) if text else None
        message = text
        if (asked := await self.redis.getdel(keys.sms_stop_pending(conv))) is not None:
            yes = keywords.confirmation(text) is True and found is None  # not "SLET": that is its own
            stop = yes or (found is not None and found[0] == Keyword.STOP)
            if stop:
                turn.outgoing = await self._keyword(conv, text, Keyword.STOP, lang)
                return turn
            if keywords.confirmation(text) is False:
                # No opt-out: the word goes on to the bot, where it ends the booking form.
                await self._record_exchange(conv, text, "", lang)
                found, message = None, asked
        elif found is not None and found[0] == Keyword.STOP and await in_booking_form(self.redis, conv):
            # Inside a form "stop" most likely means the booking: ask before stopping every SMS.
            await self.redis.set(keys.sms_stop_pending(conv), text, ex=STOP_CONFIRM_SECONDS)
            reply = t("sms.stop_in_form", normalise_language(found[1] or lang))
            await self._record_exchange(conv, text, reply, lang)
            turn.outgoing = [Outgoing(reply, SendKind.KEYWORD)]
            return turn
        if found is not None:
            keyword, keyword_lang = found
            turn.outgoing = await self._keyword(conv, text, keyword, keyword_lang or lang)
            log.info("sms keyword", extra={"keyword": keyword.value})
            return turn
        if not text:
            reply = t("sms.media_only" if sms.media_count else "sms.empty", lang)
            placeholder = t("sms.media_placeholder", lang) if sms.media_count else ""
            await self._record_exchange(conv, placeholder, reply, lang)
            turn.outgoing = [Outgoing(reply)]
            return turn

        metadata: dict[str, str] = {"phone": number}
        state = await handoff.get(self.redis, conv)
        # While waiting for staff a number is just words, unless the queue offered choices.
        if message == text and (not state.with_staff or "offered_booking" in state.marks):
            picked = await choices.resolve(self.redis, conv, text)
            if picked is not None:
                message, metadata = picked.payload, {**metadata, "sms_choice": text}
        result = await self.inbound.handle(conv, message, channel="sms", metadata=metadata)
        composed = compose(result.replies, result.language, after=result.after)
        if result.replies:
            await choices.remember(self.redis, conv, composed.choices, self.ttl)
        if sms.media_count:
            composed.text = f"{t('sms.media_with_text', result.language)}\n\n{composed.text}".strip()
        if composed.text:
            turn.outgoing = [Outgoing(composed.text, SendKind.URGENT if composed.crisis else SendKind.REPLY)]
        return turn

    async def receive_offline(self, sms: InboundSms, spool: Spool) -> str:
        """Redis is unreachable: keep the SMS in the spool and return the text to answer inline
        (TwiML), as no reply can be tracked now. Replayed by `replay` when Redis is back."""
        message = SpooledMessage(
            channel="sms",
            text=sms.body,
            sender=sms.sender,
            message_sid=sms.message_sid,
            media_count=sms.media_count,
        )
        saved = await spool.append(message)
        reply, lang = offline_reply(sms.body.strip(), None, saved)
        log.warning("redis unreachable: sms answered inline", extra={"spooled": saved})
        return compose([reply], lang).text

    async def replay(self, message: SpooledMessage) -> None:
        """A spooled SMS, now through `receive` and answered by the sender (the spool replays it
        once). Its MessageSid is marked seen, so a late retry by Twilio is not handled again; a
        marker already there is no reason to skip it: a command that timed out while Redis hung
        may have set it without the message ever being stored."""
        await self.redis.set(keys.idempotency("twilio-sms", message.message_sid), "1", ex=SEEN_TTL_SECONDS)
        sms = InboundSms(message.message_sid, message.sender, message.text, message.media_count)
        await self.answer(await self.receive(sms))

    async def answer(self, turn: SmsTurn) -> None:
        """Queue the turn's SMS in order; failures are recorded for staff by the sender."""
        conv = turn.conversation_id
        queued = [QueuedSms(turn.number, conv, out.text, out.kind, out.track) for out in turn.outgoing]
        await SmsOutbox(self.redis, self.settings, self.sender).put(turn.send_id, queued)

    async def _keyword(self, conv: str, text: str, keyword: Keyword, lang: str) -> list[Outgoing]:
        lang = normalise_language(lang)
        if keyword == Keyword.STOP:
            new = await optout.stop(self.redis, conv)
            await followup.forget_conversation(self.redis, conv)  # no SMS in a week either
            reply = t("sms.stop_confirmed", lang) if new else ""
        elif keyword == Keyword.START:
            await optout.start(self.redis, conv)
            reply = t("sms.start_confirmed", lang)
        elif keyword == Keyword.HELP:
            reply = t("sms.help", lang, emergency=_emergency_numbers(lang))
        else:
            await self.redis.set(keys.sms_erase_pending(conv), lang, ex=ERASE_CONFIRM_SECONDS)
            reply = t("sms.erase_confirm", lang)
        await self._record_exchange(conv, text, reply, lang)
        return [Outgoing(reply, SendKind.KEYWORD)] if reply else []

    async def _erase_answer(self, conv: str, text: str, erase: bool, lang: str) -> list[Outgoing]:
        if not erase:
            reply = t("sms.erase_kept", lang)
            await self._record_exchange(conv, text, reply, lang)
            return [Outgoing(reply, SendKind.KEYWORD)]
        await erase_conversation(self.inbound.db, self.redis, self.settings, conv, requested_by="citizen")
        return [Outgoing(t("sms.erased", lang), SendKind.KEYWORD, track=False)]

    async def _record_exchange(self, conv: str, text: str, reply: str, lang: str) -> None:
        """A message answered here, not by the bot, still belongs in the transcript staff read."""
        await conversation.touch(self.redis, conv, "sms", lang, self.ttl)
        if text:
            await transcript.append(self.redis, conv, "user", text, self.ttl, channel="sms")
        if reply:
            await transcript.append(self.redis, conv, "bot", reply, self.ttl, channel="sms")
