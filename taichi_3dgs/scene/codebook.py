"""Vector quantisation for SOG files: 1D codebooks and k-means palettes (Lloyd's algorithm).

PlayCanvas's SOG stores scales, DC colours and the higher SH bands through codebooks: each value
is replaced by the index of its nearest codebook entry (splat-transform `quantize-1d.ts`,
`k-means.ts`). Both quantisers here are plain Lloyd iterations (Lloyd 1982, "Least squares
quantization in PCM"), deterministic for a given input.
"""
from __future__ import annotations

import numpy as np
import torch


def codebook_1d(values: np.ndarray, size: int = 256, iterations: int = 20
                ) -> tuple[np.ndarray, np.ndarray]:
    """Quantise scalars to a `size`-entry codebook minimising the squared error (1D k-means).

    Initialised at evenly spaced quantiles; each iteration assigns every value to its nearest
    entry (binary search over the midpoints of the sorted entries) and moves every entry to the
    mean of its values (an entry without values stays).

    Args:
        values: [...] finite floats (any shape).
        size: codebook entries, 1..256 for byte labels.

    Returns:
        ([size] float64 sorted codebook, labels of `values`' shape, uint8 for size <= 256).
    """
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if flat.size == 0:
        return np.zeros(size), np.zeros(np.shape(values), dtype=np.uint8)
    entries = np.quantile(flat, (np.arange(size) + 0.5) / size)
    for _ in range(iterations):
        labels = _nearest_sorted(flat, entries)
        counts = np.bincount(labels, minlength=size)
        sums = np.bincount(labels, weights=flat, minlength=size)
        entries = np.sort(np.where(counts > 0, sums / np.maximum(counts, 1), entries))
    labels = _nearest_sorted(flat, entries)
    return entries, labels.astype(np.uint8 if size <= 256 else np.uint16).reshape(np.shape(values))


def _nearest_sorted(values: np.ndarray, entries: np.ndarray) -> np.ndarray:
    """Index of the nearest of the sorted `entries` for each value."""
    return np.searchsorted((entries[1:] + entries[:-1]) / 2.0, values).astype(np.int64)


def kmeans_palette(vectors: np.ndarray, size: int, iterations: int = 10,
                   block: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Cluster [N, D] vectors into at most `size` centroids (k-means, Lloyd's algorithm).

    With N <= `size` every vector is its own centroid (exact). Otherwise centroids start at
    N / size-spaced rows (the rows are in Morton order, so this samples the whole scene) and
    each iteration assigns rows to the nearest centroid (squared distances by matrix products,
    `block` rows at a time) and moves each centroid to its rows' mean (an empty one stays).

    Returns:
        ([K, D] float64 centroids, K = min(N, size); [N] int64 labels).
    """
    n = len(vectors)
    if n <= size:
        return np.asarray(vectors, dtype=np.float64).copy(), np.arange(n, dtype=np.int64)
    data = torch.from_numpy(np.asarray(vectors, dtype=np.float32))
    centroids = data[torch.from_numpy(np.linspace(0, n - 1, size).round().astype(np.int64))]
    for _ in range(iterations):
        labels = _nearest_rows(data, centroids, block)
        counts = torch.bincount(labels, minlength=size).to(torch.float32)
        sums = torch.zeros_like(centroids).index_add_(0, labels, data)
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1.0)[:, None],
                                centroids)
    return centroids.double().numpy(), _nearest_rows(data, centroids, block).numpy()


def _nearest_rows(data: torch.Tensor, centroids: torch.Tensor, block: int) -> torch.Tensor:
    """[N] index of the nearest centroid (Euclidean) for each row of `data`."""
    norms = (centroids * centroids).sum(dim=1)
    return torch.cat([(norms - 2.0 * rows @ centroids.T).argmin(dim=1)
                      for rows in data.split(block)])
