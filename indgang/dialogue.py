"""What the dialogue engine answers, independent of Rasa's wire format."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field


class Button(BaseModel):
    title: str
    payload: str


class OfferCard(BaseModel):
    """An offer as shown in a reply; `type` is a taxonomy id."""

    id: str
    type: str
    title: str
    url: str | None = None
    summary: str | None = None
    access: str | None = None
    next_step: str | None = None
    municipality: str | None = None
    contact: dict[str, Any] | None = None
    assured_date: str | None = None  # ISO date staff last checked it (None: never)
    checked: str | None = None  # "Oplysningerne er sidst tjekket <dato>."
    confirm: str | None = None  # when not checked recently: confirm with the municipality


class Reply(BaseModel):
    text: str = ""
    buttons: list[Button] = Field(default_factory=list)
    offers: list[OfferCard] = Field(default_factory=list)
    crisis: bool = False
    risk: Literal["none", "concern", "acute"] = "none"  # crisis is true for concern and acute


class EngineUnavailable(Exception):
    """The dialogue engine (Rasa, or the action server behind it) could not answer."""


class DialogueEngine(Protocol):
    async def send(self, conversation_id: str, text: str, metadata: dict[str, Any]) -> list[Reply]: ...

    async def record_staff_turn(self, conversation_id: str, text: str, staff: str) -> None:
        """Tell the engine what staff said, so it knows the context when the bot resumes."""
        ...
