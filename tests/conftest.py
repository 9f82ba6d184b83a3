"""Shared test settings: torch on one thread (tiny ops gain nothing from more, and a shared CI
machine stalls multi-threaded tiny ops), headless matplotlib, and the Fashion-MNIST guard.

Tests that need the real Fashion-MNIST files skip without them, except where
MISALIGNLAB_REQUIRE_FASHION is set (``.ci/run`` sets it): there a missing dataset fails the test."""

import functools
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _one_thread():
    """Every test starts on one intra-op thread (a library call may change it; results stay seeded)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@functools.lru_cache(maxsize=1)
def _fashion_train_pairs():
    """Read once per test process (a missing file raises every time: nothing is cached then)."""
    from misalignlab.data.loaders.fashion_mnist import fashion_mnist_pairs

    return fashion_mnist_pairs("train")


@pytest.fixture
def fashion_mnist():
    """The Fashion-MNIST training pairs; skip (fail under MISALIGNLAB_REQUIRE_FASHION) if the files are missing."""
    try:
        return _fashion_train_pairs()
    except FileNotFoundError as exc:
        if os.environ.get("MISALIGNLAB_REQUIRE_FASHION"):
            pytest.fail(f"Fashion-MNIST is required here (MISALIGNLAB_REQUIRE_FASHION): {exc}")
        pytest.skip(str(exc))
