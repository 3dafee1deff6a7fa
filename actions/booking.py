"""Booking a conversation with a tovholder: the form's questions, its validation, and the
actions that start, submit, move and cancel. Thin: the rules live in indgang.booking.

The form (bot/domain/booking.yml) asks for consent, who it is for (and, for someone else,
whether they agreed), a name, a phone number (prefilled from the SMS sender), a topic, how to
meet and a time. The time is booked atomically the moment the citizen picks it; a slot taken
meanwhile is answered with new proposals.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from datetime import UTC, datetime
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions import context
from actions.actions import hand_over, point_or_guide
from indgang import conversation
from indgang.booking import (
    BookingLimitReached,
    BookingRequest,
    MeetingKind,
    Slot,
    SlotUnavailable,
    TimeWish,
    Tovholder,
    book,
    calendar_for,
    cancel_booking,
    find_active_booking,
    get_booking,
    move_booking,
    start_collecting,
    stop_collecting,
    tovholdere_for,
)
from indgang.booking import texts as booking_texts
from indgang.booking.when import parse_wish
from indgang.booking.words import asks_to_book
from indgang.i18n import lookup, t
from indgang.phone import normalise_phone

FORM = "booking_form"
# Every slot the form uses; all are cleared when a booking ends, so the next starts afresh.
BOOKING_SLOTS = (
    "booking_consent",
    "booking_for_whom",
    "booking_consent_other",
    "booking_name",
    "booking_phone",
    "booking_topic",
    "booking_kind",
    "booking_slot",
    "booking_proposals",
    "booking_wish",
    "booking_moving",
    "booking_outcome",
)
PROPOSALS = 3

YES = frozenset({"ja", "jo", "jep", "ok", "okay", "gerne", "fint", "yes", "yeah", "yep", "sure", "i orden"})
NO = frozenset({"nej", "nope", "no", "ikke", "nej tak", "no thanks"})
SELF = frozenset({"mig", "mig selv", "selv", "til mig", "til mig selv", "me", "myself", "for me"})
OTHER_WORDS = re.compile(
    r"\b(?:anden|andre|en anden|someone|somebody|other|else|søn|datter|barn|børn|mor|far|forælder|"
    r"partner|kæreste|kone|mand|bror|søster|ven|veninde|nabo|son|daughter|child|mother|father|"
    r"parent|wife|husband|brother|sister|friend|neighbour)\b"
)
KIND_WORDS = {
    MeetingKind.PHONE: re.compile(r"\b(?:telefon\w*|ring\w*|opkald|phone|call)\b"),
    MeetingKind.VIDEO: re.compile(r"\b(?:video\w*|skærm|online|teams|zoom)\b"),
    MeetingKind.MEETING: re.compile(r"\b(?:møde\w*|mødes|fysisk\w*|personligt|ansigt|meeting|meet|person)\b"),
}
KIND_ORDER = (MeetingKind.PHONE, MeetingKind.VIDEO, MeetingKind.MEETING)  # as the buttons
STOP = re.compile(r"^\s*(?:aflys|afbryd|stop|stopp|fortryd|cancel)\b", re.IGNORECASE)
INTERRUPTIONS = {"cancel_booking": "stopped", "request_human": "handoff"}  # intent -> outcome
NAME = re.compile(r"^[^\W\d_]+(?:[ '’-][^\W\d_]+){0,3}$")
NAME_LEADS = re.compile(
    r"^(?:jeg hedder|mit navn er|han hedder|hun hedder|de hedder|my name is|i am|call me)\s+", re.IGNORECASE
)


def _intent(tracker: Tracker) -> str:
    return (tracker.latest_message.get("intent") or {}).get("name") or ""


def _words(value: Any) -> str:
    return re.sub(r"[\s.!]+", " ", str(value or "").casefold()).strip()


def _choice(value: Any, count: int) -> int | None:
    """A numbered answer ("2", as on SMS) -> its index."""
    text = _words(value)
    return int(text) - 1 if text.isdigit() and 1 <= int(text) <= count else None


def _yes_no(tracker: Tracker, value: Any) -> bool | None:
    intent = _intent(tracker)
    if intent in ("affirm", "deny"):
        return intent == "affirm"
    text = _words(value)
    picked = _choice(text, 2)
    if picked is not None:
        return picked == 0  # the buttons are yes, no
    if text in YES or text.split(" ")[0] in YES:
        return True
    if text in NO or text.split(" ")[0] in NO:
        return False
    return None


def _for_whom(value: Any) -> str | None:
    """ "self" or "other" when the words say who the conversation is for."""
    text = _words(value)
    if text in SELF:
        return "self"
    return "other" if OTHER_WORDS.search(text) else None


def _say(dispatcher: CollectingDispatcher, key: str, lang: str, **values: Any) -> None:
    """Utter a text entry, or a {text, buttons} entry, from the translation files."""
    if isinstance(lookup(key, lang), str):
        dispatcher.utter_message(text=t(key, lang, **values))
        return
    buttons = lookup(f"{key}.buttons", lang) or []
    dispatcher.utter_message(text=t(f"{key}.text", lang, **values), buttons=buttons)


def _lang(tracker: Tracker) -> str:
    return context.language(tracker.latest_message)


def _now() -> datetime:
    return datetime.now(UTC)


def _sender_phone(tracker: Tracker) -> str | None:
    """On SMS the gateway passes the sender's verified number (Twilio's From) in the message
    metadata. On any other channel a number is never identity, whatever the metadata says."""
    if context.channel(tracker.latest_message) != "sms":
        return None
    raw = context.metadata(tracker.latest_message).get("phone")
    return normalise_phone(str(raw)) if raw else None


def _reset() -> list[EventType]:
    return [SlotSet(slot, None) for slot in BOOKING_SLOTS]


async def _tovholdere(tracker: Tracker) -> tuple[list[Tovholder], bool]:
    """The moved booking's tovholder, the citizen's own, or the team for their needs. The own
    tovholder is known only from the verified SMS sender: a number typed on the web is a contact
    detail, and looking it up would tell anyone whose number it is that the owner is a client."""
    settings = context.settings()
    redis = context.redis()
    moving = tracker.get_slot("booking_moving")
    if moving:
        booking = await get_booking(context.db(), moving)
        own = (await calendar_for(context.db(), settings)).directory.get(
            booking.tovholder if booking else None
        )
        if own is not None:
            return [own], True
    record = await conversation.get(redis, tracker.sender_id)
    areas = {offer["type"] for offer in (record.offers_shown if record else [])}
    areas |= {tracker.get_slot("need_area")} - {None}
    kind = tracker.get_slot("booking_kind")
    return await tovholdere_for(
        context.db(),
        settings,
        _sender_phone(tracker),
        areas,
        tracker.get_slot("municipality"),
        MeetingKind(kind) if kind else None,
    )


# --- starting, moving, ending ----------------------------------------------------------------


class ActionBookingStart(Action):
    """Before the form: a citizen with a coming booking is offered to move or cancel it instead;
    everyone else hears what a tovholder is, and the form starts (phone prefilled on SMS). A need
    read as a booking without a booking word in it ("jeg har ikke tid til at passe min mor")
    gets offers instead."""

    def name(self) -> str:
        return "action_booking_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        lang = _lang(tracker)
        if not asks_to_book(tracker.latest_message.get("text") or ""):
            guided = await point_or_guide(dispatcher, tracker)
            if guided is not None:
                return [*guided, FollowupAction("action_listen")]
        phone = _sender_phone(tracker)
        settings = context.settings()
        existing = await find_active_booking(context.db(), settings, tracker.sender_id, phone)
        if existing is not None:
            _say(dispatcher, "booking.existing", lang, **booking_texts.values(existing, settings, lang))
            return [FollowupAction("action_listen")]
        await start_collecting(context.redis(), settings, tracker.sender_id)
        _say(dispatcher, "booking.intro", lang)
        # Started from another intent ("ja tak, book mig" read as a yes), no rule runs the form next.
        follow = [FollowupAction(FORM)] if _intent(tracker) != "book_contact" else []
        return [*_reset(), SlotSet("booking_phone", phone), *follow]


class ActionBookingChange(Action):
    """ "flyt min tid": the form runs again for the time only, with the same tovholder."""

    def name(self) -> str:
        return "action_booking_change"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        lang = _lang(tracker)
        settings = context.settings()
        booking = await find_active_booking(context.db(), settings, tracker.sender_id, _sender_phone(tracker))
        if booking is None:
            # no booking to move: the words were likely a need read as "move" ("et sted at være"),
            # or a pointer at an offer shown ("den første")
            guided = await point_or_guide(dispatcher, tracker)
            if guided is None:
                dispatcher.utter_message(text=t("booking.nothing_to_move", lang), buttons=_book_button(lang))
            return [*(guided or []), FollowupAction("action_listen")]
        await start_collecting(context.redis(), settings, tracker.sender_id, moving=booking.id)
        _say(dispatcher, "booking.move_intro", lang, **booking_texts.values(booking, settings, lang))
        return [*_reset(), SlotSet("booking_moving", booking.id), SlotSet("booking_phone", booking.phone)]


class ActionBookingSubmit(Action):
    """After the form: the confirmation, or what ended it (slot booking_outcome)."""

    def name(self) -> str:
        return "action_booking_submit"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        collecting = await stop_collecting(context.redis(), tracker.sender_id)
        booked = tracker.get_slot("booking_slot")
        booking = await get_booking(context.db(), booked) if booked else None
        outcome = tracker.get_slot("booking_outcome")
        if booking is not None:
            dispatcher.utter_message(text=booking_texts.confirmation(booking, context.settings()))
        elif outcome == "stopped":
            await _stop_or_cancel(dispatcher, tracker, collecting)
        elif outcome == "handoff":
            await hand_over(dispatcher, tracker, reason="request_human")
        elif outcome:
            _say(dispatcher, f"booking.{outcome}", _lang(tracker))
        return _reset()


class ActionBookingCancel(Action):
    """ "AFLYS" outside the form: cancels the citizen's coming booking."""

    def name(self) -> str:
        return "action_booking_cancel"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        collecting = await stop_collecting(context.redis(), tracker.sender_id)
        return [*await _stop_or_cancel(dispatcher, tracker, collecting), *_reset()]


