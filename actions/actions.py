"""Custom actions: thin adapters that read the tracker and call the domain package."""

from __future__ import annotations

import asyncio
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import context
from actions.nlg import text_of
from indgang import conversation, handoff, offer_questions, safety
from indgang.booking.words import asks_to_book
from indgang.guidance import Situation, guide, parse_age, states_age
from indgang.i18n import lookup, t
from indgang.insight import Metric
from indgang.need_gate import need_gate
from indgang.queue_watch import place_notice
from indgang.search import get_offer_search

REFINING_INTENTS = frozenset({"inform_relation", "inform_age", "inform_municipality"})
FALLBACKS_BEFORE_PERSON = 2
# Below this the NLU's out_of_scope is a guess, not a question about something else: on a word
# salad ("blå hest trompet fjernsyn", 0.80) it is a miss, with the buttons to rephrase; questions
# about the weather or a parking fine read 0.97-1.0.
OUT_OF_SCOPE_SURE = 0.9


def _intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


class ActionSearchOffers(Action):
    """Offers for the situation the citizen describes, refined by who, how old and where."""

    def name(self) -> str:
        return "action_search_offers"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        message = tracker.latest_message
        text = message.get("text") or ""
        query = text
        if _intent(tracker) in REFINING_INTENTS:
            pointed = await about_shown_offer(dispatcher, tracker)  # "1" or "nr 2" is no age
            if pointed is not None:
                return pointed
        # "min søn er 17" refines the need said before; a new need said with an age is a new need
        if _intent(tracker) in REFINING_INTENTS and not need_gate().states_need(text):
            query = tracker.get_slot("need_text")
            if not query:
                dispatcher.utter_message(text=t("bot.guidance.ask_need", context.language(message)))
                return []
        return await offer_guidance(dispatcher, tracker, query)


def stated_age(tracker: Tracker) -> int | None:
    """The latest age the writer stated. The NLU fills the age slot from any number ("lejer i nr
    9", "om 3 uger"), so each age it found is checked against the words around it; with no
    message to check (a slot set otherwise), the slot counts."""
    earlier = [
        {"text": e.get("text"), "entities": (e.get("parse_data") or {}).get("entities")}
        for e in reversed(tracker.events)
        if e.get("event") == "user"
    ]
    messages = [tracker.latest_message, *earlier]
    found = False
    for message in messages:
        text = message.get("text") or ""
        for entity in message.get("entities") or ():
            if entity.get("entity") != "age" or "start" not in entity:
                continue
            found = True
            if states_age(text, entity["start"], entity["end"]):
                return parse_age(entity.get("value"))
    return None if found else parse_age(tracker.get_slot("age"))


async def offer_guidance(dispatcher: CollectingDispatcher, tracker: Tracker, query: str) -> list[EventType]:
    """The offers that fit `query`, with how to get in; remembered for follow-up questions."""
    message = tracker.latest_message
    lang, channel = context.language(message), context.channel(message)
    assessment = safety.assess(query)  # once: who is at risk, and whether it is danger now
    situation = Situation(
        text=query,
        language=lang,
        relation=tracker.get_slot("relation"),
        age=stated_age(tracker),
        municipality=tracker.get_slot("municipality"),
        about_other=assessment.about_other,
        urgent=assessment.risk == "acute",
        followup_allowed=not tracker.get_slot("followup_asked"),
        brief=channel == "sms",
    )
    # The search is CPU-bound (embeddings); keep the event loop free for other conversations.
    guidance = await asyncio.to_thread(guide, get_offer_search(context.settings()), situation)
    if guidance.unmet is not None:
        context.insight().count(Metric.UNMET, channel, guidance.unmet)
    elif guidance.offers:
        context.insight().count(Metric.NEED, channel, guidance.offers[0].type)
    if not guidance.offers:
        return await count_miss(dispatcher, tracker, guidance.text)  # nothing fits: a miss too
    offers = [o.model_dump(exclude_none=True) for o in guidance.offers]
    dispatcher.utter_message(json_message={"text": guidance.text, "offers": offers})
    s = context.settings()
    await conversation.record_offers(context.redis(), tracker.sender_id, offers, s.conversation_ttl_seconds)
    return [
        SlotSet("need_text", query),
        SlotSet("followup_asked", bool(tracker.get_slot("followup_asked") or guidance.followup)),
        SlotSet("fallback_count", 0),
    ]


async def guide_if_need(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType] | None:
    """Offers now when the message states a need that the intent model read as something else;
    None when it does not."""
    text = tracker.latest_message.get("text") or ""
    if text.startswith("/") or not need_gate().states_need(text):
        return None
    return await offer_guidance(dispatcher, tracker, text)


async def about_shown_offer(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType] | None:
    """A short message that points at an offer just shown ("den første", "1", "mere om nr 2"),
    whatever intent was read in it (a bare "1" reads as an age): answered about that offer."""
    message = tracker.latest_message
    text = message.get("text") or ""
    record = await conversation.get(context.redis(), tracker.sender_id)
    shown = record.offers_shown if record else []
    if not shown or not offer_questions.is_pointer(text, shown):
        return None
    dispatcher.utter_message(text=offer_questions.answer(text, shown, context.language(message)))
    return []


async def book_or_guide(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType] | None:
    """What a message asks beside the intent read in it: booking words start a booking ("ja tak,
    book mig" read as a yes); a pointer at a shown offer is answered about it; else a need gets
    offers (`guide_if_need`); None when none of these."""
    if booking_asked(tracker):
        return [FollowupAction("action_booking_start")]
    return await point_or_guide(dispatcher, tracker)


