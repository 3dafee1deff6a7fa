"""Read and validate the catalogue: every `*.yaml` file in a folder, one file per source or municipality.

A file holds `offers:` (a list) and optionally `defaults:` (fields every offer in the file shares,
e.g. its source document; an offer's own fields win). Every problem is reported at once, each with
its file and offer: an unknown type, a missing or misspelt field, an id used twice.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from indgang.catalogue.models import Offer
from indgang.settings import get_settings

UNSEARCHED = frozenset({"status", "assured_date"})  # an offer's fields the search does not read


class CatalogueError(ValueError):
    """The catalogue files do not validate; `problems` names each file and offer."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid offer catalogue:\n  " + "\n  ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Catalogue:
    offers: list[Offer]
    version: int = 0  # the SQL catalogue's version it was read at (0: read from files)
    stale_days: int = 365  # an offer not checked for longer is flagged (CATALOGUE_STALE_DAYS)
    digest: str = field(init=False)
    _by_id: dict[str, Offer] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        canonical = json.dumps(
            # What the search reads: a check or a retirement (the offer leaves `offers`) is no new content.
            [o.model_dump(mode="json", exclude=UNSEARCHED) for o in sorted(self.offers, key=lambda o: o.id)],
            ensure_ascii=False,
            sort_keys=True,
        )
        object.__setattr__(self, "digest", hashlib.sha256(canonical.encode()).hexdigest())
        object.__setattr__(self, "_by_id", {o.id: o for o in self.offers})

    def get(self, offer_id: str) -> Offer | None:
        return self._by_id.get(offer_id)

    def of_type(self, offer_type: str) -> list[Offer]:
        return [o for o in self.offers if o.type == offer_type]


def load_catalogue(directory: Path | None = None) -> Catalogue:
    """The catalogue in `directory` (default: settings.catalogue_dir), re-read when a file changes."""
    folder = Path(directory or get_settings().catalogue_dir).resolve()
    files = tuple(sorted(folder.glob("*.yaml")))
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    return _load(folder, stamp)


@lru_cache(maxsize=8)
def _load(folder: Path, stamp: tuple[tuple[str, int, int], ...]) -> Catalogue:
    if not folder.is_dir():
        raise CatalogueError([f"{folder}: no such folder"])
    problems: list[str] = []
    offers: list[Offer] = []
    first_seen: dict[str, str] = {}
    for name, _, _ in stamp:
        path = folder / name
        for offer in _read_file(path, problems):
            if offer.id in first_seen:
                problems.append(f"{name}: offer {offer.id!r}: duplicate id (first in {first_seen[offer.id]})")
                continue
            first_seen[offer.id] = name
            offers.append(offer)
    if not stamp:
        problems.append(f"{folder}: no *.yaml files")
    if problems:
        raise CatalogueError(problems)
    return Catalogue(offers=offers)


def read_offers(path: Path) -> list[Offer]:
    """The offers of one file, or CatalogueError naming each bad offer."""
    problems: list[str] = []
    offers = _read_file(path, problems)
    if problems:
        raise CatalogueError(problems)
    return offers


def _read_file(path: Path, problems: list[str]) -> list[Offer]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        problems.append(f"{path.name}: not valid YAML: {exc}")
        return []
    if not isinstance(raw, dict) or not isinstance(raw.get("offers"), list):
        problems.append(f"{path.name}: expected a mapping with an `offers:` list")
        return []
    defaults = raw.get("defaults") or {}
    unknown_keys = set(raw) - {"offers", "defaults"}
    if unknown_keys:
        problems.append(f"{path.name}: unknown top-level keys {sorted(unknown_keys)}")
    offers = []
    for index, entry in enumerate(raw["offers"]):
        if not isinstance(entry, dict):
            problems.append(f"{path.name}: offer #{index + 1}: expected a mapping")
            continue
        label = f"{path.name}: offer {entry.get('id', f'#{index + 1}')!r}"
        try:
            offers.append(Offer.model_validate(_merge(defaults, entry)))
        except ValidationError as exc:
            problems.extend(f"{label}: {_describe(error)}" for error in exc.errors())
    return offers


def _merge(defaults: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    merged = dict(defaults)
    for key, value in entry.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "offer"
    return f"{where}: {error['msg']}"
