"""Search the offer catalogue directly (the chat uses the same search through the bot)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from indgang.offer_cards import offer_result
from indgang.ratelimit import Kind
from indgang.search import get_offer_search
from indgang.settings import Settings
from webhook.deps import ClientLimit, SettingsDep
from webhook.schemas import ErrorBody, OfferSearchResponse

router = APIRouter(prefix="/api/v1/offers", tags=["offers"])


def warm_search(settings: Settings) -> None:
    """Load the catalogue and the embedding model at start-up, not on the first citizen's query."""
    get_offer_search(settings).warm()


@router.get(
    "",
    response_model=OfferSearchResponse,
    responses={429: {"model": ErrorBody}},
    dependencies=[Depends(ClientLimit(Kind.CLIENT_OFFERS))],
)
def search_offers(
    settings: SettingsDep,
    # pattern: at least one non-space character (an empty or blank q is a 422, in the schema too)
    q: Annotated[str, Query(max_length=500, pattern=r"\S", description="The citizen's own words")],
    limit: Annotated[int, Query(ge=1, le=20)] = 5,
    audience: Literal["adult", "child", "family", "relative"] | None = None,
    municipality: Annotated[str | None, Query(max_length=60)] = None,
    language: Literal["da", "en"] = "da",
) -> OfferSearchResponse:
    # A plain def: the search is CPU-bound, so FastAPI runs it in its thread pool.
    search = get_offer_search(settings)
    hits = search.search(q, limit=limit, audience=audience, municipality=municipality, language=language)
    stale_days = search.catalogue.stale_days
    return OfferSearchResponse(query=q, offers=[offer_result(hit, language, stale_days) for hit in hits])
