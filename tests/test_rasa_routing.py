"""How the gateway spreads conversations over Rasa replicas (webhook/rasa_engine.py), over real
HTTP: a small server that answers as Rasa's REST channel does, and ports where nothing listens.
The same with the real Rasa and real replicas: tests/test_replicas.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest

from indgang.devstack import free_port
from webhook.rasa_engine import RasaEngine

pytestmark = pytest.mark.anyio


class Replica(BaseHTTPRequestHandler):
    """Answers every message with the replica's own port, and counts what reached it."""

    heard: ClassVar[list[tuple[int, str]]] = []

    def do_POST(self) -> None:  # the names http.server calls
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        port = self.server.server_address[1]
        self.heard.append((port, body["sender"]))
        answer = json.dumps([{"recipient_id": body["sender"], "text": str(port)}]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def two_replicas() -> Iterator[list[str]]:
    servers = [ThreadingHTTPServer(("127.0.0.1", 0), Replica) for _ in range(2)]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    Replica.heard = []
    yield [f"http://127.0.0.1:{server.server_address[1]}" for server in servers]
    for server in servers:
        server.shutdown()
        server.server_close()


def ids_kept_on(engine: RasaEngine, base: str, count: int) -> list[str]:
    found = (f"conversation-{n}" for n in range(1000))
    return [i for i in found if engine.replicas(i)[0] == base][:count]


async def test_each_conversation_stays_on_one_replica_and_both_share_the_load(
    two_replicas: list[str],
) -> None:
    async with httpx.AsyncClient() as client:
        engine = RasaEngine(client, two_replicas, "token", 5.0)
        for n in range(40):
            for _ in range(2):
                await engine.send(f"conversation-{n}", "hej", {})
    by_conversation: dict[str, set[int]] = {}
    for port, sender in Replica.heard:
        by_conversation.setdefault(sender, set()).add(port)
    assert all(len(ports) == 1 for ports in by_conversation.values())  # stable per conversation
    counts = [sum(1 for port, _ in Replica.heard if f":{port}" in base) for base in two_replicas]
    assert min(counts) >= 20, counts  # both carry a share (40 conversations x 2 messages)


async def test_a_replica_refusing_connections_is_passed_over_at_once(two_replicas: list[str]) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    alive = two_replicas[0]
    async with httpx.AsyncClient() as client:
        engine = RasaEngine(client, [dead, alive], "token", 5.0)
        for conversation_id in ids_kept_on(engine, dead, 5):
            replies = await engine.send(conversation_id, "hej", {})
            assert [r.text for r in replies] == [alive.rsplit(":", 1)[1]]


async def test_the_watch_puts_a_replica_whose_action_server_is_down_last(two_replicas: list[str]) -> None:
    first, second = two_replicas
    no_actions = f"http://127.0.0.1:{free_port()}"
    async with httpx.AsyncClient() as client:
        engine = RasaEngine(client, [first, second], "token", 5.0, [no_actions, second])
        kept_on_first = ids_kept_on(engine, first, 5)
        await engine.check()
        assert engine.down == {first}
        for conversation_id in kept_on_first:
            assert engine.replicas(conversation_id) == [second, first]
            replies = await engine.send(conversation_id, "hej", {})
            assert [r.text for r in replies] == [second.rsplit(":", 1)[1]]
