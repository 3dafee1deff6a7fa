"""The custom actions, unit-tested as Rasa's example bots do: a CollectingDispatcher collects what
an action says, Tracker.from_dict builds the conversation it reads. Redis is the real test Redis;
the offer search and the need gate are the real ones. No Rasa server is needed."""

from __future__ import annotations

from typing import Any

import pytest
from booking_helpers import MONDAY, at, request
from insight_helpers import counted
from rasa_sdk import Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import actions, booking, context
from actions.nlg import text_of
from indgang import conversation
from indgang.booking import Slot, book, calendar_for, find_active_booking, in_booking_form
from indgang.insight import Insight, Metric
from indgang.need_gate import need_gate
from indgang.records.db import Database


@pytest.fixture
async def test_redis(redis, records: Database, base_settings, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(context, "redis", lambda: redis)
    monkeypatch.setattr(context, "db", lambda: records)
    # The process's settings, but the catalogue of the test run's database, not a developer's.
    own = context.settings().model_copy(update={"database_url": base_settings.database_url})
    monkeypatch.setattr(context, "settings", lambda: own)
    recorder = Insight(records, "Europe/Copenhagen")  # the insight counts go to the test's records
    monkeypatch.setattr(context, "insight", lambda: recorder)
    yield redis
    await recorder.settled()


def tracker(
    text: str,
    intent: str,
    slots: dict[str, Any] | None = None,
    sender: str = "conv-actions",
    entities: list[dict[str, Any]] | None = None,
) -> Tracker:
    return Tracker.from_dict(
        {
            "sender_id": sender,
            "slots": slots or {},
            "latest_message": {
                "text": text,
                "intent": {"name": intent, "confidence": 0.9},
                "entities": entities or [],
                "metadata": {"language": "da", "channel": "web"},
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
        }
    )


def offers_of(dispatcher: CollectingDispatcher) -> list[str]:
    return [o["type"] for m in dispatcher.messages for o in (m.get("custom") or {}).get("offers", [])]


def test_the_need_gate_tells_needs_from_small_talk() -> None:
    gate = need_gate()
    for text in ["hej", "ja tak", "tak for hjælpen", "kan jeg tale med en medarbejder", "vi bor i Aarhus"]:
        assert not gate.states_need(text), text
    for text in [
        "hej, min datter på 8 kan ikke læse og er ked af det",
        "jeg vil gerne et sted hen om dagen hvor der er andre mennesker",
        "my husband drinks every day and I don't know what to do",
    ]:
        assert gate.states_need(text), text


@pytest.mark.anyio
async def test_a_greeting_is_answered_as_one(test_redis) -> None:
    dispatcher = CollectingDispatcher()
    events = await actions.ActionSmallTalk().run(dispatcher, tracker("hej", "greet"), {})
    assert events == [] and dispatcher.messages[0]["text"] == text_of("greet", "da")["text"]


@pytest.mark.anyio
async def test_a_need_read_as_a_greeting_gets_offers_in_the_same_turn(test_redis) -> None:
    dispatcher = CollectingDispatcher()
    text = "hej, min datter på 8 år kan ikke læse, de andre børn kan, hun er ked af det"
    events = await actions.ActionSmallTalk().run(dispatcher, tracker(text, "greet"), {})
    assert set(offers_of(dispatcher)) & {"ppr", "familieraadgivning"}
    assert SlotSet("need_text", text) in events
    assert (await conversation.get(test_redis, "conv-actions")).offers_shown


@pytest.mark.anyio
async def test_moving_a_booking_that_does_not_exist_answers_a_need_instead(test_redis) -> None:
    dispatcher = CollectingDispatcher()
    text = "jeg vil gerne have et sted at være om dagen hvor der er andre mennesker"
    events = await booking.ActionBookingChange().run(dispatcher, tracker(text, "change_booking"), {})
    assert set(offers_of(dispatcher)) & {"vaerested", "socialpsykiatri"}
    assert events[-1] == FollowupAction("action_listen")
    assert not any("flytte" in (m.get("text") or "") for m in dispatcher.messages)


@pytest.mark.anyio
async def test_moving_without_a_booking_and_without_a_need_says_so(test_redis) -> None:
    dispatcher = CollectingDispatcher()
    await booking.ActionBookingChange().run(dispatcher, tracker("flyt min tid", "change_booking"), {})
    assert dispatcher.messages[0]["text"].startswith("Du har ingen")
    assert dispatcher.messages[0]["buttons"]


@pytest.mark.anyio
async def test_an_age_refines_the_need_said_before(test_redis) -> None:
    dispatcher = CollectingDispatcher()
    slots = {"need_text": "min søn har autisme og vi er helt udkørte", "age": "9"}
    await actions.ActionSearchOffers().run(dispatcher, tracker("han er 9", "inform_age", slots), {})
    assert "aflastning" in offers_of(dispatcher)


def age_entity(text: str, number: str) -> dict[str, Any]:
    """What the NLU makes of a number: an age, wherever it stands."""
    start = text.index(number)
    return {"entity": "age", "value": number, "start": start, "end": start + len(number)}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("text", "number", "expected"),
    [
        (
            "lejer i nr 9 har fyldt lejligheden med aviser og kan ikke overskue noget selv",
            "9",
            {"bostoette", "skp"},
        ),
        ("skal ud af behandling om 3 uger og har ingen steder at bo", "3", {"hjemloeshed", "forsorgshjem"}),
    ],
)
async def test_a_number_that_is_no_age_does_not_narrow_the_offers_to_children(
    test_redis, text: str, number: str, expected: set[str]
) -> None:
    dispatcher = CollectingDispatcher()
    slots = {"age": number}
    turn = tracker(text, "describe_need", slots, entities=[age_entity(text, number)])
    await actions.ActionSearchOffers().run(dispatcher, turn, {})
    assert set(offers_of(dispatcher)) & expected


@pytest.mark.parametrize(
    ("text", "number", "age"),
    [
        ("min søn på 9 kan ikke læse", "9", 9),
        ("jeg er 17 og kan ikke bo hjemme", "17", 17),
        ("she is 16 and drinks", "16", 16),
        ("14", "14", 14),
        ("han er 12 år", "12", 12),
        ("lejer i nr 9 har fyldt lejligheden med aviser", "9", None),
        ("det er 3 uger siden han kom hjem fra behandling", "3", None),
        ("han ryger 20 gange om dagen og siger han har det fint", "20", None),
    ],
)
def test_only_a_number_said_as_an_age_counts_as_one(text: str, number: str, age: int | None) -> None:
    assert (
        actions.stated_age(
            tracker(text, "describe_need", {"age": number}, entities=[age_entity(text, number)])
        )
        == age
    )


@pytest.mark.anyio
async def test_a_question_about_a_kind_of_help_before_any_was_shown_gets_those_offers(test_redis) -> None:
    dispatcher = CollectingDispatcher()
    text = "kan jeg faa en fast person der hjaelper mig igennem det hele, er traet af at starte forfra"
    await actions.ActionExplainAccess().run(dispatcher, tracker(text, "ask_access", sender="conv-new"), {})
    assert "tovholder" in offers_of(dispatcher)


SHOWN = [
    {"id": "a", "type": "alkoholbehandling", "title": "Gratis alkoholbehandling", "access": "open"},
    {
        "id": "b",
        "type": "midlertidigt_botilbud",
        "title": "Midlertidigt botilbud",
        "summary": "Et sted at bo i en periode, med støtte.",
        "access": "visitation",
        "contact": {"phone": "70 10 10 10"},
    },
]


@pytest.mark.anyio
async def test_questions_about_the_offers_shown_are_answered_from_them(test_redis) -> None:
    await conversation.record_offers(test_redis, "conv-actions", SHOWN, 600)
    answers = {}
    for question in ["hvad koster det?", "hvor lang ventetid er der", "hvornår har de åbent"]:
        dispatcher = CollectingDispatcher()
        await actions.ActionExplainAccess().run(dispatcher, tracker(question, "ask_access"), {})
        answers[question] = dispatcher.messages[0]["text"]
    assert "gratis" in answers["hvad koster det?"] and "husleje" in answers["hvad koster det?"]
    assert "14 dage" in answers["hvor lang ventetid er der"]
    assert "70 10 10 10" in answers["hvornår har de åbent"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("text", "intent", "action"),
    [
        ("2", "inform_age", actions.ActionSearchOffers()),  # a bare number reads as an age
        ("den anden", "nlu_fallback", actions.ActionFallback()),
        ("nr 2 tak", "affirm", actions.ActionSmallTalk()),
        ("tell me more about the second one", "out_of_scope", actions.ActionOutOfScope()),
        ("hvad koster nummer 2", "ask_access", actions.ActionExplainAccess()),
        ("hvor ligger midlertidigt botilbud", "ask_access", actions.ActionExplainAccess()),
    ],
)
async def test_a_message_pointing_at_a_shown_offer_is_answered_about_that_one(
    test_redis, text: str, intent: str, action
) -> None:
    await conversation.record_offers(test_redis, "conv-actions", SHOWN, 600)
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker(text, intent), {})
    [said] = [m["text"] for m in dispatcher.messages]
    assert said.startswith("• Midlertidigt botilbud") and "alkohol" not in said, said
    assert not offers_of(dispatcher) and not any(e["event"] == "followup" for e in events)
    if len(text.split()) <= 2 or "more" in text:  # a bare pointer tells more about the offer
        assert "Et sted at bo" in said and "70 10 10 10" in said, said


