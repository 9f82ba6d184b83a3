"""Detection metrics: pure functions of scores, types and ground truth, returning flat dicts.

Keys are schematic: ``detect/<detector>/auroc``, ``detect/<detector>/auprc``,
``detect/<detector>/precision_at_rate`` (precision among the top ``rate · N`` pairs, ``rate`` =
the true noise rate), ``type/<kind>/f1`` and ``type/macro_f1``. AUROC, AUPRC (average precision), F1
and confusion counts are scikit-learn's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from misalignlab.kinds import KINDS, MISALIGNED


def auroc(score: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (scikit-learn); NaN if one class is absent."""
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return float("nan")
    return float(roc_auc_score(positive, np.asarray(score, dtype=np.float64)))


def auprc(score: np.ndarray, positive: np.ndarray) -> float:
    """Average precision (scikit-learn's step-wise area under the precision–recall curve); NaN without positives."""
    positive = np.asarray(positive, dtype=bool)
    if not positive.any():
        return float("nan")
    return float(average_precision_score(positive, np.asarray(score, dtype=np.float64)))


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


def kind_aurocs(name: str, score: np.ndarray, true_kind: Sequence[str] | np.ndarray) -> dict[str, float]:
    """``detect/<name>/auroc_<kind>``: AUROC of each misaligned kind against the aligned pairs alone."""
    true_kind = np.asarray(true_kind).astype(str)
    score = np.asarray(score, dtype=np.float64)
    out = {}
    for k in MISALIGNED:
        sel = (true_kind == k) | (true_kind == "aligned")
        out[f"detect/{name}/auroc_{k}"] = auroc(score[sel], true_kind[sel] == k)
    return out


def type_metrics(pred: Sequence[str] | np.ndarray, true: Sequence[str] | np.ndarray) -> dict[str, float]:
    """Per-kind precision/recall/F1 and macro-F1 over the kinds present in ``true``; confusion counts.

    Keys ``type/<kind>/{precision, recall, f1}``, ``type/macro_f1``, ``type/accuracy`` and
    ``type/confusion/<true>-><pred>``. Recall and F1 are NaN for a kind absent from ``true``.
    """
    pred, true = np.asarray(pred).astype(str), np.asarray(true).astype(str)
    prec, rec, f1, support = precision_recall_fscore_support(true, pred, labels=list(KINDS), zero_division=0)
    present = support > 0
    out: dict[str, float] = {}
    for k, p, r, f, here in zip(KINDS, prec, rec, f1, present, strict=True):
        out |= {f"type/{k}/precision": float(p), f"type/{k}/recall": float(r) if here else float("nan")}
        out[f"type/{k}/f1"] = float(f) if here else float("nan")
    confusion = confusion_matrix(true, pred, labels=list(KINDS)) if len(true) else np.zeros((4, 4), int)
    out |= {
        f"type/confusion/{k}->{j}": float(confusion[a, b]) for a, k in enumerate(KINDS) for b, j in enumerate(KINDS)
    }
    out["type/macro_f1"] = float(f1[present].mean()) if present.any() else float("nan")
    out["type/accuracy"] = float(accuracy_score(true, pred)) if len(true) else float("nan")
    return out
