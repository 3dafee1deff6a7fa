"""The local spool: inbound messages that arrived while Redis was unreachable, kept on disk
until Redis is back and then replayed into the normal path (stored, safety-checked, answered).

One append-only file of JSON lines, each record fsync'ed before the citizen is answered, mode
0600 (it holds the citizen's words and number: docs/privacy.md). A replayed record is removed
from the file at once. Each record is replayed once: a marker in Redis (keys.spool_replay) is
claimed before the record is handled and set "done" after; a record found "done" is only
removed, so a crash between handling and removal does not double it. A crash while a record is
being handled leaves a lease that expires, and the record is tried again then: nothing is lost
(the transcript may then show that one message twice, as it may when Redis failed half-way
through the request that spooled it).

Several gateway processes may share one spool directory (replicas on one host, or a restart
that overlaps the old process): every read and write of the file holds an exclusive `flock`
on a lock file beside it, so an append never lands in a copy that a removal is about to rename
over the file, and two removals never interleave. Every gateway replays the whole file; the
marker in Redis lets exactly one of them handle each record.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Literal

import redis.asyncio as aioredis
from pydantic import BaseModel, Field

from indgang import keys
from indgang.background import BackgroundLoop
from indgang.redis_store import UNREACHABLE
from indgang.settings import Settings

log = logging.getLogger(__name__)

FILE_NAME = "inbound.jsonl"
LOCK_NAME = "inbound.lock"


class SpooledMessage(BaseModel):
    """One inbound message, with what its channel needs to handle it later."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    at: float = Field(default_factory=time.time)
    channel: Literal["sms", "web"]
    text: str
    language: str | None = None
    # SMS: the verified sender and Twilio's message id
    sender: str = ""
    message_sid: str = ""
    media_count: int = 0
    # web: the conversation, the token the client holds, and whether this message creates it
    conversation_id: str = ""
    token: str = ""
    new_conversation: bool = False


Handler = Callable[[SpooledMessage], Awaitable[None]]


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.path = Path(directory) / FILE_NAME
        self.max_bytes = max_bytes
        self._lock = threading.Lock()  # appends (request handlers) and removals (the replay)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """This process's threads, then every process sharing the directory, one at a time."""
        with self._lock:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.path.parent / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # and with it the lock

    async def append(self, message: SpooledMessage) -> bool:
        """Durably keep `message`; False when the spool is full or the disk refuses."""
        try:
            return await asyncio.to_thread(self._append, message.model_dump_json() + "\n")
        except OSError:
            log.exception("spool append failed")
            return False

    def _append(self, line: str) -> bool:
        with self._locked():
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                if size + len(line.encode()) > self.max_bytes:
                    log.error("spool full: a message was answered but not kept")
                    return False
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = "\n" + line  # after a torn write, so it does not swallow this record
                os.write(fd, line.encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            return True

    async def pending(self) -> list[SpooledMessage]:
        return await asyncio.to_thread(self._read)

    def _read(self) -> list[SpooledMessage]:
        with self._locked():
            try:
                lines = self.path.read_text(encoding="utf-8").splitlines()
            except FileNotFoundError:
                return []
        found = []
        for line in lines:
            try:
                found.append(SpooledMessage.model_validate_json(line))
            except ValueError:
                log.error("spool: an unreadable line was skipped")  # a torn last write
        return found

    async def remove(self, record_id: str) -> None:
        await asyncio.to_thread(self._remove, record_id)

    def _remove(self, record_id: str) -> None:
        """Rewrite the file without the record: a new file, fsync'ed, renamed over the old."""
        with self._locked():
            try:
                lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
            except FileNotFoundError:
                return
            kept = [line for line in lines if _record_id(line) not in (record_id, None)]
            if not kept:
                self.path.unlink()
            else:
                temporary = self.path.with_suffix(".tmp")
                fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                try:
                    os.write(fd, "".join(kept).encode())
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(temporary, self.path)
            directory = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)


def _record_id(line: str) -> str | None:
    """The id of a spooled line; None for a torn line, which is dropped with the rewrite."""
    try:
        return str(json.loads(line)["id"])
    except (ValueError, KeyError, TypeError):
        return None


class SpoolReplay:
    """Replays the spool into Redis whenever it holds records and Redis answers."""

    def __init__(
        self, spool: Spool, redis: aioredis.Redis, handlers: dict[str, Handler], settings: Settings
    ) -> None:
        self.spool = spool
        self.retention_seconds = settings.conversation_ttl_seconds
        self.redis = redis
        self.handlers = handlers
        interval = settings.spool_replay_interval_seconds
        self._loop = BackgroundLoop("spool-replay", self.replay, pause=interval, error_pause=interval)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def replay(self) -> int:
        """Replay what the spool holds, in order; returns how many records were replayed."""
        records = await self._unexpired(await self.spool.pending())
        if not records:
            return 0
        try:
            await self.redis.ping()
        except UNREACHABLE:
            return 0  # still down: try again next round
        replayed = 0
        for record in records:
            marker = keys.spool_replay(record.id)
            if not await self.redis.set(marker, "pending", nx=True, ex=keys.SPOOL_LEASE_SECONDS):
                if await self.redis.get(marker) != "done":
                    break  # an attempt that crashed mid-record: its lease runs out first (order kept)
                await self.spool.remove(record.id)
                continue
            try:
                await self.handlers[record.channel](record)
            except Exception:
                await self.redis.delete(marker)
                raise
            await self.redis.set(marker, "done", ex=keys.SPOOL_DONE_SECONDS)
            await self.spool.remove(record.id)
            replayed += 1
        if replayed:
            log.info("spool replayed", extra={"records": replayed})
        return replayed

    async def _unexpired(self, records: list[SpooledMessage]) -> list[SpooledMessage]:
        """Retention: a message Redis never came back for is dropped after a conversation's TTL."""
        oldest = time.time() - self.retention_seconds
        for record in records:
            if record.at < oldest:
                log.warning("spooled message expired unreplayed")
                await self.spool.remove(record.id)
        return [r for r in records if r.at >= oldest]
