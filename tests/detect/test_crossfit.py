"""Cross-fitting never scores a pair with a model that saw it; the cache is reused."""

import dataclasses

import numpy as np
import pytest

from misalignlab.detect.backends import BACKENDS, EmbedCfg, EmbeddingBackend
from misalignlab.detect.backends import scratch as S
from misalignlab.detect.crossfit import crossfit_embeddings, fold_assignment
from misalignlab.models.pair_model import ModelCfg
from misalignlab.train.settings import TrainCfg


def test_fold_assignment_is_seeded_balanced_and_order_free():
    ids = [f"img_{i}" for i in range(2000)]
    folds = fold_assignment(ids, 3, seed=1)
    assert set(folds.tolist()) == {0, 1, 2}
    assert np.bincount(folds).min() > 600
    rev = fold_assignment(ids[::-1], 3, seed=1)
    assert (rev[::-1] == folds).all()
    assert (fold_assignment(ids, 3, seed=2) != folds).any()


def test_fold_assignment_keeps_the_captions_of_an_image_together():
    keys = [f"img_{j}" for j in range(400) for _ in range(5)]  # 5 captions per image
    folds = fold_assignment(keys, 3, seed=1)
    per_image = folds.reshape(400, 5)
    assert (per_image == per_image[:, :1]).all()  # one fold per image
    assert (per_image[:, 0] == fold_assignment([f"img_{j}" for j in range(400)], 3, seed=1)).all()
    assert np.bincount(per_image[:, 0]).min() > 100  # images, not captions, are balanced over folds


class Recorder(EmbeddingBackend):
    """Fake backend: a fold 'model' is the set of captions it trained on; codes flag leaks."""

    name = "recorder"
    seen: dict[int, set[str]] = {}

    def __init__(self, cfg, image_size):
        self.fits = 0

    def fit_fold(self, fold, images, captions):
        Recorder.seen[fold] = set(captions)
        self.fits += 1

    def embed_images(self, fold, images):
        return np.ones((len(images), 2), dtype=np.float32)

    def embed_texts(self, fold, texts):
        leaked = np.array([t in Recorder.seen[fold] for t in texts], dtype=np.float32)
        return np.stack([1.0 - leaked, leaked], axis=1) + 1e-3

    def save(self, folder):
        pass

    def load(self, folder):
        return False


def test_crossfit_scores_every_pair_with_a_model_that_never_saw_it():
    ids = [f"p{i}" for i in range(300)]
    captions = [f"caption number {i}" for i in ids]
    images = np.zeros((300, 8, 8, 3), dtype=np.uint8)
    with BACKENDS.scoped():
        BACKENDS.register("recorder")(Recorder)
        emb = crossfit_embeddings(ids, images, captions, EmbedCfg(backend="recorder", folds=3))
    assert (emb.fold == fold_assignment(ids, 3, 0)).all()
    for i, cap in enumerate(captions):
        assert cap not in Recorder.seen[int(emb.fold[i])]  # the scoring model did not train on it
        assert sum(cap in Recorder.seen[k] for k in range(3)) == 2  # the other folds' models did
    assert (emb.text_emb[:, 1] < 0.01).all()  # no code came from a model that saw its caption


