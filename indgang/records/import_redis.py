"""`indgang db import-redis`: the durable records that lived in Redis before the SQL database
(staff accounts, the audit log, bookings, the follow-up and satisfaction counts) copied over once.
Idempotent: a record already in SQL is left as it is (SQL is the newer copy), so running it again,
or after a partial run, adds only what is missing (counts: see import_counts). Redis keeps its
copies; whoever runs it removes them after checking the counts.

A booking keeps its id, state, times, .ics token and retention (the Redis key's expiry); its
queued SMS stay in Redis, where the notifier finds them by the booking's id. The tovholdere are
seeded from the YAML file, as on any first start. A confirmed booking whose slot a booking made
in SQL meanwhile already holds is not imported but named, for staff to settle with the citizen."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import redis.asyncio as aioredis
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from indgang import keys
from indgang.booking.bookings import Booking, keep_until, to_row
from indgang.booking.tovholdere import seed_tovholdere
from indgang.insight import Metric, increment
from indgang.records.db import Database
from indgang.records.models import AuditEntry, BookingRow, StaffAccount
from indgang.settings import Settings

BATCH = 500


@dataclass
class Imported:
    """How many records of a kind were found in Redis, and how many of them were new to SQL."""

    found: int = 0
    added: int = 0
    conflicts: list[str] = field(default_factory=list)  # not imported: see the module's docstring

    def __str__(self) -> str:
        there = self.found - self.added - len(self.conflicts)
        counts = f"{self.found} found, {self.added} added, {there} there already"
        if self.conflicts:
            counts += f"; NOT imported, their slot is taken: {', '.join(self.conflicts)}"
        return counts


async def _account_keys(redis: aioredis.Redis) -> list[str]:
    prefix = keys.staff_account("")
    found = [key async for key in redis.scan_iter(match=keys.staff_account("*"), count=BATCH)]
    return sorted(key for key in found if ":" not in key[len(prefix) :])  # not an account's session set


async def import_accounts(db: Database, redis: aioredis.Redis) -> Imported:
    result = Imported()
    for key in await _account_keys(redis):
        data = await redis.hgetall(key)
        if not data.get("password_hash"):
            continue  # removed meanwhile
        result.found += 1
        username = key[len(keys.staff_account("")) :]
        async with db.transaction() as session:
            if await session.get(StaffAccount, username) is not None:
                continue
            step = data.get("totp_last_step")
            session.add(
                StaffAccount(
                    username=username,
                    password_hash=data["password_hash"],
                    role=data["role"],
                    display_name=data["display_name"],
                    disabled=data.get("disabled") == "1",
                    totp_secret=data.get("totp_secret") or None,
                    totp_last_step=int(step) if step else None,
                )
            )
            result.added += 1
    return result


async def import_audit(db: Database, redis: aioredis.Redis) -> Imported:
    """The stream in order, in batches; each entry keeps its time and its stream id."""
    result = Imported()
    start = "-"
    while entries := await redis.xrange(keys.staff_audit(), min=start, count=BATCH):
        result.found += len(entries)
        ids = [entry_id for entry_id, _ in entries]
        async with db.transaction() as session:
            imported = select(AuditEntry.redis_id).where(AuditEntry.redis_id.in_(ids))
            there = set(await session.scalars(imported))
            new = [(entry_id, fields) for entry_id, fields in entries if entry_id not in there]
            session.add_all(
                AuditEntry(
                    at=datetime.fromisoformat(fields["at"]),
                    staff=fields.get("staff", ""),
                    action=fields.get("action", ""),
                    conversation_id=fields.get("conversation_id", ""),
                    detail=fields.get("detail", ""),
                    redis_id=entry_id,
                )
                for entry_id, fields in new
            )
        result.added += len(new)
        start = f"({ids[-1]}"  # exclusive: after the last one read
    return result


IMPORTED_SUFFIX = ":imported"


async def import_counts(db: Database, redis: aioredis.Redis, today: date) -> Imported:
    """Follow-up and satisfaction counts, which Redis kept with no day or channel: added to the
    insight counts of the day of the import (as web; the page sums them over channels). Each hash
    is then renamed `<key>:imported`, so a second run finds nothing to add twice and nothing is
    deleted; a run that dies between the two may count a hash again."""
    result = Imported()
    legacy = ((keys.followup_outcomes(), Metric.FOLLOWUP), (keys.satisfaction_counts(), Metric.SATISFACTION))
    for key, metric in legacy:
        counts = await redis.hgetall(key)
        for category, count in sorted(counts.items()):
            result.found += 1
            await increment(db, today, "web", metric, category, by=int(count))
            result.added += 1
        if counts:
            await redis.rename(key, key + IMPORTED_SUFFIX)
    return result


async def _legacy_booking(redis: aioredis.Redis, key: str) -> tuple[Booking, datetime | None]:
    """The booking in hash `key` and when Redis would have dropped it (None: no expiry)."""
    data = await redis.hgetall(key)
    expires = await redis.expiretime(key)  # the epoch the old code set, to the second
    booking = Booking.model_validate({k: v for k, v in data.items() if k != "start_epoch"})
    return booking, (datetime.fromtimestamp(expires, UTC) if expires > 0 else None)


async def import_bookings(db: Database, redis: aioredis.Redis, settings: Settings) -> Imported:
    """Every booking hash (confirmed and cancelled), one transaction each, so a slot conflict
    stops only that one."""
    await seed_tovholdere(db, settings)
    result = Imported()
    found = sorted([key async for key in redis.scan_iter(match=keys.booking("bk_*"), count=BATCH)])
    for key in found:
        if not await redis.exists(key):
            continue  # expired meanwhile
        booking, expires = await _legacy_booking(redis, key)
        result.found += 1
        kept = expires or keep_until(settings, booking.end, booking.updated_at)
        try:
            async with db.transaction() as session:
                if await session.get(BookingRow, booking.id) is not None:
                    continue
                session.add(to_row(booking, settings, kept))
        except IntegrityError:
            result.conflicts.append(booking.id)
            continue
        result.added += 1
    return result


async def import_all(
    db: Database, redis: aioredis.Redis, settings: Settings, today: date | None = None
) -> dict[str, Imported]:
    return {
        "staff accounts": await import_accounts(db, redis),
        "audit entries": await import_audit(db, redis),
        "bookings": await import_bookings(db, redis, settings),
        "insight counts": await import_counts(db, redis, today or date.today()),
    }
