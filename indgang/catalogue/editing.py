"""What the staff console's catalogue page does: an offer to and from the flat fields of a form,
every problem named by its field (the console words it in Danish or English), the list with
search and filters, and each change through the store with an entry in the audit log."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import ValidationError

from indgang.catalogue import store
from indgang.catalogue.models import Offer
from indgang.catalogue.store import StoredOffer
from indgang.catalogue.taxonomy import offer_types
from indgang.records.db import Database
from indgang.staff import audit
from indgang.staff.accounts import StaffMember

LOCAL_TEXTS = ("title", "summary", "next_step", "eligibility")
CONTACT = ("organisation", "phone", "url", "email")
# Every field of the form, in the order of the page; text fields hold "" when empty.
TEXT_FIELDS = (
    "id", "type", "municipality", "service_area", "access", "age_min", "age_max", "legal_basis",
    "source_document", "source_year", "url", "search_terms_da", "search_terms_en",
    *(f"{name}_{lang}" for name in LOCAL_TEXTS for lang in ("da", "en")),
    *(f"contact_{name}" for name in CONTACT),
)  # fmt: skip
MAX_FIELD_CHARS = 4000


@dataclass(frozen=True)
class Problem:
    """A problem with one field (`field` "" for the offer as a whole): `key` names its text in
    staff.yaml (console.catalogue.errors.<key>)."""

    field: str
    key: str


class OfferInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{p.field}: {p.key}" for p in problems))
        self.problems = problems


def form_from_offer(offer: Offer) -> dict[str, Any]:
    form: dict[str, Any] = {
        "id": offer.id,
        "type": offer.type,
        "municipality": offer.municipality,
        "service_area": ", ".join(offer.service_area),
        "access": offer.access,
        "age_min": "" if offer.age_min is None else str(offer.age_min),
        "age_max": "" if offer.age_max is None else str(offer.age_max),
        "legal_basis": offer.legal_basis or "",
        "source_document": offer.source.document,
        "source_year": str(offer.source.year),
        "url": offer.url or "",
        "search_terms_da": "\n".join(offer.search_terms.da),
        "search_terms_en": "\n".join(offer.search_terms.en),
        "audience": list(offer.audience),
        "example": offer.example,
    }
    for name in LOCAL_TEXTS:
        text = getattr(offer, name)
        form |= {f"{name}_{lang}": getattr(text, lang) if text else "" for lang in ("da", "en")}
    for name in CONTACT:
        form[f"contact_{name}"] = (getattr(offer.contact, name) if offer.contact else None) or ""
    return form


def read_form(raw: Mapping[str, Any], audience: list[str]) -> dict[str, Any]:
    """The form's fields as sent (what comes back on a problem: nothing typed is lost)."""
    form: dict[str, Any] = {name: str(raw.get(name) or "")[:MAX_FIELD_CHARS] for name in TEXT_FIELDS}
    form["audience"] = [str(a) for a in audience]
    form["example"] = bool(raw.get("example"))
    return form


def offer_from_form(form: Mapping[str, Any], kept: Offer | None = None) -> Offer:
    """The offer the form describes; OfferInvalid naming every problem. `kept`: the offer being
    edited, whose status and assured date the form does not change (their own buttons do)."""

    def text(name: str) -> str | None:
        return form.get(name, "").strip() or None

    def lines(name: str) -> list[str]:
        return [p.strip() for p in form.get(name, "").replace(",", "\n").splitlines() if p.strip()]

    data: dict[str, Any] = {
        "id": text("id"),
        "type": text("type"),
        "audience": form.get("audience") or [],
        "age_min": text("age_min"),
        "age_max": text("age_max"),
        "municipality": text("municipality"),
        "service_area": lines("service_area"),
        "access": text("access"),
        "legal_basis": text("legal_basis"),
        "source": {"document": text("source_document"), "year": text("source_year")},
        "example": bool(form.get("example")),
        "url": text("url"),
        "search_terms": {"da": lines("search_terms_da"), "en": lines("search_terms_en")},
    }
    for name in LOCAL_TEXTS:
        da, en = text(f"{name}_da"), text(f"{name}_en")
        if da or en or name != "eligibility":  # eligibility may be left out as a whole
            data[name] = {"da": da, "en": en}
    contact = {name: text(f"contact_{name}") for name in CONTACT}
    data["contact"] = contact if any(contact.values()) else None
    if kept is not None:
        data |= {"status": kept.status, "assured_date": kept.assured_date}
    try:
        return Offer.model_validate(data)
    except ValidationError as exc:
        raise OfferInvalid([_problem(error) for error in exc.errors()]) from None


