"""The staff API (api.md, "Staff side"): the same steps as the console's buttons, as JSON, for
the console's own scripts and for the municipality's tools. Session login and CSRF header."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field, StringConstraints

from indgang import conversation
from indgang.booking import list_bookings, mark_no_show
from indgang.erasure import erase_conversation
from indgang.export import citizen_copy
from indgang.staff import audit
from indgang.staff.console import MAX_REASON_CHARS, MAX_TEXT_CHARS
from indgang.staff.inbox import Inbox, inbox
from webhook.deps import ConsoleDep, DbDep, RedisDep, SettingsDep
from webhook.errors import ApiError
from webhook.routers.chat_stream import ErasedResponse
from webhook.schemas import ConversationPath, error_responses
from webhook.staff_session import AdminDep, StaffDep

# 401 without a staff session, 403 without the CSRF header or the role, 404 and 409 as each step says
router = APIRouter(prefix="/api/v1/staff", tags=["staff"], responses=error_responses(401, 403, 404, 409))


class StaffText(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class OpenReason(BaseModel):
    reason: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=3, max_length=MAX_REASON_CHARS)
    ]


class EraseRequest(BaseModel):
    # Kept in the audit log for good: the reason says why, never who the citizen is.
    reason: str = Field(min_length=3, max_length=500)


class NoShow(BaseModel):
    no_show: bool  # true: the citizen did not come; false undoes a mark made by mistake


class HandoffResult(BaseModel):
    conversation_id: str
    handoff: str
    staff: str | None = None


@router.get("/conversations", response_model=Inbox)
async def conversations(member: StaffDep, redis: RedisDep, db: DbDep) -> Inbox:
    """Waiting (urgent first, then oldest), mine, and held by others."""
    await audit.record(db, member.username, "inbox", detail="api")  # it shows what citizens wrote
    return await inbox(redis, member.username)


@router.post("/conversations/{conversation_id}/open")
async def open_with_reason(
    conversation_id: ConversationPath,
    body: Annotated[OpenReason, Body()],
    member: AdminDep,
    console: ConsoleDep,
) -> dict[str, str]:
    """An admin opens a conversation that never asked for a person, for the rest of the login;
    the reason goes to the audit log. Staff open those that asked for a person, or their own."""
    await console.open_with_reason(conversation_id, member, body.reason)
    return {"conversation_id": conversation_id, "opened": "yes"}


@router.post("/conversations/{conversation_id}/takeover", response_model=HandoffResult)
async def take_over(conversation_id: ConversationPath, member: StaffDep, console: ConsoleDep) -> Any:
    await console.take_over(conversation_id, member)  # a HandoffError is a 409 (webhook.errors)
    return HandoffResult(conversation_id=conversation_id, handoff="active", staff=member.username)


@router.post("/conversations/{conversation_id}/messages", status_code=201)
async def reply(
    conversation_id: ConversationPath,
    body: Annotated[StaffText, Body()],
    member: StaffDep,
    console: ConsoleDep,
) -> Any:
    """Delivered on the conversation's channel (web chat or SMS)."""
    message = await console.reply(conversation_id, member, body.text)  # HandoffError: 409
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
    await console.release(conversation_id, member)  # a HandoffError is a 409 (webhook.errors)
    return HandoffResult(conversation_id=conversation_id, handoff="none")


@router.post("/conversations/{conversation_id}/close", response_model=HandoffResult)
async def close(conversation_id: ConversationPath, member: StaffDep, console: ConsoleDep) -> Any:
    """Only the staff member who holds the conversation, or an admin (403 for anyone else)."""
    await console.close(conversation_id, member)  # HeldByOther: 403, other HandoffErrors: 409
    return HandoffResult(conversation_id=conversation_id, handoff="closed")


@router.get("/bookings")
async def bookings(member: StaffDep, db: DbDep, tovholder: str | None = None) -> dict[str, Any]:
    """Bookings with their tovholder, slot and state, earliest first."""
    await audit.record(db, member.username, "bookings")
    found = await list_bookings(db, tovholder)
    return {
        "bookings": [
            {
                **b.summary(),
                "tovholder_id": b.tovholder,
                "end": b.end.isoformat(),
                "conversation_id": b.conversation_id,
                "kind": b.kind,
                "no_show": b.no_show,
            }
            for b in found
        ]
    }


@router.post("/bookings/{booking_id}/no-show")
async def booking_no_show(
    booking_id: Annotated[str, Path(pattern=r"^bk_[0-9a-f]{1,64}$")],
    body: Annotated[NoShow, Body()],
    member: StaffDep,
    db: DbDep,
) -> dict[str, Any]:
    """Whether the citizen came to a confirmed meeting (404 for one not yet begun, cancelled or
    unknown): the municipality counts no-shows."""
    marked = await mark_no_show(db, booking_id, body.no_show)
    if marked is None:
        raise ApiError(404, "not_found", "no confirmed booking that has begun")
    detail = "no_show" if body.no_show else "came"
    await audit.record(db, member.username, "booking_no_show", marked.conversation_id, detail=detail)
    return {**marked.summary(), "no_show": marked.no_show}


@router.post("/conversations/{conversation_id}/erase", response_model=ErasedResponse)
async def erase(
    conversation_id: ConversationPath,
    body: Annotated[EraseRequest, Body()],
    member: AdminDep,
    redis: RedisDep,
    db: DbDep,
    settings: SettingsDep,
) -> ErasedResponse:
    """Erasure on the citizen's request (e.g. by phone): the same erasure as SLET and the web
    chat's button. Admins only; the audit log keeps who, when and why."""
    deleted = await erase_conversation(db, redis, settings, conversation_id, requested_by="staff")
    await audit.record(db, member.username, "erase", conversation_id, detail=body.reason.strip())
    return ErasedResponse(conversation_id=conversation_id, erased=True, deleted_keys=deleted)


@router.get("/conversations/{conversation_id}/export", response_class=PlainTextResponse)
async def export(
    conversation_id: ConversationPath, member: StaffDep, redis: RedisDep, db: DbDep
) -> PlainTextResponse:
    """The conversation as a file, for a citizen's access request (GDPR art. 15): the copy the
    citizen downloads themselves, in the conversation's language."""
    await audit.record(db, member.username, "export", conversation_id)
    record = await conversation.get(redis, conversation_id)
    text = await citizen_copy(db, redis, conversation_id, record.language if record else "da")
    return PlainTextResponse(
        text,
        headers={
            "Content-Disposition": f'attachment; filename="samtale-{conversation_id[:24]}.txt"',
            "Cache-Control": "no-store",
        },
    )
