"""Distribution shifts of scene factors, made by post-editing a sampled factor table before rendering.

A :class:`FactorShift` rewrites one discrete factor: with probability ``strength`` it is set to
``(code(follows) + offset) mod k`` (a spurious correlation with another factor) or, without
``follows``, to the fixed code ``value``; otherwise the sampled value stays. Train with
``offset=0, strength=0.9`` and test with ``offset=1, strength=1`` and the nuisance factor is
anti-correlated at test time. The task (which factor to predict) never changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from misalignlab.data.scenes.factors import FACTORS


@dataclass(frozen=True)
class FactorShift:
    factor: str
    follows: str | None = None
    offset: int = 0
    value: int = 0
    strength: float = 1.0

    def __post_init__(self) -> None:
        for name in (self.factor, self.follows):
            if name is not None and (name not in FACTORS or not FACTORS[name].discrete):
                valid = ", ".join(f for f, spec in FACTORS.items() if spec.discrete)
                raise ValueError(f"shift: {name!r} is not a discrete factor; valid: {valid}")
        if self.follows == self.factor:
            raise ValueError(f"shift: {self.factor!r} cannot follow itself")
        if not 0.0 <= self.strength <= 1.0:
            raise ValueError(f"shift strength must be in [0, 1], got {self.strength}")
        if not 0 <= self.value < FACTORS[self.factor].n_values:
            raise ValueError(f"shift value {self.value} is not a code of {self.factor!r}")


def apply_shifts(factors: pd.DataFrame, shifts: Sequence[FactorShift], rng: np.random.Generator) -> pd.DataFrame:
    """A copy of ``factors`` with every shift applied in order (the input is not modified)."""
    out = factors.copy()
    for s in shifts:
        if s.factor not in out or (s.follows is not None and s.follows not in out):
            raise ValueError(f"shift on {s.factor!r}/{s.follows!r}: factor table lacks it; has {list(out.columns)}")
        k = FACTORS[s.factor].n_values
        target = (out[s.follows].to_numpy(np.int64) + s.offset) % k if s.follows else np.full(len(out), s.value)
        hit = rng.random(len(out)) < s.strength
        out[s.factor] = np.where(hit, target, out[s.factor].to_numpy(np.int64)).astype(out[s.factor].dtype)
    return out
