"""The need classifier: from a citizen's own words to the kinds of help (taxonomy types) that fit.

BM25 needs the writer's words to meet the offer's; people describe their day instead ("han
ligger bare i sengen og spiser ikke", "vodkaflasker under sengen"). This channel learns from
labelled descriptions of situations (`training/*.yaml`: `queries: [{q, expect: [types]}]`, the
best type first), and also from the words of each type (catalogue/type_terms.yaml) and of each
offer. Features: character n-grams of the spelling-folded text (compounds and typos for free) and
word uni- and bigrams; one multinomial logistic regression gives P(type | text).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import yaml
from sklearn.linear_model import LogisticRegression

from indgang import learned
from indgang.catalogue import Catalogue, type_terms
from indgang.catalogue.taxonomy import TYPE_TERMS_FILE
from indgang.search.text import fold, words

TRAINING_DIR = Path(__file__).resolve().parent / "training"
BLIND_PREFIX = "blind_"
OTHER_TYPE_WEIGHT = 0.5  # a type a caseworker also accepts counts half as much as the best one


def folded(text: str) -> str:
    """Lower-case words with æ/ø/å and their spellings folded together."""
    return " ".join(fold(w) for w in words(text))


NeedClassifier = learned.TextClassifier  # P(type | text) for every type


def training_files(directory: Path = TRAINING_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def examples(files: Iterable[Path], catalogue: Catalogue | None) -> list[tuple[str, str, float]]:
    """(text, type, weight): labelled queries, the types' own words, and the offers' words."""
    out: list[tuple[str, str, float]] = []
    for path in files:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for case in doc.get("queries") or doc.get("retrieval") or ():
            kinds = case.get("expect") or case.get("types") or []
            out += [(case["q"], kind, 1.0 if i == 0 else OTHER_TYPE_WEIGHT) for i, kind in enumerate(kinds)]
    for kind, terms in type_terms().items():
        out += [(phrase, kind, 1.0) for phrase in (*terms.da, *terms.en)]
    for offer in catalogue.offers if catalogue else ():
        out += [(phrase, offer.type, 1.0) for phrase in (*offer.search_terms.da, *offer.search_terms.en)]
        out += [(f"{offer.title.da}. {offer.summary.da}", offer.type, 1.0)]
        out += [(f"{offer.title.en}. {offer.summary.en}", offer.type, 1.0)]
    return out


def fit(data: list[tuple[str, str, float]]) -> NeedClassifier:
    features = learned.text_features(folded)
    x = features.fit_transform([text for text, _, _ in data])
    model = LogisticRegression(C=20.0, max_iter=5000)
    model.fit(x, [kind for _, kind, _ in data], sample_weight=np.array([w for _, _, w in data]))
    return NeedClassifier(features, model)


def train(catalogue: Catalogue, files: list[Path] | None = None, name: str = "needs") -> NeedClassifier:
    """The classifier for this catalogue and training data: cached (under `name`), or trained now."""
    files = training_files() if files is None else files
    inputs = [*files, TYPE_TERMS_FILE, Path(__file__)]
    return learned.cached(name, inputs, lambda: fit(examples(files, catalogue)), catalogue.digest)


def blind_batches(directory: Path = TRAINING_DIR) -> list[Path]:
    """The spent blind batches, oldest first (a ... z, then aa, ab ...): outsiders' text (the
    corpora were written to train on)."""
    return sorted(directory.glob(f"{BLIND_PREFIX}*.yaml"), key=lambda p: (len(p.stem), p.stem))


def train_without(catalogue: Catalogue, held_out: Path) -> NeedClassifier:
    """Trained on every file but `held_out`: how the search meets a batch it never saw. Whole
    files are held out (grouped cross-validation), so a batch's writers' voices are never in
    training when it is scored."""
    files = [p for p in training_files(held_out.parent) if p != held_out]
    return train(catalogue, files, name=f"needs-without-{held_out.stem}")
