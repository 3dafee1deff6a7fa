"""The tables of durable records (typed SQLAlchemy 2 models). A change here needs a migration
in migrations/versions (`alembic revision --autogenerate` writes its first draft)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UtcDateTime(TypeDecorator[datetime]):
    """An aware UTC time on every database: SQLite keeps no zone, so it is put back on reading."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("a naive datetime cannot be stored: give it a zone")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# SQLite autoincrements only an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


class StaffAccount(Base):
    __tablename__ = "staff_accounts"

    username: Mapped[str] = mapped_column(String(40), primary_key=True)
    password_hash: Mapped[str] = mapped_column(Text)  # argon2
    role: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    totp_secret: Mapped[str | None] = mapped_column(String(64), default=None)
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, default=None)  # each code logs in once


class AuditEntry(Base):
    """Only ever appended to (indgang/staff/audit.py)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    staff: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(40))
    conversation_id: Mapped[str] = mapped_column(String(80), default="", index=True)  # its pseudonym
    detail: Mapped[str] = mapped_column(Text, default="")
    # The entry's id in the Redis stream it came from (`indgang db import-redis`): imported once.
    redis_id: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)


class InsightCount(Base):
    """One count of the insight page (indgang/insight.py): what happened how often, per local day,
    channel and category. Only counts: no words, no conversation, no person."""

    __tablename__ = "insight_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    channel: Mapped[str] = mapped_column(String(8), primary_key=True)  # sms or web
    metric: Mapped[str] = mapped_column(String(24), primary_key=True)
    category: Mapped[str] = mapped_column(String(80), primary_key=True)  # "" when the metric has none
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class TovholderRow(Base):
    """A tovholder the assistant books (indgang/booking/tovholdere.py): seeded from the YAML
    directory when the table is empty; `profile` holds the validated entry (areas, hours)."""

    __tablename__ = "tovholdere"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    team: Mapped[str] = mapped_column(String(200))
    profile: Mapped[dict[str, Any]] = mapped_column(JSON)


# One confirmed booking per tovholder and start: the database itself refuses a second (under
# concurrency too) on SQLite and PostgreSQL alike; a cancelled booking frees its slot.
_CONFIRMED = text("state = 'confirmed'")


class BookingRow(Base):
    """A confirmed or cancelled booking (indgang/booking/bookings.py). The form being filled in
    stays in Redis; a booking exists here from the moment its slot is taken."""

    __tablename__ = "bookings"
    __table_args__ = (
        Index(
            "uq_bookings_confirmed_slot",
            "tovholder_id",
            "starts_at",
            unique=True,
            sqlite_where=_CONFIRMED,
            postgresql_where=_CONFIRMED,
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(80), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    language: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(32))  # E.164
    phone_hash: Mapped[str] = mapped_column(String(128), index=True)  # keyed: finds the citizen's tovholder
    topic: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(20))
    for_whom: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(20))  # confirmed, cancelled
    tovholder_id: Mapped[str] = mapped_column(String(40), index=True)
    tovholder_name: Mapped[str] = mapped_column(String(40))  # as told to the citizen when booked
    team: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    timezone: Mapped[str] = mapped_column(String(64))  # the calendar's: times are read back in it
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    moved_from: Mapped[datetime | None] = mapped_column(UtcDateTime, default=None)
    cancelled_by: Mapped[str | None] = mapped_column(String(10), default=None)
    no_show: Mapped[bool] = mapped_column(Boolean, default=False)  # marked by staff after the meeting
    token: Mapped[str] = mapped_column(String(64))  # the .ics link's key
    # The retention the citizen agreed to (never before the meeting is over): read as gone after.
    keep_until: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class CatalogueOffer(Base):
    """One offer of the catalogue. `data` is the offer as the HSDS-shaped model holds it
    (indgang/catalogue/models.py) less `status` and `assured_date`, which are columns (HSDS v3)
    so editors can filter by them; the model validates every write."""

    __tablename__ = "catalogue_offers"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    status: Mapped[str] = mapped_column(String(10), default="active")  # active | inactive
    assured_date: Mapped[date | None] = mapped_column(Date, default=None)  # last checked by staff
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Raised by every change: an edit made on an older revision is refused (optimistic concurrency).
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(80))


class CatalogueChange(Base):
    """An offer's history: each change with who, when, and the offer before and after it (as
    the catalogue's JSON; None before a create). Only appended to; an undo is a change too."""

    __tablename__ = "catalogue_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    offer_id: Mapped[str] = mapped_column(String(80), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    staff: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(20))  # seed, create, edit, retire, restore, check, undo
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class CatalogueVersion(Base):
    """One row: raised with every change to the catalogue, so every process (gateway, action
    servers) sees cheaply that its search index is out of date."""

    __tablename__ = "catalogue_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    version: Mapped[int] = mapped_column(BigInteger, default=0)
