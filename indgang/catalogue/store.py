"""The offer catalogue in SQL: the offers staff keep current, each change in its history, and one
version counter that every change raises.

The YAML files in catalogue/data seed an empty catalogue (`indgang catalogue seed`; in
development on start). The rules are written once, on a plain SQLAlchemy session: the console
runs them through its async session (`run_sync`), the search's reader and the CLI directly.
Every change checks the revision the editor saw (a stale edit is refused, never silently
overwritten) and raises the catalogue's version, which tells every process to rebuild its index.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import create_engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from indgang.catalogue.loader import UNSEARCHED, Catalogue, CatalogueError, load_catalogue
from indgang.catalogue.models import Offer
from indgang.records import migrate
from indgang.records.db import UNREACHABLE, Database, prepare_engine, sync_url
from indgang.records.models import CatalogueChange, CatalogueOffer, CatalogueVersion
from indgang.settings import Settings

log = logging.getLogger(__name__)

Action = Literal["seed", "import", "create", "edit", "retire", "restore", "check", "undo"]
SEED_STAFF = "seed"  # who the history names for offers that came from the YAML files
# The columns of an offer's row (the fields the search does not read); the rest is its `data`.
_COLUMNS = UNSEARCHED
T = TypeVar("T")


class StaleEdit(Exception):
    """The offer changed since the editor read it (HTTP 409): their change would overwrite another's."""


class UnknownOffer(LookupError):
    """No offer with that id."""


class DuplicateOffer(ValueError):
    """An offer with that id exists already."""


class NothingToUndo(LookupError):
    """The offer has no change that can be undone (a seeded offer's first state)."""


@dataclass(frozen=True)
class StoredOffer:
    offer: Offer
    revision: int
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class Change:
    id: int
    offer_id: str
    at: datetime
    staff: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def fields(self) -> list[str]:
        """The offer's fields this change set (all of them for a create or a removal)."""
        before, after = self.before or {}, self.after or {}
        return sorted(k for k in {*before, *after} if before.get(k) != after.get(k))


def snapshot(offer: Offer) -> dict[str, Any]:
    """The offer as the history keeps it (and as HSDS export's extension carries it)."""
    return offer.model_dump(mode="json", exclude_none=True)


def _offer(row: CatalogueOffer) -> Offer:
    return Offer.model_validate({**row.data, "status": row.status, "assured_date": row.assured_date})


def _stored(row: CatalogueOffer) -> StoredOffer:
    return StoredOffer(_offer(row), row.revision, row.updated_at, row.updated_by)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


# ---- the rules, on a plain session -------------------------------------------------------------


def version(session: Session) -> int:
    return session.scalar(select(CatalogueVersion.version).where(CatalogueVersion.id == 1)) or 0


def _bump(session: Session) -> None:
    session.execute(
        update(CatalogueVersion).where(CatalogueVersion.id == 1).values(version=CatalogueVersion.version + 1)
    )


def _record(
    session: Session, staff: str, action: Action, offer_id: str, before: Offer | None, after: Offer | None
) -> None:
    session.add(
        CatalogueChange(
            offer_id=offer_id,
            at=_now(),
            staff=staff,
            action=action,
            before=snapshot(before) if before else None,
            after=snapshot(after) if after else None,
        )
    )


def _put(session: Session, row: CatalogueOffer | None, offer: Offer, staff: str) -> CatalogueOffer:
    data = offer.model_dump(mode="json", exclude=set(_COLUMNS), exclude_none=True)
    if row is None:
        row = CatalogueOffer(id=offer.id, revision=0)
        session.add(row)
    row.data, row.status, row.assured_date = data, offer.status, offer.assured_date
    row.revision += 1
    row.updated_at, row.updated_by = _now(), staff
    return row


def _locked(session: Session, offer_id: str, revision: int | None) -> CatalogueOffer:
    """The offer's row, locked for this change; StaleEdit if it moved past `revision` (None: any)."""
    row = session.get(CatalogueOffer, offer_id, with_for_update=True)
    if row is None:
        raise UnknownOffer(offer_id)
    if revision is not None and row.revision != revision:
        raise StaleEdit(offer_id)
    return row


