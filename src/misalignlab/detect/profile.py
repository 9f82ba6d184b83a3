"""The dataset's misalignment rates, estimated from the typing's probabilities rather than counted.

Counting the pairs typed ``wrong`` understates a rate whenever most wrong words are hard to see:
a pair with P(wrong) = 0.4 is typed aligned, yet 100 such pairs hold about 40 wrong ones. The
typing's probabilities are calibrated on the data (:mod:`misalignlab.detect.calibrate`), so their
mean estimates each type's rate, as the mixture proportion it is. The 95 % interval adds the
uncertainty of the pairs' types given their probabilities (Σ p(1 − p), a Poisson-binomial) and the
sampling of N pairs from the dataset's process (r(1 − r) / N); it does not cover a miscalibrated
typing. Pure functions of the pair table.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from misalignlab.kinds import KINDS


def _interval(p: np.ndarray) -> dict[str, Any]:
    n = max(len(p), 1)
    rate = float(p.mean()) if len(p) else 0.0
    half = 1.959964 * math.sqrt(float((p * (1 - p)).sum()) / n**2 + rate * (1 - rate) / n)
    return {"rate": rate, "ci95": [max(0.0, rate - half), min(1.0, rate + half)]}


def estimated_rates(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per type (and ``misaligned``, all but aligned): the mean probability and its 95 % interval."""
    out = {k: _interval(table[f"p_{k}"].to_numpy(dtype=np.float64)) for k in KINDS}
    out["misaligned"] = _interval(1.0 - table["p_aligned"].to_numpy(dtype=np.float64))
    return out
