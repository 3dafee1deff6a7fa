"""The citizen's own copy of a conversation (GDPR art. 15): everything they and the assistant or
staff wrote, the offers shown and the booking, as a plain text a person can read and keep.
Staff notes and system lines are left out: they are not part of what the citizen was told."""

from __future__ import annotations

import redis.asyncio as aioredis

from indgang import transcript
from indgang.booking import current_booking
from indgang.i18n import t
from indgang.records.db import Database

PAGE = 500


async def citizen_copy(db: Database, redis: aioredis.Redis, conversation_id: str, language: str) -> str:
    messages: list[transcript.Message] = []
    after = None
    while True:
        found, after = await transcript.read(redis, conversation_id, after, limit=PAGE)
        messages += found
        if len(found) < PAGE:
            break
    lines = [t("export.title", language), t("export.about", language), ""]
    for m in messages:
        if m.internal or m.sender == "system":
            continue
        who = t(f"export.from.{m.sender}", language)
        lines.append(f"[{m.at[:16].replace('T', ' ')}] {who}: {m.text}")
        lines += [f"    - {o.get('title')}" for o in m.offers if o.get("title")]
    booking = await current_booking(db, redis, conversation_id)
    if booking and booking.get("slot"):
        lines += [
            "",
            t(
                "export.booking",
                language,
                state=booking["state"],
                slot=booking["slot"][:16].replace("T", " "),
                tovholder=booking.get("tovholder") or "",
            ),
        ]
    return "\n".join(lines) + "\n"