@pytest.mark.anyio
async def test_a_number_is_an_age_when_no_offers_were_shown(test_redis) -> None:
    dispatcher = CollectingDispatcher()
    slots = {"need_text": "min søn har autisme og vi er helt udkørte"}
    await actions.ActionSearchOffers().run(
        dispatcher, tracker("9", "inform_age", slots, sender="conv-none"), {}
    )
    assert offers_of(dispatcher)


@pytest.mark.anyio
async def test_a_fallback_that_states_a_need_gets_offers(test_redis) -> None:
    dispatcher = CollectingDispatcher()
    text = "min kone tror naboerne vil slå hende ihjel og hun sover ikke, jeg ved ikke hvem der kan hjælpe"
    await actions.ActionFallback().run(dispatcher, tracker(text, "nlu_fallback"), {})
    # psychiatric help fits a wife in fear of imagined danger (SKP is outreach for psychiatric needs)
    assert set(offers_of(dispatcher)) & {"socialpsykiatri", "paaroerendestoette", "skp"}


@pytest.mark.anyio
async def test_a_phone_number_in_web_metadata_is_not_identity(
    records: Database, test_redis, base_settings, monkeypatch
) -> None:
    """The attack: a web visitor puts another citizen's number in the message metadata to see,
    move or cancel that citizen's booking. Only the SMS channel's verified sender counts."""
    monkeypatch.setattr(context, "settings", lambda: base_settings)
    calendar = await calendar_for(records, base_settings)
    victim = "+4520998877"
    slot = Slot(calendar.directory.get("mette"), at(4, 10))
    citizen = request("sms-victim", phone=victim, channel="sms")
    await book(records, test_redis, base_settings, slot, citizen, now=MONDAY)

    def attempt(text: str, intent: str, channel: str) -> Tracker:
        found = tracker(text, intent, sender="web-attacker-0001")
        found.latest_message["metadata"] = {"language": "da", "channel": channel, "phone": victim}
        return found

    attacks = (
        (booking.ActionBookingChange(), "change_booking"),
        (booking.ActionBookingCancel(), "cancel_booking"),
    )
    for action, intent in attacks:
        dispatcher = CollectingDispatcher()
        await action.run(dispatcher, attempt("flyt min tid", intent, "web"), {})
        said = " ".join(m.get("text") or "" for m in dispatcher.messages)
        assert "Du har ingen" in said and "Mette" not in said, said
    assert (await find_active_booking(records, base_settings, "sms-victim")).state == "confirmed"
    # the same number from the SMS channel (Twilio's verified From) is the citizen's own
    dispatcher = CollectingDispatcher()
    await booking.ActionBookingChange().run(dispatcher, attempt("flyt min tid", "change_booking", "sms"), {})
    assert "Du har ingen" not in " ".join(m.get("text") or "" for m in dispatcher.messages)


