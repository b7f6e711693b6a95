"""The class's embedding cache on real SQLite and the real MiniLM: a hit is the very vector the
embedder gives, a text alone and in a batch are kept apart, a damaged file is ignored, and a
second process whose texts were embedded before never loads the embedder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from lab import embedding_cache
from lab.embedding_cache import EmbeddingCache, embedding_key
from lab.memory import MemoryStore

ROOT = Path(__file__).resolve().parent.parent
NOTES = ["The refund window at Acme Corp is 45 days.", "Acme Corp was founded by Jane Doe.",
         "The capital of Australia is Canberra."]


def test_a_hit_is_the_vector_the_embedder_computes(embedder, monkeypatch):
    cache = embedding_cache.shared_cache()
    text = "How long is the refund window at Acme Corp?"
    monkeypatch.setenv("LAB_EMBEDDING_CACHE", "0")
    embedder.clear_cache()
    computed_one, computed_batch = embedder.embed_one(text), embedder.embed(NOTES)
    monkeypatch.setenv("LAB_EMBEDDING_CACHE", "1")
    embedder.clear_cache()
    assert len(cache) == 0
    embedder.embed_one(text), embedder.embed(NOTES)  # misses: computed and kept
    assert len(cache) == 2 and cache.misses == 2
    embedder.clear_cache()
    one, batch = embedder.embed_one(text), embedder.embed(NOTES)
    assert cache.hits == 2
    assert np.array_equal(one, computed_one) and np.array_equal(batch, computed_batch)


def test_the_key_is_the_embedder_how_and_the_texts():
    base = dict(embedder="e", kind="one", texts=["a"])
    variants = [dict(embedder="other"), dict(kind="batch"), dict(texts=["b"]), dict(texts=["a", "b"])]
    keys = {embedding_key(**{**base, **change}) for change in variants}
    assert len(keys) == len(variants) and embedding_key(**base) not in keys


def test_a_damaged_file_is_set_aside_and_rebuilt_never_a_crash(tmp_path):
    path = tmp_path / "embeddings.sqlite"
    path.write_bytes(b"not a database at all" * 100)
    cache = EmbeddingCache(path)
    assert cache.get("k", 4) is None
    cache.put("k", np.ones((2, 4), dtype=np.float32))
    assert np.array_equal(cache.get("k", 4), np.ones((2, 4), dtype=np.float32))
    assert (tmp_path / "embeddings.sqlite.damaged").exists()


def test_a_row_of_the_wrong_width_is_a_miss(tmp_path):
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite")
    cache.put("k", np.ones((1, 8), dtype=np.float32))
    assert cache.get("k", 4) is None and cache.get("k", 8) is not None


def test_it_is_bounded(tmp_path):
    cache = EmbeddingCache(tmp_path / "embeddings.sqlite", max_entries=5)
    for n in range(9):
        cache.put(f"k{n}", np.full((1, 4), n, dtype=np.float32))
    assert len(cache) <= 5 and cache.get("k8", 4) is not None and cache.get("k0", 4) is None


SECOND_PROCESS = """
import json, sys
from lab.memory import MemoryStore
store = MemoryStore(sys.argv[1])
store.add_many([{"text": text} for text in json.loads(sys.argv[2])])
hits = [hit.text for hit in store.search("How long do I have to return something to Acme?", k=2)]
print(json.dumps({"hits": hits, "loaded_the_embedder": "sentence_transformers" in sys.modules}))
"""


def test_a_second_process_with_every_text_embedded_before_never_loads_the_embedder(tmp_path, embedder):
    first = MemoryStore(tmp_path / "first")
    first.add_many([{"text": text} for text in NOTES])
    expected = [hit.text for hit in first.search("How long do I have to return something to Acme?", k=2)]
    first.close()
    done = subprocess.run([sys.executable, "-c", SECOND_PROCESS, str(tmp_path / "second"), json.dumps(NOTES)],
                          capture_output=True, text=True, cwd=ROOT, env={**os.environ})
    assert done.returncode == 0, done.stderr[-800:]
    second = json.loads(done.stdout.strip().splitlines()[-1])
    assert second == {"hits": expected, "loaded_the_embedder": False}
