"""A flat map of the memory: its embedding vectors projected to two dimensions with PCA.

Each memory is a 384-dimensional unit vector; a screen has two. PCA keeps the two
directions along which the memories differ most and drops the rest, so the map is a
shadow of the real geometry: points far apart on the map are far apart in meaning, but
points close on the map may still differ along a direction the map leaves out. The
explained variance says how much of the memories' spread the two axes show.

    points, (query,), explained = project_2d(store.vectors(ids), extra=query_vector)
"""

from __future__ import annotations

import numpy as np

# Singular values and residuals below this count as zero: the data has no spread that way.
_TOLERANCE = 1e-9


def project_2d(vectors, extra=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project `vectors` (n, d) onto their two principal axes; `extra` (m, d) goes through the same projection.

    Returns (points (n, 2), extra_points (m, 2), explained (2,)), where explained[i] is
    the share of the vectors' variance along axis i. The axes are fitted to `vectors`
    alone, so a new query never moves the memories on the map. When the vectors span
    fewer than two directions (0, 1 or 2 of them, or duplicates), the missing axes are
    taken from where the extra points lie: a query beside one or two memories is drawn
    at its true distance from them. A single vector of shape (d,) counts as one row.

    >>> points, query, explained = project_2d([[0, 0, 0], [2, 0, 0]], extra=[1, 1, 0])
    >>> points.tolist(), query.tolist(), explained.tolist()
    ([[-1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0]], [1.0, 0.0])
    """
    vectors = _rows(vectors, "vectors")
    extra = _rows(extra, "extra")
    if len(vectors) and len(extra) and vectors.shape[1] != extra.shape[1]:
        raise ValueError(f"vectors have {vectors.shape[1]} dimensions but extra has {extra.shape[1]}")
    dim = vectors.shape[1] if len(vectors) else extra.shape[1]
    vectors = vectors if len(vectors) else np.zeros((0, dim))  # an empty side takes the other's width
    extra = extra if len(extra) else np.zeros((0, dim))

    # Centre on the memories (or, with none, on the extra points) so the map's origin is their mean.
    fitted_on = vectors if len(vectors) else extra
    mean = fitted_on.mean(axis=0) if len(fitted_on) else np.zeros(dim)
    centred, centred_extra = vectors - mean, extra - mean

    axes: list[np.ndarray] = []
    explained = np.zeros(2)
    if len(vectors) > 1:
        # centred = U S Vt: the rows of Vt are the principal axes, S**2 the variance along each, largest first.
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        total = float(np.sum(singular ** 2))
        for i in range(min(2, int(np.sum(singular > _TOLERANCE)))):
            axes.append(_fix_sign(vt[i]))
            explained[i] = singular[i] ** 2 / total
    # Too few directions among the memories: borrow them from the extra points (Gram-Schmidt).
    for row in centred_extra:
        if len(axes) == 2:
            break
        residual = row - sum((row @ axis) * axis for axis in axes)
        norm = np.linalg.norm(residual)
        if norm > _TOLERANCE:
            axes.append(residual / norm)
    while len(axes) < 2:
        axes.append(np.zeros(dim))  # nothing left to show: that coordinate is 0 for everyone

    basis = np.stack(axes, axis=1)  # (d, 2)
    return centred @ basis, centred_extra @ basis, explained


def _rows(array, name: str) -> np.ndarray:
    """`array` as an (n, d) float64 matrix; None or empty -> (0, d) with whatever d it had."""
    matrix = np.asarray([] if array is None else array, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix.reshape(0, 0) if matrix.size == 0 else matrix[None, :]
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array of shape (n, d), not {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return matrix


def _fix_sign(axis: np.ndarray) -> np.ndarray:
    """SVD may return an axis or its negative; pick the one whose largest entry is positive, so the map never flips."""
    return axis if axis[np.argmax(np.abs(axis))] >= 0 else -axis
