"""Supervision: `indgang run` restarts a part that dies while the others keep serving, and
`/readyz` names the part that is down. The fault-injection test starts the real launcher
(`python -m indgang.cli run`) and kills Rasa and the action server with SIGKILL mid-conversation."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis as redis_sync
from fastapi.testclient import TestClient

from indgang.devstack import PROJECT_DIR, Backoff, Stack, Supervisor, free_port, redis_reachable
from indgang.i18n import t
from indgang.redis_store import redis_url
from indgang.settings import Settings
from webhook.citizen import TOKEN_HEADER
from webhook.main import create_app
from webhook.rasa_engine import WATCH_SECONDS, RasaEngine

# Seconds from a kill until the killed part is serving again (`/readyz` 200). The launcher runs
# two replicas of Rasa and of the action server (the default REPLICAS), so a citizen whose replica
# is killed is answered at once by the other: that is how "back within 30 s" (issue 17) is met,
# since one Rasa alone needs 35-50 s on the 2-core build machine to start and load its model.
ENGINE_DOWN = t(
    "chat.engine_down", "da", minutes=math.ceil(Settings(_env_file=None).engine_down_handoff_seconds / 60)
)
# A killed Rasa replica loads its model again in 40-200 s, by the load on the two cores (the
# README, "Several replicas"); citizens meanwhile go to the other replica (asserted below).
BACK_WITHIN = {"actions": 30.0, "gateway": 30.0, "rasa": 300.0}

# --- back-off and the supervisor, with real child processes ---------------------------------


def test_backoff_doubles_to_30_s_and_starts_over_after_a_stable_run() -> None:
    backoff = Backoff()
    assert [backoff.next_delay(ran_for=2) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff.next_delay(ran_for=120) == 1  # it ran a while: a new crash, not a loop


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_killed_child_is_restarted_after_its_backoff_and_the_others_keep_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack = Stack(Settings(_env_file=None), log_dir=tmp_path)
    sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
    stack._spawn("rasa", sleeper)
    stack._spawn("gateway", sleeper)
    clock = Clock()
    supervisor = Supervisor(stack, clock=clock)
    try:
        gateway, first = stack.processes["gateway"], stack.processes["rasa"]
        os.kill(first.pid, signal.SIGKILL)
        first.wait(5)
        clock.now += 5
        supervisor.check()
        assert stack.processes["rasa"] is first  # not yet: its back-off is 1 s
        clock.now += 1
        supervisor.check()
        second = stack.processes["rasa"]
        assert second is not first and second.poll() is None
        assert stack.processes["gateway"] is gateway and gateway.poll() is None

        os.kill(second.pid, signal.SIGKILL)  # dies again at once: the delay doubles
        second.wait(5)
        supervisor.check()
        clock.now += 1.5
        supervisor.check()
        assert stack.processes["rasa"] is second
        clock.now += 0.5
        supervisor.check()
        assert stack.processes["rasa"] is not second
    finally:
        stack.stop_all()
    log = capsys.readouterr().err
    assert "rasa exited with code -9; restarting it in 1 s" in log
    assert "rasa exited with code -9; restarting it in 2 s" in log
    assert "gateway" not in log


# --- /readyz names what is down ---------------------------------------------------------------


def test_readyz_names_the_degraded_parts_and_answers_503(base_settings: Settings) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    # the action server's default port may hold a running `make run`'s
    settings = base_settings.model_copy(update={"rasa_url": dead, "action_server_url": dead, "redis_db": 1})
    with TestClient(create_app(settings)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "degraded"
    assert body["degraded"] == ["rasa", "action_server"]
    assert body["checks"] == {"redis": "ok", "rasa": "down", "action_server": "down"}


# --- fault injection: the real launcher, kill -9 mid-conversation -----------------------------


@dataclass
class Launcher:
    process: subprocess.Popen[bytes]
    gateway_url: str
    log: Path

    env: dict[str, str]

    def children(self, *markers: str) -> list[int]:
        """The pids of the launcher's children whose command lines hold every one of `markers`."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and all(marker in cmdline for marker in markers):
                found.append(int(entry.name))
        return found

    def child(self, *markers: str) -> int:
        """The pid of the launcher's (first) child whose command line holds every one of `markers`."""
        found = self.children(*markers)
        if not found:
            raise LookupError(markers)
        return found[0]


@pytest.fixture(scope="module")
def launcher(base_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    gateway_port = free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_DIR),
        "REDIS_URL": redis_url(base_settings),
        "DATABASE_URL": base_settings.database_url,
        "GATEWAY_PORT": str(gateway_port),
        "RASA_URL": f"http://127.0.0.1:{free_port()}",
        "ACTION_SERVER_URL": f"http://127.0.0.1:{free_port()}",
        "PUBLIC_BASE_URL": gateway_url,
        "STAFF_OPENING_HOURS": base_settings.staff_opening_hours,
    }
    log = tmp_path_factory.mktemp("launcher") / "launcher.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "indgang.cli", "run"], cwd=PROJECT_DIR, env=env, stdout=out, stderr=out
        )
    running = Launcher(process, gateway_url, log, env)
    try:
        deadline = time.monotonic() + 400
        while "ready: web chat" not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(1)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.wait(60)


