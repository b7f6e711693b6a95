"""The PCA map helper, checked against an independent eigen-decomposition and on the small cases
(0, 1, 2 memories, duplicates) the Memory page meets first."""

import doctest

import numpy as np
import pytest

import lab.embedding_map
from lab.embedding_map import project_2d


def unit_rows(n, d=384, seed=0):
    vectors = np.random.default_rng(seed).normal(size=(n, d))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_docstring_examples():
    assert doctest.testmod(lab.embedding_map).failed == 0


def test_shapes_and_explained_variance_match_the_covariance_eigenvalues():
    vectors, query = unit_rows(30), unit_rows(3, seed=1)
    points, extra, explained = project_2d(vectors, extra=query)
    assert points.shape == (30, 2) and extra.shape == (3, 2) and explained.shape == (2,)
    # Reference: the top eigenvalues of the covariance, as shares of its trace.
    eigenvalues = np.linalg.eigvalsh(np.cov(vectors, rowvar=False))[::-1]
    np.testing.assert_allclose(explained, eigenvalues[:2] / eigenvalues.sum(), rtol=1e-6)
    assert explained[0] >= explained[1] > 0 and explained.sum() <= 1
    np.testing.assert_allclose(points.mean(axis=0), 0, atol=1e-12)  # centred on the memories
    np.testing.assert_allclose(points.var(axis=0, ddof=1), eigenvalues[:2], rtol=1e-6)


def test_a_query_is_projected_like_the_memories_and_never_moves_them():
    vectors = unit_rows(12)
    alone, _, explained_alone = project_2d(vectors)
    points, extra, explained = project_2d(vectors, extra=vectors[[4, 7]])
    np.testing.assert_allclose(points, alone)
    np.testing.assert_allclose(explained, explained_alone)
    np.testing.assert_allclose(extra, points[[4, 7]], atol=1e-12)  # a query equal to a memory lands on it
    _, one, _ = project_2d(vectors, extra=vectors[4])  # a single (d,) vector is one query
    np.testing.assert_allclose(one, points[[4]], atol=1e-12)


def test_the_map_does_not_flip_between_runs():
    vectors = unit_rows(8)
    first, _, _ = project_2d(vectors)
    again, _, _ = project_2d(vectors[::-1].copy())  # same cloud, rows in another order
    np.testing.assert_allclose(first, again[::-1], atol=1e-12)


def test_no_memories():
    points, extra, explained = project_2d(np.zeros((0, 384)))
    assert points.shape == (0, 2) and extra.shape == (0, 2) and explained.tolist() == [0, 0]
    points, extra, explained = project_2d([], extra=unit_rows(1))
    assert points.shape == (0, 2) and extra.tolist() == [[0, 0]] and explained.tolist() == [0, 0]
    points, extra, _ = project_2d(None, extra=None)
    assert points.shape == (0, 2) and extra.shape == (0, 2)


def test_one_memory_sits_at_the_origin_and_a_query_at_its_true_distance():
    memory, query = unit_rows(1), unit_rows(1, seed=1)
    points, extra, explained = project_2d(memory, extra=query)
    assert points.tolist() == [[0, 0]] and explained.tolist() == [0, 0]
    assert np.linalg.norm(extra[0]) == pytest.approx(np.linalg.norm(query - memory))
    points, extra, _ = project_2d(memory)
    assert points.tolist() == [[0, 0]] and extra.shape == (0, 2)


def test_two_memories_and_a_query_keep_their_true_distances():
    memories, query = unit_rows(2), unit_rows(1, seed=1)
    points, extra, explained = project_2d(memories, extra=query)
    assert explained.tolist() == pytest.approx([1, 0])
    assert np.linalg.norm(points[0] - points[1]) == pytest.approx(np.linalg.norm(memories[0] - memories[1]))
    for i in range(2):  # three points span a plane: the map is exact
        assert np.linalg.norm(extra[0] - points[i]) == pytest.approx(np.linalg.norm(query[0] - memories[i]))


def test_duplicates_collapse_to_one_point():
    vector = unit_rows(1)
    points, extra, explained = project_2d(np.repeat(vector, 3, axis=0), extra=vector)
    np.testing.assert_allclose(points, 0, atol=1e-12)
    np.testing.assert_allclose(extra, 0, atol=1e-12)
    assert explained.tolist() == [0, 0]


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="dimensions"):
        project_2d(unit_rows(3), extra=np.ones((1, 5)))
    with pytest.raises(ValueError, match="NaN"):
        project_2d([[1.0, float("nan")]])
    with pytest.raises(ValueError, match="2-D"):
        project_2d(np.ones((2, 2, 2)))
