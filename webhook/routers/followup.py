"""The web follow-up (indgang/followup.py): the page comes back with the key it kept when the
citizen agreed to be asked, and is asked in a new conversation once the follow-up is due."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse, Response

from indgang import followup
from indgang.ratelimit import Kind
from webhook.deps import ClientLimit, ClockDep, RedisDep, SettingsDep
from webhook.errors import ApiError
from webhook.schemas import FollowUpVisit, error_responses

router = APIRouter(prefix="/api/v1/followup", tags=["chat"])

FOLLOWUP_HEADER = "X-Followup-Key"
KeyHeader = Annotated[
    str,
    Header(
        alias=FOLLOWUP_HEADER,
        min_length=22,
        max_length=256,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="the followup_key the answer to the citizen's consent carried",
    ),
]


@router.post(
    "",
    response_model=FollowUpVisit,
    responses={204: {"description": "not due yet: ask again on a later visit"}, **error_responses(404, 429)},
    dependencies=[Depends(ClientLimit(Kind.CLIENT_CHAT))],
)
async def visit(key: KeyHeader, redis: RedisDep, settings: SettingsDep, clock: ClockDep) -> Response:
    """The next visit of a page that holds a follow-up key. Due: the question is asked in a new
    conversation, whose id and token are returned (the key is then spent). 204: not due yet.
    404: unknown, already asked or erased: the page forgets the key."""
    found = await followup.visit(redis, settings, key, clock())
    if found.status == "not_due":
        return Response(status_code=204)
    if found.status == "unknown":
        raise ApiError(404, "not_found", "no follow-up for this key")
    body = FollowUpVisit(
        conversation_id=str(found.conversation_id),
        conversation_token=str(found.token),
        language=found.language,
    )
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})
