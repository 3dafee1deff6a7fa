"""Offer search: a citizen's own words in, the offers that fit out (hybrid BM25 + embeddings)."""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

from indgang.catalogue import Catalogue, CatalogueError, load_catalogue
from indgang.catalogue.store import CatalogueSource, catalogue_source
from indgang.search.embeddings import Embedder
from indgang.search.engine import OfferHit, OfferSearch, Ranking
from indgang.settings import Settings, get_settings

__all__ = ["LiveSearch", "OfferHit", "OfferSearch", "Ranking", "get_offer_search"]


class LiveSearch:
    """The search over the catalogue as it is now: when staff change the catalogue, the next
    query after the source notices builds a new index (no restart). The need classifier is kept:
    it learns offer types, which an edit does not change; it is trained (or found in its cache,
    as `indgang train` left it) on `seed`, the catalogue's files, so a restart after edits does
    not train it again either (None: on the catalogue as it is)."""

    def __init__(
        self,
        source: CatalogueSource,
        embedder: Embedder | None,
        default_municipality: str | None,
        ranking: Ranking,
        seed: Catalogue | None = None,
    ) -> None:
        self.source = source
        self.seed = seed
        self.embedder = embedder
        self.default_municipality = default_municipality
        self.ranking = ranking
        self._search: OfferSearch | None = None
        self._lock = threading.Lock()

    def current(self) -> OfferSearch:
        catalogue = self.source.current()
        with self._lock:
            if self._search is None or self._search.catalogue is not catalogue:
                self._search = OfferSearch(
                    catalogue,
                    self.embedder,
                    default_municipality=self.default_municipality,
                    ranking=self.ranking,
                    needs=self._search.needs if self._search is not None else None,
                    needs_trained_on=self.seed,
                )
            return self._search


@lru_cache(maxsize=8)
def _live(
    source: CatalogueSource,
    model: str,
    cache_dir: Path,
    municipality: str | None,
    ranking: Ranking,
    folder: Path,
) -> LiveSearch:
    try:
        seed: Catalogue | None = load_catalogue(folder)
    except CatalogueError:
        seed = None  # no seed files here: the classifier learns the catalogue as it is
    return LiveSearch(source, Embedder(model, cache_dir), municipality, ranking, seed)


def get_offer_search(settings: Settings | None = None) -> OfferSearch:
    """The process-wide search for `settings` (default: the process's), over the catalogue as it
    is now. Cheap to call per query; the embedding model is loaded by `warm()` or the first query."""
    settings = settings or get_settings()
    ranking = Ranking(
        max_per_type=settings.search_max_per_type, semantic_weight=settings.search_semantic_weight
    )
    live = _live(
        catalogue_source(settings),
        settings.embedding_model,
        Path(settings.embedding_cache_dir),
        settings.search_default_municipality,
        ranking,
        Path(settings.catalogue_dir).resolve(),
    )
    return live.current()
