"""Shared test settings: torch on one thread (tiny ops gain nothing from more, and a shared CI
machine stalls multi-threaded tiny ops), headless matplotlib."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(1)
