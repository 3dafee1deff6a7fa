"""The staff API (api.md, "Staff side"): the same steps as the console's buttons, as JSON, for
the console's own scripts and for the municipality's tools. Session login and CSRF header."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from indgang.booking import list_bookings
from indgang.handoff import HandoffError, HeldByOther
from indgang.staff import audit
from indgang.staff.console import MAX_TEXT_CHARS
from indgang.staff.inbox import Inbox, inbox
from webhook.deps import ConsoleDep, RedisDep
from webhook.schemas import ConversationPath
from webhook.staff_session import StaffDep

router = APIRouter(prefix="/api/v1/staff", tags=["staff"])


class StaffText(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class HandoffResult(BaseModel):
    conversation_id: str
    handoff: str
    staff: str | None = None


def conflict(error: HandoffError) -> JSONResponse:
    return JSONResponse({"error": "conflict", "detail": str(error)}, status_code=409)


@router.get("/conversations", response_model=Inbox)
async def conversations(member: StaffDep, redis: RedisDep) -> Inbox:
    """Waiting (urgent first, then oldest), mine, and held by others."""
    await audit.record(redis, member.username, "inbox")  # it shows what citizens wrote
    return await inbox(redis, member.username)


@router.post("/conversations/{conversation_id}/takeover", response_model=HandoffResult)
async def take_over(conversation_id: ConversationPath, member: StaffDep, console: ConsoleDep) -> Any:
    try:
        await console.take_over(conversation_id, member)
    except HandoffError as error:
        return conflict(error)
    return HandoffResult(conversation_id=conversation_id, handoff="active", staff=member.username)


@router.post("/conversations/{conversation_id}/messages", status_code=201)
async def reply(
    conversation_id: ConversationPath,
    body: Annotated[StaffText, Body()],
    member: StaffDep,
    console: ConsoleDep,
) -> Any:
    """Delivered on the conversation's channel (web chat or SMS)."""
    try:
        message = await console.reply(conversation_id, member, body.text)
    except HandoffError as error:
        return conflict(error)
    return message.model_dump(by_alias=True)


@router.post("/conversations/{conversation_id}/notes", status_code=201)
async def note(
    conversation_id: ConversationPath,
    body: Annotated[StaffText, Body()],
    member: StaffDep,
    console: ConsoleDep,
) -> Any:
    message = await console.note(conversation_id, member, body.text)
    return message.model_dump(by_alias=True)


@router.post("/conversations/{conversation_id}/release", response_model=HandoffResult)
async def release(conversation_id: ConversationPath, member: StaffDep, console: ConsoleDep) -> Any:
    try:
        await console.release(conversation_id, member)
    except HandoffError as error:
        return conflict(error)
    return HandoffResult(conversation_id=conversation_id, handoff="none")


@router.post("/conversations/{conversation_id}/close", response_model=HandoffResult)
async def close(conversation_id: ConversationPath, member: StaffDep, console: ConsoleDep) -> Any:
    """Only the staff member who holds the conversation, or an admin (403 for anyone else)."""
    try:
        await console.close(conversation_id, member)
    except HeldByOther as error:
        return JSONResponse({"error": "forbidden", "detail": str(error)}, status_code=403)
    except HandoffError as error:
        return conflict(error)
    return HandoffResult(conversation_id=conversation_id, handoff="closed")


@router.get("/bookings")
async def bookings(member: StaffDep, redis: RedisDep, tovholder: str | None = None) -> dict[str, Any]:
    """Bookings with their tovholder, slot and state, earliest first."""
    await audit.record(redis, member.username, "bookings")
    found = await list_bookings(redis, tovholder)
    return {
        "bookings": [
            {
                **b.summary(),
                "tovholder_id": b.tovholder,
                "end": b.end.isoformat(),
                "conversation_id": b.conversation_id,
                "kind": b.kind,
            }
            for b in found
        ]
    }
