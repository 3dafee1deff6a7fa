"""End to end: the real stack (trained Rasa model, action server, gateway, Redis) over HTTP."""

from __future__ import annotations

import json
import socket
import uuid

import httpx
import pytest
import redis as redis_sync

from indgang import keys
from indgang.devstack import Stack
from indgang.redis_store import redis_url
from webhook.citizen import TOKEN_HEADER


def chat(stack: Stack, conversation_id: str, text: str, **extra: object) -> httpx.Response:
    return httpx.post(
        f"{stack.gateway_url}/api/v1/chat",
        json={"conversation_id": conversation_id, "text": text, **extra},
        timeout=60,
    )


@pytest.fixture
def store(stack: Stack) -> redis_sync.Redis:
    return redis_sync.Redis.from_url(redis_url(stack.settings), decode_responses=True)


def new_id() -> str:
    return f"e2e-{uuid.uuid4().hex}"


def test_the_stack_is_ready(stack: Stack) -> None:
    ready = httpx.get(f"{stack.gateway_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"].values()) == {"ok"}


def test_a_greeting_gets_a_danish_reply(stack: Stack) -> None:
    body = chat(stack, new_id(), "hej").json()
    assert body["replies"], body
    assert "Hej" in body["replies"][0]["text"]
    assert body["replies"][0]["crisis"] is False
    assert body["handoff"] == "none"


def test_a_described_need_round_trips_through_the_action_server_into_redis(
    stack: Stack, store: redis_sync.Redis
) -> None:
    conversation_id = new_id()
    body = chat(stack, conversation_id, "min mand drikker hver dag, hvor kan han få behandling").json()
    types = {o["type"] for r in body["replies"] for o in r["offers"]}
    assert "alkoholbehandling" in types, body
    # the action recorded what it showed in the shared store, and Rasa keeps its tracker there
    shown = json.loads(store.hget(keys.conversation(conversation_id), "offers_shown") or "[]")
    assert "alkoholbehandling" in {o["type"] for o in shown}
    assert store.exists(f"indgang:tracker:{conversation_id}")
    messages = httpx.get(
        f"{stack.gateway_url}/api/v1/chat/{conversation_id}/messages",
        headers={TOKEN_HEADER: body["conversation_token"]},
        timeout=10,
    ).json()
    assert [m["from"] for m in messages["messages"]][:2] == ["user", "bot"]


def outward_address() -> str | None:
    """This machine's address on its network (not loopback), if it has one. A UDP connect sends
    nothing; it only picks the interface a packet would leave by."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


def test_rasa_is_private_loopback_only_and_its_api_needs_the_token(stack: Stack) -> None:
    rasa = stack.settings.rasa_url
    token = {"token": stack.settings.rasa_auth_token}
    tracker = f"{rasa}/conversations/{new_id()}/tracker"
    assert httpx.get(f"{rasa}/status", timeout=10).status_code == 401
    assert httpx.get(tracker, timeout=10).status_code == 401
    assert httpx.get(tracker, params={"token": "wrong"}, timeout=10).status_code == 401
    assert httpx.post(f"{tracker}/events", json={"event": "bot", "text": "x"}, timeout=10).status_code == 401
    assert httpx.get(tracker, params=token, timeout=10).status_code == 200
    address = outward_address()
    if address is not None:  # on a machine with a network: reachable there, but nothing of ours
        with socket.create_server((address, 0)) as control:
            assert reachable(address, control.getsockname()[1])
        for url in (rasa, stack.settings.action_server_url):
            port = int(url.rsplit(":", 1)[1])
            assert reachable("127.0.0.1", port) and not reachable(address, port), url


def test_asking_for_a_person_requests_a_handoff(stack: Stack) -> None:
    body = chat(stack, new_id(), "må jeg snakke med en medarbejder").json()
    assert body["handoff"] == "requested", body


def test_killing_the_action_server_gives_the_graceful_answer(stack: Stack) -> None:
    stack.stop("actions")
    try:
        response = chat(stack, new_id(), "hej, jeg har brug for hjælp til at finde et botilbud")
        assert response.status_code == 503
        reply = response.json()["replies"][0]
        assert "tekniske problemer" in reply["text"]
        assert reply["buttons"][0]["payload"] == "/request_human"
        ready = httpx.get(f"{stack.gateway_url}/readyz", timeout=10).json()
        assert ready["checks"]["action_server"] == "down"
        assert ready["checks"]["rasa"] == "ok"
    finally:
        stack.start_action_servers()
    assert chat(stack, new_id(), "hej").status_code == 200
