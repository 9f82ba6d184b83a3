"""Original files re-read lazily at a backbone's size: every container kind, fallback, laziness, digest."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from misalignlab.data.ingest.image_store import store_pairs
from misalignlab.data.ingest.images import ImageCfg, decode_image
from misalignlab.data.ingest.originals import ImageInput, ImageSource, RefReader
from misalignlab.data.ingest.reread import read_ref_bytes
from misalignlab.data.ingest.stream import IngestCfg, open_pairs
from misalignlab.data.rows import RowView


@pytest.fixture
def sources(tmp_path: Path, png, tar) -> dict[str, Path]:
    """The same five 30×20 images as files (CSV), tar members, parquet bytes (row groups of 2) and Arrow bytes."""
    ds = tmp_path / "ds"
    (ds / "img").mkdir(parents=True)
    for i in range(5):
        (ds / f"img/{i}.png").write_bytes(png(i, (30, 20)))
    (ds / "m.csv").write_text("id,image,caption\n" + "".join(f"p{i},img/{i}.png,photo {i}\n" for i in range(5)))
    tar(ds / "s.tar", [m for i in range(5) for m in ((f"p{i}.png", png(i, (30, 20))), (f"p{i}.txt", b"photo"))])
    table = pa.table(
        {"id": [f"p{i}" for i in range(5)], "jpg": [png(i, (30, 20)) for i in range(5)], "caption": ["x"] * 5}
    )
    pq.write_table(table, ds / "b.parquet", row_group_size=2)
    with pa.OSFile(str(ds / "b.arrow"), "wb") as sink, ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    return {"csv": ds / "m.csv", "tar": ds / "s.tar", "parquet": ds / "b.parquet", "arrow": ds / "b.arrow"}


def _source(path: Path, tmp_path: Path) -> tuple[ImageSource, np.ndarray]:
    stream = open_pairs(path, IngestCfg(image_size=8))
    pairs = store_pairs(stream, tmp_path / "cache")
    return ImageSource.of_stream(stream, pairs.rows), pairs.images


@pytest.mark.parametrize("kind", ["csv", "tar", "parquet", "arrow"])
def test_rows_are_the_originals_decoded_at_the_wanted_size(sources, png, tmp_path, kind):
    source, store = _source(sources[kind], tmp_path)
    images = source.decoded(ImageInput(24, "crop"), store)
    assert images.shape == (5, 24, 24, 3) and images.dtype == np.uint8 and len(images) == 5
    expected = np.stack([decode_image(png(i, (30, 20)), ImageCfg(24, "crop")) for i in range(5)])
    np.testing.assert_array_equal(images[0:5], expected)
    np.testing.assert_array_equal(images[3], expected[3])
    np.testing.assert_array_equal(RowView(images, np.array([4, 1]))[0:2], expected[[4, 1]])  # as a fold reads it
    stretched = source.decoded(ImageInput(16, "stretch"), store)[2]
    np.testing.assert_array_equal(stretched, decode_image(png(2, (30, 20)), ImageCfg(16, "stretch")))
    assert images.failed == 0


@pytest.mark.parametrize("kind", ["tar", "parquet"])
def test_the_container_reader_matches_reading_each_reference_alone(sources, tmp_path, kind):
    source, _ = _source(sources[kind], tmp_path)
    reader = RefReader(source.root, source.containers)
    for ref in [*source.refs, *source.refs[::-1]]:  # forwards and back: cached indexes and row groups
        assert reader(ref) == read_ref_bytes(ref, source.root, containers=source.containers)


def test_an_unreadable_original_falls_back_to_its_stored_image(sources, tmp_path, caplog):
    source, store = _source(sources["csv"], tmp_path)
    (sources["csv"].parent / "img/1.png").unlink()
    images = source.decoded(ImageInput(24), store)
    with caplog.at_level("WARNING"):
        row = images[1]
    assert "img/1.png" in caplog.text and images.failed == 1
    assert row.shape == (24, 24, 3)
    assert abs(row.astype(float).mean() - np.asarray(store[1], float).mean()) < 8  # the stored image, scaled up


def test_the_source_is_read_lazily_and_never_converted_whole(sources, tmp_path):
    source, store = _source(sources["csv"], tmp_path)
    images = source.decoded(ImageInput(24), store)
    (sources["csv"].parent / "img/4.png").unlink()  # only a read of row 4 could notice
    images[0:2]
    assert images.failed == 0
    with pytest.raises(TypeError, match="read in batches"):
        np.asarray(images)
    with pytest.raises(ValueError, match="5 image references for 3 stored images"):
        source.decoded(ImageInput(24), store[:3])


def test_the_digest_names_root_and_references(sources, tmp_path):
    source, _ = _source(sources["csv"], tmp_path)
    same = ImageSource(source.refs, source.root)
    other = ImageSource(source.refs[::-1], source.root)
    assert source.digest() == same.digest() != other.digest()
    with pytest.raises(ValueError, match="unknown image fit"):
        ImageInput(24, "squash")
