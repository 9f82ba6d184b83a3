"""Formats that carry image bytes are streamed: peak memory follows the batch, not the dataset."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from misalignlab.data.ingest.stream import IngestCfg, open_pairs

N, SIDE = 400, 64  # 400 noise PNGs of ~12 KB: ~5 MB encoded


def _write(kind: str, folder: Path, png, tar) -> tuple[Path, int]:
    images = [png(i, (SIDE, SIDE)) for i in range(N)]
    captions = [f"noise {i}" for i in range(N)]
    if kind == "parquet":
        path = folder / "train.parquet"
        pq.write_table(pa.table({"jpg": images, "caption": captions}), path, row_group_size=50)
    elif kind == "arrow":
        path = folder / "data-00000-of-00001.arrow"
        image = pa.array(
            [{"bytes": b, "path": None} for b in images],
            type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
        )
        table = pa.table({"image": image, "text": captions})
        with pa.OSFile(str(path), "wb") as sink, ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=1000)  # one big record batch: read in slices
    else:
        path = folder / "00000.tar.gz"
        tar(
            path,
            [m for i in range(N) for m in ((f"{i:05d}.png", images[i]), (f"{i:05d}.txt", captions[i].encode()))],
            mode="w:gz",
        )
    return path, sum(map(len, images))


@pytest.mark.parametrize("kind", ["parquet", "arrow", "tar"])
def test_byte_formats_stream_in_bounded_memory(tmp_path: Path, png, tar, kind: str) -> None:
    path, total = _write(kind, tmp_path, png, tar)
    tracemalloc.start()
    try:
        stream = open_pairs(path, IngestCfg(image_size=8, chunk_size=16))
        n = 0
        for chunk in stream:
            n += len(chunk)
            assert stream.rows_read == n  # rows are validated as chunks are taken, not all up front
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == N and stream.summary()["quarantined"] == 0
    assert peak < total / 3, f"peak traced {peak / 1e6:.2f} MB vs {total / 1e6:.2f} MB of images"
