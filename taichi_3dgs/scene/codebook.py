"""Vector quantisation for SOG files: 1D codebooks and k-means palettes (Lloyd's algorithm).

PlayCanvas's SOG stores scales, DC colours and the higher SH bands through codebooks: each value
is replaced by the index of its nearest codebook entry (splat-transform `quantize-1d.ts`,
`k-means.ts`). Both quantisers here are plain Lloyd iterations (Lloyd 1982, "Least squares
quantization in PCM"), deterministic for a given input.
"""
from __future__ import annotations

import numpy as np
import torch


def codebook_1d(values: np.ndarray, size: int = 256, iterations: int = 30, bins: int = 8192,
                alpha: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Quantise scalars to a `size`-entry codebook (1D k-means on a density-flattened histogram).

    Plain k-means spends nearly every entry where values are dense and leaves the tails (the
    largest Gaussians, the most saturated colours) with errors of several steps. As
    splat-transform's `quantize-1d-core.ts` does, the values are first binned (at most `bins`,
    about 8 values to a bin, but never fewer than `size` bins; edges halfway
    between evenly spaced and equal-count edges), each bin weighted by count^`alpha`, and
    Lloyd's iterations run on the weighted bin means (initialised at weighted quantiles; an entry
    without bins stays); every value then takes its nearest entry.

    Args:
        values: [...] finite floats (any shape).
        size: codebook entries, 1..256 for byte labels.

    Returns:
        ([size] float64 sorted codebook, labels of `values`' shape, uint8 for size <= 256).
    """
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if flat.size == 0:
        return np.zeros(size), np.zeros(np.shape(values), dtype=np.uint8)
    bins = min(bins, max(size, flat.size // 8))  # a few values per bin, so weights matter
    fractions = np.linspace(0.0, 1.0, bins + 1)
    edges = 0.5 * (flat.min() + (flat.max() - flat.min()) * fractions) \
        + 0.5 * np.quantile(flat, fractions)
    bin_of = np.clip(np.searchsorted(edges, flat, side="right") - 1, 0, bins - 1)
    counts = np.bincount(bin_of, minlength=bins)
    used = counts > 0
    centres = np.bincount(bin_of, weights=flat, minlength=bins)[used] / counts[used]
    weights = counts[used] ** alpha
    cumulative = np.cumsum(weights) / weights.sum()
    entries = centres[np.minimum(np.searchsorted(cumulative, (np.arange(size) + 0.5) / size),
                                 len(centres) - 1)]
    for _ in range(iterations):
        labels = _nearest_sorted(centres, entries)
        mass = np.bincount(labels, weights=weights, minlength=size)
        sums = np.bincount(labels, weights=weights * centres, minlength=size)
        entries = np.sort(np.where(mass > 0, sums / np.maximum(mass, 1e-300), entries))
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
    Runs on CUDA when torch has it (N x size x D work per iteration), else on the CPU.

    Returns:
        ([K, D] float64 centroids, K = min(N, size); [N] int64 labels).
    """
    n = len(vectors)
    if n <= size:
        return np.asarray(vectors, dtype=np.float64).copy(), np.arange(n, dtype=np.int64)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    data = torch.from_numpy(np.asarray(vectors, dtype=np.float32)).to(device)
    start = torch.from_numpy(np.linspace(0, n - 1, size).round().astype(np.int64)).to(device)
    centroids = data[start]
    for _ in range(iterations):
        labels = _nearest_rows(data, centroids, block)
        counts = torch.bincount(labels, minlength=size).to(torch.float32)
        sums = torch.zeros_like(centroids).index_add_(0, labels, data)
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1.0)[:, None],
                                centroids)
    labels = _nearest_rows(data, centroids, block)
    return centroids.double().cpu().numpy(), labels.cpu().numpy()


def _nearest_rows(data: torch.Tensor, centroids: torch.Tensor, block: int) -> torch.Tensor:
    """[N] index of the nearest centroid (Euclidean) for each row of `data`."""
    norms = (centroids * centroids).sum(dim=1)
    return torch.cat([(norms - 2.0 * rows @ centroids.T).argmin(dim=1)
                      for rows in data.split(block)])
