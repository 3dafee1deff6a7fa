"""The one transcript reader behind every live stream: it wakes the streams whose transcript
grew, forgets a transcript when its last stream ends, and caps streams per client and in all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from indgang import transcript
from indgang.live import StreamsFull, TranscriptFeed

pytestmark = pytest.mark.anyio


@pytest.fixture
async def feed(redis: aioredis.Redis) -> AsyncIterator[TranscriptFeed]:
    running = TranscriptFeed(redis, per_client=2, total=3)
    running.start()
    yield running
    await running.stop()


async def test_a_watch_wakes_when_its_transcript_grows_and_not_for_others(
    redis: aioredis.Redis, feed: TranscriptFeed
) -> None:
    await transcript.append(redis, "conv-a", "user", "før", 60)  # written before: no wake-up
    async with feed.watch("conv-a") as a, feed.watch("conv-b") as b:
        assert not await a.wait(0.8)
        await transcript.append(redis, "conv-a", "staff", "svar", 60)
        assert await a.wait(2)
        assert not b.changed.is_set()
    await asyncio.sleep(0.6)  # the reader's next turn
    assert feed._watches == {} and feed._after == {}


async def test_an_entry_written_as_the_watch_begins_is_not_missed(
    redis: aioredis.Redis, feed: TranscriptFeed
) -> None:
    async with feed.watch("conv-a") as a:
        await transcript.append(redis, "conv-a", "staff", "straks", 60)  # before the reader's next read
        assert await a.wait(2)


async def test_streams_are_capped_per_client_and_in_all(feed: TranscriptFeed) -> None:
    first, _ = feed.open("1.2.3.4"), feed.open("1.2.3.4")
    with pytest.raises(StreamsFull) as mine:
        feed.open("1.2.3.4")
    assert mine.value.scope == "client"
    feed.open("5.6.7.8")
    with pytest.raises(StreamsFull) as everyone:
        feed.open("5.6.7.8")
    assert everyone.value.scope == "total"
    first.release()
    first.release()  # a second release gives back nothing more
    assert feed.open_streams == 2
    feed.open("5.6.7.8")
    with pytest.raises(StreamsFull):
        feed.open("9.9.9.9")