def create(session: Session, staff: str, offer: Offer, action: Action = "create") -> StoredOffer:
    if session.get(CatalogueOffer, offer.id) is not None:
        raise DuplicateOffer(offer.id)
    row = _put(session, None, offer, staff)
    _record(session, staff, action, offer.id, None, offer)
    _bump(session)
    return _stored(row)


def change(
    session: Session,
    staff: str,
    offer_id: str,
    revision: int | None,
    action: Action,
    edit: Callable[[Offer], Offer],
) -> StoredOffer:
    """`edit` the offer as it is at `revision`; the id stays (an offer's id is its address)."""
    row = _locked(session, offer_id, revision)
    before = _offer(row)
    after = edit(before)
    if after.id != offer_id:
        raise ValueError("an offer's id cannot change")
    _put(session, row, after, staff)
    _record(session, staff, action, offer_id, before, after)
    _bump(session)
    return _stored(row)


def edit(session: Session, staff: str, offer: Offer, revision: int) -> StoredOffer:
    return change(session, staff, offer.id, revision, "edit", lambda _: offer)


def set_status(session: Session, staff: str, offer_id: str, revision: int, active: bool) -> StoredOffer:
    status = "active" if active else "inactive"
    action: Action = "restore" if active else "retire"
    return change(
        session, staff, offer_id, revision, action, lambda o: o.model_copy(update={"status": status})
    )


def mark_checked(session: Session, staff: str, offer_id: str, revision: int, today: date) -> StoredOffer:
    return change(
        session, staff, offer_id, revision, "check", lambda o: o.model_copy(update={"assured_date": today})
    )


def undo(session: Session, staff: str, offer_id: str, revision: int) -> StoredOffer | None:
    """Put the offer back as it was before its last change (that change stays in the history, and
    so does the undo). Undoing a create removes the offer (None); undoing an undo redoes."""
    row = _locked(session, offer_id, revision)
    last = session.scalars(
        select(CatalogueChange)
        .where(CatalogueChange.offer_id == offer_id)
        .order_by(CatalogueChange.id.desc())
        .limit(1)
    ).first()
    if last is None or last.action == "seed":
        raise NothingToUndo(offer_id)
    current = _offer(row)
    if last.before is None:
        session.delete(row)
        _record(session, staff, "undo", offer_id, current, None)
        _bump(session)
        return None
    previous = Offer.model_validate(last.before)
    _put(session, row, previous, staff)
    _record(session, staff, "undo", offer_id, current, previous)
    _bump(session)
    return _stored(row)


def stored(session: Session, offer_id: str) -> StoredOffer:
    row = session.get(CatalogueOffer, offer_id)
    if row is None:
        raise UnknownOffer(offer_id)
    return _stored(row)


def all_offers(session: Session) -> list[StoredOffer]:
    return [_stored(row) for row in session.scalars(select(CatalogueOffer).order_by(CatalogueOffer.id))]


def history(session: Session, offer_id: str) -> list[Change]:
    """The offer's changes, newest first."""
    rows = session.scalars(
        select(CatalogueChange)
        .where(CatalogueChange.offer_id == offer_id)
        .order_by(CatalogueChange.id.desc())
    )
    return [Change(r.id, r.offer_id, r.at, r.staff, r.action, r.before, r.after) for r in rows]


def put_many(
    session: Session, offers: Iterable[Offer], staff: str, action: Action, replace: bool
) -> tuple[int, int]:
    """Offers in from files (seed, import): new ones created; existing ones overwritten only when
    `replace`, else DuplicateOffer naming them. Returns (created, replaced)."""
    offers = list(offers)
    existing = {
        row.id: row
        for row in session.scalars(
            select(CatalogueOffer).where(CatalogueOffer.id.in_([o.id for o in offers]))
        )
    }
    if existing and not replace:
        raise DuplicateOffer(", ".join(sorted(existing)))
    for offer in offers:
        row = existing.get(offer.id)
        before = _offer(row) if row is not None else None
        _put(session, row, offer, staff)
        _record(session, staff, action, offer.id, before, offer)
    if offers:
        _bump(session)
    return len(offers) - len(existing), len(existing)


def seed(session: Session, offers: Iterable[Offer]) -> int:
    """Fill an empty catalogue (0 when it has offers already: a seed never overwrites staff's work)."""
    if session.scalar(select(func.count()).select_from(CatalogueOffer)):
        return 0
    created, _ = put_many(session, offers, SEED_STAFF, "seed", replace=False)
    return created


