"""How long the stack takes to be ready again after Rasa is killed (issue 17: within 30 s).

Run against a stack started by `indgang run` (`make run`), whose supervisor restarts Rasa:
    .venv/bin/python benchmarks/rasa_restart.py http://127.0.0.1:8000 --rasa-port 5005 [--rounds 3]

Each round kills Rasa with SIGKILL and times, from the kill: when the supervisor has started a
new Rasa process (its back-off plus the moment the death is seen), when that Rasa answers
at all (its own start: Python, TensorFlow, the model), and when the gateway's `/readyz`
says 200 again. It waits for the stack to be stable (back-off reset) between rounds.

With replicas (`REPLICAS`, default 2) it kills the one on `--rasa-port` and, right after the
kill, sends one message from each of `--citizens` new conversations through the gateway (about
half of them are kept on the killed replica): it prints how many got a real answer at once
(not "tekniske problemer"), and the slowest of those answers.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import time
import uuid
from pathlib import Path

import httpx


def rasa_pid(port: int) -> int | None:
    """The `rasa run` process serving `port` (by its command line)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        is_rasa = b"run" in args and any(a.endswith(b"rasa") for a in args[:2])
        if is_rasa and b"--port" in args and args[args.index(b"--port") + 1] == str(port).encode():
            return int(entry.name)
    return None


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def citizens_meanwhile(gateway: str, count: int) -> tuple[int, float]:
    """Messages from new conversations sent at once: how many got the engine's answer (200),
    and the slowest answer in seconds."""
    answered, slowest = 0, 0.0
    for _ in range(count):
        began = time.monotonic()
        body = {"conversation_id": f"restart-{uuid.uuid4().hex}", "text": "hej"}
        response = httpx.post(f"{gateway}/api/v1/chat", json=body, timeout=60)
        answered += response.status_code == 200  # while the engine is down: 503, "tekniske problemer"
        slowest = max(slowest, time.monotonic() - began)
    return answered, slowest


def one_round(gateway: str, rasa_port: int, citizens: int) -> tuple[float, float, float]:
    old = rasa_pid(rasa_port)
    assert old is not None, "no rasa run process on that port"
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    if citizens:
        answered, slowest = citizens_meanwhile(gateway, citizens)
        print(f"  right after the kill: {answered}/{citizens} citizens answered, slowest {slowest:.2f} s")
    started = up = None
    while True:
        now = time.monotonic() - killed
        if started is None and rasa_pid(rasa_port) not in (None, old):
            started = now
        if started is not None and up is None and answers(f"http://127.0.0.1:{rasa_port}/"):
            up = now
        if up is not None and answers(f"{gateway}/readyz"):
            return started, up, now
        assert now < 300, "not ready after 300 s"
        time.sleep(0.1)


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("gateway")
    parser.add_argument("--rasa-port", type=int, default=5005)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--citizens", type=int, default=10, help="messages sent right after each kill")
    parser.add_argument("--stable", type=float, default=65.0, help="wait between rounds (back-off reset)")
    args = parser.parse_args()
    assert answers(f"{args.gateway}/readyz"), "the stack is not ready"
    ready = []
    for n in range(args.rounds):
        if n:
            time.sleep(args.stable)
        started, up, back = one_round(args.gateway, args.rasa_port, args.citizens)
        ready.append(back)
        print(f"round {n + 1}: new rasa {started:.1f} s, rasa answers {up:.1f} s, readyz 200 {back:.1f} s")
    median, longest = statistics.median(ready), max(ready)
    print(f"ready again: median {median:.1f} s, max {longest:.1f} s over {len(ready)} rounds")


if __name__ == "__main__":
    main()
