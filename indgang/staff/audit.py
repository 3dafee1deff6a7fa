"""The audit log: every staff access to a conversation, appended to a SQL table (a durable
record: it must outlive a Redis flush) that the console never edits or trims. Admins read it
in the console.

It outlives the conversations it is about (an erased one too), so it names a conversation only
by its pseudonym (keys.pseudonym): whoever holds the id finds its entries; the log alone leads
to no conversation and no citizen."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel
from sqlalchemy import select

from indgang import keys
from indgang.records import models
from indgang.records.db import Database


class AuditEntry(BaseModel):
    id: str
    at: str
    staff: str
    action: str  # login, inbox, view, open, take_over, reply, note, release, close, bookings, ...
    conversation_id: str = ""  # the conversation's pseudonym
    detail: str = ""  # e.g. which view (page, stream), or an admin's reason for opening


async def record(db: Database, staff: str, action: str, conversation_id: str = "", detail: str = "") -> None:
    async with db.transaction() as session:
        session.add(
            models.AuditEntry(
                at=datetime.now(UTC).replace(microsecond=0),
                staff=staff,
                action=action,
                conversation_id=keys.pseudonym(conversation_id) if conversation_id else "",
                detail=detail,
            )
        )


async def entries(db: Database, limit: int = 200) -> list[AuditEntry]:
    """The newest entries first."""
    async with db.transaction() as session:
        newest = select(models.AuditEntry).order_by(models.AuditEntry.id.desc()).limit(limit)
        rows = await session.scalars(newest)
        return [
            AuditEntry(
                id=str(row.id),
                at=row.at.isoformat(timespec="seconds"),
                staff=row.staff,
                action=row.action,
                conversation_id=row.conversation_id,
                detail=row.detail,
            )
            for row in rows
        ]
