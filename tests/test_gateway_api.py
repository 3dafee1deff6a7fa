"""The gateway's HTTP contract, against a real Redis and with nothing listening where Rasa should be."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from indgang.devstack import free_port
from indgang.settings import Settings
from webhook.citizen import TOKEN_HEADER
from webhook.main import create_app
from webhook.rasa_engine import to_replies

VALID_ID = "a-valid-conversation-id"


@pytest.fixture
def client(base_settings: Settings) -> Iterator[TestClient]:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens here: Rasa and the actions are "down"
    settings = base_settings.model_copy(
        update={"rasa_url": dead, "action_server_url": dead, "chat_rate_limit": 5, "redis_db": 1}
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


class Citizen:
    """One web conversation: a fresh id, and the token its first answer hands out, sent after."""

    def __init__(self, client: TestClient, name: str) -> None:
        self.client = client
        self.id = f"{name}-{uuid.uuid4().hex}"
        self.token: str | None = None

    @property
    def headers(self) -> dict[str, str]:
        return {TOKEN_HEADER: self.token} if self.token else {}

    def chat(self, text: str, **extra: object) -> httpx.Response:
        response = self.client.post(
            "/api/v1/chat", json={"conversation_id": self.id, "text": text, **extra}, headers=self.headers
        )
        body: dict[str, Any] = response.json() if response.status_code != 422 else {}
        self.token = body.get("conversation_token") or self.token
        return response

    def messages(self, **params: str) -> httpx.Response:
        return self.client.get(f"/api/v1/chat/{self.id}/messages", params=params, headers=self.headers)


def test_health_is_up_and_readiness_names_what_is_down(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"redis": "ok", "rasa": "down", "action_server": "down"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"conversation_id": "bad id! and long enough", "text": "hej"}, "conversation_id"),
        ({"conversation_id": "x" * 129, "text": "hej"}, "conversation_id"),
        ({"conversation_id": "too-short", "text": "hej"}, "conversation_id"),
        ({"conversation_id": "sms-" + "0" * 64, "text": "hej"}, "conversation_id"),
        ({"conversation_id": VALID_ID, "text": ""}, "text"),
        ({"conversation_id": VALID_ID, "text": "x" * 2001}, "text"),
        ({"conversation_id": VALID_ID}, "text"),
        ({"conversation_id": VALID_ID, "text": "hej", "language": "fr"}, "language"),
    ],
)
def test_a_malformed_request_is_a_422_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    response = client.post("/api/v1/chat", json=body)
    assert response.status_code == 422
    assert any(field in error["loc"] for error in response.json()["detail"])


def test_a_body_over_16_kib_is_a_413(client: TestClient) -> None:
    response = client.post(
        "/api/v1/chat",
        content=b'{"conversation_id": "' + VALID_ID.encode() + b'", "text": "' + b"x" * 17000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_engine_down_gives_a_danish_answer_offers_a_person_and_keeps_the_message(client: TestClient) -> None:
    citizen = Citizen(client, "down")
    response = citizen.chat("jeg har brug for hjælp til min økonomi")
    assert response.status_code == 503
    body = response.json()
    reply = body["replies"][0]
    assert "tekniske problemer" in reply["text"]
    assert reply["buttons"][0]["payload"] == "/request_human"
    assert body["handoff"] == "none"
    assert body["conversation_token"]  # the conversation exists, so its citizen gets the key
    transcript = citizen.messages().json()
    assert [m["from"] for m in transcript["messages"]] == ["user", "bot"]
    assert transcript["messages"][0]["text"] == "jeg har brug for hjælp til min økonomi"

    # the offered person can still be reached while the engine is down
    person = citizen.chat("/request_human").json()
    assert person["handoff"] == "requested"
    assert "køen" in person["replies"][0]["text"]


def test_english_writers_get_english(client: TestClient) -> None:
    body = Citizen(client, "down-en").chat("I need help with my drinking").json()
    assert "technical problems" in body["replies"][0]["text"]
    assert body["language"] == "en"


def test_a_crisis_is_answered_even_when_the_engine_is_down(client: TestClient) -> None:
    response = Citizen(client, "crisis").chat("jeg vil ikke leve mere")
    assert response.status_code == 200
    body = response.json()
    assert body["replies"][0]["crisis"] is True
    assert "112" in body["replies"][0]["text"]
    assert body["replies"][0]["offers"][0]["type"] == "akut_hjaelp"
    assert body["handoff"] == "requested"


def test_a_need_told_while_waiting_for_a_person_gets_offers_at_once(client: TestClient) -> None:
    citizen = Citizen(client, "waiting")
    assert citizen.chat("jeg vil ikke leve mere").json()["handoff"] == "requested"
    need = citizen.chat(
        "politiet er kommet nu. jeg er helt rystet, er der nogen jeg kan snakke med bagefter?"
    ).json()
    reply = need["replies"][0]
    assert "medarbejder" in reply["text"] and reply["offers"] and not reply["crisis"]
    assert need["handoff"] == "requested"
    thanks = citizen.chat("ok tak").json()["replies"][0]
    assert "medarbejder" in thanks["text"] and not thanks["offers"]


def test_one_conversation_sending_too_fast_gets_429_with_retry_after(client: TestClient) -> None:
    citizen = Citizen(client, "fast")
    statuses = [citizen.chat("hej").status_code for _ in range(6)]
    assert statuses[:5] == [503] * 5  # the engine is down, but they are accepted
    last = citizen.chat("hej")
    assert last.status_code == 429
    assert int(last.headers["Retry-After"]) >= 1


def test_transcript_cursor_must_be_well_formed(client: TestClient) -> None:
    citizen = Citizen(client, "cursor")
    citizen.chat("hej")
    assert citizen.messages(after="nonsense").status_code == 422
    assert len(citizen.messages().json()["messages"]) == 2
    assert client.get("/api/v1/chat/bad id and long enough/messages").status_code == 422
    unknown = client.get(f"/api/v1/chat/never-seen-{uuid.uuid4().hex}/messages")
    assert unknown.status_code == 403  # as for anyone else's conversation: nothing to tell


def test_offer_search_needs_a_query(client: TestClient) -> None:
    assert client.get("/api/v1/offers", params={"q": "   "}).status_code == 422
    assert client.get("/api/v1/offers", params={"q": "hjælp", "limit": 0}).status_code == 422
    found = client.get(
        "/api/v1/offers", params={"q": "jeg vil gerne stoppe med at drikke", "limit": 3}
    ).json()
    assert found["offers"][0]["type"] == "alkoholbehandling"
    assert set(found["offers"][0]) >= {
        "id",
        "type",
        "title",
        "summary",
        "municipality",
        "access",
        "contact",
        "score",
    }


def test_rasa_messages_map_into_replies() -> None:
    replies = to_replies(
        [
            {"recipient_id": "c", "text": "Hej", "buttons": [{"title": "Ja", "payload": "/affirm"}]},
            {"recipient_id": "c", "custom": {"offers": [{"id": "o", "type": "vaerested", "title": "Café"}]}},
            {"recipient_id": "c", "custom": {"text": "Ring 112", "crisis": True}},
        ]
    )
    assert [r.text for r in replies] == ["Hej", "Ring 112"]
    assert replies[0].buttons[0].payload == "/affirm"
    assert replies[0].offers[0].type == "vaerested"
    assert replies[1].crisis is True and replies[0].crisis is False


def test_the_access_log_keeps_the_route_template_and_no_personal_data(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    citizen = Citizen(client, "access")
    with caplog.at_level("INFO"):
        assert citizen.chat("min kæreste slår mig hver dag og jeg er bange").json()["replies"][0]["crisis"]
        assert citizen.messages().status_code == 200
        assert client.get("/api/v1/offers", params={"q": "krisecenter zyxwvutsrq"}).status_code == 200
        assert client.get("/no/such/path").status_code == 404
    access = [r for r in caplog.records if r.name == "indgang.access"]
    assert [(r.method, r.route, r.status) for r in access] == [
        ("POST", "/api/v1/chat", 200),
        ("GET", "/api/v1/chat/{conversation_id}/messages", 200),
        ("GET", "/api/v1/offers", 200),
        ("GET", "(no route)", 404),
    ]
    assert all(r.duration_ms >= 0 for r in access)
    # what the gateway logged (the test's own HTTP client logs its URLs, as a browser would keep them)
    logged = "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records if not r.name.startswith("httpx")
    )
    assert "crisis detected" in logged  # logged, but with no conversation beside it
    for secret in (citizen.id, citizen.token, "zyxwvutsrq", "krisecenter", "kæreste"):
        assert secret not in logged, secret
