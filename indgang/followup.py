"""Closing the loop: a follow-up that asks whether help came, and satisfaction after staff.

Referral is not help: whether the citizen got help is only known by asking. So when a turn
shows offers or confirms a booking, the gateway asks once for consent to ask again later
(FOLLOWUP_DELAY_SECONDS, a week by default). With a yes, a follow-up is kept: on SMS it is sent
by a worker (at least once, with the leases of indgang/outbox.py, through the SMS outbox, in
staff opening hours, never after STOP); on the web the page keeps a key of its own (not the
conversation's token) and the question comes on the next visit, in a new conversation. NEJ or
DELVIS is offered a tovholder booking or a person. After staff close a conversation the
citizen is asked once how satisfied they were (SATISFACTION_ENABLED).

Every question the gateway asks waits for one message: an answer is caught here (before the
dialogue engine, like the SMS keywords), anything else goes on as normal and the question is
not asked again. Answers are kept as counts only, for the insight page (indgang/insight.py: per
day, channel and offer type shown, and 1-5): no words, no number, no conversation id.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import redis.asyncio as aioredis

from indgang import conversation, keys, transcript
from indgang.background import BackgroundLoop
from indgang.dialogue import Button, Reply
from indgang.i18n import t
from indgang.insight import Insight, Metric
from indgang.opening_hours import staff_hours
from indgang.outbound import deliver_to_citizen
from indgang.outbox import Claim, LeasedSet
from indgang.settings import Settings
from indgang.sms import choices, optout, recipients
from indgang.sms.keywords import confirmation, fold
from indgang.sms.outbox import QueuedSms, SmsOutbox
from indgang.sms.sender import SmsSender

log = logging.getLogger(__name__)

Outcome = Literal["yes", "no", "partly"]
Question = Literal["consent", "followup", "satisfaction"]

BOOKING_TYPE = "booking"  # the "offer type" a confirmed booking counts under
ANSWER_WAIT_SECONDS = 60 * 60 * 24 * 7  # how long a question waits for its answer
FOLLOWUP_KEEP_SECONDS = 60 * 60 * 24 * 30  # a web follow-up nobody came back for is forgotten
WEB_KEY_BYTES = 24
BATCH = 20

CONSENT_YES, CONSENT_NO = "/followup_consent_yes", "/followup_consent_no"
_OUTCOME_PAYLOADS: dict[str, Outcome] = {
    "/followup_yes": "yes",
    "/followup_no": "no",
    "/followup_partly": "partly",
}
_OUTCOME_WORDS: dict[str, Outcome] = {
    "ja": "yes", "j": "yes", "yes": "yes", "y": "yes",
    "nej": "no", "n": "no", "no": "no",
    "delvis": "partly", "delvist": "partly", "partly": "partly", "partially": "partly",
}  # fmt: skip
_SATISFACTION = re.compile(r"^\s*(?:/satisfaction_)?([1-5])\s*[.)!]?\s*$")
BOOK_PAYLOAD = "/book_contact"
PERSON_PAYLOAD = "/request_human"


# --- reading answers ---------------------------------------------------------------------------


def consent_answer(text: str) -> bool | None:
    if text.strip() in (CONSENT_YES, CONSENT_NO):
        return text.strip() == CONSENT_YES
    return confirmation(text) if fold(text) not in ("slet", "delete") else None


def outcome_answer(text: str) -> Outcome | None:
    return _OUTCOME_PAYLOADS.get(text.strip()) or _OUTCOME_WORDS.get(fold(text))


def satisfaction_answer(text: str) -> int | None:
    found = _SATISFACTION.match(text)
    return int(found.group(1)) if found else None


# --- the question waiting for the next message -------------------------------------------------


@dataclass(frozen=True)
class Pending:
    question: Question
    types: list[str]


async def _await_answer(redis: aioredis.Redis, conversation_id: str, pending: Pending) -> None:
    payload = json.dumps({"question": pending.question, "types": pending.types})
    await redis.set(keys.followup_pending(conversation_id), payload, ex=ANSWER_WAIT_SECONDS)


async def take_pending(redis: aioredis.Redis, conversation_id: str) -> Pending | None:
    """The question awaiting this message, taken: whatever the message is, it is not asked again."""
    raw = await redis.getdel(keys.followup_pending(conversation_id))
    if raw is None:
        return None
    data = json.loads(raw)
    return Pending(question=data["question"], types=list(data["types"]))


@dataclass
class Answered:
    replies: list[Reply]
    web_key: str | None = None  # a web consent: the key the page keeps to be asked later


async def answer(
    redis: aioredis.Redis,
    settings: Settings,
    insight: Insight,
    conversation_id: str,
    channel: str,
    language: str,
    pending: Pending,
    text: str,
    now: float,
) -> Answered | None:
    """The reply to an answer of `pending`; None when `text` is no answer (it goes on as normal)."""
    if pending.question == "consent":
        consent = consent_answer(text)
        if consent is None:
            return None
        if not consent:
            return Answered([Reply(text=t("followup.consent_no", language))])
        key = await schedule(redis, settings, conversation_id, channel, language, pending.types, now)
        when = _when(settings, language)
        reply = Reply(text=t(f"followup.consent_yes_{channel}", language, when=when))
        return Answered([reply], web_key=key)
    if pending.question == "followup":
        outcome = outcome_answer(text)
        if outcome is None:
            return None
        insight.followup_answered(channel, pending.types, outcome)
        if outcome == "yes":
            return Answered([Reply(text=t("followup.answer_yes", language))])
        buttons = [
            Button(title=t("followup.buttons.book", language), payload=BOOK_PAYLOAD),
            Button(title=t("followup.buttons.person", language), payload=PERSON_PAYLOAD),
        ]
        return Answered([Reply(text=t("followup.answer_not", language), buttons=buttons)])
    score = satisfaction_answer(text)
    if score is None:
        return None
    insight.count(Metric.SATISFACTION, channel, str(score))
    return Answered([Reply(text=t("satisfaction.thanks", language))])


# --- consent --------------------------------------------------------------------------------------


_ENGINE_YES_NO = frozenset({"/affirm", "/deny"})


def types_shown(replies: list[Reply], booked: bool) -> list[str]:
    """The offer types the turn showed (and "booking" when it confirmed one), in order. None when
    the turn itself asks a yes/no question: a "ja" must answer that one, not ours."""
    if any(b.payload in _ENGINE_YES_NO for reply in replies for b in reply.buttons):
        return []
    found = [offer.type for reply in replies for offer in reply.offers if not reply.crisis]
    return list(dict.fromkeys([*found, *([BOOKING_TYPE] if booked else [])]))


def _when(settings: Settings, language: str) -> str:
    days = round(settings.followup_delay_seconds / 86400)
    if days == 7:
        return t("followup.in_a_week", language)
    return t("followup.in_days", language, days=days) if days > 1 else t("followup.later", language)


async def ask_consent(
    redis: aioredis.Redis,
    settings: Settings,
    conversation_id: str,
    channel: str,
    language: str,
    types: list[str],
) -> Reply | None:
    """The consent question, once per conversation; None when it is not to be asked."""
    if not settings.followup_enabled or not types:
        return None
    if channel == "sms" and await optout.opted_out(redis, conversation_id):
        return None
    marker = keys.followup_consent_asked(conversation_id)
    if not await redis.set(marker, "1", nx=True, ex=settings.conversation_ttl_seconds):
        return None
    await _await_answer(redis, conversation_id, Pending("consent", types))
    question = t("followup.consent", language, when=_when(settings, language))
    if channel == "sms":
        return Reply(text=f"{question} {t('followup.reply_yes_no', language)}")
    buttons = [
        Button(title=t("followup.buttons.yes", language), payload=CONSENT_YES),
        Button(title=t("followup.buttons.no", language), payload=CONSENT_NO),
    ]
    return Reply(text=question, buttons=buttons)


def _web_id(key: str) -> str:
    """A web follow-up is stored under a hash of the page's key: a Redis dump asks nothing."""
    return hashlib.sha256(key.encode()).hexdigest()[:40]


