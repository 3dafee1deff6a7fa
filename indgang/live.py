"""Live streams of transcripts, fed by one Redis reader per process.

A stream used to hold its own blocking XREAD, so every open stream held a Redis connection (60
streams: 61 clients). Now one loop reads the transcripts of all open streams in a single XREAD
and wakes the streams whose transcript grew; each then reads its new messages with a short
command on the shared pool. The number of streams open at once is capped per client and in all.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import redis.asyncio as aioredis

from indgang import keys
from indgang.background import BackgroundLoop

# Short enough that a stream opened during a read is included in the next one within half a
# second; long enough that an idle gateway reads twice a second, not in a busy loop.
BLOCK_MS = 500


class StreamsFull(Exception):
    """No room for another live stream: this client's (`client`) or the gateway's (`total`)."""

    def __init__(self, scope: Literal["client", "total"]) -> None:
        super().__init__(f"too many live streams ({scope})")
        self.scope = scope


@dataclass
class Slot:
    """One open stream's place under the caps; `release` may be called more than once."""

    feed: TranscriptFeed
    client: str
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.feed._release(self.client)


@dataclass(eq=False)  # compared (and hashed) by identity: each stream has its own
class Watch:
    """A stream's wake-up call: `changed` is set when its transcript may have new entries."""

    key: str
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self, timeout: float) -> bool:
        """True when woken, False after `timeout` seconds without news."""
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except TimeoutError:
            return False
        return True


class TranscriptFeed:
    def __init__(self, redis: aioredis.Redis, *, per_client: int, total: int) -> None:
        self.redis = redis
        self.per_client = per_client
        self.total = total
        self._open: Counter[str] = Counter()
        self._watches: dict[str, set[Watch]] = {}
        self._after: dict[str, str] = {}  # transcript key -> the last entry id the loop has seen
        self._loop = BackgroundLoop("transcript-feed", self._read_once, pause=0, error_pause=1.0)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    @property
    def open_streams(self) -> int:
        return sum(self._open.values())

    def open(self, client: str) -> Slot:
        """A place for one more live stream of `client`, or StreamsFull."""
        if self.open_streams >= self.total:
            raise StreamsFull("total")
        if self._open[client] >= self.per_client:
            raise StreamsFull("client")
        self._open[client] += 1
        return Slot(self, client)

    def _release(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]

    @asynccontextmanager
    async def watch(self, conversation_id: str) -> AsyncIterator[Watch]:
        """Wake-ups for new entries in the conversation's transcript while the block runs. The
        caller clears `changed`, reads, and waits only when the read found nothing: an entry
        written after the watch began always wakes it."""
        key = keys.transcript(conversation_id)
        watch = Watch(key)
        if key not in self._after:
            newest = await self.redis.xrevrange(key, count=1)
            self._after.setdefault(key, newest[0][0] if newest else "0-0")
        self._watches.setdefault(key, set()).add(watch)
        try:
            yield watch
        finally:
            watching = self._watches.get(key, set())
            watching.discard(watch)
            if not watching:
                self._watches.pop(key, None)
                self._after.pop(key, None)

    async def _read_once(self) -> None:
        streams = {key: self._after[key] for key in self._watches if key in self._after}
        if not streams:
            await asyncio.sleep(BLOCK_MS / 1000)
            return
        for key, entries in await self.redis.xread(streams, block=BLOCK_MS) or []:
            if key in self._after and entries:
                self._after[key] = entries[-1][0]
            for watch in self._watches.get(key, ()):
                watch.changed.set()
