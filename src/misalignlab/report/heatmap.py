"""Heatmaps of probe R² laid out like the paper's figures: targets down, settings across,
one panel per code (ẑ_x, ẑ_t), every cell annotated."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from misalignlab.report.figures import save_png  # noqa: E402


def r2_heatmap(table: pd.DataFrame, path: Path, title: str) -> Path:
    """``table``: columns setting, modality, target, r2 (already averaged over seeds)."""
    modalities = [m for m in ("image", "text") if m in set(table["modality"])]
    settings = list(dict.fromkeys(table["setting"]))
    targets = list(dict.fromkeys(table["target"]))
    fig, axes = plt.subplots(
        1, len(modalities), figsize=(1.0 + 0.62 * len(settings) * len(modalities), 5.2), squeeze=False
    )
    for ax, modality in zip(axes[0], modalities, strict=True):
        sub = table[table["modality"] == modality]
        grid = sub.pivot_table(index="target", columns="setting", values="r2").reindex(index=targets, columns=settings)
        im = ax.imshow(grid.to_numpy(), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(settings)), settings, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(targets)), targets, fontsize=8)
        for i in range(len(targets)):
            for j in range(len(settings)):
                v = grid.iat[i, j]
                if pd.notna(v):
                    ax.text(
                        j, i, f"{v:.2f}", ha="center", va="center", fontsize=6.5, color="black" if v > 0.6 else "white"
                    )
        ax.set_title(f"{title}: R² from ẑ_{'x' if modality == 'image' else 't'}", fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    return save_png(fig, path, dpi=130)


def loss_plot(curves: pd.DataFrame, path: Path, title: str) -> Path:
    """Loss per step for each setting (columns) of a sweep."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for col in curves.columns:
        ax.plot(curves.index, curves[col], label=str(col), linewidth=0.8)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, ncol=2)
    return save_png(fig, path, dpi=120)
