"""Shared fixtures for detection tests: one torch thread and planted synthetic views."""

import numpy as np
import pytest

from misalignlab.detect.backends import unit
from misalignlab.detect.base import PairView


def planted_view(n: int = 400, d: int = 16, n_bad: int = 40, seed: int = 0) -> tuple[PairView, np.ndarray]:
    """Pairs drawn from 20 clusters; the first ``n_bad`` captions are swapped with another cluster's."""
    rng = np.random.default_rng(seed)
    centres = unit(rng.normal(size=(20, d)))
    label = rng.integers(0, 20, n)
    img = unit(centres[label] + 0.15 * rng.normal(size=(n, d)))
    txt = unit(centres[label] + 0.15 * rng.normal(size=(n, d)))
    bad = np.zeros(n, dtype=bool)
    bad[:n_bad] = True
    txt[:n_bad] = unit(
        centres[(label[:n_bad] + 1 + rng.integers(0, 19, n_bad)) % 20] + 0.15 * rng.normal(size=(n_bad, d))
    )
    perm = rng.permutation(n)
    ids = np.array([f"p{i}" for i in range(n)])
    view = PairView(ids, img[perm], txt[perm], (np.arange(n) % 2), None)
    return view, bad[perm]


@pytest.fixture
def planted():
    return planted_view()
