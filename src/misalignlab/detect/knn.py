"""Blocked top-k cosine neighbour search: memory O(block · pool), never O(N²).

Queries are processed in blocks of ``block`` rows against a pool of ``P`` unit vectors; each block
computes a (block, P) similarity matrix with one matrix product and keeps its ``k`` best columns
with ``torch.topk``. A query can be excluded from its own neighbours by passing its pool position,
and from every pool row of its own group (the other captions of its image) by passing group codes.
This module knows nothing about pairs or folds; :mod:`misalignlab.detect.neighbourhood` does.
"""

from __future__ import annotations

import numpy as np
import torch


def topk_cosine(
    queries: np.ndarray,
    pool: np.ndarray,
    k: int,
    self_index: np.ndarray | None = None,
    block: int = 4096,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar pool rows for every query row (unit vectors; dot = cosine).

    Parameters
    ----------
    queries : (Q, D) float32
    pool : (P, D) float32
    k : int
        Neighbours per query (capped at ``P`` minus one when excluding self).
    self_index : (Q,) int, optional
        Pool position of each query (−1 if not in the pool), excluded from its neighbours.
    block : int
        Queries per block; peak extra memory is ``block · P`` floats.
    groups : ((Q,) int, (P,) int), optional
        Group codes of the queries and of the pool rows: a pool row of a query's own group is never
        its neighbour. A query with fewer than ``k`` candidates left gets ``-inf`` similarities (at
        arbitrary positions) in its trailing columns.

    Returns
    -------
    sims : (Q, k) float32, descending
    index : (Q, k) int64 pool positions
    """
    n_pool = len(pool)
    k = min(k, n_pool - (1 if self_index is not None else 0))
    if k < 1:
        raise ValueError(f"need at least one neighbour candidate; pool has {n_pool} row(s)")
    pool_t = torch.from_numpy(np.ascontiguousarray(pool, dtype=np.float32))  # (P, D)
    pool_group = None if groups is None else torch.from_numpy(np.asarray(groups[1], dtype=np.int64))  # (P,)
    sims = np.empty((len(queries), k), dtype=np.float32)
    index = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), block):
        q = torch.from_numpy(np.ascontiguousarray(queries[start : start + block], dtype=np.float32))  # (B, D)
        s = q @ pool_t.T  # (B, P)
        if self_index is not None:
            own = torch.from_numpy(np.asarray(self_index[start : start + block], dtype=np.int64))  # (B,)
            rows = torch.nonzero(own >= 0).squeeze(1)
            s[rows, own[rows]] = -torch.inf
        if groups is not None:
            mine = torch.from_numpy(np.asarray(groups[0][start : start + block], dtype=np.int64))  # (B,)
            s[mine[:, None] == pool_group[None, :]] = -torch.inf
        top = torch.topk(s, k, dim=1)  # sorted, descending
        sims[start : start + len(q)] = top.values.numpy()
        index[start : start + len(q)] = top.indices.numpy()
    return sims, index


def topk_cosine_reference(
    queries: np.ndarray,
    pool: np.ndarray,
    k: int,
    self_index: np.ndarray | None = None,
    groups: tuple[np.ndarray, np.ndarray] | None = None,
):
    """Plain full-matrix version of :func:`topk_cosine` (tests and benchmarks only)."""
    s = queries.astype(np.float64) @ pool.astype(np.float64).T  # (Q, P)
    if self_index is not None:
        for i, j in enumerate(self_index):
            if j >= 0:
                s[i, j] = -np.inf
    if groups is not None:
        s[np.asarray(groups[0])[:, None] == np.asarray(groups[1])[None, :]] = -np.inf
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, axis=1).astype(np.float32), order
