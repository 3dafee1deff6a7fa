"""Server-Sent Event streams under the caps of the process's one transcript reader."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from typing import Any

from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from indgang.live import StreamsFull, TranscriptFeed
from webhook.deps import TooMany

PING_SECONDS = 15  # a comment line that keeps proxies from closing a quiet stream
RETRY_MS = 3000  # how soon the browser reconnects after the stream drops
# How often an idle stream checks that it may still run (the token, the staff session), and
# how long a refused client is asked to wait before it tries again.
CHECK_SECONDS = 3.0
FULL_RETRY_AFTER_SECONDS = 30


def live_stream(feed: TranscriptFeed, client: str, events: AsyncGenerator[Any]) -> EventSourceResponse:
    """`events` as a stream holding one of the client's places: 429 when the client has all its
    streams open already, 503 when the gateway has. The place is given back when the stream ends
    however it ends (the generator's end, or the response's background task if it never ran)."""
    try:
        slot = feed.open(client)
    except StreamsFull as full:
        if full.scope == "client":
            raise TooMany(FULL_RETRY_AFTER_SECONDS, "too_many_streams") from None
        raise TooMany(FULL_RETRY_AFTER_SECONDS, "streams_busy", status_code=503) from None

    async def held() -> AsyncIterator[Any]:
        try:
            async with aclosing(events):  # its watch ends with the stream, not when collected
                async for event in events:
                    yield event
        finally:
            slot.release()

    return EventSourceResponse(held(), ping=PING_SECONDS, background=BackgroundTask(slot.release))
