"""Tables and a heatmap of per-factor probe scores for the image–text lab, in the paper's layout.

Input is the long table of :func:`misalignlab.workflows.imagetext_lab.score_rows` (columns setting, target,
role, probe, metric, modality, score). Discrete factors are scored with Matthews' correlation,
continuous ones with R²; every row label says which. The Markdown table puts the paper's MPI3D
numbers (§7, MLP probe, mean of 3 seeds) beside ours where a level has a paper counterpart:
``pos_x`` and ``pos_y`` are compared with camera height, the image-only factors with the
horizontal / vertical axis (0.00 in every setting). This module reads no run files.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from misalignlab.report.figures import save_png  # noqa: E402
from misalignlab.report.tables import markdown_table  # noqa: E402

# paper §7, MLP probe, MCC, settings 1–5: (family, modality) → paper factor → values
PAPER_MPI3D: dict[tuple[str, str], dict[str, tuple[float, ...]]] = {
    ("selection", "image"): {
        "colour": (1.00, 1.00, 1.00, 1.00, 1.00),
        "shape": (0.04, 1.00, 0.98, 0.81, 0.91),
        "size": (0.01, 0.02, 1.00, 0.86, 0.93),
        "cam": (0.02, 0.00, 0.04, 1.00, 1.00),
        "back": (0.01, 0.01, 0.01, 0.00, 1.00),
    },
    ("perturbation", "image"): {
        "colour": (0.99, 1.00, 1.00, 1.00, 1.00),
        "shape": (0.90, 0.77, 0.89, 1.00, 0.03),
        "size": (0.94, 0.87, 0.95, 0.00, 0.01),
        "cam": (1.00, 1.00, 0.02, 0.00, 0.02),
        "back": (1.00, 0.00, 0.01, 0.00, 0.01),
    },
    ("selection", "text"): {
        "colour": (1.00, 1.00, 1.00, 1.00, 1.00),
        "shape": (0.00, 1.00, 0.98, 0.82, 0.93),
        "size": (0.00, 0.00, 1.00, 0.89, 0.95),
        "cam": (0.00, 0.00, 0.00, 1.00, 1.00),
        "back": (0.00, 0.00, 0.00, 0.00, 1.00),
    },
    ("perturbation", "text"): {
        "colour": (0.99, 1.00, 1.00, 1.00, 1.00),
        "shape": (0.92, 0.77, 0.90, 1.00, 0.00),
        "size": (0.96, 0.89, 0.96, 0.00, 0.00),
        "cam": (1.00, 1.00, 0.00, 0.00, 0.00),
        "back": (1.00, 0.00, 0.01, 0.00, 0.00),
    },
}
PAPER_NAME = {
    "colour": "colour",
    "shape": "shape",
    "size": "size",
    "pos_x": "cam",
    "pos_y": "cam",
    "background": "back",
    "rotation": "axis",
    "lighting": "axis",
    "texture": "axis",
}
METRIC_LABEL = {"mcc": "MCC", "r2": "R²"}
CODE = {"image": "ẑx", "text": "ẑt"}


def paper_value(setting: str, factor: str, modality: str) -> float | None:
    """The paper's MLP-probe MCC for our factor in setting ``selection-k``/``perturbation-k``, if any."""
    family, _, k = setting.rpartition("-")
    name = PAPER_NAME.get(factor)
    if (family, modality) not in PAPER_MPI3D or name is None or not k.isdigit():
        return None
    return 0.0 if name == "axis" else PAPER_MPI3D[(family, modality)][name][int(k) - 1]


def wide_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One probe's scores: index (setting, modality), one column per factor (first-seen order)."""
    table = rows.pivot_table(index=["setting", "modality"], columns="target", values="score", sort=False)
    return table[list(dict.fromkeys(rows["target"]))]


def _fmt(v: float | None) -> str:
    return "–" if v is None or pd.isna(v) else f"{v:.2f}"


def level_markdown(rows: pd.DataFrame, title: str, probe: str) -> str:
    """Factors down, one cell per code with one value per setting (like the paper), paper MLP values beside."""
    settings = list(dict.fromkeys(rows["setting"]))
    modalities = [m for m in ("image", "text") if m in set(rows["modality"])]
    lines = [f"### {title}", "", f"Settings: {', '.join(settings)}. Cells list one value per setting, in order.", ""]
    head = ["factor", "metric", "role"]
    for m in modalities:
        head += [f"ours {CODE[m]}", f"paper {CODE[m]} (MLP)"]
    body = []
    for factor in dict.fromkeys(rows["target"]):
        sub = rows[rows["target"] == factor]
        roles = [sub[sub["setting"] == s]["role"].iloc[0] for s in settings]
        cells = [factor, METRIC_LABEL[sub["metric"].iloc[0]], " ".join(r[:4] for r in roles)]
        for m in modalities:
            score = sub[sub["modality"] == m].set_index("setting")["score"]
            cells.append(" ".join(_fmt(score.get(s)) for s in settings))
            cells.append(" ".join(_fmt(paper_value(s, factor, m)) for s in settings))
        body.append(cells)
    lines += [
        *markdown_table(head, body),
        "",
        f"Role per setting: stat(ed), pert(urbed), omit(ted), imag(e-only), text(-only). Probe: {probe}.",
    ]
    return "\n".join(lines) + "\n"


def score_heatmap(rows: pd.DataFrame, path: Path, title: str) -> Path:
    """Factors down, settings across, one panel per code; every cell annotated (MCC or R² by row)."""
    modalities = [m for m in ("image", "text") if m in set(rows["modality"])]
    settings = list(dict.fromkeys(rows["setting"]))
    metric = rows.drop_duplicates("target").set_index("target")["metric"]
    targets = list(metric.index)
    labels = [f"{t} ({METRIC_LABEL[metric[t]]})" for t in targets]
    fig, axes = plt.subplots(
        1, len(modalities), figsize=(2.2 + 0.7 * len(settings) * len(modalities), 4.6), squeeze=False
    )
    im = None
    for ax, modality in zip(axes[0], modalities, strict=True):
        sub = rows[rows["modality"] == modality]
        grid = sub.pivot_table(index="target", columns="setting", values="score").reindex(
            index=targets, columns=settings
        )
        im = ax.imshow(grid.to_numpy(dtype=float), vmin=0, vmax=1, cmap="viridis", aspect="auto")
        ax.set_xticks(range(len(settings)), settings, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(targets)), labels if ax is axes[0][0] else [], fontsize=8)  # rows shared
        for i in range(len(targets)):
            for j in range(len(settings)):
                v = grid.iat[i, j]
                if pd.notna(v):
                    ax.text(
                        j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="black" if v > 0.6 else "white"
                    )
        ax.set_title(f"{title}: from {CODE[modality]}", fontsize=9)
    if im is not None:
        fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8)
    return save_png(fig, path, dpi=130)