async def _stop_or_cancel(
    dispatcher: CollectingDispatcher, tracker: Tracker, collecting: str | None
) -> list[EventType]:
    """A new booking being collected ("") is dropped; else the booking being moved, or the
    citizen's coming booking, is cancelled and its slot freed."""
    lang = _lang(tracker)
    if collecting == "":
        _say(dispatcher, "booking.stopped", lang)
        return []
    redis = context.redis()
    settings = context.settings()
    if collecting:
        booking = await get_booking(context.db(), collecting)
    else:
        booking = await find_active_booking(context.db(), settings, tracker.sender_id, _sender_phone(tracker))
    cancelled = await cancel_booking(context.db(), redis, booking.id, by="citizen") if booking else None
    if cancelled is None:
        guided = await point_or_guide(dispatcher, tracker)
        if guided is not None:
            return guided  # nothing to cancel: the words were a need or a pointer at an offer shown
        dispatcher.utter_message(text=t("booking.nothing_to_cancel", lang), buttons=_book_button(lang))
    else:
        dispatcher.utter_message(text=booking_texts.cancelled(cancelled, settings))
    return []


def _book_button(lang: str) -> list[dict[str, str]]:
    return [{"title": t("booking.book_button", lang), "payload": "/book_contact"}]


# --- the form's questions ---------------------------------------------------------------------


