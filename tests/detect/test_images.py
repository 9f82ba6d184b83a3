"""Per-image verdicts: one row per image with its captions' counts, worst type, top score and verdict."""

import numpy as np
import pandas as pd
import pytest

from misalignlab.detect.base import DetectionResult
from misalignlab.detect.explain import one_hot
from misalignlab.detect.images import IMAGE_COLUMNS, image_summary, image_table
from misalignlab.detect.pipeline import summarise
from misalignlab.kinds import KINDS

# image a: 5 captions, one wrong; b: 3 captions all misaligned; c: 2 aligned; d: one unrelated caption alone
KEYS = ["a", "b", "a", "c", "a", "b", "a", "c", "b", "a", "d"]
TYPES = ["aligned", "incomplete", "wrong", "aligned", "aligned", "unrelated", "aligned", "aligned", "wrong", "aligned", "unrelated"]  # fmt: skip
SCORES = [0.1, 0.6, 0.9, 0.2, 0.05, 0.99, 0.3, 0.4, 0.7, 0.2, 0.8]


def _table() -> pd.DataFrame:
    return pd.DataFrame({"id": [f"p{i}" for i in range(len(KEYS))], "type": TYPES, "score": SCORES})


def test_one_row_per_image_with_its_verdict():
    images = image_table(_table(), KEYS)
    assert tuple(images.columns) == IMAGE_COLUMNS
    got = images.set_index("image_key")
    assert list(got.index) == ["a", "b", "c", "d"]  # in order of first appearance
    assert got["n_captions"].tolist() == [5, 3, 2, 1]
    assert got["n_misaligned"].tolist() == [1, 3, 0, 1]
    np.testing.assert_allclose(got["share_misaligned"], [0.2, 1.0, 0.0, 1.0])
    assert got["worst_type"].tolist() == ["wrong", "unrelated", "aligned", "unrelated"]
    np.testing.assert_allclose(got["max_score"], [0.9, 0.99, 0.4, 0.8])
    # one wrong caption among five: relabel it, keep the image; no caption vouching for it: the image is suspect
    assert got["verdict"].tolist() == [
        "some captions misaligned",
        "all captions misaligned",
        "ok",
        "all captions misaligned",
    ]


def test_image_counts_in_the_summary():
    summary = image_summary(image_table(_table(), KEYS))
    assert summary == {
        "count": 4,
        "captions_per_image": {"min": 1, "median": 2.5, "max": 5},
        "verdicts": {"ok": 1, "some captions misaligned": 1, "all captions misaligned": 2},
    }
    with pytest.raises(ValueError, match="10 image keys for 11 pairs"):
        image_table(_table(), KEYS[1:])


def test_summary_without_image_keys_counts_one_image_per_pair():
    table = _table().assign(quarantine=lambda t: t["type"] != "aligned")
    probs = one_hot(table["type"].to_numpy())
    table = table.assign(**{f"p_{k}": probs[:, j] for j, k in enumerate(KINDS)})
    combined = DetectionResult("combined", table["id"].to_numpy(), np.asarray(SCORES, np.float32))
    images = summarise(table, None, {"combined": combined})["images"]
    assert images["count"] == 11 and images["captions_per_image"] == {"min": 1, "median": 1.0, "max": 1}
    assert images["verdicts"] == {"ok": 6, "some captions misaligned": 0, "all captions misaligned": 5}
