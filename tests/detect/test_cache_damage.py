"""A damaged cache never stops a diagnosis: each file is named in a warning, removed, rebuilt, and the
pair table equals a clean run's.

One clean tiny diagnosis (scratch, a few steps, with the small-loss pass) fills a cache; every
case copies that cache, damages one file (cut to half, 64 bytes overwritten, emptied) and runs
the diagnosis again on the copy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from misalignlab.data.scenes.dataset import make_scene_pairs, write_dataset_folder
from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.inject import InjectionCfg
from misalignlab.detect.backends import BACKENDS, EmbedCfg
from misalignlab.detect.backends.minilm import MINILM_DIM, LockedTextBackend
from misalignlab.detect.pipeline import DiagnoseCfg, diagnose_pairs
from misalignlab.models.pair_model import ModelCfg
from misalignlab.train.settings import TrainCfg

TINY = EmbedCfg(train=TrainCfg(steps=3, batch_size=8), model=ModelCfg(code_dim=4, max_len=8), reweight_steps=2)
CFG = DiagnoseCfg(embed=TINY, schema="scenes")
DAMAGES = ("truncated", "garbage", "empty")


def damage(path: Path, how: str) -> None:
    """Cut ``path`` to half, flip 64 bytes in its middle, or empty it."""
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbage":
        mid = max(0, len(data) // 2 - 32)
        flipped = bytes(b ^ 0xA5 for b in data[mid : mid + 64])
        path.write_bytes(data[:mid] + flipped + data[mid + 64 :])
    else:
        path.write_bytes(b"")


@pytest.fixture(scope="module")
def scenes():
    pairs = make_scene_pairs(32, SceneCfg(size=32), InjectionCfg(outlier_rate=0.2), seed=0)
    return [f"s{i}" for i in range(32)], pairs.images, list(pairs.captions)


@pytest.fixture(scope="module")
def clean(scenes, tmp_path_factory):
    """A clean diagnosis and its filled cache folder."""
    cache = tmp_path_factory.mktemp("clean")
    diag = diagnose_pairs(*scenes, CFG, cache)
    assert not diag.embeddings.cache_hit and diag.typed is not None
    return diag, cache


def _rerun_damaged(scenes, clean, tmp_path, caplog, relative: str, how: str, cfg: DiagnoseCfg = CFG):
    """Damage ``relative`` (a glob inside the key folder) in a copy of the clean cache and diagnose again."""
    diag, cache = clean
    copy = shutil.copytree(cache, tmp_path / "cache")
    (path,) = (copy / diag.embeddings.folder.name).glob(relative)
    damage(path, how)
    with caplog.at_level("WARNING"):
        again = diagnose_pairs(*scenes, cfg, copy)
    assert str(path) in caplog.text, caplog.text  # the warning names the damaged file
    pd.testing.assert_frame_equal(again.table, diag.table)  # same scores, types and evidence
    return again, path


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_embeddings_are_rebuilt_from_the_fold_parts(scenes, clean, tmp_path, caplog, how):
    again, path = _rerun_damaged(scenes, clean, tmp_path, caplog, "embeddings.npz", how)
    assert "embedding cache" in caplog.text and not again.embeddings.cache_hit
    with np.load(path, allow_pickle=False) as npz:  # rewritten whole
        assert npz["image_emb"].shape == clean[0].embeddings.image_emb.shape


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_fold_part_is_rewritten_on_a_cache_hit(scenes, clean, tmp_path, caplog, how):
    again, path = _rerun_damaged(scenes, clean, tmp_path, caplog, "folds/fold1.npz", how)
    assert "fold part" in caplog.text and again.embeddings.cache_hit
    with np.load(path, allow_pickle=False) as npz:  # written again from the cached codes
        np.testing.assert_array_equal(npz["held"], np.flatnonzero(again.embeddings.fold == 1))


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_fold_part_of_an_unfinished_run_is_recomputed(scenes, clean, tmp_path, caplog, how):
    diag, cache = clean
    unfinished = shutil.copytree(cache, tmp_path / "unfinished")
    (unfinished / diag.embeddings.folder.name / "embeddings.npz").unlink()  # killed before the last write
    _rerun_damaged(scenes, (diag, unfinished), tmp_path, caplog, "folds/fold1.npz", how)
    assert "fold part" in caplog.text


@pytest.mark.parametrize("name", ["model.pt", "model_cfg.json", "tokenizer.json"])
@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_fold_model_is_retrained(scenes, clean, tmp_path, caplog, name, how):
    again, path = _rerun_damaged(scenes, clean, tmp_path, caplog, f"models/fold0/{name}", how)
    assert "fold model" in caplog.text and (path.parent / "checksums.json").is_file()  # saved and sealed again
    assert (path.parent.parent.parent / "folds" / "fold0.npz").is_file()


def test_an_intact_cache_is_a_silent_hit(scenes, clean, tmp_path, caplog):
    diag, cache = clean
    copy = shutil.copytree(cache, tmp_path / "cache")
    with caplog.at_level("WARNING"):
        again = diagnose_pairs(*scenes, CFG, copy)
    assert again.embeddings.cache_hit and not caplog.text
    pd.testing.assert_frame_equal(again.table, diag.table)


class FakeTower:
    """A frozen 'sentence encoder': a fixed pseudo-random code per word, summed and normalised."""

    def __call__(self, texts: list[str]) -> np.ndarray:
        codes = np.stack([sum(self.word(w) for w in t.split()) for t in texts])
        return (codes / np.linalg.norm(codes, axis=1, keepdims=True)).astype(np.float32)

    @staticmethod
    def word(w: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
        return np.random.default_rng(seed).normal(size=MINILM_DIM)


@pytest.fixture(scope="module")
def locked(scenes, tmp_path_factory):
    """``text:minilm``'s backend with a fake tower: a clean run and its cache, inside a scoped registry."""
    with BACKENDS.scoped():
        BACKENDS.register("text:fake")(lambda c, size: LockedTextBackend(c, size, encoder=FakeTower()))
        cfg = DiagnoseCfg(embed=dataclasses.replace(TINY, backend="text:fake"), schema="scenes")
        cache = tmp_path_factory.mktemp("locked")
        yield diagnose_pairs(*scenes, cfg, cache), cache, cfg


