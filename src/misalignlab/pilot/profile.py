"""The dataset's misalignment profile: rates by type, the slots most often omitted or wrong, and coverage.

Coverage is the share of captions that state each slot at all: the paper's point (§3, caption
coverage vs zero-shot quality) is that a concept the captions rarely state is one the model
cannot learn, whatever the data size. Pure functions of a diagnosis; nothing is trained here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from misalignlab.detect.pipeline import Diagnosis, choose_schema
from misalignlab.evaluate.detection_metrics import detection_metrics, type_metrics


def coverage(captions: Sequence[str], schema_name: str) -> dict[str, float]:
    """Slot → share of captions that state it (slots from the diagnosis's caption schema)."""
    schema = choose_schema(schema_name, captions)
    if schema is None or not captions:
        return {}
    stated = [schema.parse(c) for c in captions]
    return {slot: float(np.mean([slot in s for s in stated])) for slot in schema.slots}


def misalignment_profile(
    diag: Diagnosis, captions: Sequence[str], schema_name: str, true_kind: np.ndarray | None
) -> dict[str, Any]:
    """Types with Wilson intervals, omitted / wrong slot counts, coverage, and (truth known) detection quality."""
    summary = diag.summary
    out: dict[str, Any] = {
        "pairs": summary["pairs"],
        "flagged": summary["flagged"],
        "flagged_rate": summary["flagged"] / max(summary["pairs"], 1),
        "types": summary["types"],
        "omitted": summary["profile"]["omitted"],
        "wrong": summary["profile"]["wrong"],
        "coverage": coverage(captions, schema_name),
    }
    if true_kind is not None:
        found = diag.results["combined"]
        quality = detection_metrics("combined", found.score, true_kind)
        quality |= {
            k: v for k, v in type_metrics(diag.table["type"].to_numpy(), true_kind).items() if "confusion" not in k
        }
        out["quality"] = {k: float(v) for k, v in quality.items()}
    return out
