"""A web conversation belongs to its citizen alone (api.md, "The conversation token").

The first message of a new conversation id creates the conversation and its answer carries the
conversation's token; every later request about it (messages, the event stream, erasure, the
next messages) sends the token in `X-Conversation-Token`. Without it, or with a wrong one, the
answer is 403, the same whether or not the conversation exists. Every citizen route under
/api/v1/chat that names a conversation depends on `citizen_conversation` (the id in the path)
or `chat_conversation` (the id in the message), which make the one check below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header

from indgang import conversation
from indgang.i18n import DEFAULT_LANGUAGE, t
from indgang.redis_store import UNREACHABLE
from webhook.deps import RedisDep, SettingsDep
from webhook.errors import ApiError
from webhook.schemas import ChatRequest, WebConversationPath

TOKEN_HEADER = "X-Conversation-Token"
TokenHeader = Annotated[
    str | None,
    Header(alias=TOKEN_HEADER, description="the token the conversation's first answer carried"),
]


class NoAccess(ApiError):
    """A missing or wrong token (or an unknown conversation: the two look the same). Nothing in
    the body depends on the conversation, so it cannot tell whether it exists."""

    def __init__(self, language: str | None = None) -> None:
        super().__init__(
            403,
            "forbidden",
            t("chat.forbidden", language or DEFAULT_LANGUAGE),
            headers={"Cache-Control": "no-store"},
        )


@dataclass(frozen=True)
class ChatConversation:
    id: str
    new_token: str | None = None  # only when this message created the conversation
    token: str = ""  # the token the request held, or the new one
    # False when Redis was unreachable, so nothing could be checked: the token goes with the
    # message into the spool and is checked when the message is replayed (indgang/spool.py).
    checked: bool = True


async def _check(
    redis: RedisDep, conversation_id: str, token: str | None, language: str | None = None
) -> None:
    if not await conversation.token_matches(redis, conversation_id, token):
        raise NoAccess(language)


async def citizen_conversation(
    conversation_id: WebConversationPath, redis: RedisDep, token: TokenHeader = None
) -> str:
    """The conversation named in the path, when the request holds its token."""
    await _check(redis, conversation_id, token)
    return conversation_id


async def chat_conversation(
    body: ChatRequest, redis: RedisDep, settings: SettingsDep, token: TokenHeader = None
) -> ChatConversation:
    """The conversation a message goes to: created (with a new token) when its id is unused,
    else only with its token. Runs before anything is stored or counted against the rate limit."""
    try:
        if token:
            await _check(redis, body.conversation_id, token, body.language)
            return ChatConversation(body.conversation_id, token=token)
        created = await conversation.start_web(redis, body.conversation_id, settings.conversation_ttl_seconds)
    except UNREACHABLE:
        if token:
            return ChatConversation(body.conversation_id, token=token, checked=False)
        fresh = conversation.new_token()
        return ChatConversation(body.conversation_id, new_token=fresh, token=fresh, checked=False)
    if created is None:
        raise NoAccess(body.language)
    return ChatConversation(body.conversation_id, new_token=created, token=created)


CitizenConversationDep = Annotated[str, Depends(citizen_conversation)]
ChatConversationDep = Annotated[ChatConversation, Depends(chat_conversation)]