@pytest.mark.anyio
async def test_a_phone_number_typed_on_the_web_reveals_no_tovholder(
    records: Database, test_redis, base_settings, monkeypatch
) -> None:
    """The attack: typing someone's number into the web booking form named that person's
    tovholder ("din tovholder, Mette"), which tells that they are a client of the specialised
    social area. A typed number is only a contact detail: the web proposes the team's times.
    The same number as the verified SMS sender still keeps the citizen's own tovholder."""
    monkeypatch.setattr(context, "settings", lambda: base_settings)
    calendar = await calendar_for(records, base_settings)
    victim = "+4520998866"
    await book(
        records,
        test_redis,
        base_settings,
        Slot(calendar.directory.get("mette"), at(4, 10)),
        request("sms-victim-2", phone=victim, channel="sms"),
        now=MONDAY,
    )

    def asked(channel: str, sender: str) -> Tracker:
        slots = {"booking_phone": victim, "booking_kind": "phone"}
        found = tracker("20998866", "inform", slots=slots, sender=sender)
        found.latest_message["metadata"] = {"language": "da", "channel": channel, "phone": victim}
        return found

    dispatcher = CollectingDispatcher()
    await booking.AskSlot().run(dispatcher, asked("web", "web-attacker-0002"), {})
    said = " ".join(m.get("text") or "" for m in dispatcher.messages)
    assert "din tovholder" not in said and "Mette" not in said, said
    dispatcher = CollectingDispatcher()
    await booking.AskSlot().run(dispatcher, asked("sms", "sms-victim-2"), {})
    assert "din tovholder, Mette" in " ".join(m.get("text") or "" for m in dispatcher.messages)


