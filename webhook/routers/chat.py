"""The citizen web chat: one message in, the assistant's replies out; and the transcript."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, PlainTextResponse

from indgang import ratelimit, transcript
from indgang.export import citizen_copy
from indgang.i18n import t
from indgang.inbound import offline_reply
from indgang.ratelimit import Kind
from indgang.redis_store import UNREACHABLE
from indgang.spool import SpooledMessage
from webhook.citizen import ChatConversation, ChatConversationDep, CitizenConversationDep
from webhook.deps import ClientLimit, DbDep, InboundDep, RedisDep, SettingsDep, SpoolDep
from webhook.errors import RETRY_AFTER_SECONDS, ApiError
from webhook.schemas import (
    ChatRequest,
    ChatResponse,
    ErrorBody,
    TranscriptMessage,
    TranscriptPage,
    error_responses,
)

router = APIRouter(prefix="/api/v1/chat", tags=["chat"])


@router.post(
    "",
    response_model=ChatResponse,
    responses={403: {"model": ErrorBody}, 429: {"model": ErrorBody}, 503: {"model": ChatResponse}},
    # Counted per client before the conversation is made: new ids every time get no more.
    dependencies=[Depends(ClientLimit(Kind.CLIENT_CHAT))],
)
async def chat(
    body: ChatRequest,
    access: ChatConversationDep,
    inbound: InboundDep,
    redis: RedisDep,
    settings: SettingsDep,
    spool: SpoolDep,
) -> JSONResponse:
    """One message. The answer to the first message of a new `conversation_id` carries
    `conversation_token`; every later request about the conversation sends it in
    `X-Conversation-Token` (403 without it). While the session store is unreachable the answer
    is a 503 with the reply (emergency numbers in a crisis), and the message is answered later."""
    if not access.checked:
        return await _store_down(body, access, spool)
    try:
        return await _chat(body, access, inbound, redis, settings)
    except UNREACHABLE:
        return await _store_down(body, access, spool)


async def _chat(
    body: ChatRequest, access: ChatConversation, inbound: InboundDep, redis: RedisDep, settings: SettingsDep
) -> JSONResponse:
    retry_after = await ratelimit.hit(
        redis, Kind.CHAT, body.conversation_id, settings.chat_rate_limit, settings.chat_rate_window_seconds
    )
    if retry_after is not None:
        refused = ApiError(
            429, "rate_limited", t("chat.rate_limited", body.language), {"Retry-After": str(retry_after)}
        )
        # The conversation exists now: its citizen must not lose the key.
        return refused.response(**({"conversation_token": access.new_token} if access.new_token else {}))
    # The client's metadata never reaches the engine: on the web nothing it says is identity
    # (a phone number in it proves nothing); the SMS channel passes the verified sender itself.
    turn = await inbound.handle(body.conversation_id, body.text, "web", body.language)
    response = ChatResponse(
        conversation_id=turn.conversation_id,
        replies=turn.replies + turn.after,
        handoff=turn.handoff,
        booking=turn.booking,
        language=turn.language,
        conversation_token=access.new_token,
        followup_key=turn.followup_key,
    )
    payload = response.model_dump(mode="json")
    for once in ("conversation_token", "followup_key"):
        if payload[once] is None:
            del payload[once]  # handed out once; later answers simply lack it
    return JSONResponse(payload, status_code=503 if turn.engine_down else 200)


async def _store_down(body: ChatRequest, access: ChatConversation, spool: SpoolDep) -> JSONResponse:
    """Redis is unreachable: keep the message in the spool (with its token, checked when it is
    replayed) and answer from memory. Nothing here depends on the conversation, so a wrong
    token learns nothing; a conversation this message creates gets its token now."""
    saved = await spool.append(
        SpooledMessage(
            channel="web",
            text=body.text,
            language=body.language,
            conversation_id=body.conversation_id,
            token=access.token,
            new_conversation=not access.checked and access.new_token is not None,
        )
    )
    reply, lang = offline_reply(body.text, body.language, saved)
    response = ChatResponse(
        conversation_id=body.conversation_id,
        replies=[reply],
        handoff="none",
        language=lang,
        conversation_token=access.new_token,
    )
    payload = response.model_dump(mode="json", exclude={"followup_key"})
    if payload["conversation_token"] is None:
        del payload["conversation_token"]
    return JSONResponse(payload, status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


@router.get(
    "/{conversation_id}/messages",
    response_model=TranscriptPage,
    response_model_by_alias=True,
    responses={403: {"model": ErrorBody}},
)
async def messages(
    conversation_id: CitizenConversationDep,
    redis: RedisDep,
    after: Annotated[str | None, Query(max_length=40)] = None,
) -> JSONResponse:
    if after is not None and not transcript.is_valid_cursor(after):
        raise ApiError(422, "invalid_cursor", "after must be a cursor from this endpoint")
    found, cursor = await transcript.read(redis, conversation_id, after)
    page = TranscriptPage(messages=citizen_view(found), cursor=cursor)
    return JSONResponse(page.model_dump(by_alias=True))


@router.get(
    "/{conversation_id}/export",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}, **error_responses(403)},
)
async def export(
    conversation_id: CitizenConversationDep,
    redis: RedisDep,
    db: DbDep,
    language: Annotated[Literal["da", "en"], Query()] = "da",
) -> PlainTextResponse:
    """The citizen's own copy of the conversation (GDPR art. 15), as a file to keep."""
    text = await citizen_copy(db, redis, conversation_id, language)
    return PlainTextResponse(
        text,
        headers={
            "Content-Disposition": 'attachment; filename="samtale.txt"',
            "Cache-Control": "no-store",
        },
    )


def citizen_view(found: list[transcript.Message]) -> list[TranscriptMessage]:
    """The messages a citizen sees (no staff notes, no system lines), as the page reads them."""
    return [
        TranscriptMessage.model_validate(m.model_dump())
        for m in found
        if not m.internal and m.sender != "system"
    ]
