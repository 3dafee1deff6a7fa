"""Import and export the catalogue as Open Referral HSDS-style JSON and CSV, so a municipality can
bring its own offers (a spreadsheet, a Tilbudsportalen export) without touching code.

JSON is a list of HSDS `service` objects (name, description, organization, phones, service_areas,
eligibility, ages, application_process) with Indgang's own fields under `x_indgang`, so an export
imports back unchanged. CSV is one row per offer with HSDS column names, English columns suffixed
`_en`, lists separated by `;`. On import, Danish column names are understood too (navn,
beskrivelse, kommune, paragraf, målgruppe ...); a missing `type` is inferred from the legal
paragraph (e.g. "SEL § 107" is temporary supported housing); missing fields get the type's
defaults, and a missing English text falls back to the Danish one.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from indgang.catalogue.loader import CatalogueError
from indgang.catalogue.models import Offer
from indgang.catalogue.municipalities import NATIONAL
from indgang.catalogue.taxonomy import offer_types
from indgang.i18n import t

EXTENSION = "x_indgang"
LIST_SEPARATOR = ";"

CSV_COLUMNS = [
    "id", "name", "name_en", "description", "description_en", "type", "access", "audience",
    "municipality", "service_area", "minimum_age", "maximum_age", "eligibility_description",
    "eligibility_description_en", "application_process", "application_process_en", "organization_name",
    "organization_url", "phone", "url", "email", "legal_basis", "source_document", "source_year", "example",
    "search_terms", "search_terms_en", "status", "assured_date",
]  # fmt: skip

# Other names a spreadsheet or a Tilbudsportalen export uses for a column (compared in lower case).
COLUMN_ALIASES = {
    "name": ["navn", "tilbudsnavn", "titel", "title", "tilbud"],
    "description": ["beskrivelse", "kort beskrivelse", "summary", "resume"],
    "municipality": ["kommune", "beliggenhedskommune", "driftskommune"],
    "legal_basis": ["paragraf", "lovgrundlag", "lovparagraf", "ydelse"],
    "organization_name": ["organisation", "organization", "udbyder", "leverandør", "driftsherre"],
    "organization_url": ["organisationens hjemmeside"],
    "phone": ["telefon", "tlf", "telefonnummer"],
    "url": ["hjemmeside", "website", "link"],
    "email": ["e-mail", "mail"],
    "search_terms": ["målgruppe", "målgrupper", "keywords", "søgeord", "nøgleord"],
    "application_process": ["next_step", "næste skridt", "sådan kommer du i gang", "visitation"],
    "type": ["tilbudstype"],
    "minimum_age": ["min_alder", "alder fra"],
    "maximum_age": ["max_alder", "alder til"],
}

# The serviceloven paragraph that names a kind of help on its own (used when `type` is missing).
PARAGRAPH_TYPES = {
    "41": "merudgifter", "42": "merudgifter", "100": "merudgifter",
    "84": "aflastning", "85": "bostoette", "96": "bpa", "97": "ledsageordning", "99": "skp",
    "101": "stofbehandling", "103": "beskyttet_beskaeftigelse", "104": "vaerested",
    "107": "midlertidigt_botilbud", "108": "laengerevarende_botilbud", "109": "krisecenter",
    "110": "forsorgshjem", "112": "hjaelpemidler", "113": "hjaelpemidler", "116": "hjaelpemidler",
    "141": "alkoholbehandling",
}  # fmt: skip
_PARAGRAPH = re.compile(r"\b(\d{2,3})\b")


# ---- export ---------------------------------------------------------------------------------


def to_hsds(offer: Offer) -> dict[str, Any]:
    contact = offer.contact
    return {
        "id": offer.id,
        "name": offer.title.da,
        "description": offer.summary.da,
        "url": offer.url,
        "email": contact.email if contact else None,
        "status": offer.status,
        "assured_date": offer.assured_date.isoformat() if offer.assured_date else None,
        "application_process": offer.next_step.da,
        "eligibility_description": offer.eligibility.da if offer.eligibility else None,
        "minimum_age": offer.age_min,
        "maximum_age": offer.age_max,
        "organization": {"name": contact.organisation, "url": contact.url} if contact else None,
        "phones": [{"number": contact.phone}] if contact and contact.phone else [],
        "service_areas": [{"name": name} for name in [offer.municipality, *offer.service_area]],
        "attributes": [{"taxonomy_term": {"code": offer.type, "taxonomy": "indgang"}}],
        EXTENSION: offer.model_dump(mode="json", exclude_none=True),
    }


def export_json(offers: Iterable[Offer]) -> str:
    return json.dumps([to_hsds(o) for o in offers], ensure_ascii=False, indent=2) + "\n"


def to_row(offer: Offer) -> dict[str, str]:
    contact = offer.contact
    joined = LIST_SEPARATOR.join
    row = {
        "id": offer.id,
        "name": offer.title.da,
        "name_en": offer.title.en,
        "description": offer.summary.da,
        "description_en": offer.summary.en,
        "type": offer.type,
        "access": offer.access,
        "audience": joined(offer.audience),
        "municipality": offer.municipality,
        "service_area": joined(offer.service_area),
        "minimum_age": offer.age_min,
        "maximum_age": offer.age_max,
        "eligibility_description": offer.eligibility.da if offer.eligibility else None,
        "eligibility_description_en": offer.eligibility.en if offer.eligibility else None,
        "application_process": offer.next_step.da,
        "application_process_en": offer.next_step.en,
        "organization_name": contact.organisation if contact else None,
        "phone": contact.phone if contact else None,
        "organization_url": contact.url if contact else None,
        "url": offer.url,
        "email": contact.email if contact else None,
        "legal_basis": offer.legal_basis,
        "source_document": offer.source.document,
        "source_year": offer.source.year,
        "example": "yes" if offer.example else "no",
        "search_terms": joined(offer.search_terms.da),
        "search_terms_en": joined(offer.search_terms.en),
        "status": offer.status,
        "assured_date": offer.assured_date.isoformat() if offer.assured_date else None,
    }
    return {key: "" if value is None else str(value) for key, value in row.items()}


def export_csv(offers: Iterable[Offer]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(to_row(o) for o in offers)
    return out.getvalue()


# ---- import ---------------------------------------------------------------------------------


def import_json(text: str, **defaults: Any) -> list[Offer]:
    """Offers from HSDS-style JSON: a list of services, or {"services": [...]}."""
    data = json.loads(text)
    services = data.get("services", []) if isinstance(data, dict) else data
    rows = []
    for service in services:
        if isinstance(service.get(EXTENSION), dict):
            rows.append({"__offer__": service[EXTENSION]})
            continue
        org = service.get("organization") or {}
        phones = service.get("phones") or []
        areas = [a.get("name") for a in service.get("service_areas") or [] if a.get("name")]
        codes = [(a.get("taxonomy_term") or {}).get("code") for a in service.get("attributes") or []]
        rows.append(
            {
                "id": service.get("id"),
                "name": service.get("name"),
                "description": service.get("description"),
                "url": service.get("url"),
                "email": service.get("email"),
                "application_process": service.get("application_process"),
                "eligibility_description": service.get("eligibility_description"),
                "minimum_age": service.get("minimum_age"),
                "maximum_age": service.get("maximum_age"),
                "organization_name": org.get("name"),
                "organization_url": org.get("url"),
                "phone": phones[0].get("number") if phones else None,
                "municipality": areas[0] if areas else None,
                "service_area": LIST_SEPARATOR.join(areas[1:]),
                "type": next((c for c in codes if c in offer_types()), None),
                "status": service.get("status"),
                "assured_date": service.get("assured_date"),
            }
        )
    return _offers(rows, "JSON", defaults)


def import_csv(text: str, **defaults: Any) -> list[Offer]:
    """Offers from a CSV (comma or semicolon separated, as spreadsheets save it)."""
    header = text.lstrip("\ufeff").split("\n", 1)[0]
    delimiter = max(",;\t", key=header.count)  # the separator the header line uses most
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    aliases = {alias: column for column, names in COLUMN_ALIASES.items() for alias in names}
    rows = []
    for raw in reader:
        row: dict[str, Any] = {}
        for header, value in raw.items():
            if header is None:
                continue
            key = header.strip().lower()
            column = key if key in CSV_COLUMNS else aliases.get(key)
            if column and value is not None and value.strip():
                row[column] = value.strip()
        rows.append(row)
    return _offers(rows, "CSV", defaults)


def _offers(rows: list[dict[str, Any]], label: str, defaults: dict[str, Any]) -> list[Offer]:
    offers, problems = [], []
    for number, row in enumerate(rows, start=1):
        try:
            data = row["__offer__"] if "__offer__" in row else _offer_data(row, defaults)
            offers.append(Offer.model_validate(data))
        except (ValidationError, ValueError) as exc:
            errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": (), "msg": str(exc)}]
            name = row.get("id") or row.get("name") or (row.get("__offer__") or {}).get("id") or f"#{number}"
            problems += [f"{label} row {number} ({name}): {_where(e)}{e['msg']}" for e in errors]
    if problems:
        raise CatalogueError(problems)
    return offers


def _where(error: dict[str, Any]) -> str:
    return ".".join(str(p) for p in error["loc"]) + ": " if error["loc"] else ""


def _offer_data(row: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """One CSV row (HSDS column names) as Offer fields, gaps filled from `defaults` and the type."""
    merged = {**{k: v for k, v in defaults.items() if v is not None}, **row}
    kind = merged.get("type") or infer_type(merged.get("legal_basis", ""))
    if kind not in offer_types():
        raise ValueError(f"type {kind or '(missing)'!r} is not in taxonomy.yaml, and no paragraph names one")
    taxonomy = offer_types()[kind]
    name = merged.get("name")
    if not name:
        raise ValueError("name is missing")
    municipality = merged.get("municipality") or NATIONAL
    contact = {
        "organisation": merged.get("organization_name"),
        "phone": merged.get("phone"),
        "url": merged.get("organization_url"),
        "email": merged.get("email"),
    }

    def local(field: str, fallback: str | None = None) -> dict[str, str] | None:
        da = merged.get(field) or fallback
        return {"da": da, "en": merged.get(f"{field}_en") or da} if da else None

    return {
        "id": merged.get("id") or slug(f"{municipality}-{name}"),
        "type": kind,
        "title": local("name"),
        "summary": local("description", name),
        "audience": _split(merged.get("audience")) or [taxonomy.audience],
        "age_min": merged.get("minimum_age") or None,
        "age_max": merged.get("maximum_age") or None,
        "eligibility": local("eligibility_description"),
        "municipality": municipality,
        "service_area": _split(merged.get("service_area")),
        "access": merged.get("access") or taxonomy.access,
        "next_step": local("application_process")
        or {"da": t("offers.import_next_step", "da"), "en": t("offers.import_next_step", "en")},
        "contact": contact if any(contact.values()) else None,
        "legal_basis": merged.get("legal_basis"),
        "source": {"document": merged.get("source_document"), "year": merged.get("source_year")},
        "example": str(merged.get("example", "")).strip().lower() in {"yes", "ja", "true", "1", "x"},
        "url": merged.get("url"),
        "search_terms": {
            "da": _split(merged.get("search_terms")),
            "en": _split(merged.get("search_terms_en")),
        },
        "status": merged.get("status") or "active",
        "assured_date": merged.get("assured_date") or None,
    }


def infer_type(legal_basis: str) -> str | None:
    """The type a legal basis names by itself ("SEL § 107" -> midlertidigt_botilbud), else None."""
    _, section, paragraphs = (legal_basis or "").partition("§")
    numbers = _PARAGRAPH.findall(paragraphs) if section else []
    kinds = {PARAGRAPH_TYPES[n] for n in numbers if n in PARAGRAPH_TYPES}
    return kinds.pop() if len(kinds) == 1 else None


def slug(text: str) -> str:
    text = text.lower()
    for letter, plain in (("æ", "ae"), ("ø", "oe"), ("å", "aa")):
        text = text.replace(letter, plain)
    return re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:80]


def _split(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value)
    # Our own exports separate with ";"; a hand-made sheet often uses ",".
    separator = LIST_SEPARATOR if LIST_SEPARATOR in text else ","
    return [part.strip() for part in text.split(separator) if part.strip()]
