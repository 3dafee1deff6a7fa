"""Load as citizens make it: conversations with think time (an open model), through the gateway
and straight at Rasa's REST channel in the same run; and a closed-loop ceiling (issue 18).

Run against a running stack (`make run` in another terminal):
    .venv/bin/python benchmarks/load.py [--conversations 100] [--messages 6] [--think 5 15]
    .venv/bin/python benchmarks/load.py --quick            # 20 x 3, think 1-3 s: a smoke run
    .venv/bin/python benchmarks/load.py --ceiling [--concurrency 8] [--seconds 30]
    .venv/bin/python benchmarks/load.py --length 60 [--pace 3.2]   # cost as a conversation grows

Open model: every conversation starts at a random moment within the first think time and waits
a random think time (uniform in --think) after each answer before its next message, so the
arrival rate does not fall when the stack slows down the way a fixed pool of clients' would.
Conversations alternate between the two paths, so both see the same machine at the same time.
Each conversation writes from its own client address (X-Forwarded-For, trusted from loopback),
as citizens do, so the gateway's per-client limit counts each one apart.

Ceiling: a fixed number of conversations send without think time for a while, each path on its
own in alternating halves; prints the messages/s each path sustained.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import httpx
from chat_latency import MESSAGES, TOKEN_HEADER, percentile  # benchmarks/ is the script's path


@dataclass
class Path:
    name: str
    urls: list[str]  # Rasa direct: every replica, one conversation on each in turn
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def body(self, sender: str, text: str) -> dict[str, Any]:
        if self.name == "gateway":
            return {"conversation_id": sender, "text": text}
        return {"sender": sender, "message": text, "metadata": {"channel": "web", "language": "da"}}

    def url(self, sender: str) -> str:
        """As the gateway spreads conversations over replicas: by a hash of the id."""
        return self.urls[zlib.crc32(sender.encode()) % len(self.urls)]

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


def client_address(n: int) -> str:
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


async def conversation(
    client: httpx.AsyncClient, path: Path, n: int, messages: int, think: tuple[float, float], start: float
) -> None:
    sender = f"load-{uuid.uuid4().hex}"
    headers = {"X-Forwarded-For": client_address(n)}
    await asyncio.sleep(start)
    for i in range(messages):
        if i:
            await asyncio.sleep(random.uniform(*think))
        began = time.perf_counter()
        try:
            body = path.body(sender, MESSAGES[i % len(MESSAGES)])
            response = await client.post(path.url(sender), json=body, headers=headers, timeout=60)
        except httpx.HTTPError as exc:
            path.error(type(exc).__name__)
            continue
        path.latencies.append(time.perf_counter() - began)
        if response.status_code != 200:
            path.error(str(response.status_code))
            continue
        answer = response.json()
        if isinstance(answer, dict) and answer.get("conversation_token"):
            headers[TOKEN_HEADER] = answer["conversation_token"]


def report(path: Path, elapsed: float) -> float:
    done = path.latencies
    if not done:
        print(f"{path.name:8s} no answers; errors {path.errors}")
        return float("nan")
    p50, p95, p99 = (percentile(done, q) * 1000 for q in (0.5, 0.95, 0.99))
    errors = sum(path.errors.values())
    print(
        f"{path.name:8s} n={len(done):5d}  p50={p50:7.1f} ms  p95={p95:7.1f} ms  p99={p99:7.1f} ms  "
        f"errors={errors} {path.errors if errors else ''}  {len(done) / elapsed:5.1f} msg/s"
    )
    return p95


async def open_model(paths: list[Path], args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=args.conversations)
    think = (args.think[0], args.think[1])
    async with httpx.AsyncClient(limits=limits) as client:
        began = time.perf_counter()
        await asyncio.gather(*(
            conversation(client, paths[n % len(paths)], n, args.messages, think, random.uniform(0, think[1]))
            for n in range(args.conversations)
        ))  # fmt: skip
        elapsed = time.perf_counter() - began
    total = sum(len(p.latencies) for p in paths)
    print(
        f"open model: {args.conversations} conversations x {args.messages} messages, think "
        f"{think[0]:g}-{think[1]:g} s, {elapsed:.0f} s, {total / elapsed:.1f} msg/s offered and answered"
    )
    p95 = {p.name: report(p, elapsed) for p in paths}
    if len(p95) == 2:
        print(f"ratio gateway/direct p95: {p95['gateway'] / p95['direct']:.2f}")


async def closed_loop(path: Path, concurrency: int, seconds: float) -> float:
    """Send for `seconds`; returns how long it took until every conversation had finished."""
    stop = time.perf_counter() + seconds

    async def sender(client: httpx.AsyncClient, n: int) -> None:
        rounds = 0
        while time.perf_counter() < stop:
            # a fresh conversation each round (no tracker growth), from a citizen of its own: one
            # address sending without pause would meet the gateway's per-client limit
            await conversation(client, path, n + rounds * concurrency, len(MESSAGES), (0.0, 0.0), 0.0)
            rounds += 1

    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=concurrency)) as client:
        began = time.perf_counter()
        await asyncio.gather(*(sender(client, n) for n in range(concurrency)))
        return time.perf_counter() - began


async def one_long_conversation(paths: list[Path], messages: int, pace: float) -> None:
    """One conversation per path, message after message with `pace` seconds between (the
    gateway lets one conversation send 20 a minute), the paths half a pace apart so they do not
    meet: what a message costs as its conversation grows."""
    began = time.perf_counter()
    async with httpx.AsyncClient() as client:
        await asyncio.gather(*(
            conversation(client, path, 1000 + k, messages, (pace, pace), k * pace / 2)
            for k, path in enumerate(paths)
        ))  # fmt: skip
    elapsed = time.perf_counter() - began
    print(f"one conversation per path, {messages} messages, {pace:g} s apart; median per ten messages:")
    for path in paths:
        done = path.latencies
        tens = [statistics.median(done[k : k + 10]) * 1000 for k in range(0, len(done), 10)]
        blocks = "  ".join(f"{k * 10 + 1}-{k * 10 + 10}: {ms:.0f}" for k, ms in enumerate(tens))
        report(path, elapsed)
        print(f"{'':8s} {blocks}  (last/first ten: {tens[-1] / tens[0]:.2f})")


async def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--gateway", default="http://127.0.0.1:8000")
    parser.add_argument("--rasa", default="http://127.0.0.1:5005",
                        help="Rasa replicas, comma-separated; empty: the gateway alone")  # fmt: skip
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--messages", type=int, default=6)
    parser.add_argument("--think", type=float, nargs=2, default=(5.0, 15.0), metavar=("MIN", "MAX"))
    parser.add_argument("--quick", action="store_true", help="20 conversations x 3, think 1-3 s")
    parser.add_argument("--ceiling", action="store_true", help="closed loop: the messages/s each path holds")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0, help="per path, in the ceiling mode")
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--length", type=int, metavar="N", help="one conversation of N messages per path")
    parser.add_argument("--pace", type=float, default=3.2, help="seconds between messages, with --length")
    args = parser.parse_args()
    if args.quick:
        args.conversations, args.messages, args.think = 20, 3, (1.0, 3.0)
    random.seed(args.seed)

    def paths() -> list[Path]:
        found = [Path("gateway", [f"{args.gateway}/api/v1/chat"])]
        if args.rasa:
            found.append(Path("direct", [f"{url}/webhooks/rest/webhook" for url in args.rasa.split(",")]))
        return found

    # One warm-up conversation per path, so loading models is not measured.
    await open_model(paths(), argparse.Namespace(conversations=2, messages=1, think=(0.0, 0.0)))
    print("--- measured ---")
    if args.length:
        await one_long_conversation(paths(), args.length, args.pace)
        return
    if not args.ceiling:
        await open_model(paths(), args)
        return
    halves = paths()
    elapsed = {path.name: 0.0 for path in halves}
    for path in [*halves, *reversed(halves)]:  # alternating halves: neither path always runs warmer
        elapsed[path.name] += await closed_loop(path, args.concurrency, args.seconds / 2)
    print(f"ceiling: {args.concurrency} conversations without think time, {args.seconds:g} s per path")
    for path in halves:
        report(path, elapsed[path.name])


if __name__ == "__main__":
    asyncio.run(main())
