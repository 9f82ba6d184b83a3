"""The diagnosis plots the gallery embeds: the combined score by assigned type, and the slot profile.

Both read only the pair table (``score``, ``type``, ``slot``, ``missing`` columns) and are written
as PNG under a run's ``plots/`` folder (:func:`write_gallery_plots`). Slot names come from captions;
matplotlib draws them as text, nothing is interpreted.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from misalignlab.report.figures import save_png  # noqa: E402

KIND_COLOURS = {"aligned": "#228833", "incomplete": "#ccbb44", "wrong": "#ee6677", "unrelated": "#aa3377"}
PLOT_FILES = {"score_by_type": "score_by_type.png", "slot_profile": "slot_profile.png"}


def score_by_type_plot(table: pd.DataFrame, path: Path, bins: int = 40) -> Path:
    """Histogram of the combined ``score``, one outlined histogram per assigned type (log scale when
    the types differ in size by more than 20×, as aligned pairs usually outnumber the rest)."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    edges = np.linspace(0.0, 1.0, bins + 1)
    types = [k for k in KIND_COLOURS if k in set(table["type"])] + sorted(set(table["type"]) - set(KIND_COLOURS))
    sizes = []
    for kind in types:
        score = np.clip(table.loc[table["type"] == kind, "score"].to_numpy(float), 0.0, 1.0)
        score = score[np.isfinite(score)]
        sizes.append(len(score))
        colour = KIND_COLOURS.get(kind, "#777777")
        ax.hist(score, edges, histtype="step", lw=1.6, color=colour, label=f"{kind} ({len(score)})")
        ax.hist(score, edges, histtype="stepfilled", alpha=0.15, color=colour)
    nonzero = [s for s in sizes if s]
    if nonzero and max(nonzero) > 20 * min(nonzero):
        ax.set_yscale("log")
        ax.set_ylabel("pairs (log scale)")
    else:
        ax.set_ylabel("pairs")
    ax.set_xlim(0, 1)
    ax.set_xlabel("combined score (higher = more likely misaligned)")
    ax.set_title("Combined score by assigned type")
    ax.grid(alpha=0.3)
    if types:
        ax.legend(fontsize=8, loc="best")
    else:
        ax.text(0.5, 0.5, "no pairs", ha="center", va="center", transform=ax.transAxes)
    return save_png(fig, path)


def slot_profile(table: pd.DataFrame) -> pd.DataFrame:
    """Per slot: ``wrong`` (``wrong`` pairs whose contradicted slot it is) and ``missing``
    (``incomplete`` pairs leaving it out), most frequent first. Index: slot name."""
    blank = pd.Series("", index=table.index)
    slot, gaps = table.get("slot", blank).fillna(""), table.get("missing", blank).fillna("")
    wrong = Counter(s for s in slot[table["type"] == "wrong"].astype(str) if s)
    missing: Counter[str] = Counter()
    for cell in gaps[table["type"] == "incomplete"].astype(str):
        missing.update({s.strip() for s in cell.split(",") if s.strip()})
    slots = sorted(set(wrong) | set(missing), key=lambda s: (-(wrong[s] + missing[s]), s))
    return pd.DataFrame(
        {"wrong": [wrong[s] for s in slots], "missing": [missing[s] for s in slots]},
        index=pd.Index(slots, name="slot"),
        dtype=int,
    )


def slot_profile_plot(table: pd.DataFrame, path: Path, top: int = 15) -> Path:
    """Horizontal bars per slot (the ``top`` most frequent): share of ``wrong`` pairs contradicting it and
    share of ``incomplete`` pairs missing it."""
    prof = slot_profile(table).head(top)
    n_wrong = int((table["type"] == "wrong").sum())
    n_incomplete = int((table["type"] == "incomplete").sum())
    fig, ax = plt.subplots(figsize=(6.4, 0.9 + 0.32 * max(3, len(prof))))
    y = np.arange(len(prof))
    h = 0.4
    wrong = 100 * prof["wrong"].to_numpy() / max(1, n_wrong)
    missing = 100 * prof["missing"].to_numpy() / max(1, n_incomplete)
    ax.barh(y - h / 2, wrong, h, color=KIND_COLOURS["wrong"], label=f"contradicted, of {n_wrong} wrong pairs")
    ax.barh(y + h / 2, missing, h, color=KIND_COLOURS["incomplete"], label=f"missing, of {n_incomplete} incomplete")
    ax.set_yticks(y, [str(s) for s in prof.index], fontsize=8)
    ax.invert_yaxis()  # most frequent on top
    ax.set_xlabel("% of pairs of that type")
    ax.set_title("Slot profile: which slot is wrong or missing")
    ax.grid(axis="x", alpha=0.3)
    if len(prof):
        ax.legend(fontsize=8, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no slot evidence", ha="center", va="center", transform=ax.transAxes)
    return save_png(fig, path)


def write_gallery_plots(table: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """Write both plots to ``folder`` (``score_by_type.png``, ``slot_profile.png``); name → path."""
    folder = Path(folder)
    return {
        "score_by_type": score_by_type_plot(table, folder / PLOT_FILES["score_by_type"]),
        "slot_profile": slot_profile_plot(table, folder / PLOT_FILES["slot_profile"]),
    }
