"""Per-image verdicts where several captions describe one image (COCO, Flickr30k: about five each).

Pairs sharing an image key are the captions of one image. :func:`image_table` gives one row per
image: how many captions it has, how many were typed non-aligned and their share, the worst type
among them (unrelated > wrong > incomplete > aligned, the precedence of the typing), the highest
combined score and a verdict:

- ``ok``: no caption typed non-aligned;
- ``some captions misaligned``: some, not all: the image is described well by its other captions,
  so the fix is to relabel or drop those captions, not the image;
- ``all captions misaligned``: every caption typed non-aligned: no caption vouches for the image,
  so the image itself is suspect (a wrong file behind the key, or annotations of another image).

An image with one caption is ``ok`` or ``all captions misaligned``. Pure functions of the pair table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from misalignlab.kinds import KINDS

OK, SOME, ALL = "ok", "some captions misaligned", "all captions misaligned"
VERDICTS = (OK, SOME, ALL)
IMAGE_COLUMNS = ("image_key", "n_captions", "n_misaligned", "share_misaligned", "worst_type", "max_score", "verdict")


def image_table(table: pd.DataFrame, image_keys: Sequence[str] | np.ndarray) -> pd.DataFrame:
    """One row per image key (in order of first appearance) of a pair table with ``type`` and ``score``.

    Parameters
    ----------
    table : DataFrame
        The pair table (:func:`~misalignlab.detect.pipeline.pair_table`), one row per pair.
    image_keys : sequence of str
        (N,) the image of every row; rows sharing a key are captions of one image.

    Returns
    -------
    DataFrame
        Columns :data:`IMAGE_COLUMNS` (see the module docstring for the verdict).
    """
    keys = np.asarray(image_keys, dtype=str)
    if len(keys) != len(table):
        raise ValueError(f"{len(keys)} image keys for {len(table)} pairs")
    severity = {k: i for i, k in enumerate(KINDS)}  # KINDS runs aligned, incomplete, wrong, unrelated
    pairs = pd.DataFrame(
        {
            "image_key": keys,
            "misaligned": table["type"].to_numpy() != "aligned",
            "severity": table["type"].map(severity).to_numpy(),
            "score": table["score"].to_numpy(float),
        }
    )
    grouped = pairs.groupby("image_key", sort=False)
    out = grouped.agg(
        n_captions=("misaligned", "size"),
        n_misaligned=("misaligned", "sum"),
        severity=("severity", "max"),
        max_score=("score", "max"),
    ).reset_index()
    out["n_misaligned"] = out["n_misaligned"].astype(np.int64)
    out["share_misaligned"] = out["n_misaligned"] / out["n_captions"]
    out["worst_type"] = np.asarray(KINDS, dtype=object)[out.pop("severity").to_numpy(np.int64)]
    none, every = out["n_misaligned"] == 0, out["n_misaligned"] == out["n_captions"]
    out["verdict"] = np.select([none, every], [OK, ALL], default=SOME)
    return out[list(IMAGE_COLUMNS)]


def image_summary(images: pd.DataFrame) -> dict[str, Any]:
    """Flat counts of an :func:`image_table`: images, captions per image (min, median, max), images per verdict."""
    n = images["n_captions"].to_numpy()
    return {
        "count": len(images),
        "captions_per_image": {
            "min": int(n.min()) if len(n) else 0,
            "median": float(np.median(n)) if len(n) else 0.0,
            "max": int(n.max()) if len(n) else 0,
        },
        "verdicts": {v: int((images["verdict"] == v).sum()) for v in VERDICTS},
    }
