"""Checkpoint files and RNG state: what a resumed run needs to continue with the same numbers.

A checkpoint holds the objective, optimizer, scheduler, the batch source's position and every RNG
state as plain tensors and numbers, so ``torch.load(..., weights_only=True)`` reads it (no pickled
code runs). Files are written atomically (temp file, then rename), so a run killed mid-write
leaves the previous checkpoint intact. This module reads and writes; :class:`~misalignlab.train.
callbacks.Checkpoint` decides when.
"""

from __future__ import annotations

import io
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from misalignlab.runs import atomic_write_bytes

CHECKPOINT_FORMAT = "misalignlab.checkpoint/1"
CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_KEYS = ("format", "step", "objective", "optimizer", "scheduler", "source", "rng", "train_cfg")


def seed_everything(seed: int) -> None:
    """Seed python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Every global RNG state as tensors and plain numbers (safe for ``weights_only`` loading)."""
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss_next": gauss_next},
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np_s = state["numpy"]
    keys = np_s["keys"].numpy().astype(np.uint32)
    np.random.set_state((np_s["name"], keys, np_s["pos"], np_s["has_gauss"], np_s["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["internal"].tolist()), py["gauss_next"]))


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read back (truncated, corrupted or not ours)."""


def save_checkpoint(path: Path, state: Mapping[str, Any]) -> None:
    """Write ``state`` atomically: serialise in memory, write a temp file, then ``os.replace``."""
    buf = io.BytesIO()
    torch.save(dict(state), buf)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; unreadable files raise :class:`CheckpointError`."""
    path = Path(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # torch raises many types for a damaged zip/pickle stream
        raise CheckpointError(
            f"checkpoint {path} is corrupted or unreadable ({type(err).__name__}: {str(err)[:200]}); "
            "delete it to resume from an earlier checkpoint"
        ) from err
    missing = sorted(set(CHECKPOINT_KEYS) - set(state)) if isinstance(state, dict) else list(CHECKPOINT_KEYS)
    if missing or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (missing: {', '.join(missing)})")
    return state


def latest_checkpoint(root: Path) -> Path | None:
    """The highest-step ``checkpoints/step_*.pt`` under run folder ``root``, or None."""
    found = sorted(Path(root, CHECKPOINT_DIR).glob("step_*.pt"))
    return found[-1] if found else None
