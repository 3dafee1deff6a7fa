"""Whole conversations through /api/v1/chat against the real stack (issue: the conversation)."""

from __future__ import annotations

import uuid

import httpx

from indgang.devstack import Stack
from webhook.citizen import TOKEN_HEADER


class Conversation:
    def __init__(self, stack: Stack, language: str | None = None) -> None:
        self.url = f"{stack.gateway_url}/api/v1/chat"
        self.id = f"conv-{uuid.uuid4().hex}"
        self.language = language
        self.token: str | None = None  # handed out by the first answer, sent with every later message

    def say(self, text: str) -> dict:
        body = {"conversation_id": self.id, "text": text}
        if self.language:
            body["language"] = self.language
        headers = {TOKEN_HEADER: self.token} if self.token else {}
        response = httpx.post(self.url, json=body, headers=headers, timeout=60)
        assert response.status_code == 200, response.text
        turn = response.json()
        self.token = turn.get("conversation_token") or self.token
        return turn


def offer_types(turn: dict) -> set[str]:
    return {o["type"] for r in turn["replies"] for o in r["offers"]}


def text_of(turn: dict) -> str:
    return "\n".join(r["text"] for r in turn["replies"])


def test_a_citizen_gets_offers_in_the_first_turn_and_how_to_get_in(stack: Stack) -> None:
    c = Conversation(stack)
    turn = c.say("jeg har ingen steder at bo og sover hos venner")
    assert offer_types(turn) & {"hjemloeshed", "forsorgshjem"}, turn
    assert not any(r["crisis"] for r in turn["replies"])
    how = c.say("hvordan søger man om det")
    assert how["replies"] and "kommune" in text_of(how).lower()


def test_a_relative_gets_offers_for_the_person_and_support_as_a_relative(stack: Stack) -> None:
    c = Conversation(stack)
    turn = c.say("min datter på 24 har en spiseforstyrrelse og jeg er så bekymret for hende")
    types = offer_types(turn)
    assert "paaroerendestoette" in types or "familieraadgivning" in types, turn
    assert "samtykke" in text_of(turn)


def test_an_english_speaker_is_answered_in_english(stack: Stack) -> None:
    c = Conversation(stack)
    turn = c.say("I need help with alcohol, I drink every day")
    assert "alkoholbehandling" in offer_types(turn), turn
    assert "This may help" in text_of(turn) or "relative" in text_of(turn)


def test_two_misunderstandings_bring_a_person(stack: Stack) -> None:
    c = Conversation(stack)
    first = c.say("blå hest trompet fjernsyn")
    assert first["handoff"] == "none"
    assert first["replies"][0]["buttons"], first
    second = c.say("xkcd qwerty zzz")
    assert second["handoff"] == "requested", second


def test_a_change_of_topic_mid_way_follows_the_new_need(stack: Stack) -> None:
    c = Conversation(stack)
    first = c.say("min søn har autisme og vi har brug for aflastning")
    assert "aflastning" in offer_types(first), first
    second = c.say("og så drikker min mand alt for meget")
    assert "alkoholbehandling" in offer_types(second), second


def test_a_child_concern_gets_guidance_on_reporting_without_alarm(stack: Stack) -> None:
    c = Conversation(stack)
    turn = c.say("jeg er bekymret for et barn i min opgang")
    assert "bekymring_barn" in offer_types(turn), turn
    assert not any(r["crisis"] for r in turn["replies"])
