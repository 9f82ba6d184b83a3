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


def shared_image_view(
    n_images: int = 120, per_image: int = 5, n_clusters: int = 6, n_bad: int = 3, d: int = 16, seed: int = 0
) -> tuple[PairView, np.ndarray]:
    """``per_image`` identical captions per image, codes as cross-fitting gives them (one code per image,
    all its captions in one fold); images fall in ``n_clusters`` clusters, two folds each. The captions of
    the first ``n_bad`` images (fold 0, distinct clusters) all describe the next cluster: (view, bad per pair)."""
    rng = np.random.default_rng(seed)
    centres = np.eye(n_clusters, d, dtype=np.float64)
    cluster = np.arange(n_images) % n_clusters
    said = np.where(np.arange(n_images) < n_bad, (cluster + 1) % n_clusters, cluster)
    image_code = unit(centres[cluster] + 0.05 * rng.normal(size=(n_images, d)))
    caption_code = unit(centres[said] + 0.05 * rng.normal(size=(n_images, d)))
    image = np.repeat(np.arange(n_images), per_image)  # pair → its image
    ids = np.array([f"p{i}" for i in range(len(image))])
    keys = np.array([f"img{j}" for j in image])
    fold = (image // n_clusters) % 2
    view = PairView(ids, image_code[image].astype(np.float32), caption_code[image].astype(np.float32), fold, None, keys)
    return view, image < n_bad


def one_hot_images(n_images: int = 20, per_image: int = 5) -> PairView:
    """Image ``j`` and each of its ``per_image`` captions are the unit vector ``e_j``: every caption matches its
    own image exactly and no other (one fold)."""
    image = np.repeat(np.arange(n_images), per_image)
    codes = np.eye(n_images, dtype=np.float32)[image]
    ids = np.array([f"p{i}" for i in range(len(image))])
    return PairView(ids, codes, codes.copy(), np.zeros(len(image), int), None, np.array([f"img{j}" for j in image]))
