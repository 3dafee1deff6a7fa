"""Request and response bodies of the public HTTP contract (../shared/design/api.md)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from indgang.dialogue import Reply
from indgang.sms.recipients import CONVERSATION_PREFIX as SMS_PREFIX

# Any conversation's id, as staff and Twilio's callbacks name it (SMS ids included). No ':' or
# '.': an id is the last part of its keys, and "<id>:transcript" would name another id's stream.
CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9_\-]{1,128}$"
ConversationPath = Annotated[str, Path(pattern=CONVERSATION_ID_PATTERN)]

# A conversation the citizen web API may name: a client-made random id, long enough not to be
# guessed, with no ':' or '.' (which would reach into other key name spaces), never an SMS id.
WEB_CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9_\-]{16,128}$"


def _not_sms(conversation_id: str) -> str:
    # An SMS conversation is its phone's alone: the web API can neither read nor write to it.
    if conversation_id.lower().startswith(SMS_PREFIX):
        raise ValueError(f"'{SMS_PREFIX}' ids belong to SMS conversations, not the web chat")
    return conversation_id


WebConversationId = Annotated[
    str, StringConstraints(pattern=WEB_CONVERSATION_ID_PATTERN), AfterValidator(_not_sms)
]
WebConversationPath = Annotated[str, Path(pattern=WEB_CONVERSATION_ID_PATTERN), AfterValidator(_not_sms)]


MAX_METADATA_CHARS = 1024


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    conversation_id: WebConversationId
    text: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    language: Literal["da", "en"] | None = None
    # Accepted for clients that send it, never used as identity and never stored (api.md).
    metadata: dict[str, Any] = Field(
        default_factory=dict, description=f"at most {MAX_METADATA_CHARS} characters as JSON"
    )

    @field_validator("metadata")
    @classmethod
    def _small(cls, value: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(value, default=str)) > MAX_METADATA_CHARS:
            raise ValueError(f"metadata is limited to {MAX_METADATA_CHARS} characters as JSON")
        return value


class ChatResponse(BaseModel):
    conversation_id: str
    replies: list[Reply]
    handoff: Literal["none", "requested", "active", "closed"]
    booking: dict[str, Any] | None = None
    language: Literal["da", "en"] = "da"
    # Only in the answer to the message that created the conversation; see webhook/citizen.py.
    conversation_token: str | None = None
    # Only in the answer that gave consent to a follow-up: the page keeps it (localStorage) and
    # sends it to POST /api/v1/followup on a later visit.
    followup_key: str | None = None


class FollowUpVisit(BaseModel):
    """A due follow-up, asked in a new conversation: the page continues in it."""

    conversation_id: str
    conversation_token: str
    language: Literal["da", "en"] = "da"


class TranscriptMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    at: str
    sender: str = Field(serialization_alias="from")
    text: str
    crisis: bool = False
    offers: list[dict[str, Any]] = Field(default_factory=list)
    buttons: list[dict[str, Any]] = Field(default_factory=list)


class TranscriptPage(BaseModel):
    messages: list[TranscriptMessage]
    cursor: str | None


class OfferResult(BaseModel):
    id: str
    type: str
    title: str
    summary: str
    municipality: str
    access: str
    contact: dict[str, Any]
    score: float
    next_step: str | None = None
    url: str | None = None
    assured_date: str | None = None  # ISO date staff last checked the offer (None: never)
    checked: str | None = None  # "Oplysningerne er sidst tjekket <dato>." in `language`
    confirm: str | None = None  # when not checked recently: confirm with the municipality


class OfferSearchResponse(BaseModel):
    query: str
    offers: list[OfferResult]


class ErrorBody(BaseModel):
    error: str
    detail: Any = None


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for error answers (a JSON ErrorBody), by reference and under
    application/json explicitly: with `model=`, FastAPI would declare them under the route's own
    media type, which is wrong for a route whose answer is a file or text."""
    body = {"schema": {"$ref": "#/components/schemas/ErrorBody"}}
    return {code: {"description": "error", "content": {"application/json": body}} for code in codes}