class AskBooking(Action, ABC):
    """Rasa asks for slot <x> by running action_ask_<x>: by default the text booking.ask.<key>."""

    key = ""

    @property
    @abstractmethod
    def slot(self) -> str: ...

    def name(self) -> str:
        return f"action_ask_{self.slot}"

    async def ask(self, dispatcher: CollectingDispatcher, tracker: Tracker, lang: str) -> list[EventType]:
        _say(dispatcher, f"booking.ask.{self.key}", lang)
        return []

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> list[EventType]:
        return await self.ask(dispatcher, tracker, _lang(tracker))


def _asked_before(tracker: Tracker, slot: str) -> bool:
    """Whether the form already asked for `slot` before the citizen's latest message, since this
    booking started. (Rasa runs a form's ask action inside the form: only the requested_slot it
    set shows in the events.)"""
    answered = False
    for event in reversed(tracker.events):
        kind, name = event.get("event"), event.get("name")
        if kind == "user":
            answered = True
        elif kind == "slot" and name == "requested_slot" and event.get("value") == slot and answered:
            return True
        elif kind == "action" and name in ("action_booking_start", "action_booking_change"):
            return False
    return False


class AskConsent(AskBooking):
    slot = "booking_consent"

    async def ask(self, dispatcher: CollectingDispatcher, tracker: Tracker, lang: str) -> list[EventType]:
        settings = context.settings()
        again = _asked_before(tracker, self.slot)  # the long text once; then the question only
        _say(
            dispatcher,
            "booking.ask.consent_again" if again else "booking.ask.consent",
            lang,
            days=settings.conversation_ttl_seconds // 86400,
            link_days=settings.tovholder_link_ttl_seconds // 86400,
        )
        return []


class AskForWhom(AskBooking):
    slot, key = "booking_for_whom", "for_whom"


class AskConsentOther(AskBooking):
    slot, key = "booking_consent_other", "consent_other"


class AskPhone(AskBooking):
    slot, key = "booking_phone", "phone"


class AskTopic(AskBooking):
    slot, key = "booking_topic", "topic"


