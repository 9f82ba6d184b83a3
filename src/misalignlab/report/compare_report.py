"""The strategy comparison's report: a bar plot (one panel per metric, ID and OOD bars with 95 % intervals)
and the Markdown table (one row per strategy)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from misalignlab.report.figures import save_png  # noqa: E402
from misalignlab.report.tables import markdown_table  # noqa: E402

SPLITS = ("id", "ood")
SPLIT_COLOURS = {"id": "#4477aa", "ood": "#ee6677"}


def strategy_plot(summary: pd.DataFrame, metrics: Sequence[str], strategies: Sequence[str], path: Path) -> Path:
    """Write a PNG grid: per metric, bars per strategy for each split, error bars = 95 % t-interval."""
    metrics = [m for m in metrics if (summary.metric == m).any()]
    splits = [s for s in SPLIT_COLOURS if (summary.split == s).any()]
    cols = min(3, max(1, len(metrics)))
    rows = max(1, -(-len(metrics) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    x = np.arange(len(strategies))
    width = 0.8 / max(1, len(splits))
    for ax, metric in zip(axes.flat, metrics):
        for j, split in enumerate(splits):
            sel = summary[(summary.metric == metric) & (summary.split == split)].set_index("strategy")
            mean = [float(sel["mean"].get(s, np.nan)) for s in strategies]
            half = np.nan_to_num([float(sel["ci95"].get(s, np.nan)) for s in strategies])
            ax.bar(
                x + (j - (len(splits) - 1) / 2) * width,
                mean,
                width,
                yerr=half,
                capsize=3,
                color=SPLIT_COLOURS[split],
                label=split.upper(),
            )
        ax.set_xticks(x, list(strategies), rotation=30, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    if metrics:
        axes.flat[0].legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path, dpi=120)


def _cell(frame: pd.DataFrame, strategy: str, split: str, metric: str) -> str:
    hit = frame[(frame.strategy == strategy) & (frame.split == split) & (frame.metric == metric)]
    if hit.empty:
        return "–"
    mean, half = float(hit["mean"].iloc[0]), float(hit["ci95"].iloc[0])
    return f"{mean:.3f}" if not np.isfinite(half) else f"{mean:.3f} ± {half:.3f}"


def compare_markdown(summary: pd.DataFrame, metrics: Sequence[str], strategies: Sequence[str]) -> str:
    """One row per strategy; columns ``<split> <metric>`` (mean ± 95 % t-interval half-width), then train time."""
    splits = [s for s in SPLITS if (summary.split == s).any()]
    cols = [(s, m) for s in splits for m in metrics if ((summary.split == s) & (summary.metric == m)).any()]
    n = int(summary["n"].max()) if len(summary) else 0
    header = ["strategy", *(f"{s.upper()} {m}" for s, m in cols), "train s"]
    rows = [
        [name, *(_cell(summary, name, s, m) for s, m in cols), _cell(summary, name, "train", "train_seconds")]
        for name in strategies
    ]
    lines = [f"Mean ± 95 % t-interval half-width over {n} seeds.", "", *markdown_table(header, rows)]
    return "\n".join(lines) + "\n"
