"""Soak: many conversations for a long time against a running stack; does anything grow?

Run against a running stack (`make run` in another terminal):
    .venv/bin/python benchmarks/soak.py http://127.0.0.1:8000 [--conversations 50] [--minutes 30]

N simulated citizens each hold one conversation at a time: a few messages with think time in
between, then a new conversation. Every minute it prints the resident memory (RSS, read from
/proc, the process listening on each port plus its children) of the gateway, Rasa, the action
server and Redis, the number of Redis keys, and the keys this run added per conversation it started
(conversations are kept for their retention, so the key count is expected to grow with them; keys
per conversation should stay flat). At the end: growth per hour of each figure, fitted over the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import redis

TOKEN_HEADER = "X-Conversation-Token"  # api.md, "The conversation token"
TURNS = [
    ["hej", "min mand drikker hver dag, hvor kan han få behandling", "hvordan søger man", "tak"],
    ["jeg har ingen steder at bo", "jeg er 19 år", "kan I ringe til mig?", "tak for hjælpen"],
    ["hello", "I need help with drugs", "what is it like the first time?", "thanks"],
    ["jeg vil gerne tale med en medarbejder", "det handler om min søn", "ok"],
]


@dataclass
class Load:
    started: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


def listening_pid(port: int) -> int | None:
    """The process with a TCP socket listening on `port` (via /proc/net/tcp and each fd)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{parts[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in inodes:
                        return int(pid)
    return None


def rss_mib(pid: int) -> float:
    """RSS of `pid` and its descendants, in MiB (0 when it is gone)."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


async def citizen(
    client: httpx.AsyncClient, base: str, rng: random.Random, think: float, until: float, load: Load
) -> None:
    await asyncio.sleep(rng.uniform(0, think))  # citizens arrive spread out, not all at once
    while time.monotonic() < until:
        conversation_id = f"soak-{uuid.uuid4().hex}"
        # each conversation is another citizen's, as the gateway's per-client limits assume (it
        # trusts X-Forwarded-For from the local proxy address, TRUSTED_PROXIES)
        client_address = f"198.18.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        headers: dict[str, str] = {}
        load.started += 1
        for text in rng.choice(TURNS):
            if time.monotonic() >= until:
                return
            started = time.perf_counter()
            try:
                response = await client.post(
                    f"{base}/api/v1/chat",
                    json={"conversation_id": conversation_id, "text": text},
                    headers={"X-Forwarded-For": client_address, **headers},
                    timeout=120,
                )
            except httpx.HTTPError as error:
                load.statuses[type(error).__name__] += 1
                if not headers:
                    break  # no token came back: this conversation cannot go on; start a new one
            else:
                load.statuses[str(response.status_code)] += 1
                load.latencies.append(time.perf_counter() - started)
                token = response.json().get("conversation_token") if response.content else None
                if token:
                    headers = {TOKEN_HEADER: token}
            await asyncio.sleep(rng.uniform(0.5 * think, 1.5 * think))


def per_hour(samples: list[tuple[float, float]]) -> float:
    """Slope of a least-squares line through (seconds, value), per hour."""
    if len(samples) < 2:
        return 0.0
    xs, ys = zip(*samples, strict=True)
    return statistics.linear_regression(xs, ys).slope * 3600


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--conversations", type=int, default=50, help="concurrent citizens")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--think", type=float, default=8.0, help="mean seconds between messages")
    parser.add_argument("--rasa-url", default="http://127.0.0.1:5005")
    parser.add_argument("--action-server-url", default="http://127.0.0.1:5055")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--sample-seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()

    base = args.base_url.rstrip("/")
    ports = {
        "gateway": urlsplit(base).port or 8000,
        "rasa": urlsplit(args.rasa_url).port or 5005,
        "actions": urlsplit(args.action_server_url).port or 5055,
        "redis": urlsplit(args.redis_url).port or 6379,
    }
    pids = {name: listening_pid(port) for name, port in ports.items()}
    print("processes:", ", ".join(f"{n} pid {p} (port {ports[n]})" for n, p in pids.items()))
    store = redis.Redis.from_url(args.redis_url)
    load = Load()
    series: dict[str, list[tuple[float, float]]] = {name: [] for name in [*pids, "keys", "keys/conv"]}
    rng = random.Random(args.seed)
    keys_before = store.dbsize()  # keys/conv: the keys this run added, per conversation it started
    start = time.monotonic()
    until = start + args.minutes * 60

    def sample() -> None:
        elapsed = time.monotonic() - start
        figures = {name: rss_mib(pid) if pid else 0.0 for name, pid in pids.items()}
        figures["keys"] = float(store.dbsize())
        figures["keys/conv"] = (figures["keys"] - keys_before) / max(load.started, 1)
        for name, value in figures.items():
            if name != "keys/conv" or load.started:  # no ratio before the first conversation
                series[name].append((elapsed, value))
        memory = "  ".join(f"{n} {figures[n]:7.1f} MiB" for n in pids)
        print(
            f"{elapsed / 60:5.1f} min  {memory}  keys {figures['keys']:6.0f}  "
            f"conversations {load.started:5d}  keys/conv {figures['keys/conv']:5.1f}  "
            f"replies {dict(load.statuses)}",
            flush=True,
        )

    async def sampler() -> None:
        while time.monotonic() < until:
            sample()
            await asyncio.sleep(min(args.sample_seconds, max(until - time.monotonic(), 0)))

    limits = httpx.Limits(max_connections=args.conversations)
    async with httpx.AsyncClient(limits=limits) as client:
        citizens = [
            citizen(client, base, random.Random(rng.random()), args.think, until, load)
            for _ in range(args.conversations)
        ]
        await asyncio.gather(sampler(), *citizens)
    sample()

    latencies = sorted(load.latencies) or [0.0]
    print(f"\nsummary over {args.minutes:g} min, {args.conversations} concurrent citizens")
    print(f"conversations started {load.started}, messages {sum(load.statuses.values())}")
    print(f"replies {dict(load.statuses)}")
    p50, p95 = latencies[len(latencies) // 2], latencies[int(0.95 * (len(latencies) - 1))]
    print(f"latency p50 {p50:.2f} s, p95 {p95:.2f} s")
    for name, points in series.items():
        first, last = points[0][1], points[-1][1]
        print(f"{name:9s} first {first:9.1f}  last {last:9.1f}  growth/hour {per_hour(points):+9.1f}")


if __name__ == "__main__":
    asyncio.run(main())
