"""MemoryStore.vectors: the stored embeddings read back, on the real embedder, hnswlib and SQLite."""

import numpy as np
import pytest

from lab.errors import LabError, NotFound
from lab.memory import MemoryStore

REFUND = "The refund window at Acme Corp is 45 days."
DOG = "Our office dog is called Biscuit."


@pytest.fixture
def store(tmp_path, embedder):
    with MemoryStore(tmp_path / "memory", embedder=embedder) as opened:
        yield opened


def test_vectors_are_the_embeddings_search_uses_in_the_order_asked(store, embedder):
    refund, dog = store.add(REFUND), store.add(DOG)
    vectors = store.vectors([dog.id, refund.id])
    assert vectors.shape == (2, embedder.dim) and vectors.dtype == np.float32
    np.testing.assert_allclose(vectors, embedder.embed([DOG, REFUND]), atol=1e-6)
    hit = store.search_vector(vectors[1], k=1)[0]
    assert hit.id == refund.id and hit.score == pytest.approx(1.0, abs=1e-5)
    vectors[:] = 0  # a copy: changing it changes nothing stored
    np.testing.assert_allclose(store.vectors([refund.id])[0], embedder.embed_one(REFUND), atol=1e-6)


def test_an_edited_text_has_its_new_vector(store, embedder):
    memory = store.add(REFUND)
    store.update(memory.id, text=DOG)
    np.testing.assert_allclose(store.vectors([memory.id])[0], embedder.embed_one(DOG), atol=1e-6)


def test_no_ids_unknown_ids_and_bad_ids(store, embedder):
    assert store.vectors([]).shape == (0, embedder.dim)
    memory = store.add(REFUND)
    store.delete(memory.id)
    with pytest.raises(NotFound, match=f"no memory with id {memory.id}"):
        store.vectors([memory.id])
    with pytest.raises(LabError, match="whole number"):
        store.vectors(["1"])
    with pytest.raises(LabError, match="list of memory ids"):
        store.vectors(memory.id)
