"""Replicas on one Redis (issue 18): two Rasa replicas, two action servers and two gateways under
concurrent load keep every conversation's transcript and Rasa tracker in one order, with no
message lost or doubled; and a conversation carries on when its Rasa replica refuses connections."""

from __future__ import annotations

import asyncio
import itertools
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest

from indgang.devstack import Stack, ensure_model, free_port
from indgang.settings import Settings
from webhook.citizen import TOKEN_HEADER
from webhook.rasa_engine import RasaEngine

pytestmark = pytest.mark.stack

CONVERSATIONS = 12
TEXTS = ["hej", "min mand drikker hver dag, hvor kan han få behandling", "hvordan søger man", "tak"]


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


@pytest.fixture(scope="module")
def replicas(base_settings: Settings) -> Iterator[tuple[Stack, list[str]]]:
    """Two of each on free ports and the test run's Redis; yields the stack and both gateways."""
    settings = base_settings.model_copy(
        update={
            "gateway_port": free_port(),
            "rasa_url": f"http://127.0.0.1:{free_port()}",
            "action_server_url": f"http://127.0.0.1:{free_port()}",
            "replicas": 2,
            "redis_db": 3,  # its own database: the session's stack may be running beside it
        }
    )
    stack = Stack(settings)
    second = f"http://127.0.0.1:{free_port()}"
    try:
        stack.plan_replicas()
        stack.start_action_servers()
        stack.start_rasa(ensure_model())
        stack._spawn("gateway-2", [sys.executable, "-m", "webhook.main"],
                     {"GATEWAY_PORT": second.rsplit(":", 1)[1], "PUBLIC_BASE_URL": second})  # fmt: skip
        stack.start_gateway()
        stack._wait("gateway-2", lambda: answers(f"{second}/healthz"), 180)
        yield stack, [stack.gateway_url, second]
    finally:
        stack.stop_all()


async def say(client: httpx.AsyncClient, gateway: str, conversation: dict[str, str], text: str) -> None:
    response = await client.post(
        f"{gateway}/api/v1/chat",
        json={"conversation_id": conversation["id"], "text": text},
        headers={TOKEN_HEADER: conversation["token"]} if conversation.get("token") else {},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    assert response.json()["replies"], text  # answered by the engine, not waiting for it
    conversation["token"] = response.json().get("conversation_token") or conversation.get("token", "")


async def talk(
    client: httpx.AsyncClient, gateways: list[str], n: int, conversation_id: str = ""
) -> dict[str, str]:
    """One citizen: turn by turn, each through the other gateway; the last two at the same moment
    (a double send), one through each gateway, which the gateways must run one after the other."""
    conversation = {"id": conversation_id or f"replica-{n}-{uuid.uuid4().hex}"}
    for i, text in enumerate(TEXTS[:-2]):
        await say(client, gateways[(n + i) % 2], conversation, f"{text} ({n}.{i})")
    last = [f"{text} ({n}.{i})" for i, text in enumerate(TEXTS) if i >= len(TEXTS) - 2]
    await asyncio.gather(
        *(say(client, gateway, conversation, text) for gateway, text in zip(gateways, last, strict=True))
    )
    return conversation


async def run_load(gateways: list[str]) -> list[dict[str, str]]:
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=2 * CONVERSATIONS)) as client:
        return await asyncio.gather(*(talk(client, gateways, n) for n in range(CONVERSATIONS)))


def test_two_of_each_keep_every_transcript_in_order_with_nothing_lost_or_doubled(
    replicas: tuple[Stack, list[str]],
) -> None:
    stack, gateways = replicas
    conversations = asyncio.run(run_load(gateways))
    token = {"token": stack.settings.rasa_auth_token}
    rasa_urls = stack.settings.rasa_url_list
    served = set()
    for conversation in conversations:
        found = httpx.get(f"{gateways[0]}/api/v1/chat/{conversation['id']}/messages",
                          headers={TOKEN_HEADER: conversation["token"]}, timeout=10).json()  # fmt: skip
        senders = [m["from"] for m in found["messages"]]
        said = [m["text"] for m in found["messages"] if m["from"] == "user"]
        n = conversation["id"].split("-")[1]
        sent = [f"{text} ({n}.{i})" for i, text in enumerate(TEXTS)]
        # none lost or doubled; in the order sent (the double send in either order)
        assert sorted(said) == sorted(sent) and said[:-2] == sent[:-2], said
        # every message is followed by its own answer before the next message is taken up
        assert senders[0] == "user" and senders[-1] == "bot", senders
        assert not any(a == b == "user" for a, b in itertools.pairwise(senders)), senders
        # Rasa saw the same messages, once each, in the same order, whichever replica took each
        tracker = httpx.get(f"{rasa_urls[0]}/conversations/{conversation['id']}/tracker", params=token,
                            timeout=10).json()  # fmt: skip
        heard = [e["text"] for e in tracker["events"] if e["event"] == "user"]
        assert heard == said, (heard, said)
        served.add(conversation["id"])
    assert len(served) == CONVERSATIONS


def test_a_conversation_goes_on_when_its_rasa_replica_refuses_connections(
    replicas: tuple[Stack, list[str]],
) -> None:
    stack, gateways = replicas
    urls = stack.settings.rasa_url_list
    order = RasaEngine(httpx.AsyncClient(), urls, "", 1.0).replicas
    ids = [f"replica-{n}-{uuid.uuid4().hex}" for n in range(40)]
    on_second = [i for i in ids if order(i)[0] == urls[1]][:3]
    stack.stop("rasa-2")  # the last test here: the module's stack stops after it

    async def citizens() -> list[dict[str, str]]:
        async with httpx.AsyncClient() as client:
            return await asyncio.gather(*(talk(client, gateways, n, i) for n, i in enumerate(on_second)))

    assert len(asyncio.run(citizens())) == 3  # every message answered at once (`say` asserts it)
    ready = httpx.get(f"{gateways[1]}/readyz", timeout=10).json()
    assert ready["checks"]["rasa"] == "partial" and ready["degraded"] == ["rasa"], ready