# Booking words start a booking and nothing else does. These phrasings are not in the NLU training
# data: whatever intent the model reads in them, the actions must get them right.
BOOKING_ASKED = [
    ("ja tak book mig", "affirm"),
    ("ja, book en tid til mig", "affirm"),
    ("ja tak. kan min datter og jeg faa en tid sammen", "affirm"),
    ("jo tak, bestil en samtale til min far", "thank"),
    ("yes please, I'd like an appointment", "affirm"),
    ("ja tak book mig ind", "nlu_fallback"),
    ("ok book en tid hos en tovholder", "out_of_scope"),
    ("kan vi få en tid med tovholderen, så vi slipper for at fortælle det hele igen", "ask_access"),
]


@pytest.mark.anyio
async def test_a_meeting_with_a_person_is_a_booking_not_a_handoff(test_redis) -> None:
    dispatcher = CollectingDispatcher()
    text = "Kan jeg få et møde med en person som hjælper mig med det hele?"
    events = await actions.ActionRequestHandoff().run(dispatcher, tracker(text, "request_human"), {})
    assert events == [FollowupAction("action_booking_start")] and dispatcher.messages == []
    events = await actions.ActionRequestHandoff().run(
        dispatcher, tracker("kan jeg tale med et rigtigt menneske", "request_human"), {}
    )
    assert FollowupAction("action_booking_start") not in events and dispatcher.messages


@pytest.mark.anyio
@pytest.mark.parametrize(("text", "intent"), BOOKING_ASKED)
async def test_booking_words_read_as_another_intent_start_the_booking(
    test_redis, text: str, intent: str
) -> None:
    action = {
        "nlu_fallback": actions.ActionFallback(),
        "out_of_scope": actions.ActionOutOfScope(),
        "ask_access": actions.ActionExplainAccess(),
    }.get(intent, actions.ActionSmallTalk())
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker(text, intent), {})
    assert events == [FollowupAction("action_booking_start")] and dispatcher.messages == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "text",
    [
        "ja tak",
        "ja det vil jeg gerne",
        "ja tak, hvad koster det",
        "yes that sounds good",
        "ja, det har jeg tid til",
    ],
)
async def test_a_yes_without_booking_words_books_nothing(test_redis, text: str) -> None:
    dispatcher = CollectingDispatcher()
    events = await actions.ActionSmallTalk().run(dispatcher, tracker(text, "affirm"), {})
    assert not any(e["event"] == "followup" for e in events)
    assert dispatcher.messages and "tovholder" not in dispatcher.messages[0]["text"]


@pytest.mark.anyio
async def test_a_booking_started_from_a_yes_runs_the_form_and_from_book_contact_the_rule_does(
    test_redis, base_settings, monkeypatch
) -> None:
    monkeypatch.setattr(context, "settings", lambda: base_settings)
    dispatcher = CollectingDispatcher()
    events = await booking.ActionBookingStart().run(dispatcher, tracker("ja tak book mig", "affirm"), {})
    assert events[-1] == FollowupAction("booking_form")
    assert "tovholder" in dispatcher.messages[0]["text"]
    started = tracker("kan jeg booke en samtale", "book_contact", sender="conv-actions-2")
    events = await booking.ActionBookingStart().run(CollectingDispatcher(), started, {})
    assert not any(e["event"] == "followup" for e in events)  # bot/data/booking.yml runs the form