@pytest.mark.parametrize("name", ["fold1/lit.json", "fold1/model.pt", "captions.npz"])
@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_locked_text_models_and_caption_codes_are_rebuilt(scenes, locked, tmp_path, caplog, name, how):
    diag, cache, cfg = locked
    _rerun_damaged(scenes, (diag, cache), tmp_path, caplog, f"models/{name}", how, cfg)


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_image_store_is_rebuilt_by_the_next_diagnosis(tmp_path, caplog, how):
    from misalignlab.data.ingest.stream import IngestCfg, open_pairs
    from misalignlab.workflows.diagnose import run_diagnosis

    pairs = make_scene_pairs(24, SceneCfg(size=32), InjectionCfg(outlier_rate=0.2), seed=1)
    data = write_dataset_folder(pairs, tmp_path / "data") / "captions.csv"
    cfg = DiagnoseCfg(embed=TINY, schema="scenes", gallery=2)
    run = lambda out: run_diagnosis(open_pairs(data, IngestCfg(image_size=16)), cfg, out, tmp_path / "cache")  # noqa: E731
    run(tmp_path / "a")
    (store,) = (tmp_path / "cache").glob("images-*.npy")
    damage(store, how)
    with caplog.at_level("WARNING"):
        summary = run(tmp_path / "b")
    assert str(store) in caplog.text and "image store" in caplog.text
    assert summary["embedding_cache_hit"]  # the rebuilt store has the same pixels, hence the same key
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "b" / "pairs.parquet"), pd.read_parquet(tmp_path / "a" / "pairs.parquet")
    )
