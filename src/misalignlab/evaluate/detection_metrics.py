"""Detection metrics: pure functions of scores, types and ground truth, returning flat dicts.

Keys are schematic: ``detect/<detector>/auroc``, ``detect/<detector>/auprc``,
``detect/<detector>/precision_at_rate`` (precision among the top ``rate · N`` pairs, ``rate`` =
the true noise rate), ``type/<kind>/f1`` and ``type/macro_f1``. AUROC counts ties as one half;
AUPRC is average precision (the step-wise area, as in scikit-learn). Wilson intervals are 95 %.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from misalignlab.kinds import KINDS


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann–Whitney U with mid-ranks); NaN if one class is absent."""
    score, positive = np.asarray(score, dtype=np.float64), np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score), dtype=np.float64)
    sorted_s = score[order]
    # mid-ranks for ties: every run of equal scores gets the mean of its positions (1-based)
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], len(score)]
    mid = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mid, ends - starts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def auprc(score: np.ndarray, positive: np.ndarray) -> float:
    """Average precision: mean of the precision at the rank of each positive (ties broken pessimistically)."""
    score, positive = np.asarray(score, dtype=np.float64), np.asarray(positive, dtype=bool)
    if not positive.any():
        return float("nan")
    order = np.lexsort((positive, -score))  # descending score; among ties negatives first
    hits = positive[order]
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].mean())


def precision_at_rate(score: np.ndarray, positive: np.ndarray, rate: float | None = None) -> float:
    """Precision among the ``round(rate · N)`` highest scores (``rate`` defaults to the true rate)."""
    positive = np.asarray(positive, dtype=bool)
    rate = positive.mean() if rate is None else rate
    k = max(int(round(rate * len(positive))), 1)
    top = np.argsort(-np.asarray(score, dtype=np.float64), kind="stable")[:k]
    return float(positive[top].mean())


def detection_metrics(name: str, score: np.ndarray, true_kind: Sequence[str] | np.ndarray) -> dict[str, float]:
    """``detect/<name>/{auroc, auprc, precision_at_rate, noise_rate}`` with positives = non-aligned pairs."""
    positive = np.asarray(true_kind) != "aligned"
    return {
        f"detect/{name}/auroc": auroc(score, positive),
        f"detect/{name}/auprc": auprc(score, positive),
        f"detect/{name}/precision_at_rate": precision_at_rate(score, positive),
        f"detect/{name}/noise_rate": float(positive.mean()),
    }


def type_metrics(pred: Sequence[str] | np.ndarray, true: Sequence[str] | np.ndarray) -> dict[str, float]:
    """Per-kind precision/recall/F1 and macro-F1 over the kinds present in ``true``; confusion counts.

    Keys ``type/<kind>/{precision, recall, f1}``, ``type/macro_f1``, ``type/accuracy`` and
    ``type/confusion/<true>-><pred>``.
    """
    pred, true = np.asarray(pred).astype(str), np.asarray(true).astype(str)
    out: dict[str, float] = {}
    f1s = []
    for k in KINDS:
        tp = float(((pred == k) & (true == k)).sum())
        p_den, r_den = float((pred == k).sum()), float((true == k).sum())
        prec = tp / p_den if p_den else 0.0
        rec = tp / r_den if r_den else float("nan")
        f1 = 2 * prec * rec / (prec + rec) if r_den and (prec + rec) > 0 else (0.0 if r_den else float("nan"))
        out |= {f"type/{k}/precision": prec, f"type/{k}/recall": rec, f"type/{k}/f1": f1}
        if r_den:
            f1s.append(f1)
        for j in KINDS:
            out[f"type/confusion/{k}->{j}"] = float(((true == k) & (pred == j)).sum())
    out["type/macro_f1"] = float(np.mean(f1s)) if f1s else float("nan")
    out["type/accuracy"] = float((pred == true).mean()) if len(true) else float("nan")
    return out
