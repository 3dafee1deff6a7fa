"""Small models the project trains itself (the safety check's classifier, the need classifier).

Each is built from data files in the repository and cached under `.cache/<name>/`, keyed by a
fingerprint of those files, the code that builds it and the library versions: a change to any of
them trains a new model; nothing is ever downloaded. `indgang train` builds them ahead of time;
a process that finds none trains it on first use (seconds, not minutes).
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import sklearn
from sklearn.base import ClassifierMixin, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from indgang.settings import PROJECT_DIR

CACHE_ROOT = PROJECT_DIR / ".cache"
Model = TypeVar("Model")


def fingerprint(paths: Iterable[Path], extra: str = "") -> str:
    digest = hashlib.sha256(extra.encode())
    for path in paths:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(f"{sklearn.__version__} {np.__version__}".encode())
    return digest.hexdigest()[:16]


def cached(name: str, inputs: Iterable[Path], build: Callable[[], Model], extra: str = "") -> Model:
    """The model `build` makes from `inputs` (and `extra`, e.g. a catalogue's digest): from the
    cache when it is current, else built now."""
    folder = CACHE_ROOT / name
    path = folder / f"model-{fingerprint([*inputs, Path(__file__)], extra)}.pickle"
    if path.exists():
        # The cache holds only what this function wrote from the project's own data, in the
        # project's own folder: whoever can write there can change the code beside it as well.
        return pickle.loads(path.read_bytes())  # nosec B301
    model = build()
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{id(model)}.partial")
    partial.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    partial.replace(path)  # atomic: a parallel process never reads half a model
    for old in folder.glob("model-*.pickle"):
        if old != path:
            old.unlink(missing_ok=True)
    return model


def text_features(
    preprocessor: Callable[[str], str], extra: tuple[str, TransformerMixin, float] | None = None
) -> FeatureUnion:
    """Character n-grams (compounds, typos and missing æøå for free) and word uni- and bigrams of
    the preprocessed text, and optionally one more feature block with its weight."""
    common = {"sublinear_tf": True, "lowercase": False, "dtype": np.float32, "preprocessor": preprocessor}
    blocks: list[tuple[str, TransformerMixin]] = [
        (
            "chars",
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, **common),
        ),
        (
            "words",
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), token_pattern=r"\S+", **common),
        ),
    ]
    weights = {"chars": 1.0, "words": 0.6}
    if extra is not None:
        name, transformer, weight = extra
        blocks.append((name, transformer))
        weights[name] = weight
    return FeatureUnion(blocks, transformer_weights=weights)


@dataclass
class TextClassifier:
    """Features and a fitted probabilistic classifier over them: P(label | text)."""

    features: FeatureUnion
    model: ClassifierMixin

    def probabilities(self, text: str) -> dict[str, float]:
        p = self.model.predict_proba(self.features.transform([text]))[0]
        return {str(label): float(v) for label, v in zip(self.model.classes_, p, strict=True)}