class Citizen:
    def __init__(self, gateway_url: str) -> None:
        self.url = f"{gateway_url}/api/v1/chat"
        self.id = f"fault-{uuid.uuid4().hex}"
        self.headers: dict[str, str] = {}

    def say(self, text: str) -> httpx.Response:
        response = httpx.post(self.url, json={"conversation_id": self.id, "text": text},
                              headers=self.headers, timeout=60)  # fmt: skip
        token = response.json().get("conversation_token")
        if token:
            self.headers = {TOKEN_HEADER: token}
        return response


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1]


def kill_and_carry_on(launcher: Launcher, name: str, part: str, text: str) -> float:
    """Kill the replica (Rasa or its action server) that a conversation is kept on, mid-way: the
    next message is answered at once by the other replica; returns how long until the killed
    one serves again."""
    own_rasa = launcher.env["RASA_URL"]
    order = RasaEngine(httpx.AsyncClient(), [own_rasa, "the other replica"], "", 1.0).replicas
    citizen = Citizen(launcher.gateway_url)
    while order(citizen.id)[0] != own_rasa:  # a conversation kept on the replica we kill
        citizen = Citizen(launcher.gateway_url)
    assert citizen.say("hej").status_code == 200
    own = {"rasa": ("rasa run", "RASA_URL"), "actions": ("actions.server", "ACTION_SERVER_URL")}[name]
    os.kill(launcher.child(own[0], f"--port {port_of(launcher.env[own[1]])} "), signal.SIGKILL)
    killed = time.monotonic()
    time.sleep(2 * WATCH_SECONDS)  # a dead action server is seen by the gateway's watch, not by Rasa

    meanwhile = citizen.say(text)
    assert meanwhile.status_code == 200, meanwhile.text  # the citizen loses nothing
    assert meanwhile.json()["replies"] and meanwhile.json()["replies"][0]["text"] != ENGINE_DOWN
    ready = httpx.get(f"{launcher.gateway_url}/readyz", timeout=10)
    assert ready.status_code == 503 and ready.json()["checks"][part] == "partial", ready.text

    # Poll readiness, not the chat: a message a second would trip the citizen's rate limit.
    while httpx.get(f"{launcher.gateway_url}/readyz", timeout=10).status_code != 200:
        elapsed = time.monotonic() - killed
        log = launcher.log.read_text()
        assert elapsed < BACK_WITHIN[name], f"{part} not back after {elapsed:.0f} s:\n{log}"
        time.sleep(1)
    assert f"{name} exited with code -9; restarting it in 1 s" in launcher.log.read_text()
    return time.monotonic() - killed


def gateway_comes_back(launcher: Launcher) -> float:
    """Kill the gateway itself: it is restarted on its port, and the conversation goes on."""
    citizen = Citizen(launcher.gateway_url)
    assert citizen.say("hej").status_code == 200
    os.kill(launcher.child("webhook.main"), signal.SIGKILL)
    killed = time.monotonic()
    while True:
        elapsed = time.monotonic() - killed
        assert elapsed < BACK_WITHIN["gateway"], launcher.log.read_text()
        try:
            answer = citizen.say("hej igen")
            break
        except httpx.TransportError:  # nothing listens until it is back
            time.sleep(1)
    assert answer.status_code == 200 and answer.json()["replies"], answer.text
    return time.monotonic() - killed


@pytest.mark.stack
def test_killed_rasa_and_action_server_come_back_by_themselves(launcher: Launcher) -> None:
    rasa = kill_and_carry_on(launcher, "rasa", "rasa", "hej igen")
    need = "min mand drikker hver dag, hvor kan han få behandling"
    actions = kill_and_carry_on(launcher, "actions", "action_server", need)
    gateway = gateway_comes_back(launcher)
    print(f"back after: rasa {rasa:.1f} s, action server {actions:.1f} s, gateway {gateway:.1f} s")
    assert httpx.get(f"{launcher.gateway_url}/readyz", timeout=10).status_code == 200
    assert launcher.process.poll() is None  # the launcher kept running throughout

    children = [launcher.child(m) for m in ("rasa run", "actions.server", "webhook.main")]
    assert len(launcher.children("rasa run")) == len(launcher.children("actions.server")) == 2
    launcher.process.send_signal(signal.SIGINT)  # Ctrl-C stops everything
    assert launcher.process.wait(60) == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in children)


def test_a_killed_private_redis_is_restarted_on_its_port_with_its_data(tmp_path: Path) -> None:
    stack = Stack(Settings(_env_file=None), log_dir=tmp_path)
    stack.start_redis_if_needed(private=True)
    try:
        store = redis_sync.Redis.from_url(redis_url(stack.settings), socket_timeout=2)
        store.set("indgang:test:kept", "yes")
        time.sleep(1.5)  # the append-only file is synced every second
        supervisor = Supervisor(stack)
        os.kill(stack.processes["redis"].pid, signal.SIGKILL)
        stack.processes["redis"].wait(5)
        deadline = time.monotonic() + 10
        while not redis_reachable(redis_url(stack.settings)):
            assert time.monotonic() < deadline, "the private Redis was not restarted"
            supervisor.check()
            time.sleep(0.2)
        assert store.get("indgang:test:kept") == b"yes"
    finally:
        stack.stop_all()
