"""Shared test settings: torch on one thread (tiny ops gain nothing from more, and a shared CI
machine stalls multi-threaded tiny ops), headless matplotlib."""

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
