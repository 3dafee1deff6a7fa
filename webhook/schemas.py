"""Request and response bodies of the public HTTP contract (../shared/design/api.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from indgang.dialogue import Reply

CONVERSATION_ID_PATTERN = r"^[A-Za-z0-9_:.\-]{1,128}$"
ConversationId = Annotated[str, StringConstraints(pattern=CONVERSATION_ID_PATTERN)]
ConversationPath = Annotated[str, Path(pattern=CONVERSATION_ID_PATTERN)]


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    conversation_id: ConversationId
    text: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    language: Literal["da", "en"] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ChatResponse(BaseModel):
    conversation_id: str
    replies: list[Reply]
    handoff: Literal["none", "requested", "active", "closed"]
    booking: dict[str, Any] | None = None
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


class OfferSearchResponse(BaseModel):
    query: str
    offers: list[OfferResult]


class ErrorBody(BaseModel):
    error: str
    detail: Any = None