async def schedule(
    redis: aioredis.Redis,
    settings: Settings,
    conversation_id: str,
    channel: str,
    language: str,
    types: list[str],
    now: float,
) -> str | None:
    """Keep a consented follow-up, due after the delay. Returns the web page's key (None on SMS)."""
    due = now + settings.followup_delay_seconds
    web_key = secrets.token_urlsafe(WEB_KEY_BYTES) if channel != "sms" else None
    followup_id = _web_id(web_key) if web_key else secrets.token_hex(20)
    keep = settings.followup_delay_seconds + FOLLOWUP_KEEP_SECONDS
    record = {
        "conversation": conversation_id,
        "channel": "sms" if web_key is None else "web",
        "language": language,
        "types": json.dumps(types),
        "due": f"{due:.3f}",
    }
    async with redis.pipeline(transaction=True) as pipe:
        pipe.hset(keys.followup(followup_id), mapping=record)
        pipe.expire(keys.followup(followup_id), keep)
        pipe.set(keys.followup_of(conversation_id), followup_id, ex=keep)
        if web_key is None:
            pipe.zadd(keys.followup_due(), {followup_id: due})
        await pipe.execute()
    return web_key


async def forget_conversation(redis: aioredis.Redis, conversation_id: str) -> None:
    """Drop the conversation's pending follow-up (erasure, STOP)."""
    followup_id = await redis.getdel(keys.followup_of(conversation_id))
    if followup_id is None:
        return
    async with redis.pipeline(transaction=True) as pipe:
        pipe.delete(keys.followup(followup_id))
        pipe.zrem(keys.followup_due(), followup_id)
        await pipe.execute()


def _question(language: str, buttons: bool) -> Reply:
    if not buttons:
        return Reply(text=t("followup.question", language))
    answers = [
        Button(title=t(f"followup.buttons.{word}", language), payload=payload)
        for payload, word in _OUTCOME_PAYLOADS.items()
    ]
    return Reply(text=t("followup.question", language), buttons=answers)


# --- asking: the web on the next visit ----------------------------------------------------------


