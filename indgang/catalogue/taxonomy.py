"""The fixed vocabulary of offer types (a copy of the project's shared taxonomy.yaml), and the words
citizens use for each type (type_terms.yaml), which every offer of that type is found by."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

HERE = Path(__file__).resolve().parent
TAXONOMY_FILE = HERE / "taxonomy.yaml"
TYPE_TERMS_FILE = HERE / "type_terms.yaml"


class OfferType(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    da: str
    en: str
    legal_basis: str
    access: str
    audience: str


class TypeTerms(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    da: list[str] = Field(min_length=1)
    en: list[str] = Field(min_length=1)


@lru_cache
def offer_types() -> dict[str, OfferType]:
    raw = yaml.safe_load(TAXONOMY_FILE.read_text(encoding="utf-8"))
    return {entry["id"]: OfferType.model_validate(entry) for entry in raw["types"]}


def type_ids() -> frozenset[str]:
    return frozenset(offer_types())


@lru_cache
def type_terms() -> dict[str, TypeTerms]:
    """Citizens' words per type; every taxonomy type has some, and no unknown type appears."""
    raw = yaml.safe_load(TYPE_TERMS_FILE.read_text(encoding="utf-8")) or {}
    unknown = set(raw) - type_ids()
    missing = type_ids() - set(raw)
    if unknown or missing:
        raise ValueError(f"{TYPE_TERMS_FILE}: unknown types {sorted(unknown)}, missing {sorted(missing)}")
    return {type_id: TypeTerms.model_validate(terms) for type_id, terms in raw.items()}
