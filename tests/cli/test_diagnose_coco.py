"""``misalignlab diagnose --format coco`` on five captions per image: folds by image and a verdict per image."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from tests.workflows.export_data import coco_set, diagnose

from misalignlab.detect.crossfit import fold_assignment

pytestmark = pytest.mark.slow  # end-to-end: runs the whole command

N_IMAGES, PER_IMAGE = 24, 5


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coco")
    path, truth = coco_set(folder / "data", n=N_IMAGES, per_image=PER_IMAGE)
    return diagnose(path, folder / "out", "--format", "coco"), truth


def test_every_caption_is_a_pair_and_none_is_quarantined(run):
    out, truth = run
    pairs = pd.read_parquet(out / "pairs.parquet")
    assert sorted(pairs["id"]) == sorted(truth) and len(pairs) == N_IMAGES * PER_IMAGE
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ingest"]["quarantined"] == 0 and "duplicate_id" not in summary["ingest"]["by_reason"]
    assert (pairs.groupby("image_key")["id"].count() == PER_IMAGE).all()


def test_the_captions_of_an_image_share_its_fold(run):
    out, _ = run
    pairs = pd.read_parquet(out / "pairs.parquet")
    embed = json.loads((out / "summary.json").read_text())["config"]["embed"]
    expected = fold_assignment(pairs["image_key"].tolist(), embed["folds"], embed["seed"])
    assert (pairs["fold"].to_numpy() == expected).all()
    assert (pairs.groupby("image_key")["fold"].nunique() == 1).all() and pairs["fold"].nunique() == 2


def test_images_parquet_holds_one_verdict_per_image(run):
    out, _ = run
    pairs = pd.read_parquet(out / "pairs.parquet")
    images = pd.read_parquet(out / "images.parquet").set_index("image_key")
    assert len(images) == N_IMAGES and (images["n_captions"] == PER_IMAGE).all()
    bad = pairs.assign(bad=pairs["type"] != "aligned").groupby("image_key")
    np.testing.assert_array_equal(images["n_misaligned"], bad["bad"].sum().loc[images.index])
    np.testing.assert_allclose(images["max_score"], bad["score"].max().loc[images.index])
    n = images["n_misaligned"]
    expected = np.where(n == 0, "ok", np.where(n == PER_IMAGE, "all captions misaligned", "some captions misaligned"))
    assert (images["verdict"].to_numpy() == expected).all()
    first = pairs.drop_duplicates("image_key").set_index("image_key")["image"]
    assert (images["image"] == first.loc[images.index]).all() and images["image"].str.endswith(".png").all()
    summary = json.loads((out / "summary.json").read_text())["images"]
    assert summary["count"] == N_IMAGES and summary["captions_per_image"] == {"min": 5, "median": 5.0, "max": 5}
    assert summary["verdicts"] == images["verdict"].value_counts().reindex(summary["verdicts"], fill_value=0).to_dict()


def test_the_gallery_shows_one_card_per_image_with_all_its_captions_counted(run):
    out, _ = run
    page = (out / "gallery.html").read_text(encoding="utf-8")
    data = json.loads(re.search(r"<script type='application/json' id='gallery-data'>(.*?)</script>", page, re.S)[1])
    assert data["images"] and all(e["n"] == PER_IMAGE for e in data["images"])
    assert len({e["key"] for e in data["images"]}) == len(data["images"])