def _problem(error: Any) -> Problem:
    loc = [str(part) for part in error["loc"]]
    field = "_".join(loc[:2]) if loc and loc[0] in (*LOCAL_TEXTS, "search_terms") else "_".join(loc)
    if loc[:1] == ["contact"]:
        field = f"contact_{loc[1]}" if len(loc) > 1 else "contact_organisation"
    if loc[:1] == ["source"]:
        field = f"source_{loc[1]}" if len(loc) > 1 else "source_document"
    if loc[:1] in (["audience"], ["service_area"]):
        field = loc[0]
    kind, message = error["type"], str(error.get("msg", ""))
    if kind in ("missing", "string_too_short", "string_type", "too_short") or "none" in kind:
        key = "required"
    elif kind == "string_pattern_mismatch":
        key = "id_pattern"
    elif kind in ("int_parsing", "int_from_float", "int_type"):
        key = "number"
    elif kind in ("greater_than_equal", "less_than_equal"):
        key = "range"
    elif kind == "literal_error":
        key = "choice"
    elif "unknown type" in message:
        key = "unknown_type"
    elif "unknown municipality" in message:
        key = "unknown_municipality"
    elif "age_min" in message:
        key, field = "age_order", "age_min"
    elif "example project" in message:
        key, field = "example_national", "example"
    else:
        key = "invalid"
    return Problem(field, key)


# ---- the list ----------------------------------------------------------------------------------


def listing(
    offers: list[StoredOffer],
    stale_days: int,
    today: date,
    query: str = "",
    offer_type: str = "",
    status: str = "",
    stale_only: bool = False,
) -> list[StoredOffer]:
    """The offers that match: words found in the id, titles or municipality; a type; a status;
    only those not checked within `stale_days`. Stale ones first, then by title."""
    words = query.casefold().split()

    def matches(item: StoredOffer) -> bool:
        offer = item.offer
        hay = " ".join([offer.id, offer.title.da, offer.title.en, offer.municipality]).casefold()
        return (
            all(word in hay for word in words)
            and (not offer_type or offer.type == offer_type)
            and (not status or offer.status == status)
            and (not stale_only or offer.stale(stale_days, today))
        )

    found = [item for item in offers if matches(item)]
    return sorted(found, key=lambda i: (not i.offer.stale(stale_days, today), i.offer.title.da.casefold()))


def type_names(language: str) -> dict[str, str]:
    return {kind: getattr(entry, language) for kind, entry in offer_types().items()}


# ---- changes, each in the audit log ------------------------------------------------------------


async def _audited(
    db: Database, member: StaffMember, action: str, offer_id: str, rule: Any, *args: Any
) -> Any:
    result = await store.run(db, rule, member.username, *args)
    await audit.record(db, member.username, f"catalogue_{action}", detail=offer_id)
    return result


async def create(db: Database, member: StaffMember, offer: Offer) -> StoredOffer:
    result: StoredOffer = await _audited(db, member, "create", offer.id, store.create, offer)
    return result


async def edit(db: Database, member: StaffMember, offer: Offer, revision: int) -> StoredOffer:
    result: StoredOffer = await _audited(db, member, "edit", offer.id, store.edit, offer, revision)
    return result


async def set_status(db: Database, member: StaffMember, offer_id: str, revision: int, active: bool) -> None:
    action = "restore" if active else "retire"
    await _audited(db, member, action, offer_id, store.set_status, offer_id, revision, active)


async def mark_checked(db: Database, member: StaffMember, offer_id: str, revision: int, today: date) -> None:
    await _audited(db, member, "check", offer_id, store.mark_checked, offer_id, revision, today)


async def undo(db: Database, member: StaffMember, offer_id: str, revision: int) -> StoredOffer | None:
    result: StoredOffer | None = await _audited(db, member, "undo", offer_id, store.undo, offer_id, revision)
    return result
