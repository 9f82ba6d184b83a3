"""Cross-fitting resumes fold by fold: a run killed after some folds retrains only the others,
and ends with the codes of an uninterrupted run."""

import numpy as np

from misalignlab.detect.backends import EmbedCfg
from misalignlab.detect.backends import scratch as S
from misalignlab.detect.crossfit import crossfit_embeddings
from misalignlab.models.pair_model import ModelCfg
from misalignlab.train.settings import TrainCfg


def test_killed_crossfit_retrains_only_unfinished_folds(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (48, 16, 16, 3), dtype=np.uint8)
    captions = [f"a {c} thing" for c in rng.choice(["red", "blue", "green"], 48)]
    ids = [str(i) for i in range(48)]
    cfg = EmbedCfg(
        folds=3, train=TrainCfg(steps=2, batch_size=8), model=ModelCfg(code_dim=4, max_len=6), reweight_steps=0
    )
    full = crossfit_embeddings(ids, images, captions, cfg, tmp_path)
    parts = full.folder / "folds"
    assert sorted(p.name for p in parts.iterdir()) == ["fold0.npz", "fold1.npz", "fold2.npz"]
    # what a kill during fold 1 leaves: fold 0 finished, no complete cache
    (full.folder / "embeddings.npz").unlink()
    (parts / "fold1.npz").unlink()
    (parts / "fold2.npz").unlink()
    trained = []
    original = S.ScratchBackend.fit_fold
    monkeypatch.setattr(S.ScratchBackend, "fit_fold", lambda self, k, *a: trained.append(k) or original(self, k, *a))
    resumed = crossfit_embeddings(ids, images, captions, cfg, tmp_path)
    assert trained == [1, 2] and not resumed.cache_hit
    np.testing.assert_array_equal(resumed.image_emb, full.image_emb)
    np.testing.assert_array_equal(resumed.text_emb, full.text_emb)
    np.testing.assert_array_equal(resumed.embed_texts(0, ["a red thing"]), full.embed_texts(0, ["a red thing"]))
