"""Every detector ranks planted misaligned pairs above clean ones; schema properties; registry."""

import dataclasses

import numpy as np
import pytest

from misalignlab.detect import DETECTORS, DetectionResult, Detector
from misalignlab.detect.base import PairView, cosine_rows, parse_detector_spec
from misalignlab.evaluate.detection_metrics import auroc

from .conftest import one_hot_images, planted_view, shared_image_view


@pytest.mark.parametrize("name", ["similarity", "neighbourhood", "pair_loss", "combined"])
def test_detector_ranks_swapped_captions_first(planted, name):
    view, bad = planted
    result = DETECTORS.get(name)().detect(view)
    assert isinstance(result, DetectionResult) and result.detector == name
    assert result.score.shape == (len(view),)
    assert np.all((result.score >= 0) & (result.score <= 1))
    assert auroc(result.score, bad) > 0.9


@pytest.mark.parametrize("name", ["similarity", "pair_loss"])
def test_scores_permute_with_pairs(name):
    view, _ = planted_view(n=200, n_bad=20)
    perm = np.random.default_rng(1).permutation(len(view))
    # keep each fold's members together so the sampled negatives see the same pools
    permuted = PairView(view.pair_id[perm], view.image_emb[perm], view.text_emb[perm], view.fold[perm])
    a = DETECTORS.get(name)(**({"negatives": 99} if name == "pair_loss" else {})).detect(view)
    b = DETECTORS.get(name)(**({"negatives": 99} if name == "pair_loss" else {})).detect(permuted)
    if name == "similarity":
        np.testing.assert_allclose(a.score[perm], b.score, atol=1e-6)
    else:  # sampled negatives differ, the ranking must not
        assert np.corrcoef(a.score[perm], b.score)[0, 1] > 0.9


def test_neighbourhood_stays_within_folds_and_pool():
    view, bad = planted_view(n=600, n_bad=60)
    res = DETECTORS.get("neighbourhood")(k=5, pool=100).detect(view)  # sampled pool smaller than a fold
    assert auroc(res.score, bad) > 0.85


def test_neighbourhood_ignores_the_other_captions_of_an_image():
    view, bad = shared_image_view()  # 5 identical captions per image; 3 images whose captions describe another cluster
    detector = DETECTORS.get("neighbourhood")(k=4)
    score = detector.detect(view).score
    # a bad caption's neighbours (other images of its cluster, other captions of the cluster it names) all
    # disagree with it: s = ½·cos(image, caption) + ½·0, so score = (1 − ½ cos) / 2, about ½
    expected = (1 - 0.5 * cosine_rows(view.image_emb, view.text_emb)) / 2
    np.testing.assert_allclose(score[bad], expected[bad], atol=0.03)
    assert score[bad].min() > 0.45 and score[~bad].max() < 0.2 and auroc(score, bad) == 1.0
    # without the image keys its neighbours are its own image's captions, which agree: score about ¼
    blind = detector.detect(dataclasses.replace(view, image_key=None)).score
    assert blind[bad].max() < 0.27


def test_neighbourhood_scores_an_image_alone_in_its_fold_by_the_direct_cosine():
    view, _ = shared_image_view(n_images=2, n_clusters=1, n_bad=0)  # one image per fold: no neighbour at all
    assert view.fold.tolist() == [0] * 5 + [1] * 5
    score = DETECTORS.get("neighbourhood")().detect(view).score
    np.testing.assert_allclose(score, (1 - cosine_rows(view.image_emb, view.text_emb)) / 2, atol=1e-6)


def test_pair_loss_takes_no_caption_of_the_image_as_its_negative():
    view = one_hot_images()  # every caption matches its own image exactly, and no other image
    detector = DETECTORS.get("pair_loss")()
    assert detector.detect(view).score.max() < 1e-3  # the only rivals are other images' captions, at cosine 0
    # as negatives, the image's other captions tie with the right one: P(right partner) = 1/5, or 1/4 where the
    # 99 negatives drawn from the fold's 100 pairs leave out one of them
    blind = detector.detect(dataclasses.replace(view, image_key=None)).score
    near = lambda x: np.abs(blind - x) < 1e-3  # noqa: E731
    assert (near(0.8) | near(0.75)).all() and near(0.8).mean() > 0.9


def test_registry_is_scoped_and_lists_names():
    class Fake(Detector):
        name = "fake"

        def detect(self, view):
            return DetectionResult(self.name, view.pair_id, np.zeros(len(view), dtype=np.float32))

    with DETECTORS.scoped():
        DETECTORS.register("fake")(Fake)
        assert "fake" in DETECTORS
    assert "fake" not in DETECTORS
    with pytest.raises(ValueError, match="known: combined"):
        DETECTORS.get("nope")


def test_detector_spec_parsing_and_requirements(planted):
    assert parse_detector_spec(["neighbourhood:k=7,pool=50", "similarity"]) == {
        "neighbourhood": {"k": 7, "pool": 50},
        "similarity": {},
    }
    with pytest.raises(ValueError, match="unknown detector"):
        parse_detector_spec(["cosine"])
    with pytest.raises(ValueError, match="'neighbourhood:k': detector option 'k' is not of the form key=value"):
        parse_detector_spec(["neighbourhood:k"])
