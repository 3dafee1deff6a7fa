"""A booking as a calendar file, for the link in the web chat's confirmation."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from indgang.booking import get_booking
from indgang.booking.ics import booking_ics
from webhook.deps import DbDep, SettingsDep
from webhook.errors import ApiError

router = APIRouter(prefix="/api/v1/bookings", tags=["bookings"])


@router.get(
    "/{booking_id}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}, 404: {"description": "no such booking"}},
)
async def booking_calendar_file(
    booking_id: Annotated[str, Path(pattern=r"^bk_[0-9a-f]{1,64}$")],
    token: Annotated[str, Query(min_length=1, max_length=100)],
    db: DbDep,
    settings: SettingsDep,
) -> Response:
    booking = await get_booking(db, booking_id)
    # The same answer for an unknown booking and a wrong token: the link is the only key.
    if booking is None or not hmac.compare_digest(booking.token, token):
        raise ApiError(404, "not_found", "no such booking")
    return Response(
        booking_ics(booking, settings),
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{booking_id}.ics"',
            "Cache-Control": "private, no-store",
        },
    )
