"""Latency of a chat turn through the gateway versus straight at Rasa's REST channel.

Run against a running stack (`make run` in another terminal):
    .venv/bin/python benchmarks/chat_latency.py [--conversations 20] [--messages 5]

Both paths get the same load: N concurrent conversations, each sending M messages in turn.
Prints p50/p95 latency and messages/s for both, and the ratio gateway/direct.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import httpx

TOKEN_HEADER = "X-Conversation-Token"  # api.md, "The conversation token"
MESSAGES = [
    "hej",
    "min mand drikker hver dag, hvor kan han få behandling",
    "hvordan søger man",
    "jeg har ingen steder at bo",
    "tak",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


async def conversation(
    client: httpx.AsyncClient, url: str, body_for, messages: int, out: list[float]
) -> None:
    sender = f"bench-{uuid.uuid4().hex}"
    headers: dict[str, str] = {}
    for i in range(messages):
        started = time.perf_counter()
        response = await client.post(
            url, json=body_for(sender, MESSAGES[i % len(MESSAGES)]), headers=headers, timeout=120
        )
        response.raise_for_status()
        out.append(time.perf_counter() - started)
        answer = response.json()
        if isinstance(answer, dict) and answer.get("conversation_token"):
            # The gateway's first answer hands out the conversation's token; later turns send it.
            headers = {TOKEN_HEADER: answer["conversation_token"]}


async def load(url: str, body_for, conversations: int, messages: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=conversations)
    async with httpx.AsyncClient(limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(
            *(conversation(client, url, body_for, messages, latencies) for _ in range(conversations))
        )
        return latencies, time.perf_counter() - started


def report(name: str, latencies: list[float], elapsed: float) -> float:
    p50, p95 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.95) * 1000
    print(
        f"{name:8s} n={len(latencies):4d}  p50={p50:7.1f} ms  p95={p95:7.1f} ms  "
        f"mean={statistics.mean(latencies) * 1000:7.1f} ms  {len(latencies) / elapsed:6.1f} msg/s"
    )
    return p95


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway", default="http://127.0.0.1:8000")
    parser.add_argument("--rasa", default="http://127.0.0.1:5005")
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--messages", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of each path")
    args = parser.parse_args()

    def gateway_body(sender: str, text: str) -> dict:
        return {"conversation_id": sender, "text": text}

    def rasa_body(sender: str, text: str) -> dict:
        return {"sender": sender, "message": text, "metadata": {"channel": "web", "language": "da"}}

    # one warm-up turn each, so model loading is not measured
    await load(f"{args.gateway}/api/v1/chat", gateway_body, 2, 1)
    # Alternate the paths round by round: on a small machine the load of one round (caches,
    # CPU heat, other processes) would otherwise favour whichever path ran second.
    runs: dict[str, tuple[list[float], float]] = {"direct": ([], 0.0), "gateway": ([], 0.0)}
    paths = {
        "direct": (f"{args.rasa}/webhooks/rest/webhook", rasa_body),
        "gateway": (f"{args.gateway}/api/v1/chat", gateway_body),
    }
    for round_number in range(args.rounds):
        order = ["direct", "gateway"] if round_number % 2 == 0 else ["gateway", "direct"]
        for name in order:
            latencies, elapsed = await load(*paths[name], args.conversations, args.messages)
            runs[name] = (runs[name][0] + latencies, runs[name][1] + elapsed)
    print(f"{args.rounds} rounds x {args.conversations} conversations x {args.messages} messages per path")
    direct_p95 = report("direct", *runs["direct"])
    gateway_p95 = report("gateway", *runs["gateway"])
    print(f"ratio gateway/direct p95: {gateway_p95 / direct_p95:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
