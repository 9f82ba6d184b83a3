"""Backbone strings, the missing-extra error, the caption cache and the locked-text backend (fake tower).

Nothing here needs the ``hf`` extra: the text tower is injected as a counting fake.
"""

import hashlib
import sys

import numpy as np
import pytest

from misalignlab.detect.backends import BACKENDS, HF_INSTALL, EmbedCfg, parse_backbone
from misalignlab.detect.backends.hf_clip import check_clip_folder
from misalignlab.detect.backends.minilm import MINILM_DIM, CaptionCache, LockedTextBackend
from misalignlab.detect.crossfit import crossfit_embeddings
from misalignlab.models.pair_model import ModelCfg
from misalignlab.train.settings import TrainCfg


def test_parse_backbone_known_answers_and_errors(tmp_path):
    assert EmbedCfg().with_backbone("scratch").backend == "scratch"
    assert EmbedCfg().with_backbone(" text:minilm ").backend == "text:minilm"
    hf = EmbedCfg().with_backbone(f"hf:{tmp_path}/ckpt")
    assert (hf.backend, hf.path) == ("hf", str(tmp_path / "ckpt"))
    assert hf.backbone == f"hf:{tmp_path / 'ckpt'}"
    assert hf.with_backbone("scratch").path == ""  # a new backbone leaves no stale checkpoint path
    with pytest.raises(ValueError, match="valid: auto, scratch, text:minilm, hf:PATH"):
        parse_backbone("clip")
    with pytest.raises(ValueError, match="needs a folder"):
        parse_backbone("hf:")


def test_auto_is_text_minilm_only_where_the_extra_is_installed(monkeypatch, caplog):
    from misalignlab.detect.backends import base

    monkeypatch.setattr(base, "hf_available", lambda: True)
    assert parse_backbone("auto")["backend"] == "text:minilm"
    monkeypatch.setattr(base, "hf_available", lambda: False)
    assert parse_backbone("auto")["backend"] == "scratch"
    assert "pip install 'misalignlab[hf]'" in caplog.text


def test_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers now raises ImportError
    with pytest.raises(ValueError, match=r"text:minilm.*pip install 'misalignlab\[hf\]'"):
        BACKENDS.get("text:minilm")(EmbedCfg(backend="text:minilm"), 16)
    assert "misalignlab[hf]" in HF_INSTALL


def test_hf_folder_errors_name_the_folder_and_what_is_missing(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path / 'nope'} does not exist"):
        BACKENDS.get("hf")(EmbedCfg(backend="hf", path=str(tmp_path / "nope")), 16)
    with pytest.raises(ValueError, match="needs embed.path"):
        EmbedCfg(backend="hf")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="is not a folder"):
        check_clip_folder(tmp_path / "file.txt")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        ValueError, match=r"empty is missing config.json, preprocessor_config.json, weights .*tokenizer"
    ):
        check_clip_folder(empty)
    for name in ("preprocessor_config.json", "model.safetensors", "tokenizer.json"):
        (empty / name).write_text("{}")
    (empty / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="config.json is not valid JSON"):
        check_clip_folder(empty)
    (empty / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ValueError, match="model_type 'bert', expected 'clip'"):
        check_clip_folder(empty)


class CountingTower:
    """Fake frozen text tower: a fixed pseudo-random unit code per word, summed; records every call."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    @staticmethod
    def word(w: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
        return np.random.default_rng(seed).normal(size=MINILM_DIM)

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        codes = np.stack([sum(self.word(w) for w in t.split()) for t in texts])
        return (codes / np.linalg.norm(codes, axis=1, keepdims=True)).astype(np.float32)


def test_caption_cache_encodes_each_string_once_and_round_trips(tmp_path):
    tower = CountingTower()
    cache = CaptionCache(tower, batch_size=2)
    first = cache(["a red gear", "a blue cog", "a red gear"])
    assert first.shape == (3, MINILM_DIM) and np.array_equal(first[0], first[2])
    again = cache(["a blue cog", "a green cog", "a red gear"])
    assert tower.calls == [["a red gear", "a blue cog"], ["a green cog"]] and cache.encoded == 3
    assert np.array_equal(again[0], first[1])
    (tmp_path / "c.npz").write_bytes(cache.to_bytes())
    fresh = CaptionCache(CountingTower())
    fresh.load(tmp_path / "c.npz")
    assert len(fresh) == 3 and np.array_equal(fresh(["a green cog"]), again[1:2])
    assert cache([]).shape == (0, MINILM_DIM)


def _coloured_pairs(n: int, seed: int = 0):
    """Four colours, one caption word each; a plain image of that colour with a little noise."""
    rng = np.random.default_rng(seed)
    names = ["red", "green", "blue", "white"]
    rgb = np.array([[220, 30, 30], [30, 200, 30], [30, 30, 220], [230, 230, 230]])
    label = rng.integers(0, 4, n)
    images = np.clip(rgb[label][:, None, None, :] + rng.normal(0, 12, (n, 16, 16, 3)), 0, 255).astype(np.uint8)
    return [f"p{i}" for i in range(n)], images, [f"a {names[k]} square" for k in label], label


def test_locked_text_backend_crossfits_caches_captions_and_reloads(tmp_path):
    ids, images, captions, label = _coloured_pairs(160)
    tower = CountingTower()
    # No small-loss pass: with four captions repeated 40 times, per-pair losses say nothing about noise.
    with BACKENDS.scoped():
        BACKENDS.register("text:fake")(lambda c, size: LockedTextBackend(c, size, encoder=tower))
        cfg = EmbedCfg(
            backend="text:fake",
            train=TrainCfg(steps=40, batch_size=64, lr=1e-2),
            reweight_steps=0,
            model=ModelCfg(code_dim=8),
        )
        emb = crossfit_embeddings(ids, images, captions, cfg, cache_dir=tmp_path)
        encoded = [t for call in tower.calls for t in call]
        assert sorted(encoded) == sorted(set(captions))  # 4 distinct captions, each through the tower once
        sim = emb.image_emb @ emb.text_emb.T  # (N, N)
        same = label[:, None] == label[None, :]
        assert np.diag(sim).mean() > sim[~same].mean() + 0.5  # the image encoder learned the frozen codes
        alt = emb.embed_texts(0, ["a red square", "a violet square"])
        assert alt.shape == (2, 8) and tower.calls[-1] == ["a violet square"]  # only the new string is encoded
        again = crossfit_embeddings(ids, images, captions, cfg, cache_dir=tmp_path)
    assert again.cache_hit and np.array_equal(again.text_emb, emb.text_emb)
    assert np.allclose(again.embed_texts(0, ["a red square"]), alt[:1], atol=1e-6)  # saved fold model and captions
