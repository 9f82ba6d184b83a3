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
