"""Offer search: a citizen's own words in, the offers that fit out (hybrid BM25 + embeddings)."""

from __future__ import annotations

from functools import lru_cache

from indgang.catalogue import load_catalogue
from indgang.search.embeddings import Embedder
from indgang.search.engine import OfferHit, OfferSearch, Ranking
from indgang.settings import get_settings

__all__ = ["OfferHit", "OfferSearch", "Ranking", "get_offer_search"]


@lru_cache
def get_offer_search() -> OfferSearch:
    """The process-wide search, built from settings. Cheap to create: the embedding model is
    loaded by `warm()` or the first query."""
    settings = get_settings()
    return OfferSearch(
        load_catalogue(settings.catalogue_dir),
        Embedder(settings.embedding_model, settings.embedding_cache_dir),
        default_municipality=settings.search_default_municipality,
        ranking=Ranking(
            max_per_type=settings.search_max_per_type, semantic_weight=settings.search_semantic_weight
        ),
    )
