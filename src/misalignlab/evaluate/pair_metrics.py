"""Downstream metrics of image–text codes: retrieval R@K, zero-shot and linear-probe classification,
and means with t-intervals over seeds.

Every metric is a pure function of arrays returning a flat dict with schematic keys
(CLIP_benchmark-style ``image_to_text_R@1`` …, ``zeroshot/<factor>/acc1``,
``probe/<factor>/linear/acc``). Nothing here trains an image–text model or renders scenes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from misalignlab.stats import t_interval


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def recall_at_k(sim: np.ndarray, k: int) -> float:
    """Share of rows i whose true match (column i) is among the top ``k`` of row i.

    The rank counts columns *strictly* more similar than the match, so ties favour the match.
    """
    sim = np.asarray(sim, dtype=np.float64)
    if sim.ndim != 2 or sim.shape[0] != sim.shape[1] or k < 1:
        raise ValueError(f"need a square similarity matrix and k >= 1, got {sim.shape}, k={k}")
    rank = (sim > np.diag(sim)[:, None]).sum(axis=1)  # (N,)
    return float(np.mean(rank < k))


def retrieval_metrics(img: np.ndarray, txt: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Image↔text retrieval of N pairs by cosine similarity: R@k both ways and ``rsum`` (percent)."""
    sim = _unit(img) @ _unit(txt).T  # (N, N)
    out = {f"image_to_text_R@{k}": recall_at_k(sim, k) for k in ks}
    out |= {f"text_to_image_R@{k}": recall_at_k(sim.T, k) for k in ks}
    return out | {"rsum": 100.0 * sum(out.values())}


def zero_shot_metrics(img: np.ndarray, class_txt: np.ndarray, labels: np.ndarray, name: str) -> dict[str, float]:
    """Classify each image as the class whose prompt code is most similar (cosine).

    ``class_txt`` (C, D) holds one prompt code per class value (code k ↔ row k); ``labels`` (N,)
    are the true codes. Returns ``zeroshot/<name>/acc1`` and ``…/mean_per_class_recall``.
    """
    pred = np.argmax(_unit(img) @ _unit(class_txt).T, axis=1)  # (N,)
    labels = np.asarray(labels)
    recalls = [np.mean(pred[labels == c] == c) for c in np.unique(labels)]
    return {
        f"zeroshot/{name}/acc1": float(np.mean(pred == labels)),
        f"zeroshot/{name}/mean_per_class_recall": float(np.mean(recalls)),
    }


def summarise_seeds(rows: pd.DataFrame, by: Sequence[str], confidence: float = 0.95) -> pd.DataFrame:
    """Long rows (``by`` columns, ``metric``, ``value``; one per seed) → mean, half-width, n per group."""
    out = []
    for key, grp in rows.groupby([*by, "metric"], sort=False):
        mean, half = t_interval(grp["value"].tolist(), confidence)
        out.append((*key, mean, half, int(grp["value"].notna().sum())))
    return pd.DataFrame(out, columns=[*by, "metric", "mean", "ci95", "n"])
