"""The offer catalogue's data model, close to Open Referral HSDS (service, organisation, service area,
eligibility, contact), with what a citizen needs on top: the kind of help (`type`, a taxonomy id),
how to get in (`access`) and the next step, in Danish first and English second."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from indgang.catalogue import municipalities
from indgang.catalogue.taxonomy import type_ids
from indgang.i18n import normalise_language, t

Access = Literal["open", "visitation", "referral", "emergency"]
Audience = Literal["adult", "child", "family", "relative", "any"]
TextField = Literal["title", "summary", "next_step", "eligibility"]
Status = Literal["active", "inactive"]  # HSDS v3: an inactive (retired) offer is shown to nobody


class _Strict(BaseModel):
    # A misspelt field in a hand-written file must fail, not vanish.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class LocalText(_Strict):
    da: str = Field(min_length=1)
    en: str = Field(min_length=1)


class SearchTerms(_Strict):
    """Words citizens use for this offer (slang, SMS spelling, relatives' phrasing)."""

    da: list[str] = Field(default_factory=list)
    en: list[str] = Field(default_factory=list)


class Contact(_Strict):
    """How to reach the organisation: never a private person's name, e-mail or number."""

    organisation: str | None = None
    phone: str | None = None
    url: str | None = None
    email: str | None = None


class Source(_Strict):
    document: str = Field(min_length=1)
    year: int = Field(ge=1990, le=2100)


class Offer(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)
    type: str
    title: LocalText
    summary: LocalText
    audience: list[Audience] = Field(min_length=1)
    age_min: int | None = Field(default=None, ge=0, le=120)
    age_max: int | None = Field(default=None, ge=0, le=120)
    eligibility: LocalText | None = None
    municipality: str
    # More municipalities the offer serves (HSDS service_area), e.g. one run by two municipalities.
    service_area: list[str] = Field(default_factory=list)
    access: Access
    next_step: LocalText
    contact: Contact | None = None
    legal_basis: str | None = None
    source: Source
    example: bool = False
    url: str | None = None
    search_terms: SearchTerms = Field(default_factory=SearchTerms)
    status: Status = "active"
    # HSDS v3: the day staff last checked the information (None: never since it came in).
    assured_date: date | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in type_ids():
            raise ValueError(f"unknown type {value!r}: use an id from taxonomy.yaml")
        return value

    @field_validator("municipality")
    @classmethod
    def _known_municipality(cls, value: str) -> str:
        return _municipality(value)

    @field_validator("service_area")
    @classmethod
    def _known_areas(cls, value: list[str]) -> list[str]:
        return [_municipality(name) for name in value]

    @model_validator(mode="after")
    def _consistent(self) -> Offer:
        if self.age_min is not None and self.age_max is not None and self.age_min > self.age_max:
            raise ValueError(f"age_min {self.age_min} is above age_max {self.age_max}")
        if self.example and self.municipality == municipalities.NATIONAL:
            raise ValueError("an example project belongs to a municipality, not `national`")
        return self

    @property
    def municipalities(self) -> frozenset[str]:
        return frozenset([self.municipality, *self.service_area])

    def serves(self, municipality: str | None) -> bool:
        """National offers serve everyone; others their own municipalities (None: no filter)."""
        if municipality is None or self.municipality == municipalities.NATIONAL:
            return True
        return municipality in self.municipalities

    def stale(self, stale_days: int, today: date) -> bool:
        """Not checked within `stale_days` (never checked counts as stale)."""
        return self.assured_date is None or self.assured_date < today - timedelta(days=stale_days)

    def text(self, field: TextField, language: str | None = None) -> str:
        """The citizen-facing text in `language` (Danish by default). An example project's summary
        says that it is a dated example and to ask the municipality."""
        lang = normalise_language(language)
        value: LocalText | None = getattr(self, field)
        if value is None:
            return ""
        text = getattr(value, lang)
        if field == "summary" and self.example:
            note = t("offers.example_note", lang, municipality=self.municipality, year=self.source.year)
            text = f"{text} {note}"
        return text


def _municipality(value: str) -> str:
    name = municipalities.canonical(value)
    if name is None:
        raise ValueError(f"unknown municipality {value!r}: use a Danish municipality or `national`")
    return name
