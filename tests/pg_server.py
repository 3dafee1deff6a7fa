"""PostgreSQL for the record tests: the server at TEST_DATABASE_URL (default the local one at
127.0.0.1:5432) when it answers, else a private one started from Debian's packages in a temporary
folder on a free port. Either way the tests get a database of their own, dropped afterwards."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from indgang.devstack import free_port

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _bin_dir() -> Path:
    """Debian's PostgreSQL programs (initdb is not on PATH), installed when missing."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True)
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: as root, run them as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def private_server() -> Iterator[str]:
    """A throwaway PostgreSQL on loopback (trust auth, no fsync: its data dies with it); yields
    the URL of its `postgres` database."""
    bin_dir, port = _bin_dir(), free_port()
    home = Path(tempfile.mkdtemp(prefix="indgang-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres")
    data = home / "data"
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    run = {"check": True, "capture_output": True}
    try:
        subprocess.run(
            _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                          "-E", "UTF8", "--no-sync"]), **run,
        )  # fmt: skip
        subprocess.run(
            _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l",
                          str(home / "log"), "-w", "-t", "60", "start"]), **run,
        )  # fmt: skip
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]))
        shutil.rmtree(home, ignore_errors=True)


@contextlib.contextmanager
def server() -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_SERVER_URL)
    if answers(url):
        yield url
        return
    with private_server() as private:
        yield private


@contextlib.contextmanager
def private_database(server_url: str) -> Iterator[str]:
    """A new database on the server for this test run; dropped afterwards, connections and all."""
    name = f"indgang_test_{secrets.token_hex(6)}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
