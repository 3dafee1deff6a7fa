"""Every inbound message, from any channel, goes through here.

Order matters: the message is stored first (nothing is lost), then the safety check runs
(before the bot, and also while staff hold the conversation), then the message goes to staff
or to the dialogue engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import LockError

from indgang import conversation, engine_retry, followup, handoff, keys, metrics, safety, transcript
from indgang.booking import current_booking, in_booking_form
from indgang.booking.words import asks_to_book
from indgang.dialogue import Button, DialogueEngine, EngineUnavailable, OfferCard, Reply
from indgang.events import EventType, emit
from indgang.handoff import Priority
from indgang.i18n import normalise_language, t
from indgang.insight import Insight, Metric
from indgang.language import guess_language
from indgang.need_gate import need_gate
from indgang.offer_cards import offer_card, offer_line, offers_of_type
from indgang.queue_watch import booked_from_queue, place_notice
from indgang.records.db import Database
from indgang.safety.normalise import storable
from indgang.search import get_offer_search
from indgang.search.engine import URGENT_TYPE
from indgang.settings import Settings
from indgang.sms import choices, recipients
from indgang.sms.compose import compose, fitting
from indgang.sms.outbox import QueuedSms, SmsOutbox
from indgang.sms.sender import SendKind, SmsSender
from indgang.spool import SpooledMessage

log = logging.getLogger(__name__)

REQUEST_HUMAN_PAYLOAD = "/request_human"
CRISIS_OFFERS = 3  # offers shown with the emergency reply on the web


@dataclass
class Turn:
    """The outcome of one inbound message."""

    conversation_id: str
    language: str
    replies: list[Reply] = field(default_factory=list)
    handoff: str = "none"
    booking: dict[str, Any] | None = None
    engine_down: bool = False
    # A question the gateway adds after the turn's replies (the follow-up consent): on the web
    # one more reply, on SMS the last lines of the same SMS.
    after: list[Reply] = field(default_factory=list)
    followup_key: str | None = None  # a web consent: the page keeps it to be asked later


def offline_reply(text: str, language: str | None, saved: bool) -> tuple[Reply, str]:
    """The answer while Redis is unreachable: the safety check runs in memory on this message
    alone (the conversation so far is in Redis), so a crisis still gets 112 and the crisis
    lines at once; any other message is told honestly whether it was kept for later."""
    lang = normalise_language(language or guess_language(text))
    assessment = safety.assess(storable(text), [])
    if assessment.crisis:
        reply = Reply(text=safety.crisis_reply(assessment, lang), crisis=True, risk=assessment.risk)
    else:
        reply = Reply(text=t("chat.store_down" if saved else "chat.store_down_unsaved", lang))
    return reply, lang


class Inbound:
    def __init__(
        self,
        redis: aioredis.Redis,
        db: Database,
        engine: DialogueEngine,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        insight: Insight | None = None,
    ) -> None:
        self.redis = redis
        self.db = db
        self.engine = engine
        self.settings = settings
        self.clock = clock  # when a follow-up consented to now is due
        # Counts for the insight page (none kept when not given: tests of other things)
        self.insight = insight or Insight(None, settings.booking_timezone, clock)

    @property
    def ttl(self) -> int:
        return self.settings.conversation_ttl_seconds

    async def handle(
        self,
        conversation_id: str,
        text: str,
        channel: str = "web",
        language: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Turn:
        """One message, after the conversation's message before it is done (on any gateway)."""
        async with self.one_at_a_time(conversation_id):
            return await self._handle(conversation_id, text, channel, language, metadata)

    @contextlib.asynccontextmanager
    async def one_at_a_time(self, conversation_id: str) -> AsyncIterator[None]:
        """Holds the conversation's turn lock, so its turns (a new message, or one that waited for
        the engine) run one at a time across gateways and Rasa replicas: the transcript, Rasa's
        tracker and the replies keep one order. Rasa's own lock store does not promise that
        across replicas (README, "Several replicas")."""
        # A turn lasts at most the engine's timeout and some Redis calls; a lock whose holder
        # died expires after twice that, and a message that waited that long goes on unserialised.
        longest = 2 * self.settings.rasa_timeout_seconds + 5
        lock = self.redis.lock(keys.turn_lock(conversation_id), timeout=longest, sleep=0.01)
        if not await lock.acquire(blocking_timeout=longest):
            log.warning("the conversation's previous turn still holds its lock; going on")
        try:
            yield
        finally:
            with contextlib.suppress(LockError):  # expired, or erased with the conversation
                await lock.release()

    async def _handle(
        self,
        conversation_id: str,
        text: str,
        channel: str,
        language: str | None,
        metadata: dict[str, Any] | None,
    ) -> Turn:
        started = time.perf_counter()
        text = storable(text)  # a lone surrogate would make Redis refuse the message (a 500)
        metrics.MESSAGES.labels(channel).inc()
        known = await conversation.get(self.redis, conversation_id)
        if known is None or known.updated_at is None:  # a web conversation's start has no message yet
            self.insight.count(Metric.CONVERSATION, channel)
        lang = normalise_language(language or guess_language(text) or (known.language if known else None))
        await conversation.touch(self.redis, conversation_id, channel, lang, self.ttl)
        await transcript.append(self.redis, conversation_id, "user", text, self.ttl, channel=channel)
        turn = Turn(conversation_id=conversation_id, language=lang)

        earlier = await self._earlier(conversation_id)
        in_danger = _in_acute_danger(earlier)
        assessment = safety.assess(text, _unalarmed(earlier), in_danger=in_danger)
        state = await handoff.get(self.redis, conversation_id)
        if state.with_staff and not assessment.crisis and booked_from_queue(state, text):
            # The citizen took the queue's offer of a booking: out of the queue, to the booking form.
            await handoff.close(self.redis, conversation_id, self.ttl)
            state = await handoff.get(self.redis, conversation_id)
        to_staff = state.with_staff and (
            assessment.crisis or not await self._books_while_queued(conversation_id, state, text)
        )
        # A question the gateway asked waits for this one message, answer or not.
        pending = await followup.take_pending(self.redis, conversation_id)
        answered = None
        if pending is not None and not assessment.crisis and not to_staff:
            answered = await followup.answer(
                self.redis, self.settings, self.insight, conversation_id, channel, lang, pending, text,
                self.clock(),
            )  # fmt: skip
        if assessment.crisis:
            route = f"crisis_{assessment.risk}"
            metrics.CRISES.labels(channel).inc()
            turn.replies = await self._crisis(conversation_id, channel, assessment, lang, text)
        elif to_staff and in_danger and safety.danger_continues(text):
            # "skynd jer", "hun er 5": the emergency goes on until help has come; staff who hold
            # the conversation answer themselves
            route = "crisis_continues"
            if state.state != handoff.HandoffState.ACTIVE:
                turn.replies = [await self._still_in_danger(conversation_id, lang)]
        elif to_staff:
            route = "staff"
            turn.replies = await self._waiting_for_staff(conversation_id, state, lang, text, channel)
        elif assessment.child_concern:
            route = "child_concern"
            turn.replies = [
                Reply(
                    text=t("safety.child_concern", lang), offers=self._offers_of_type("bekymring_barn", lang)
                )
            ]
        elif answered is not None:
            route = "followup"
            turn.replies, turn.followup_key = answered.replies, answered.web_key
        else:
            route = "engine"
            before = turn.booking = await current_booking(self.db, self.redis, conversation_id)
            turn.replies, turn.engine_down = await self._ask_engine(
                conversation_id, text, channel, lang, metadata or {}
            )
            if not turn.engine_down:
                after = turn.booking = await current_booking(self.db, self.redis, conversation_id)
                self._count_bookings(channel, before, after)
                turn.after = await self._ask_consent(
                    conversation_id, channel, lang, turn.replies, before, after
                )

        await self.store_replies(conversation_id, channel, turn.replies + turn.after)
        turn.handoff = (await handoff.get(self.redis, conversation_id)).api_state
        if route != "engine":  # the engine's turn read the booking once the engine had answered
            turn.booking = await current_booking(self.db, self.redis, conversation_id)
        metrics.TURN_SECONDS.labels(route).observe(time.perf_counter() - started)
        return turn

    async def _books_while_queued(self, conversation_id: str, state: handoff.Handoff, text: str) -> bool:
        """The safety check, not the citizen, put the conversation in the queue (a concern): while
        it waits, a booking asked for in words starts with the bot, and the booking form's answers
        go on there. The conversation keeps its place high in the queue."""
        concern = state.reason == "concern" and state.priority != Priority.URGENT  # not since raised
        if state.state != handoff.HandoffState.REQUESTED or not concern:
            return False
        return asks_to_book(text) or await in_booking_form(self.redis, conversation_id)

    async def _ask_consent(
        self,
        conversation_id: str,
        channel: str,
        lang: str,
        replies: list[Reply],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> list[Reply]:
        """After guidance (offers shown) or a booking confirmed in this turn: may we ask later?"""
        booked = after is not None and after.get("state") == "confirmed" and before != after
        types = followup.types_shown(replies, booked)
        ask = await followup.ask_consent(self.redis, self.settings, conversation_id, channel, lang, types)
        return [ask] if ask else []

    def _count_bookings(
        self, channel: str, before: dict[str, Any] | None, after: dict[str, Any] | None
    ) -> None:
        """A booking made or cancelled in this turn (a move is both), as the insight page counts it."""

        def held(booking: dict[str, Any] | None) -> str | None:
            # a booking being moved ("collecting" with its id) still holds its time
            holds = booking is not None and booking.get("state") in ("confirmed", "collecting")
            return booking.get("id") if holds else None

        was, now = held(before), held(after)
        if now is not None and now != was:
            self.insight.count(Metric.BOOKING_MADE, channel)
        if was is not None and now != was:
            self.insight.count(Metric.BOOKING_CANCELLED, channel)

    async def store_replies(self, conversation_id: str, channel: str, replies: list[Reply]) -> None:
        for reply in replies:
            await transcript.append(
                self.redis,
                conversation_id,
                "bot",
                reply.text,
                self.ttl,
                channel=channel,
                crisis=reply.crisis,
                risk=reply.risk,
                offers=[o.model_dump(exclude_none=True) for o in reply.offers],
                buttons=[b.model_dump() for b in reply.buttons],
            )

    async def deliver(
        self,
        conversation_id: str,
        channel: str,
        language: str,
        replies: list[Reply],
        send_id: str,
        number: str | None = None,
    ) -> None:
        """Replies outside a turn (the engine back, the queue watch), on the conversation's own
        channel: the transcript (the web chat shows it live) and, for SMS, the outbox under
        `send_id` (queued once per id), with its buttons as numbered choices."""
        await self.store_replies(conversation_id, channel, replies)
        if channel != "sms" or not replies:
            return
        number = number or await recipients.number_for(self.redis, conversation_id)
        if number is None:
            return
        composed = compose(replies, language)
        await choices.remember(self.redis, conversation_id, composed.choices, self.ttl)
        kind = SendKind.URGENT if composed.crisis else SendKind.REPLY
        sms = QueuedSms(number, conversation_id, composed.text, kind)
        await SmsOutbox(self.redis, self.settings, SmsSender(self.redis, self.settings)).put(send_id, [sms])

    async def replay_web(self, message: SpooledMessage) -> None:
        """A web message kept in the spool while Redis was down, now through the normal path. Its
        token was not checkable then, so it is checked now: a message for somebody else's
        conversation is dropped, never stored."""
        conv = message.conversation_id
        if message.new_conversation:
            allowed = await conversation.start_web(self.redis, conv, self.ttl, token=message.token)
        else:
            allowed = await conversation.token_matches(self.redis, conv, message.token)
        if not allowed:
            log.warning("spooled web message dropped: not the conversation's token")
            return
        await self.handle(conv, message.text, "web", message.language)

    async def _earlier(self, conversation_id: str) -> list[transcript.Message]:
        """The conversation's last messages before this one (already stored, so left out)."""
        recent = await transcript.tail(self.redis, conversation_id, 4 * safety.WINDOW_TURNS)
        return recent[:-1] if recent and recent[-1].sender == "user" else recent

    async def _unalarmed_turns(self, conversation_id: str) -> list[str]:
        return _unalarmed(await self._earlier(conversation_id))

    async def _still_in_danger(self, conversation_id: str, lang: str) -> Reply:
        notice = await place_notice(self.redis, self.settings, conversation_id, lang)
        number = safety.crisis_lines(lang)[0].number
        text = f"{t('safety.continues', lang, number=number)}\n{notice}"
        return Reply(text=text, crisis=True, risk="acute")

    async def _crisis(
        self, conversation_id: str, channel: str, assessment: safety.SafetyAssessment, lang: str, text: str
    ) -> list[Reply]:
        acute = assessment.risk == "acute"
        # On the web the emergency reply also shows where help is (akut hjælp first, then e.g. a
        # krisecenter); an SMS keeps to the emergency text, so it stays short and arrives whole.
        offers = [] if channel == "sms" else await asyncio.to_thread(self._offers, text, lang, acute)
        reply = Reply(
            text=safety.crisis_reply(assessment, lang), crisis=True, risk=assessment.risk, offers=offers
        )
        await conversation.raise_risk(self.redis, conversation_id, assessment.risk, self.ttl)
        self.insight.count(Metric.CRISIS, channel, assessment.risk)
        await handoff.request_person(
            self.redis,
            conversation_id,
            channel,
            self.ttl,
            reason="crisis" if acute else "concern",
            priority=Priority.URGENT if acute else Priority.HIGH,
        )
        await emit(
            self.redis,
            EventType.CRISIS_DETECTED,
            {
                "conversation_id": conversation_id,
                "channel": channel,
                "risk": assessment.risk,
                "categories": sorted(assessment.categories),
                "about_other": assessment.about_other,
            },
        )
        # No conversation id beside a risk in the log: the event above carries that link, to the
        # municipality's systems only; which layers fired is counted in metrics.
        log.warning("crisis detected", extra={"channel": channel, "risk": assessment.risk})
        for layer in assessment.layers:
            metrics.SAFETY_LAYERS.labels(layer, assessment.risk).inc()
        return [reply]

    def _offers(self, text: str, lang: str, alarm: bool = False) -> list[OfferCard]:
        search = get_offer_search(self.settings)
        hits = search.search(text, limit=CRISIS_OFFERS, language=lang, urgent=alarm or None)
        cards = [offer_card(h.offer, lang, search.catalogue.stale_days) for h in hits]
        if alarm and not (cards and cards[0].type == URGENT_TYPE):
            # the alarm is raised: where to get help now comes first, whatever the search ranked
            urgent = offers_of_type(search.catalogue, URGENT_TYPE, lang, limit=1)
            cards = [*urgent, *(c for c in cards if c.type != URGENT_TYPE)][:CRISIS_OFFERS]
        return cards

    def _offers_of_type(self, offer_type: str, lang: str) -> list[OfferCard]:
        return offers_of_type(get_offer_search(self.settings).catalogue, offer_type, lang)

    async def _waiting_for_staff(
        self, conversation_id: str, state: handoff.Handoff, lang: str, text: str, channel: str
    ) -> list[Reply]:
        if state.state == handoff.HandoffState.ACTIVE:
            return []  # staff answer in their own time; the page polls for their replies
        reply = await self.waiting_reply(conversation_id, lang)
        # A need told while waiting (after an alarm: "I'm shaken, is there anyone I can talk to?")
        # is answered with offers now, not only when a person gets to it.
        if not await asyncio.to_thread(need_gate().states_need, text):
            return [reply]
        offers = await asyncio.to_thread(self._offers, text, lang)
        if not offers:
            return [reply]
        head = f"{reply.text}\n{t('chat.waiting_offers', lang)}"
        if channel == "sms":
            # No cards on SMS: each offer is a line with its way in, as many as the budget holds.
            lines = fitting(head, [offer_line(o, lang, brief=True) for o in offers])
            offers = offers[: len(lines)]
            head = "\n".join([head, *lines])
        shown = [o.model_dump(exclude_none=True) for o in offers]
        await conversation.record_offers(self.redis, conversation_id, shown, self.ttl)
        self.insight.count(Metric.NEED, channel, offers[0].type)
        return [Reply(text=head, offers=offers)]

    async def waiting_reply(self, conversation_id: str, lang: str) -> Reply:
        notice = await place_notice(self.redis, self.settings, conversation_id, lang)
        return Reply(text=f"{t('chat.waiting_for_staff', lang)}\n{notice}")

    async def _ask_engine(
        self, conversation_id: str, text: str, channel: str, lang: str, metadata: dict[str, Any]
    ) -> tuple[list[Reply], bool]:
        try:
            if await engine_retry.has_waiting(self.redis, conversation_id):
                # Earlier messages wait for the engine: this one goes behind them, in order.
                raise EngineUnavailable("earlier messages are waiting for the engine")
            replies = await self.engine.send(
                conversation_id, text, {**metadata, "channel": channel, "language": lang}
            )
            if not replies:
                raise EngineUnavailable("the dialogue engine produced no reply")
            return replies, False
        except EngineUnavailable as exc:
            metrics.ENGINE_FAILURES.inc()
            log.error("dialogue engine unavailable: %s", exc)
            if text.strip() == REQUEST_HUMAN_PAYLOAD:
                # The engine is down, but a person can still be reached through the gateway alone.
                await handoff.request_person(
                    self.redis, conversation_id, channel, self.ttl, reason="engine_down"
                )
                return [await self.waiting_reply(conversation_id, lang)], True
            waiting = engine_retry.Waiting(text, channel, lang, metadata, at=time.time())
            await engine_retry.wait(self.redis, self.settings, conversation_id, waiting)
            minutes = math.ceil(self.settings.engine_down_handoff_seconds / 60)
            button = Button(title=t("chat.talk_to_person_button", lang), payload=REQUEST_HUMAN_PAYLOAD)
            return [Reply(text=t("chat.engine_down", lang, minutes=minutes), buttons=[button])], True


def _unalarmed(earlier: list[transcript.Message]) -> list[str]:
    """The writer's previous turns since the last alarm, so danger that builds over several
    messages is seen, and no alarm is raised twice from the same words. The turn right after an
    acute alarm is left out too: it kept the emergency going (and was answered as one) or said
    that help has come ("the paramedics are here"), and its words are the emergency's."""
    turns: list[str] = []
    after_acute = False
    for message in earlier:
        if message.sender == "bot" and message.crisis:
            turns, after_acute = [], message.risk == "acute"
        elif message.sender == "user":
            if not after_acute:
                turns.append(message.text)
            after_acute = False
    return turns[-(safety.WINDOW_TURNS - 1) :]


def _in_acute_danger(earlier: list[transcript.Message]) -> bool:
    """Whether the assistant's last word in this conversation was the acute emergency reply (or
    its continuation), with nothing from staff since."""
    last = next((m for m in reversed(earlier) if m.sender != "user"), None)
    return last is not None and last.sender == "bot" and last.crisis and last.risk == "acute"
