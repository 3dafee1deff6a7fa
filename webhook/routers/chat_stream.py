"""The web chat's live side: new transcript messages as Server-Sent Events (staff replies arrive
without polling), and the citizen's own "end and delete the conversation"."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent

from indgang import conversation, transcript
from indgang.erasure import erase_conversation
from indgang.live import TranscriptFeed
from indgang.ratelimit import Kind
from webhook.citizen import TOKEN_HEADER, CitizenConversationDep
from webhook.deps import ClientDep, ClientLimit, DbDep, FeedDep, RedisDep, SettingsDep
from webhook.errors import ApiError
from webhook.live import CHECK_SECONDS, RETRY_MS, live_stream
from webhook.routers.chat import citizen_view
from webhook.schemas import ErrorBody

router = APIRouter(prefix="/api/v1/chat", tags=["chat"])


async def follow(
    redis: aioredis.Redis, feed: TranscriptFeed, conversation_id: str, after: str | None, token: str | None
) -> AsyncIterator[ServerSentEvent]:
    """Every citizen-visible message after the cursor, as it is written, for as long as `token`
    opens the conversation."""
    cursor = after
    yield ServerSentEvent(comment="stream open", retry=RETRY_MS)
    async with feed.watch(conversation_id) as watch:
        while True:
            watch.changed.clear()  # before the read: an entry written after it wakes the wait
            found, cursor = await transcript.read(redis, conversation_id, cursor)
            for message in citizen_view(found):
                # The entry id is the event id, so a reconnecting browser resumes with Last-Event-ID.
                yield ServerSentEvent(data=message.model_dump_json(by_alias=True), id=message.id)
            if not found:
                await watch.wait(CHECK_SECONDS)
                # A stream must not outlive its key: once the conversation is erased (or expired),
                # and its id perhaps taken by someone else, the stream ends; reopening is a 403.
                if not await conversation.token_matches(redis, conversation_id, token):
                    return


@router.get(
    "/{conversation_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        403: {"model": ErrorBody},
        # a bad cursor (ErrorBody) or a malformed id or header (FastAPI's validation body)
        422: {
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": "#/components/schemas/ErrorBody"},
                            {"$ref": "#/components/schemas/HTTPValidationError"},
                        ]
                    }
                }
            }
        },
        429: {"model": ErrorBody},
        503: {"model": ErrorBody},
    },
    dependencies=[Depends(ClientLimit(Kind.CLIENT_STREAMS))],
)
async def events(
    request: Request,
    conversation_id: CitizenConversationDep,
    redis: RedisDep,
    feed: FeedDep,
    client: ClientDep,
    after: Annotated[str | None, Query(max_length=40)] = None,
    last_event_id: Annotated[str | None, Header(max_length=40)] = None,
) -> Response:
    """New transcript messages (the same objects as `GET .../messages`), one event each, with the
    transcript cursor as the event id. Starts after `Last-Event-ID` (a reconnect), else after
    `after`, else at the beginning. Needs `X-Conversation-Token`, which a browser's EventSource
    cannot send: the chat page reads the stream with fetch() instead. A client may hold
    STREAMS_PER_CLIENT streams at once (429 beyond), the gateway STREAMS_TOTAL (503 beyond)."""
    cursor = last_event_id or after
    if cursor is not None and not transcript.is_valid_cursor(cursor):
        raise ApiError(422, "invalid_cursor", "after must be a cursor from this conversation")
    token = request.headers.get(TOKEN_HEADER)  # checked already; the stream checks it again as it runs
    return live_stream(feed, client, follow(redis, feed, conversation_id, cursor, token))


class ErasedResponse(BaseModel):
    conversation_id: str
    erased: bool
    deleted_keys: int


@router.delete(
    "/{conversation_id}",
    response_model=ErasedResponse,
    responses={403: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
async def erase(
    conversation_id: CitizenConversationDep, redis: RedisDep, db: DbDep, settings: SettingsDep
) -> JSONResponse:
    """The web chat's "Afslut og slet samtalen": the transcript, the record, the handoff, Rasa's
    tracker and a booking made in it go, and with the record its token, so the token opens
    nothing afterwards."""
    record = await conversation.get(redis, conversation_id)
    if record is not None and record.channel == "sms":
        # An SMS conversation is erased from the phone (SLET), which proves it is the citizen's;
        # its id never passes the web id check, so this only guards against a future mix-up.
        raise ApiError(409, "wrong_channel", "an SMS conversation is erased by texting SLET")
    deleted = await erase_conversation(db, redis, settings, conversation_id, requested_by="citizen")
    body = ErasedResponse(conversation_id=conversation_id, erased=True, deleted_keys=deleted)
    return JSONResponse(body.model_dump())