@dataclass(frozen=True)
class WebVisit:
    status: Literal["asked", "not_due", "unknown"]
    conversation_id: str | None = None
    token: str | None = None
    language: str = "da"


async def visit(redis: aioredis.Redis, settings: Settings, web_key: str, now: float) -> WebVisit:
    """The page came back with its key: when the follow-up is due, it is asked in a new web
    conversation (the old one's token stayed in its tab), whose id and token are returned."""
    followup_id = _web_id(web_key)
    record = await redis.hgetall(keys.followup(followup_id))
    if not record or record.get("channel") != "web":
        return WebVisit("unknown")
    if float(record["due"]) > now:
        return WebVisit("not_due")
    if not await redis.delete(keys.followup(followup_id)):
        return WebVisit("unknown")  # another visit took it at the same moment
    await redis.delete(keys.followup_of(record["conversation"]))
    language = record["language"]
    ttl = settings.conversation_ttl_seconds
    conv = f"web-followup-{secrets.token_hex(16)}"
    token = await conversation.start_web(redis, conv, ttl)
    assert token is not None  # a fresh random id is never taken
    await conversation.touch(redis, conv, "web", language, ttl)
    await _put_question(redis, settings, conv, "web", language, json.loads(record["types"]))
    return WebVisit("asked", conv, token, language)


async def _put_question(
    redis: aioredis.Redis, settings: Settings, conv: str, channel: str, language: str, types: list[str]
) -> Reply:
    question = _question(language, buttons=channel == "web")
    await _await_answer(redis, conv, Pending("followup", types))
    await transcript.append(
        redis,
        conv,
        "bot",
        question.text,
        settings.conversation_ttl_seconds,
        channel=channel,
        buttons=[b.model_dump() for b in question.buttons],
    )
    return question


# --- asking: SMS when due ------------------------------------------------------------------------


class FollowUpSender:
    """Sends due SMS follow-ups through the SMS outbox; `clock` is injectable so tests can move
    time. Claimed with a lease: a gateway that dies mid-way leaves it to the next worker, and
    the outbox's send id ("followup.<id>") keeps a retry from sending it twice."""

    def __init__(
        self, redis: aioredis.Redis, settings: Settings, clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock
        self.leases = LeasedSet(redis, keys.followup_due(), settings.outbox_lease_seconds)
        # The outbox keeps its own (real) clock: what is queued is due at once.
        self.outbox = SmsOutbox(redis, settings, SmsSender(redis, settings))
        pause = settings.booking_scheduler_interval_seconds
        self._loop = BackgroundLoop("followup-sender", self.run_once, pause=pause, error_pause=pause)

    async def run_once(self) -> int:
        """Queue every follow-up due now (in opening hours); returns how many were queued."""
        now = self.clock()
        queued = 0
        for claim in await self.leases.claim(now, BATCH):
            record = await self.redis.hgetall(keys.followup(claim.member))
            if record:
                opening = self._not_before(now)
                if opening is not None:
                    await self.leases.retry(claim, opening)
                    continue
                queued += await self._ask(claim, record)
            await self.redis.delete(keys.followup(claim.member))
            await self.leases.done(claim)
        return queued

    def _not_before(self, now: float) -> float | None:
        """Outside opening hours: when they open (a question at night is not welcome)."""
        hours = staff_hours(self.settings)
        moment = datetime.fromtimestamp(now, UTC)
        if hours.is_open(moment):
            return None
        opening = hours.next_opening(moment)
        return opening.timestamp() if opening else None

    async def _ask(self, claim: Claim, record: dict[str, Any]) -> int:
        conv = record["conversation"]
        number = await recipients.number_for(self.redis, conv)
        if number is None or await optout.opted_out(self.redis, conv):
            log.info("sms follow-up dropped", extra={"reason": "opted_out" if number else "no_number"})
            await self.redis.delete(keys.followup_of(conv))
            return 0
        language = record["language"]
        # A stale "2" from a week ago must not pick a button now.
        await choices.remember(self.redis, conv, [], self.settings.conversation_ttl_seconds)
        question = await _put_question(
            self.redis, self.settings, conv, "sms", language, json.loads(record["types"])
        )
        await self.outbox.put(f"followup.{claim.member}", [QueuedSms(number, conv, question.text)])
        await self.redis.delete(keys.followup_of(conv))
        return 1

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()


# --- satisfaction ----------------------------------------------------------------------------------


async def ask_satisfaction(
    redis: aioredis.Redis, settings: Settings, conversation_id: str, language: str
) -> None:
    """After staff closed the conversation: how satisfied, 1-5. Once per conversation."""
    if not settings.satisfaction_enabled:
        return
    marker = keys.satisfaction_asked(conversation_id)
    if not await redis.set(marker, "1", nx=True, ex=settings.conversation_ttl_seconds):
        return
    await _await_answer(redis, conversation_id, Pending("satisfaction", []))
    await choices.remember(redis, conversation_id, [], settings.conversation_ttl_seconds)
    buttons = [Button(title=str(n), payload=f"/satisfaction_{n}") for n in range(1, 6)]
    text = t("satisfaction.question", language)
    await deliver_to_citizen(redis, settings, conversation_id, text, sender="bot", buttons=buttons)