def test_crossfit_never_scores_a_pair_with_a_model_that_saw_its_image():
    ids = [f"p{i}" for i in range(300)]
    keys = [f"img{i // 5}" for i in range(300)]  # 60 images, 5 captions each
    captions = [f"caption number {i}" for i in ids]
    images = np.zeros((300, 8, 8, 3), dtype=np.uint8)
    with BACKENDS.scoped():
        BACKENDS.register("recorder")(Recorder)
        emb = crossfit_embeddings(ids, images, captions, EmbedCfg(backend="recorder", folds=3), image_keys=keys)
        with pytest.raises(ValueError, match="299 image keys for 300 pairs"):
            crossfit_embeddings(ids, images, captions, EmbedCfg(backend="recorder", folds=3), image_keys=keys[1:])
    assert (emb.fold == fold_assignment(keys, 3, 0)).all()
    for i in range(300):
        siblings = captions[5 * (i // 5) : 5 * (i // 5) + 5]  # the captions of pair i's image
        assert not any(c in Recorder.seen[int(emb.fold[i])] for c in siblings)  # its model saw none of them


def test_scratch_cache_hit_skips_training(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (48, 16, 16, 3), dtype=np.uint8)
    captions = [f"a {c} thing" for c in rng.choice(["red", "blue", "green"], 48)]
    ids = [str(i) for i in range(48)]
    cfg = EmbedCfg(train=TrainCfg(steps=2, batch_size=16), model=ModelCfg(code_dim=4, max_len=6), reweight_steps=0)
    first = crossfit_embeddings(ids, images, captions, cfg, tmp_path)
    assert not first.cache_hit and (first.folder / "embeddings.npz").is_file()
    calls = []
    original = S.ScratchBackend.fit_fold
    monkeypatch.setattr(S.ScratchBackend, "fit_fold", lambda self, *a: calls.append(a) or original(self, *a))
    second = crossfit_embeddings(ids, images, captions, cfg, tmp_path)
    assert second.cache_hit and not calls
    np.testing.assert_array_equal(first.image_emb, second.image_emb)
    np.testing.assert_allclose(first.embed_texts(0, ["a red thing"]), second.embed_texts(0, ["a red thing"]), atol=1e-6)
    with np.load(first.folder / "embeddings.npz", allow_pickle=False) as npz:
        assert npz["ids"].dtype.kind == "U"
    changed = crossfit_embeddings(ids, images, captions[:-1] + ["a pink thing"], cfg, tmp_path)
    assert not changed.cache_hit and len(calls) == 2  # different captions → a new key, retrained
    same = crossfit_embeddings(ids, images, captions, cfg, tmp_path, image_keys=ids)  # one caption per image
    assert same.cache_hit and same.folder == first.folder and len(calls) == 2  # the key of a cache made without keys
    shared = crossfit_embeddings(ids, images, captions, cfg, tmp_path, image_keys=[str(int(i) // 4) for i in ids])
    assert not shared.cache_hit and shared.folder != first.folder  # other folds → a new key
    assert (shared.fold.reshape(12, 4) == shared.fold.reshape(12, 4)[:, :1]).all()


def test_embed_cfg_rejects_one_fold():
    with pytest.raises(ValueError, match="folds"):
        EmbedCfg(folds=1)


def test_small_loss_reweighting_trains_twice_per_fold(monkeypatch):
    from misalignlab.detect.backends import scratch as imagetext  # where the backend looks the trainer up

    seen = []
    original = imagetext.train_pairs

    def spy(images, captions, cfg, weights=None, **kw):
        seen.append((cfg.train.steps, None if weights is None else weights.copy()))
        return original(images, captions, cfg, weights=weights, **kw)

    monkeypatch.setattr(imagetext, "train_pairs", spy)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (40, 16, 16, 3), dtype=np.uint8)
    captions = [f"a {c} thing" for c in rng.choice(["red", "blue"], 40)]
    cfg = EmbedCfg(train=TrainCfg(steps=3, batch_size=8), model=ModelCfg(code_dim=4, max_len=6), reweight_steps=2)
    crossfit_embeddings([str(i) for i in range(40)], images, captions, cfg)
    assert [s for s, _ in seen] == [2, 3, 2, 3]
    assert seen[0][1] is None and seen[1][1] is not None
    assert ((seen[1][1] >= 0) & (seen[1][1] <= 1)).all()


def test_too_few_pairs_to_cross_fit_is_a_clear_error():
    images = np.zeros((2, 32, 32, 3), dtype=np.uint8)  # two pairs, two folds: a fold model trains on at most one
    with pytest.raises(ValueError, match="too few pairs to cross-fit: 2 pairs in 2 folds"):
        crossfit_embeddings(["a", "b"], images, ["x", "y"], dataclasses.replace(EmbedCfg(backend="scratch"), folds=2))
