"""Blocked top-k against the plain full-matrix reference."""

import numpy as np

from misalignlab.detect.backends import unit
from misalignlab.detect.knn import topk_cosine, topk_cosine_reference


def test_blocked_topk_matches_reference_with_self_exclusion():
    rng = np.random.default_rng(0)
    pool = unit(rng.normal(size=(300, 8)))
    queries = pool[:130]
    self_index = np.arange(130)
    sims, idx = topk_cosine(queries, pool, 5, self_index=self_index, block=17)
    ref_sims, ref_idx = topk_cosine_reference(queries, pool, 5, self_index=self_index)
    np.testing.assert_allclose(sims, ref_sims, atol=1e-5)
    assert (idx == ref_idx).mean() > 0.99  # ties aside, the same neighbours
    assert not (idx == self_index[:, None]).any()


def test_topk_caps_k_at_pool_size():
    pool = unit(np.eye(3, dtype=np.float32))
    sims, idx = topk_cosine(pool, pool, 10, self_index=np.arange(3))
    assert idx.shape == (3, 2)


def test_topk_leaves_out_the_querys_group_and_marks_missing_candidates():
    rng = np.random.default_rng(0)
    pool = unit(rng.normal(size=(60, 8)))
    group = np.arange(60) // 5  # 12 groups of 5
    queries, mine = pool[:23], group[:23]
    sims, idx = topk_cosine(queries, pool, 6, groups=(mine, group), block=7)
    ref_sims, ref_idx = topk_cosine_reference(queries, pool, 6, groups=(mine, group))
    np.testing.assert_allclose(sims, ref_sims, atol=1e-5)
    assert not (group[idx] == mine[:, None]).any()  # no neighbour of the query's own group
    # a pool of one group besides the query's: 5 candidates for 6 places, the last one -inf
    sims, idx = topk_cosine(pool[:1], pool[:10], 6, groups=(group[:1], group[:10]))
    assert np.isfinite(sims[0, :5]).all() and sims[0, 5] == -np.inf and set(idx[0, :5]) == set(range(5, 10))
