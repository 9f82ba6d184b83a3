"""Where each pair came from, and re-reading its image from that reference with the same safety checks."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from misalignlab.data.ingest import ImageRef, reread_image
from misalignlab.data.ingest.image_store import store_pairs
from misalignlab.data.ingest.quarantine import PairError
from misalignlab.data.ingest.stream import IngestCfg, open_pairs


def full(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture
def sources(tmp_path: Path, png, tar) -> dict[str, Path]:
    """The same three images as files (CSV), tar members, parquet bytes and Arrow bytes."""
    ds = tmp_path / "ds"
    (ds / "img").mkdir(parents=True)
    for i in range(3):
        (ds / f"img/{i}.png").write_bytes(png(i, (30, 20)))
    (ds / "m.csv").write_text("id,image,caption\n" + "".join(f"p{i},img/{i}.png,photo {i}\n" for i in range(3)))
    tar(ds / "s.tar", [m for i in range(3) for m in ((f"p{i}.png", png(i, (30, 20))), (f"p{i}.txt", b"photo"))])
    table = pa.table(
        {"id": [f"p{i}" for i in range(3)], "jpg": [png(i, (30, 20)) for i in range(3)], "caption": ["x"] * 3}
    )
    pq.write_table(table, ds / "b.parquet", row_group_size=2)
    with pa.OSFile(str(ds / "b.arrow"), "wb") as sink, ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    return {"csv": ds / "m.csv", "tar": ds / "s.tar", "parquet": ds / "b.parquet", "arrow": ds / "b.arrow"}


@pytest.mark.parametrize("kind", ["csv", "tar", "parquet", "arrow"])
def test_every_reference_rereads_its_image(sources: dict[str, Path], png, kind: str) -> None:
    stream = open_pairs(sources[kind], IngestCfg(image_size=8))
    chunk = next(iter(stream))
    row = chunk.rows[2]
    ds = sources["csv"].parent.resolve()
    expected = {"csv": str(ds / "img/2.png"), "tar": f"{ds}/s.tar::p2.png"}
    expected |= {"parquet": f"{ds}/b.parquet::3", "arrow": f"{ds}/b.arrow::3"}
    assert row.ref == expected[kind] and row.source == str(sources[kind])
    original = full(png(2, (30, 20)))  # (20, 30, 3)
    for ref in (row.image, row.ref):  # the object, or the string a report stored
        np.testing.assert_array_equal(reread_image(ref, ds, max_side=64), original)
        assert reread_image(ref, ds, max_side=15).shape == (10, 15, 3)
    np.testing.assert_array_equal(stream.thumbnail(row.ref, max_side=64), original)


def test_rereading_refuses_what_ingestion_refuses(sources: dict[str, Path], tmp_path: Path, png) -> None:
    ds = sources["csv"].parent.resolve()
    (tmp_path / "out.png").write_bytes(png(0))
    cases = [
        (str(tmp_path / "out.png"), ds, {}, "path_outside_root"),
        (f"{ds}/img/../../out.png", ds, {}, "path_outside_root"),
        (f"{ds}/s.tar::p1.png", ds / "img", {}, "path_outside_root"),  # container outside the root
        (f"{ds}/s.tar::nope.png", ds, {}, "image_missing"),
        (f"{ds}/b.parquet::9", ds, {}, "image_missing"),
        (f"{ds}/b.parquet::zero", ds, {}, "path_invalid"),
        (f"{ds}/img/0.png", ds, {"max_bytes": 100}, "image_too_large"),
        (f"{ds}/b.parquet::1", ds, {"max_bytes": 100}, "image_too_large"),
        (f"{ds}/s.tar::p1.png", ds, {"max_pixels": 100}, "image_too_large"),
        ("https://example.com/a.png", ds, {}, "remote_url"),
    ]
    for ref, root, limits, reason in cases:
        with pytest.raises(PairError) as err:
            reread_image(ref, root, **limits)
        assert err.value.reason == reason, (ref, err.value.message)
    # a container the stream was opened on is trusted even when the root is elsewhere
    assert reread_image(f"{ds}/s.tar::p1.png", ds / "img", containers=[ds / "s.tar"]).shape == (20, 30, 3)


def test_image_ref_strings_round_trip() -> None:
    for ref in (ImageRef("/d/a.png"), ImageRef("/d/s.tar.gz", "x/y::z.jpg"), ImageRef("/d/f.parquet", "12")):
        assert ImageRef.parse(ref.ref) == ref
    assert ImageRef.parse("/d/odd::name.png") == ImageRef("/d/odd::name.png")  # no container: a plain path


def test_the_image_store_keeps_image_keys(tmp_path: Path, png) -> None:
    (tmp_path / "a.png").write_bytes(png(0))
    (tmp_path / "m.jsonl").write_text('{"id": "x", "image": "a.png", "caption": ["one", "two"]}\n')
    stored = store_pairs(open_pairs(tmp_path / "m.jsonl", IngestCfg(image_size=8)), tmp_path / "cache")
    assert stored.ids == ("x#0", "x#1") and stored.image_keys == ("x", "x")
