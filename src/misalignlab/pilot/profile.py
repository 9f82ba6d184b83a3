"""The dataset's misalignment profile: estimated rates by type, the slots most often omitted or wrong, coverage.

Rates are the diagnosis's estimates (the mean of each type's calibrated probability, with a 95 %
interval: :mod:`misalignlab.detect.profile`), not the share of pairs it flagged, which understates
every kind that is hard to see. Coverage is the share of captions that state each slot at all:
the paper's point (caption coverage vs zero-shot quality) is that a concept the captions rarely
state is one the model cannot learn, whatever the data size. Pure functions of a diagnosis.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from misalignlab.detect.pipeline import Diagnosis
from misalignlab.evaluate.detection_metrics import detection_metrics, type_metrics
from misalignlab.kinds import KINDS


def coverage(diag: Diagnosis) -> dict[str, float]:
    """Slot → share of captions that state it (the diagnosis's slots; empty without any)."""
    if diag.typed is None:
        return {}
    said = diag.typed.stated.said
    return {slot: float(np.mean(said[:, s] >= 0)) for s, slot in enumerate(diag.typed.stated.slots)}


def misalignment_profile(diag: Diagnosis, true_kind: np.ndarray | None) -> dict[str, Any]:
    """Estimated rates by type (with intervals, and the counts typed), omitted / wrong slots, coverage,
    and (truth known) detection quality."""
    summary = diag.summary
    estimated = summary["estimated"]
    types = {k: estimated[k] | {"count": summary["types"][k]["count"]} for k in KINDS}
    out: dict[str, Any] = {
        "pairs": summary["pairs"],
        "flagged": summary["flagged"],
        "flagged_rate": summary["flagged"] / max(summary["pairs"], 1),
        "misaligned_rate": estimated["misaligned"]["rate"],
        "misaligned_ci95": estimated["misaligned"]["ci95"],
        "types": types,
        "omitted": summary["profile"]["omitted"],
        "wrong": summary["profile"]["wrong"],
        "coverage": coverage(diag),
    }
    if true_kind is not None:
        found = diag.results["combined"]
        quality = detection_metrics("combined", found.score, true_kind)
        quality |= {
            k: v for k, v in type_metrics(diag.table["type"].to_numpy(), true_kind).items() if "confusion" not in k
        }
        quality["true_misaligned_rate"] = float(np.mean(np.asarray(true_kind) != "aligned"))
        out["quality"] = {k: float(v) for k, v in quality.items()}
    return out
