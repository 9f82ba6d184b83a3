"""Diagnosis on a memmap image store gives the same keys, codes and gallery as on an in-memory array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from misalignlab.data.ingest.image_store import store_pairs
from misalignlab.data.ingest.stream import ImageRef, PairChunk, SourceRow
from misalignlab.detect.backends import EmbedCfg
from misalignlab.detect.crossfit import cache_key, crossfit_embeddings
from misalignlab.models.pair_model import ModelCfg
from misalignlab.report.gallery import render_gallery
from misalignlab.train.settings import TrainCfg

TINY = EmbedCfg(train=TrainCfg(steps=2, batch_size=8), model=ModelCfg(code_dim=4, max_len=6), reweight_steps=0)


def _stored(tmp_path: Path, n: int = 40):  # noqa: ANN202
    rng = np.random.default_rng(0)
    ids = [f"p{i}" for i in range(n)]
    captions = [f"a {c} thing" for c in rng.choice(["red", "blue", "green"], n)]
    images = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    rows = tuple(SourceRow("m.csv", i + 2, ImageRef(f"{pid}.png")) for i, pid in enumerate(ids))
    chunks = [
        PairChunk(tuple(ids[s : s + 7]), images[s : s + 7], tuple(captions[s : s + 7]), rows[s : s + 7])
        for s in range(0, n, 7)
    ]
    return store_pairs(chunks, tmp_path / "cache"), images


def test_memmap_store_gives_the_same_cache_key_and_codes_as_the_array(tmp_path: Path) -> None:
    stored, images = _stored(tmp_path)
    assert isinstance(stored.images, np.memmap)
    assert cache_key(stored.ids, stored.captions, stored.images, TINY) == cache_key(
        stored.ids, stored.captions, images, TINY
    )
    from_store = crossfit_embeddings(stored.ids, stored.images, stored.captions, TINY, tmp_path / "a")
    from_array = crossfit_embeddings(stored.ids, images, stored.captions, TINY, tmp_path / "b")
    assert from_store.folder.name == from_array.folder.name  # one key, whichever holds the pixels
    np.testing.assert_array_equal(from_store.image_emb, from_array.image_emb)
    np.testing.assert_array_equal(from_store.text_emb, from_array.text_emb)


def test_gallery_renders_thumbnails_from_the_store(tmp_path: Path) -> None:
    stored, images = _stored(tmp_path, n=5)
    table = pd.DataFrame(
        {
            "id": list(stored.ids),
            "score": np.linspace(0, 1, 5),
            "type": ["wrong"] * 5,
            "explanation": ["x"] * 5,
            "caption": list(stored.captions),
            "quarantine": [True] * 5,
        }
    )
    summary = {"pairs": 5, "flagged": 5, "types": {}, "profile": {"omitted": {}, "wrong": {}}}
    from_store = render_gallery(table, summary, images=stored.images, cap=3)
    assert from_store == render_gallery(table, summary, images=images, cap=3) and "decoded copy" in from_store
