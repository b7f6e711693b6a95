"""The embedder (real all-MiniLM-L6-v2): unit vectors, and the cache of recent queries."""

import numpy as np


def test_vectors_are_unit_length_and_similar_texts_are_close(embedder):
    a, b, c = embedder.embed(["Who founded Acme Corp?", "Who started Acme Corp?", "How do bees make honey?"])
    assert np.allclose([np.linalg.norm(a), np.linalg.norm(c)], 1.0, atol=1e-5)
    assert float(a @ b) > float(a @ c) + 0.3


def test_a_repeated_query_comes_from_the_cache_as_the_same_vector(embedder):
    first = embedder.embed_one("Who founded Acme Corp?")
    first[0] = 99.0  # a caller scribbling on its copy must not reach the cache
    again = embedder.embed_one("Who founded Acme Corp?")
    embedder.clear_cache()
    fresh = embedder.embed_one("Who founded Acme Corp?")
    assert again[0] != 99.0 and np.array_equal(again, fresh)
