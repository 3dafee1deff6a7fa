"""BM25 (bm25s) over stemmed search terms, in two indexes: one document per offer type (the words
citizens use for that kind of help) and one per offer (its own title, summary and search words).

An offer's lexical score is its type's score plus its own. Offers of a type then share their
type's evidence equally, and a type's words weigh the same however many offers the type has
(in one index, a word shared by twelve job offers would count less than one shared by two).
"""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np

from indgang.search.text import Speller, terms, words


def _index(texts: Sequence[str]) -> bm25s.BM25:
    index = bm25s.BM25()
    index.index([terms(text) or [""] for text in texts], show_progress=False)
    return index


class LexicalIndex:
    def __init__(
        self, offer_texts: Sequence[str], offer_types: Sequence[str], type_texts: dict[str, str]
    ) -> None:
        # The speller learns every indexed word, so a query's variants map onto them.
        self.speller = Speller(w for text in [*offer_texts, *type_texts.values()] for w in words(text))
        self._offers = _index(offer_texts)
        self._types = _index(list(type_texts.values()))
        position = {type_id: i for i, type_id in enumerate(type_texts)}
        self._type_of_offer = np.array([position[t] for t in offer_types])

    def scores(self, query: str, type_weight: float = 1.0) -> np.ndarray:
        """One score per offer: `type_weight` x its type's BM25 score + its own (0: no term matches)."""
        query_terms = terms(query, self.speller)
        if not query_terms:
            return np.zeros(len(self._type_of_offer), dtype=np.float32)
        own = np.asarray(self._offers.get_scores(query_terms), dtype=np.float32)
        kind = np.asarray(self._types.get_scores(query_terms), dtype=np.float32)
        return type_weight * kind[self._type_of_offer] + own
