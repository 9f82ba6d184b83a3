"""The disk-backed image store: bounded memory while ingesting, exact images, atomic and reusable."""

from __future__ import annotations

import csv
import hashlib
import io
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from misalignlab.data.ingest.image_store import StoredPairs, open_store, store_pairs, update_hash
from misalignlab.data.ingest.stream import EmptyDatasetError, IngestCfg, PairChunk, open_pairs

N, FILE_SIDE, S = 2000, 16, 64  # 16×16 PNG files decoded to 64×64 (the default size): 12 KB each, 25 MB in all


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """N tiny PNGs of seeded noise with a CSV manifest (plus one missing file, quarantined)."""
    root = tmp_path_factory.mktemp("many")
    rng = np.random.default_rng(0)
    (root / "img").mkdir()
    with open(root / "m.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "image", "caption"])
        for i in range(N):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (FILE_SIDE, FILE_SIDE, 3), dtype=np.uint8)).save(buf, "PNG")
            (root / f"img/{i}.png").write_bytes(buf.getvalue())
            w.writerow([f"p{i}", f"img/{i}.png", f"picture {i}"])
        w.writerow(["gone", "img/missing.png", "no file"])
    return root


def _open(root: Path, out: Path, chunk_size: int = 64):  # noqa: ANN202
    return open_pairs(root / "m.csv", IngestCfg(image_size=S, chunk_size=chunk_size), quarantine_dir=out)


@pytest.mark.slow
def test_store_keeps_peak_memory_far_below_all_images_and_equals_in_memory_path(dataset: Path, tmp_path: Path) -> None:
    stream = _open(dataset, tmp_path / "a")
    tracemalloc.start()  # numpy reports its buffers to tracemalloc; the memmap is file-backed, not traced
    try:
        stored = store_pairs(stream, tmp_path / "a" / "cache")
        _, peak = tracemalloc.get_traced_memory()  # ids, captions, rows: ~550 B a pair; images: one chunk
    finally:
        tracemalloc.stop()
    total = N * S * S * 3
    assert peak < 0.25 * total, f"peak traced {peak / 1e6:.2f} MB vs all images {total / 1e6:.2f} MB"
    assert isinstance(stored.images, np.memmap) and stored.images.shape == (N, S, S, 3)
    assert stream.summary()["quarantined"] == 1 and (tmp_path / "a" / "quarantine.jsonl").is_file()

    reference = PairChunk.concat(list(_open(dataset, tmp_path / "b", chunk_size=1000)))
    assert stored.ids == reference.ids and stored.captions == reference.captions and stored.rows == reference.rows
    np.testing.assert_array_equal(stored.images, reference.images)
    assert np.array_equal(np.load(stored.path, allow_pickle=False), reference.images)  # a plain .npy file


def test_second_run_reuses_the_same_store_and_leaves_no_temp_files(dataset: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = store_pairs(_open(dataset, tmp_path, chunk_size=500), cache)
    second = store_pairs(_open(dataset, tmp_path, chunk_size=300), cache)  # chunking does not change the key
    assert not first.reused and second.reused and second.path == first.path
    assert first.path.name.startswith("images-") and sorted(p.name for p in cache.iterdir()) == [first.path.name]
    np.testing.assert_array_equal(first.images, second.images)


def test_store_of_other_data_replaces_the_old_one(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    old = store_pairs([_chunk(["a"], seed=0)], cache)
    new = store_pairs([_chunk(["a", "b"], seed=1), _chunk(["c"], seed=2)], cache)
    assert new.path != old.path and not old.path.exists() and len(new) == 3
    assert new.ids == ("a", "b", "c") and new.images.shape == (3, 4, 4, 3)


def test_a_failed_stream_leaves_no_store(tmp_path: Path) -> None:
    def broken():  # noqa: ANN202
        yield _chunk(["a"], seed=0)
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        store_pairs(broken(), tmp_path)
    assert list(tmp_path.iterdir()) == []
    empty = tmp_path / "empty.csv"
    empty.write_text("id,image,caption\nx,nope.png,caption\n", encoding="utf-8")
    with pytest.raises(EmptyDatasetError):
        store_pairs(open_pairs(empty, IngestCfg(image_size=4)), tmp_path / "c")
    assert list((tmp_path / "c").iterdir()) == []


def test_memmap_is_writable_in_memory_but_the_file_stays_intact(tmp_path: Path) -> None:
    stored: StoredPairs = store_pairs([_chunk(["a", "b"], seed=3)], tmp_path)
    before = np.load(stored.path).copy()
    stored.images[0] = 0  # copy-on-write: private to this process
    np.testing.assert_array_equal(open_store(stored.path), before)


def test_update_hash_matches_hashing_the_whole_array() -> None:
    images = np.random.default_rng(0).integers(0, 256, (10, 3, 3, 3), dtype=np.uint8)[::2]  # not contiguous
    whole, sliced = hashlib.blake2b(), hashlib.blake2b()
    whole.update(np.ascontiguousarray(images).data)
    update_hash(sliced, images, rows=2)
    assert whole.hexdigest() == sliced.hexdigest()


def _chunk(ids: list[str], seed: int, side: int = 4) -> PairChunk:
    from misalignlab.data.ingest.stream import ImageRef, SourceRow

    images = np.random.default_rng(seed).integers(0, 256, (len(ids), side, side, 3), dtype=np.uint8)
    rows = tuple(SourceRow("m.csv", i + 2, ImageRef(f"{pid}.png")) for i, pid in enumerate(ids))
    return PairChunk(tuple(ids), images, tuple(f"caption {pid}" for pid in ids), rows)


def _damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    else:  # 64 bytes flipped: in the header, or among the pixels (the length stays right)
        at = 20 if how == "garbage_header" else len(data) - 100
        path.write_bytes(data[:at] + bytes(b ^ 0xA5 for b in data[at : at + 64]) + data[at + 64 :])


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage_header", "garbage_pixels"])
def test_a_damaged_store_is_named_in_a_warning_and_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture, how):
    def chunks() -> list[PairChunk]:
        return [_chunk(["a", "b"], seed=0, side=16), _chunk(["c"], seed=1, side=16)]

    first = store_pairs(chunks(), tmp_path)
    clean = np.array(first.images)
    _damage(first.path, how)
    with caplog.at_level("WARNING"):
        again = store_pairs(chunks(), tmp_path)
    assert str(first.path) in caplog.text and "image store" in caplog.text
    assert again.path == first.path and not again.reused
    np.testing.assert_array_equal(again.images, clean)
    np.testing.assert_array_equal(np.load(again.path, allow_pickle=False), clean)
    assert sorted(p.name for p in tmp_path.iterdir()) == [first.path.name]  # no temp file left
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert store_pairs(chunks(), tmp_path).reused and not caplog.text  # whole again: reused silently