@pytest.mark.anyio
async def test_a_need_read_as_a_booking_without_booking_words_gets_offers(
    test_redis, base_settings, monkeypatch
) -> None:
    monkeypatch.setattr(context, "settings", lambda: base_settings)
    dispatcher = CollectingDispatcher()
    text = "jeg har ikke tid til at passe min mor mere, hun har demens og jeg er helt brugt op"
    events = await booking.ActionBookingStart().run(dispatcher, tracker(text, "book_contact"), {})
    assert set(offers_of(dispatcher)) & {"aflastning", "paaroerendestoette", "hjemmepleje"}
    assert events[-1] == FollowupAction("action_listen")
    assert not await in_booking_form(test_redis, "conv-actions")


def in_form(text: str, intent: str, events: list[dict[str, Any]]) -> Tracker:
    found = tracker(text, intent)
    found.events = events
    return found


@pytest.mark.anyio
async def test_the_consent_question_is_long_once_and_short_when_asked_again(test_redis) -> None:
    said = {"event": "user", "text": "ja tak book mig"}
    started = [said, {"event": "action", "name": "action_booking_start"}]
    requested = {"event": "slot", "name": "requested_slot", "value": "booking_consent"}
    first, again = CollectingDispatcher(), CollectingDispatcher()
    await booking.AskConsent().run(first, in_form("ja tak book mig", "affirm", [*started, requested]), {})
    asked = [*started, requested, {"event": "user", "text": "hmm"}, requested]
    await booking.AskConsent().run(again, in_form("hmm", "nlu_fallback", asked), {})
    long_text, short_text = first.messages[0]["text"], again.messages[0]["text"]
    assert "tovholderen kan kontakte" in long_text and "tovholderen kan kontakte" not in short_text
    assert len(short_text) < len(long_text) / 2 and again.messages[0]["buttons"]
    # a new booking later in the same conversation gets the whole text again
    await booking.AskConsent().run(first, in_form("book", "book_contact", [*asked, *started, requested]), {})
    assert first.messages[-1]["text"] == long_text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("text", "intent", "whom"),
    [
        ("someone else", "request_human", "other"),
        ("mig selv", "inform_relation", "self"),
        ("til min søn", "inform_relation", "other"),
    ],
)
async def test_who_it_is_for_said_at_the_consent_question_is_kept_and_nothing_else_happens(
    text: str, intent: str, whom: str
) -> None:
    dispatcher = CollectingDispatcher()
    form = booking.ValidateBookingForm()
    slots = await form.validate_booking_consent(text, dispatcher, tracker(text, intent), {})
    assert slots == {"booking_consent": None, "booking_for_whom": whom}
    assert dispatcher.messages == []  # the form asks the consent again, briefly


@pytest.mark.anyio
async def test_guidance_counts_a_need_by_its_first_offer_and_a_need_nothing_fits_by_its_theme(
    test_redis, records
) -> None:
    fitted = CollectingDispatcher()
    need = "jeg har stor gæld og kan ikke betale min husleje"
    await actions.ActionSearchOffers().run(fitted, tracker(need, "describe_need"), {})
    nothing = CollectingDispatcher()
    unknown = tracker("qwxz plmbr vvvk", "describe_need", sender="c2")
    await actions.ActionSearchOffers().run(nothing, unknown, {})
    await context.insight().settled()
    assert await counted(records, Metric.NEED) == {offers_of(fitted)[0]: 1}
    assert sum((await counted(records, Metric.UNMET)).values()) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(("confidence", "counts"), [(0.8, True), (0.98, False)])
async def test_an_unsure_out_of_scope_is_a_miss_and_a_sure_one_says_what_we_help_with(
    test_redis, confidence: float, counts: bool
) -> None:
    salad = tracker("blå hest trompet fjernsyn", "out_of_scope")
    salad.latest_message["intent"]["confidence"] = confidence
    dispatcher = CollectingDispatcher()
    events = await actions.ActionOutOfScope().run(dispatcher, salad, {})
    assert (SlotSet("fallback_count", 1) in events) is counts
    assert bool(dispatcher.messages[0].get("buttons")) is counts
