"""The staff console's catalogue pages (`/staff/catalogue`), for editors and admins: the list
with search, filters and stale offers flagged; an offer's form with its history; create, edit,
retire, restore, mark as checked and undo. Plain HTML forms with the console's CSRF token; a
form with problems comes back filled, an edit made on an older revision is refused (409)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from indgang.catalogue import editing, store
from indgang.catalogue.editing import OfferInvalid, Problem
from indgang.catalogue.municipalities import NATIONAL
from indgang.catalogue.store import StoredOffer
from indgang.settings import Settings
from indgang.staff.accounts import StaffMember
from webhook.deps import DbDep, SettingsDep
from webhook.routers.staff import _language, _page
from webhook.staff_session import EditorDep

router = APIRouter(prefix="/staff/catalogue", include_in_schema=False)

OfferId = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=80)]
ACTIONS = ("check", "retire", "restore", "undo")
NOTICES = frozenset({"created", "saved", "check", "retire", "restore", "undo", "undone_create"})
AUDIENCES = ("adult", "child", "family", "relative", "any")
ACCESSES = ("open", "visitation", "referral", "emergency")


def _form_page(
    request: Request,
    member: StaffMember,
    settings: Settings,
    form: dict[str, Any],
    stored: StoredOffer | None,
    status_code: int = 200,
    problems: list[Problem] | None = None,
    conflict: bool = False,
    notice: str | None = None,
    history: list[store.Change] | None = None,
) -> HTMLResponse:
    lang = _language(request)
    return _page(
        request,
        "catalogue_offer.html",
        member,
        status_code=status_code,
        form=form,
        stored=stored,
        stale=stored.offer.stale(settings.catalogue_stale_days, date.today()) if stored else False,
        problems={p.field or "form": p.key for p in problems or []},
        conflict=conflict,
        notice=notice if notice in NOTICES else None,
        history=history or [],
        types=editing.type_names(lang),
        audiences=AUDIENCES,
        accesses=ACCESSES,
    )


@router.get("", response_class=HTMLResponse)
async def catalogue_page(
    request: Request,
    member: EditorDep,
    db: DbDep,
    settings: SettingsDep,
    q: Annotated[str, Query(max_length=200)] = "",
    type: Annotated[str, Query(max_length=60)] = "",
    status: Annotated[str, Query(pattern=r"^(|active|inactive)$")] = "",
    stale: bool = False,
    notice: Annotated[str | None, Query(max_length=40)] = None,
) -> HTMLResponse:
    today = date.today()
    offers = await store.run(db, store.all_offers)
    shown = editing.listing(offers, settings.catalogue_stale_days, today, q, type, status, stale)
    return _page(
        request,
        "catalogue.html",
        member,
        offers=shown,
        total=len(offers),
        stale_count=sum(o.offer.stale(settings.catalogue_stale_days, today) for o in offers),
        stale_days=settings.catalogue_stale_days,
        today=today,
        query={"q": q, "type": type, "status": status, "stale": stale},
        types=editing.type_names(_language(request)),
        notice=notice if notice in NOTICES else None,
    )


@router.get("/new", response_class=HTMLResponse)
async def new_offer_form(request: Request, member: EditorDep, settings: SettingsDep) -> HTMLResponse:
    blank = {name: "" for name in editing.TEXT_FIELDS} | {
        "audience": [],
        "example": False,
        "municipality": NATIONAL,
    }
    return _form_page(request, member, settings, blank, None)


async def _sent(request: Request) -> tuple[dict[str, Any], int]:
    """The form as sent (its CSRF token checked by EditorDep), and the revision it was read at."""
    raw = await request.form()
    revision = str(raw.get("revision") or "0")
    form = editing.read_form(raw, [str(a) for a in raw.getlist("audience")])
    return form, int(revision) if revision.isdigit() else -1


@router.post("/new", response_model=None)
async def create_offer(request: Request, member: EditorDep, db: DbDep, settings: SettingsDep) -> Response:
    form, _ = await _sent(request)
    try:
        offer = editing.offer_from_form(form)
        await editing.create(db, member, offer)
    except OfferInvalid as invalid:
        return _form_page(request, member, settings, form, None, 422, invalid.problems)
    except store.DuplicateOffer:
        return _form_page(request, member, settings, form, None, 409, [Problem("id", "duplicate")])
    return RedirectResponse(f"/staff/catalogue/{offer.id}?notice=created", status_code=303)


async def _stored(db: DbDep, offer_id: str) -> tuple[StoredOffer, list[store.Change]] | None:
    try:
        return await store.run(db, store.stored, offer_id), await store.run(db, store.history, offer_id)
    except store.UnknownOffer:
        return None


@router.get("/{offer_id}", response_class=HTMLResponse, response_model=None)
async def offer_page(
    request: Request,
    offer_id: OfferId,
    member: EditorDep,
    db: DbDep,
    settings: SettingsDep,
    notice: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    found = await _stored(db, offer_id)
    if found is None:
        return RedirectResponse("/staff/catalogue", status_code=303)
    stored, history = found
    form = editing.form_from_offer(stored.offer)
    return _form_page(request, member, settings, form, stored, notice=notice, history=history)


async def _refused(
    request: Request,
    member: StaffMember,
    db: DbDep,
    settings: Settings,
    offer_id: str,
    status: int,
    **what: Any,
) -> Response:
    """The offer's page as it is now, saying why the change was not made (`form`: what the editor
    sent, kept so nothing typed is lost)."""
    found = await _stored(db, offer_id)
    if found is None:
        return RedirectResponse("/staff/catalogue", status_code=303)
    stored, history = found
    form = what.pop("form", None) or editing.form_from_offer(stored.offer)
    return _form_page(request, member, settings, form, stored, status, history=history, **what)


@router.post("/{offer_id}", response_model=None)
async def edit_offer(
    request: Request, offer_id: OfferId, member: EditorDep, db: DbDep, settings: SettingsDep
) -> Response:
    form, revision = await _sent(request)
    form["id"] = offer_id  # an offer's id is its address: it does not change
    try:
        current = await store.run(db, store.stored, offer_id)
        offer = editing.offer_from_form(form, kept=current.offer)
        await editing.edit(db, member, offer, revision)
    except store.UnknownOffer:
        return RedirectResponse("/staff/catalogue", status_code=303)
    except OfferInvalid as invalid:
        return await _refused(
            request, member, db, settings, offer_id, 422, form=form, problems=invalid.problems
        )
    except store.StaleEdit:
        return await _refused(request, member, db, settings, offer_id, 409, form=form, conflict=True)
    return RedirectResponse(f"/staff/catalogue/{offer_id}?notice=saved", status_code=303)


@router.post("/{offer_id}/{action}", response_model=None)
async def offer_action(
    request: Request,
    offer_id: OfferId,
    action: Annotated[str, Path(pattern="^(" + "|".join(ACTIONS) + ")$")],
    member: EditorDep,
    db: DbDep,
    settings: SettingsDep,
    revision: Annotated[int, Form(ge=0)],
) -> Response:
    try:
        if action == "check":
            await editing.mark_checked(db, member, offer_id, revision, date.today())
        elif action in ("retire", "restore"):
            await editing.set_status(db, member, offer_id, revision, active=action == "restore")
        elif await editing.undo(db, member, offer_id, revision) is None:
            return RedirectResponse("/staff/catalogue?notice=undone_create", status_code=303)
    except store.UnknownOffer:
        return RedirectResponse("/staff/catalogue", status_code=303)
    except store.StaleEdit:
        return await _refused(request, member, db, settings, offer_id, 409, conflict=True)
    except store.NothingToUndo:
        return await _refused(
            request, member, db, settings, offer_id, 409, problems=[Problem("", "nothing_to_undo")]
        )
    return RedirectResponse(f"/staff/catalogue/{offer_id}?notice={action}", status_code=303)