def active_catalogue(session: Session, stale_days: int) -> Catalogue:
    rows = session.scalars(
        select(CatalogueOffer).where(CatalogueOffer.status == "active").order_by(CatalogueOffer.id)
    )
    return Catalogue(offers=[_offer(row) for row in rows], version=version(session), stale_days=stale_days)


def clear(session: Session) -> None:
    """Every offer and its history gone (tests; a restore from files starts here)."""
    session.execute(delete(CatalogueChange))
    session.execute(delete(CatalogueOffer))
    _bump(session)


# ---- the console's way in (async) --------------------------------------------------------------


async def run(db: Database, rule: Callable[..., T], *args: Any) -> T:
    """One rule in one transaction of the console's database."""
    async with db.transaction() as session:
        return await session.run_sync(rule, *args)


# ---- the blocking way in (search index, CLI) ---------------------------------------------------


class CatalogueSource:
    """The active offers as a Catalogue, for the search: re-read when the catalogue's version has
    changed, which is asked at most every `check_seconds`. While the database does not answer,
    the catalogue last read goes on serving, or, before any was read, the seed files in
    `fallback` (a crisis reply's offers must never wait for the database)."""

    def __init__(
        self,
        url: str,
        check_seconds: float,
        stale_days: int,
        clock: Callable[[], float] = time.monotonic,
        fallback: Path | None = None,
    ) -> None:
        engine = create_engine(sync_url(url), pool_pre_ping=True)
        prepare_engine(engine)
        self.sessions = sessionmaker(engine)
        self.check_seconds = check_seconds
        self.stale_days = stale_days
        self._clock = clock
        self._fallback = fallback
        self._lock = threading.Lock()
        self._catalogue: Catalogue | None = None
        self._checked_at = float("-inf")

    def current(self) -> Catalogue:
        with self._lock:
            now = self._clock()
            if self._catalogue is not None and now - self._checked_at < self.check_seconds:
                return self._catalogue
            try:
                with self.sessions() as session:
                    if self._catalogue is None or version(session) != self._catalogue.version:
                        self._catalogue = active_catalogue(session, self.stale_days)
            except UNREACHABLE:
                if self._catalogue is None:
                    if self._fallback is None:
                        raise
                    files = load_catalogue(self._fallback).offers
                    # version -1: no version of the database's, so the next check reads it
                    self._catalogue = Catalogue(offers=files, version=-1, stale_days=self.stale_days)
                log.warning(
                    "catalogue: the database does not answer; serving version %s", self._catalogue.version
                )
            self._checked_at = now
            if not self._catalogue.offers:
                raise CatalogueError(["the catalogue in the database is empty: run `indgang catalogue seed`"])
            return self._catalogue


def seed_from_files(source: CatalogueSource, folder: Path) -> int:
    offers = load_catalogue(folder).offers
    with source.sessions.begin() as session:
        return seed(session, offers)


PREPARE_ATTEMPTS = 3


def _prepare(source: CatalogueSource, url: str, folder: Path) -> None:
    """Migrate and seed an empty catalogue. Processes that start together (the action servers,
    the gateway) may do it at the same moment: the one that loses the race tries again and
    finds the work done."""
    for attempt in range(1, PREPARE_ATTEMPTS + 1):
        try:
            migrate.upgrade(url)
            with migrate.one_at_a_time(url):
                count = seed_from_files(source, folder)
            if count:
                log.info("catalogue: seeded %d offers from %s", count, folder)
            return
        except (OperationalError, IntegrityError, ProgrammingError):
            if attempt == PREPARE_ATTEMPTS:
                raise
            time.sleep(attempt)


@lru_cache(maxsize=8)
def _source(url: str, check_seconds: float, stale_days: int, prepare: bool, folder: Path) -> CatalogueSource:
    source = CatalogueSource(url, check_seconds, stale_days, fallback=folder)
    if prepare:
        _prepare(source, url, folder)
    return source


def catalogue_source(settings: Settings) -> CatalogueSource:
    """The process's source for `settings`' database. Where processes migrate on start
    (development), the first use also migrates and seeds an empty catalogue from the files."""
    return _source(
        settings.database_url,
        settings.catalogue_check_seconds,
        settings.catalogue_stale_days,
        bool(settings.database_migrate_on_start),
        Path(settings.catalogue_dir).resolve(),
    )
