"""Detection metrics: agreement with scikit-learn, exact small cases, Wilson intervals."""

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from misalignlab.evaluate.detection_metrics import (
    auprc,
    auroc,
    detection_metrics,
    precision_at_rate,
    type_metrics,
)
from misalignlab.stats import wilson_interval


def test_auroc_and_auprc_match_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    s = np.round(rng.random(500) + 0.5 * y, 1)  # many ties
    assert auroc(s, y) == pytest.approx(roc_auc_score(y, s))
    assert auprc(s, y) == pytest.approx(average_precision_score(y, s), abs=0.03)
    assert auprc(np.arange(10.0), np.arange(10) >= 7) == 1.0


def test_precision_at_rate_and_flat_keys():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=bool)
    s = np.array([0.9, 0.1, 0.8, 0, 0, 0, 0, 0, 0, 0])
    assert precision_at_rate(s, y) == 0.5
    m = detection_metrics("x", s, np.where(y, "wrong", "aligned"))
    assert set(m) == {"detect/x/auroc", "detect/x/auprc", "detect/x/precision_at_rate", "detect/x/noise_rate"}


def test_type_metrics_exact():
    true = ["aligned", "wrong", "wrong", "incomplete"]
    pred = ["aligned", "wrong", "unrelated", "incomplete"]
    m = type_metrics(pred, true)
    assert m["type/wrong/precision"] == 1.0 and m["type/wrong/recall"] == 0.5
    assert m["type/wrong/f1"] == pytest.approx(2 / 3)
    assert m["type/macro_f1"] == pytest.approx((1 + 2 / 3 + 1) / 3)  # unrelated absent from truth
    assert m["type/confusion/wrong->unrelated"] == 1.0


def test_wilson_interval():
    lo, hi = wilson_interval(10, 100)
    assert lo == pytest.approx(0.0552, abs=1e-3) and hi == pytest.approx(0.1744, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)