def booking_asked(tracker: Tracker) -> bool:
    """The message asks for a booking in so many words (a button's payload is no words)."""
    text = tracker.latest_message.get("text") or ""
    return not text.startswith("/") and asks_to_book(text)


async def point_or_guide(dispatcher: CollectingDispatcher, tracker: Tracker) -> list[EventType] | None:
    """A pointer at a shown offer answered about it, else a need answered with offers; None when
    the message is neither."""
    pointed = await about_shown_offer(dispatcher, tracker)
    return pointed if pointed is not None else await guide_if_need(dispatcher, tracker)


# What the small-talk intents answer (bot.<text> in the translation files) when the message is
# not also a need.
SMALL_TALK = {
    "greet": "greet",
    "goodbye": "goodbye",
    "thank": "thanks",
    "bot_help": "help",
    "affirm": "what_next",
    "deny": "anything_else",
}


class ActionSmallTalk(Action):
    """Greetings, thanks, yes and no: the usual answer, unless the same message asks for a booking
    ("ja tak, book mig") or states a need ("hej, min datter på 8 kan ikke læse"): then the
    booking form, or the offers, in this turn."""

    def name(self) -> str:
        return "action_small_talk"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        redirected = await book_or_guide(dispatcher, tracker)
        if redirected is not None:
            return redirected
        lang = context.language(tracker.latest_message)
        reply = text_of(SMALL_TALK.get(_intent(tracker), "what_next"), lang)
        dispatcher.utter_message(text=reply["text"], buttons=reply["buttons"])
        return []


class ActionExplainAccess(Action):
    """Questions about the offers just shown: how to get in, and what it costs, where it is,
    when it is open, how long the wait is, whether one can be anonymous (indgang/offer_questions).
    A question in booking words ("kan jeg få en tid med en tovholder?") is a booking."""

    def name(self) -> str:
        return "action_explain_access"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if booking_asked(tracker):
            return [FollowupAction("action_booking_start")]
        message = tracker.latest_message
        record = await conversation.get(context.redis(), tracker.sender_id)
        shown = record.offers_shown if record else []
        if not shown:
            # Nothing shown to answer from ("hvordan får jeg en tovholder" as a first message): the
            # offers themselves, each with its way in.
            guided = await guide_if_need(dispatcher, tracker)
            if guided is not None:
                return guided
        text = message.get("text") or ""
        dispatcher.utter_message(text=offer_questions.answer(text, shown, context.language(message)))
        return []


async def hand_over(dispatcher: CollectingDispatcher, tracker: Tracker, reason: str) -> None:
    """Ask for a person and tell the citizen where they are in the queue."""
    lang = context.language(tracker.latest_message)
    s = context.settings()
    redis = context.redis()
    current = await handoff.get(redis, tracker.sender_id)
    if current.state == handoff.HandoffState.ACTIVE:
        dispatcher.utter_message(text=t("bot.handoff.already", lang))
        return
    await handoff.request_person(
        redis, tracker.sender_id, context.channel(tracker.latest_message), s.conversation_ttl_seconds, reason
    )
    notice = await place_notice(redis, s, tracker.sender_id, lang)
    dispatcher.utter_message(text=f"{t('bot.handoff.requested', lang)}\n{notice}")


class ActionRequestHandoff(Action):
    def name(self) -> str:
        return "action_request_handoff"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        if booking_asked(tracker):
            # "Kan jeg få et møde med en person?" asks for a person, and the person is a meeting.
            return [FollowupAction("action_booking_start")]
        await hand_over(dispatcher, tracker, reason=_intent(tracker) or "request_human")
        return [SlotSet("fallback_count", 0)]


async def count_miss(
    dispatcher: CollectingDispatcher, tracker: Tracker, first_text: str | None = None
) -> list[EventType]:
    """First miss: ask to rephrase (`first_text` or the default), with the main paths as buttons.
    Second miss: a person takes over."""
    lang = context.language(tracker.latest_message)
    misses = int(tracker.get_slot("fallback_count") or 0) + 1
    if misses >= FALLBACKS_BEFORE_PERSON:
        dispatcher.utter_message(text=t("bot.fallback.handing_over", lang))
        await hand_over(dispatcher, tracker, reason="fallback")
        return [SlotSet("fallback_count", 0)]
    dispatcher.utter_message(
        text=first_text or t("bot.fallback.rephrase", lang),
        buttons=lookup("bot.fallback.rephrase_buttons", lang) or [],
    )
    return [SlotSet("fallback_count", misses)]


class ActionFallback(Action):
    """A message the NLU did not understand counts as a miss."""

    def name(self) -> str:
        return "action_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        redirected = await book_or_guide(dispatcher, tracker)
        return redirected if redirected is not None else await count_miss(dispatcher, tracker)


class ActionOutOfScope(Action):
    """Say what the assistant helps with; right after a miss, or when the NLU is unsure, though,
    it counts as a miss: a person is better than a third try."""

    def name(self) -> str:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[EventType]:
        redirected = await book_or_guide(dispatcher, tracker)
        if redirected is not None:
            return redirected
        sure = float((tracker.latest_message.get("intent") or {}).get("confidence") or 0.0)
        if int(tracker.get_slot("fallback_count") or 0) > 0 or sure < OUT_OF_SCOPE_SURE:
            return await count_miss(dispatcher, tracker)
        dispatcher.utter_message(text=t("bot.out_of_scope", context.language(tracker.latest_message)))
        return []
