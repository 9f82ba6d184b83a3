"""Plots of a pilot: the cleaning curve against the model-side options, and the misalignment profile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from misalignlab.report.figures import save_png  # noqa: E402


def cleaning_curve_plot(
    curve: Sequence[Mapping[str, float]], adapt: Sequence[Mapping[str, Any]], metric: str, path: Path
) -> Path:
    """Score vs share of pairs cleaned (0 = baseline), ± 1 s.e.; model-side options as dashed lines."""
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    x = np.array([p["fraction"] for p in curve]) * 100
    y = np.array([p["score"] for p in curve])
    se = np.array([p["se"] for p in curve])
    ax.errorbar(x, y, yerr=se, marker="o", color="#4477aa", capsize=3, label="clean the top k %")
    colours = ["#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377"]
    for colour, opt in zip(colours, adapt):
        ax.axhline(opt["score"], ls="--", color=colour, label=f"adapt: {opt['option']}")
    ax.set_xlabel("pairs reviewed and fixed (most suspicious first, %)")
    ax.set_ylabel(f"{metric} (points)")
    ax.set_title("Cleaning curve vs model-side strategies")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return save_png(fig, path)


def type_coverage_plot(types: Mapping[str, Mapping[str, Any]], coverage: Mapping[str, float], path: Path) -> Path:
    """Left: rate of each misalignment type with its 95 % Wilson interval. Right: share of captions stating each slot."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.4))
    names = list(types)
    rate = np.array([types[k]["rate"] for k in names]) * 100
    lo = rate - np.array([types[k]["ci95"][0] for k in names]) * 100
    hi = np.array([types[k]["ci95"][1] for k in names]) * 100 - rate
    left.bar(names, rate, yerr=[lo, hi], capsize=3, color=["#228833", "#ccbb44", "#ee6677", "#aa3377"][: len(names)])
    left.set_ylabel("pairs (%)")
    left.set_title("Misalignment by type")
    slots = list(coverage)
    right.barh(slots, [100 * coverage[s] for s in slots], color="#4477aa")
    right.set_xlim(0, 100)
    right.set_xlabel("captions stating it (%)")
    right.set_title("Slot coverage")
    fig.tight_layout()
    return save_png(fig, path)
