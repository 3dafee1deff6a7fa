"""The tovholdere the assistant can book: who they are, which needs they cover, when they work.

They are records in the SQL database (table `tovholdere`), seeded when the table is empty from
tovholdere.yaml beside this module (or the file in the setting TOVHOLDERE_FILE), validated on
load so a typo fails at start-up, not mid-conversation.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import time
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, BeforeValidator, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from indgang.records.db import Database
from indgang.records.models import TovholderRow
from indgang.settings import Settings

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = date.weekday()
NATIONAL = "national"


class MeetingKind(StrEnum):
    PHONE = "phone"
    VIDEO = "video"
    MEETING = "meeting"


def _interval(value: object) -> tuple[time, time]:
    """ "09:00-12:00" -> (09:00, 12:00)."""
    if isinstance(value, (tuple, list)):
        return value  # type: ignore[return-value]
    start, _, end = str(value).partition("-")
    opens, closes = time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
    if opens >= closes:
        raise ValueError(f"working hours {value!r} end before they start")
    return opens, closes


Interval = Annotated[tuple[time, time], BeforeValidator(_interval)]


class Tovholder(BaseModel):
    id: str = Field(pattern=r"^[a-z0-9_-]{1,40}$")
    name: str = Field(min_length=1, max_length=40)  # first name only: it is shown to citizens
    team: str
    areas: frozenset[str] = frozenset()  # taxonomy ids
    municipality: str = NATIONAL
    working_hours: dict[str, list[Interval]]
    meeting_kinds: frozenset[MeetingKind] = frozenset(MeetingKind)

    @field_validator("working_hours")
    @classmethod
    def _known_weekdays(cls, value: dict[str, list[tuple[time, time]]]) -> dict[str, list[tuple[time, time]]]:
        unknown = set(value) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown weekdays {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        return value

    @property
    def display_name(self) -> str:
        return f"{self.name} ({self.team})"

    def hours_on(self, weekday: int) -> list[tuple[time, time]]:
        return self.working_hours.get(WEEKDAYS[weekday], [])

    def serves(self, municipality: str) -> bool:
        return self.municipality.casefold() == municipality.casefold()


class Directory(BaseModel):
    tovholdere: list[Tovholder] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Directory:
        ids = [t.id for t in self.tovholdere]
        if len(ids) != len(set(ids)):
            raise ValueError("tovholder ids must be unique")
        return self

    def get(self, tovholder_id: str | None) -> Tovholder | None:
        return next((t for t in self.tovholdere if t.id == tovholder_id), None)

    def candidates(
        self, areas: Iterable[str] = (), municipality: str | None = None, kind: MeetingKind | None = None
    ) -> list[Tovholder]:
        """Who can take a first contact: the citizen's municipality (else the national default),
        offering the meeting kind, covering the areas of need; each filter is dropped when it
        would leave nobody, so a citizen is never told there is no one."""
        local = [t for t in self.tovholdere if municipality and t.serves(municipality)]
        pool = local or [t for t in self.tovholdere if t.serves(NATIONAL)] or self.tovholdere
        pool = [t for t in pool if kind is None or kind in t.meeting_kinds] or pool
        wanted = set(areas)
        return [t for t in pool if t.areas & wanted] or pool


@lru_cache
def load_directory(path: Path) -> Directory:
    """The YAML file: the seed of the table, validated."""
    return Directory.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))


async def _rows(db: Database) -> list[TovholderRow]:
    async with db.transaction() as session:
        return list(await session.scalars(select(TovholderRow).order_by(TovholderRow.id)))


async def seed_tovholdere(db: Database, settings: Settings) -> int:
    """Fill an empty table from the YAML file; returns how many were added (0 when it had rows).
    Two processes seeding at once: the second's insert fails on the primary key and adds none."""
    if await _rows(db):
        return 0
    seed = load_directory(settings.tovholdere_file)
    try:
        async with db.transaction() as session:
            session.add_all(
                TovholderRow(id=t.id, name=t.name, team=t.team, profile=t.model_dump(mode="json"))
                for t in seed.tovholdere
            )
    except IntegrityError:
        return 0
    return len(seed.tovholdere)


async def directory(db: Database, settings: Settings) -> Directory:
    """The tovholdere as the database holds them (seeded first when there are none), in the
    order of their ids."""
    rows = await _rows(db)
    if not rows:
        await seed_tovholdere(db, settings)
        rows = await _rows(db)
    return Directory(tovholdere=[Tovholder.model_validate(row.profile) for row in rows])