class AskKind(AskBooking):
    slot, key = "booking_kind", "kind"


class AskName(AskBooking):
    slot = "booking_name"

    async def ask(self, dispatcher: CollectingDispatcher, tracker: Tracker, lang: str) -> list[EventType]:
        key = "name_other" if tracker.get_slot("booking_for_whom") == "other" else "name_self"
        _say(dispatcher, f"booking.ask.{key}", lang)
        return []


class AskSlot(AskBooking):
    """The next free times as buttons (numbered on SMS), fitting the citizen's wish if any."""

    slot = "booking_slot"

    async def ask(self, dispatcher: CollectingDispatcher, tracker: Tracker, lang: str) -> list[EventType]:
        settings = context.settings()
        calendar = await calendar_for(context.db(), settings)
        asked = tracker.get_slot("booking_wish")
        wish = TimeWish.model_validate(asked) if asked else None
        people, own = await _tovholdere(tracker)
        slots, met = await calendar.propose(context.db(), people, _now(), PROPOSALS, wish)
        if not slots:
            dispatcher.utter_message(
                text=t("booking.no_slots", lang, days=settings.booking_horizon_days),
                buttons=[{"title": t("booking.no_slots_button", lang), "payload": "/request_human"}],
            )
            return [SlotSet("booking_proposals", []), SlotSet("booking_wish", None)]
        if wish is not None:
            text = t("booking.ask.slot_wish" if met else "booking.ask.slot_no_wish", lang)
        elif own:
            text = t("booking.ask.slot_own", lang, tovholder=people[0].name)
        else:
            text = t("booking.ask.slot", lang)
        buttons = [
            {
                "title": t(
                    "booking.ask.slot_button",
                    lang,
                    when=booking_texts.when_short(calendar.local(s.start), lang),
                    tovholder=s.tovholder.name,
                ),
                "payload": str(number),
            }
            for number, s in enumerate(slots, start=1)
        ]
        dispatcher.utter_message(text=text, buttons=buttons)
        proposals = [{"tovholder": s.tovholder.id, "start": s.start.isoformat()} for s in slots]
        return [SlotSet("booking_proposals", proposals), SlotSet("booking_wish", None)]


# --- validation -------------------------------------------------------------------------------


class ValidateBookingForm(FormValidationAction):
    """Every answer arrives as text. A valid answer is taken whatever the NLU thinks of it
    ("telefon" is an answer, not a wish to phone staff); "AFLYS" or "stop" ends the form; an
    answer that does not fit and reads as cancel_booking or request_human ends it the same way
    (slot booking_outcome), so the citizen is never stuck in the form."""

    def name(self) -> str:
        return f"validate_{FORM}"

    async def required_slots(
        self,
        domain_slots: list[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> list[str]:
        """A move asks for the time only; an outcome (e.g. a "no" to consent) ends the form."""
        if tracker.get_slot("booking_outcome"):
            return []
        if tracker.get_slot("booking_moving"):
            return ["booking_slot"]
        if tracker.get_slot("booking_for_whom") != "other":
            return [s for s in domain_slots if s != "booking_consent_other"]
        return domain_slots

    @staticmethod
    def _stop(slot: str, value: Any) -> dict[str, Any] | None:
        return {slot: None, "booking_outcome": "stopped"} if STOP.match(str(value or "")) else None

    @staticmethod
    def _retry(slot: str, key: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> dict[str, Any]:
        outcome = INTERRUPTIONS.get(_intent(tracker))
        if outcome:
            return {slot: None, "booking_outcome": outcome}
        _say(dispatcher, f"booking.invalid.{key}", _lang(tracker))
        return {slot: None}

    def _yes_no(
        self, slot: str, outcome_if_no: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> dict[str, Any]:
        if stop := self._stop(slot, value):
            return stop
        answer = _yes_no(tracker, value)
        if answer is None:
            return self._retry(slot, "yes_no", dispatcher, tracker)
        return {slot: answer, "booking_outcome": None if answer else outcome_if_no}

    async def validate_booking_consent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        whom = _for_whom(value)
        if whom is not None and _yes_no(tracker, value) is None:
            # The next question answered first ("mig selv", "someone else"): kept, and the
            # consent asked again briefly (a "someone else" is no request for a person here).
            return {"booking_consent": None, "booking_for_whom": whom}
        return self._yes_no("booking_consent", "declined", value, dispatcher, tracker)

    async def validate_booking_consent_other(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        return self._yes_no("booking_consent_other", "no_consent_other", value, dispatcher, tracker)

    async def validate_booking_for_whom(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if stop := self._stop("booking_for_whom", value):
            return stop
        picked = _choice(value, 2)
        if picked is not None:
            return {"booking_for_whom": ("self", "other")[picked]}
        whom = _for_whom(value)
        if whom is not None:
            return {"booking_for_whom": whom}
        return self._retry("booking_for_whom", "for_whom", dispatcher, tracker)

    async def validate_booking_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if stop := self._stop("booking_name", value):
            return stop
        name = NAME_LEADS.sub("", str(value or "").strip().rstrip(".!"), count=1).strip()
        if len(name) > 40 or not NAME.match(name):
            return self._retry("booking_name", "name", dispatcher, tracker)
        return {"booking_name": name if not name.islower() else name.title()}

    async def validate_booking_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if stop := self._stop("booking_phone", value):
            return stop
        phone = normalise_phone(str(value or ""))
        if phone is None:
            return self._retry("booking_phone", "phone", dispatcher, tracker)
        return {"booking_phone": phone}

    async def validate_booking_topic(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        # Any words are a topic, so only "AFLYS" (or a person's button) interrupts here.
        if stop := self._stop("booking_topic", value):
            return stop
        topic = re.sub(r"\s+", " ", str(value or "")).strip()
        if len(topic) < 3 or not re.search(r"[^\W\d_]{2}", topic):
            return self._retry("booking_topic", "topic", dispatcher, tracker)
        return {"booking_topic": topic[:200]}

    async def validate_booking_kind(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        if stop := self._stop("booking_kind", value):
            return stop
        text = _words(value)
        picked = _choice(text, len(KIND_ORDER))
        if picked is not None:
            return {"booking_kind": KIND_ORDER[picked].value}
        for kind, words in KIND_WORDS.items():
            if words.search(text):
                return {"booking_kind": kind.value}
        return self._retry("booking_kind", "kind", dispatcher, tracker)

    async def validate_booking_slot(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> dict[str, Any]:
        """A picked proposal (or a time named exactly) is booked at once; a time in words
        ("tirsdag eftermiddag") brings proposals that fit; anything else, the proposals again."""
        if stop := self._stop("booking_slot", value):
            return stop
        calendar = await calendar_for(context.db(), context.settings())
        proposals = tracker.get_slot("booking_proposals") or []
        picked = _choice(value, len(proposals))
        if picked is not None:
            chosen = proposals[picked]
            tovholder = calendar.directory.get(chosen["tovholder"])
            if tovholder is not None:
                return await self._book(
                    dispatcher, tracker, Slot(tovholder, datetime.fromisoformat(chosen["start"]))
                )
        wish = parse_wish(str(value or ""), calendar.local(_now()))
        if wish is None:
            return self._retry("booking_slot", "slot", dispatcher, tracker)
        people, _ = await _tovholdere(tracker)
        fitting, met = await calendar.propose(context.db(), people, _now(), 1, wish)
        if met and fitting and wish.is_met_by(fitting[0]):
            return await self._book(dispatcher, tracker, fitting[0])
        return {"booking_slot": None, "booking_wish": wish.model_dump(mode="json")}

    async def _book(self, dispatcher: CollectingDispatcher, tracker: Tracker, slot: Slot) -> dict[str, Any]:
        settings = context.settings()
        redis = context.redis()
        moving = tracker.get_slot("booking_moving")
        try:
            if moving:
                moved = await move_booking(
                    context.db(),
                    redis,
                    settings,
                    moving,
                    slot.start,
                    by="citizen",
                    channel=context.channel(tracker.latest_message),
                )
                if moved is None:  # cancelled (e.g. by staff) while the citizen chose
                    return {"booking_slot": None, "booking_outcome": "nothing_to_move"}
                return {"booking_slot": moved.id}
            booking = await book(context.db(), redis, settings, slot, self._request(tracker))
        except SlotUnavailable:
            _say(dispatcher, "booking.slot_taken", _lang(tracker))
            return {"booking_slot": None}
        except BookingLimitReached:
            return {"booking_slot": None, "booking_outcome": "limit_reached"}
        return {"booking_slot": booking.id}

    @staticmethod
    def _request(tracker: Tracker) -> BookingRequest:
        return BookingRequest(
            conversation_id=tracker.sender_id,
            channel=context.channel(tracker.latest_message),
            language=_lang(tracker),
            name=tracker.get_slot("booking_name"),
            phone=tracker.get_slot("booking_phone"),
            topic=tracker.get_slot("booking_topic"),
            kind=MeetingKind(tracker.get_slot("booking_kind")),
            for_whom=tracker.get_slot("booking_for_whom") or "self",
        )
