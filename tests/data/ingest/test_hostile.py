"""Hostile rows are quarantined with the right reason and the run goes on; nothing is fetched or decoded blindly."""

from __future__ import annotations

import csv
import json
import socket
import struct
import time
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

from misalignlab.data.ingest import csv_jsonl

HUGE = "y" * 200_000  # beyond Python's default csv field limit of 131,072 characters


def _images(folder: Path, png, n: int = 3) -> None:
    folder.mkdir(exist_ok=True)
    for i in range(n):
        (folder / f"{i}.png").write_bytes(png(i))


@pytest.mark.parametrize("kind", ["csv", "tsv", "jsonl"])
def test_a_200k_character_caption_is_quarantined_and_the_run_goes_on(tmp_path: Path, run, png, kind: str) -> None:
    _images(tmp_path / "img", png)
    rows = [("a", "img/0.png", "first"), ("b", "img/1.png", HUGE), ("c", "img/2.png", "third")]
    path = tmp_path / f"m.{kind}"
    if kind == "jsonl":
        path.write_text("".join(json.dumps(dict(zip(("id", "image", "caption"), r))) + "\n" for r in rows))
    else:
        with open(path, "w", newline="") as fh:
            csv.writer(fh, delimiter="," if kind == "csv" else "\t").writerows([("id", "image", "caption"), *rows])
    before = csv.field_size_limit()
    got = run(path)
    assert got.pairs.ids == ("a", "c")
    assert got.reasons() == [(3 if kind != "jsonl" else 2, "b", "caption_too_long")]
    assert "200000 characters" in got.records[0].message
    assert csv.field_size_limit() == before  # the process-wide limit is left as it was


def test_a_field_over_the_reader_limit_is_a_malformed_row(tmp_path: Path, run, png, monkeypatch) -> None:
    _images(tmp_path / "img", png)
    monkeypatch.setattr(csv_jsonl, "FIELD_LIMIT", 1000)  # stands in for 16 Mi characters
    path = tmp_path / "m.csv"
    path.write_text(f'id,image,caption\na,img/0.png,ok\nb,img/1.png,"{"z" * 2000}"\nc,img/1.png,fine\n')
    got = run(path)
    assert got.pairs.ids == ("a", "c") and got.reasons() == [(3, "2", "malformed_row")]
    assert "field larger than field limit (1000)" in got.records[0].message


def _png_header_only(width: int, height: int) -> bytes:
    """A small PNG whose header claims ``width`` x ``height`` RGB pixels (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_30000_by_30000_png_is_refused_from_its_header(tmp_path: Path, run, png) -> None:
    _images(tmp_path / "img", png)
    bomb = _png_header_only(30_000, 30_000)  # 2.7 GB of pixels if decoded
    assert len(bomb) < 200
    (tmp_path / "img/bomb.png").write_bytes(bomb)
    (tmp_path / "m.csv").write_text("image,caption\nimg/bomb.png,boom\nimg/0.png,fine\n")
    start = time.perf_counter()
    got = run(tmp_path / "m.csv")
    assert time.perf_counter() - start < 5  # decoding 900 M pixels would take far longer (and 2.7 GB)
    assert got.pairs.ids == ("2",) and got.reasons() == [(2, "1", "image_too_large")]
    assert "30000x30000" in got.records[0].message or "900000000 pixels" in got.records[0].message


def test_urls_are_quarantined_and_never_fetched(tmp_path: Path, run, png, monkeypatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("ingestion tried to reach the network")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    _images(tmp_path / "img", png)
    urls = [
        "http://a.example/x.jpg",
        "https://a.example/y.png",
        "s3://bucket/z.jpg",
        "gs://bucket/w.jpg",
        "HF://d/x.png",
    ]
    lines = [{"image": u, "caption": "remote"} for u in urls] + [{"image": "img/0.png", "caption": "local"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    got = run(tmp_path / "m.jsonl")
    assert got.pairs.ids == ("6",) and [r.reason for r in got.records] == ["remote_url"] * 5
    assert all("img2dataset" in r.message and "never downloads" in r.message for r in got.records)


def test_symlinked_folder_pointing_out_of_the_root_is_refused(tmp_path: Path, run, png) -> None:
    _images(tmp_path / "outside", png)
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds/linked").symlink_to(tmp_path / "outside", target_is_directory=True)
    _images(tmp_path / "ds/img", png)
    (tmp_path / "ds/m.csv").write_text("image,caption\nlinked/0.png,out\nimg/1.png,in\n")
    got = run(tmp_path / "ds/m.csv")
    assert got.pairs.ids == ("2",) and got.reasons() == [(2, "1", "path_outside_root")]


def test_a_corrupt_parquet_row_group_loses_only_its_rows(tmp_path: Path, run, png) -> None:
    _images(tmp_path / "img", png, n=6)
    table = pa.table({"image": [f"img/{i}.png" for i in range(6)], "caption": [f"c{i}" for i in range(6)]})
    path = tmp_path / "m.parquet"
    pq.write_table(table, path, row_group_size=2)
    group = pq.ParquetFile(path).metadata.row_group(1)
    data = bytearray(path.read_bytes())
    for j in range(group.num_columns):  # overwrite the pages of row group 2, footer intact
        col = group.column(j)
        start = col.dictionary_page_offset or col.data_page_offset
        data[start : start + col.total_compressed_size] = b"\xff" * col.total_compressed_size
    path.write_bytes(bytes(data))
    got = run(path)
    assert got.pairs.ids == ("1", "2", "5", "6") and got.pairs.captions == ("c0", "c1", "c4", "c5")
    assert [(r.line, r.reason) for r in got.records] == [(3, "row_group_unreadable"), (4, "row_group_unreadable")]
    assert "row group 2 of 3" in got.records[0].message and got.summary["rows_read"] == 6


def test_a_truncated_arrow_stream_keeps_the_rows_before_the_break(tmp_path: Path, run, png) -> None:
    table = pa.table({"image": [png(i) for i in range(6)], "caption": [f"c{i}" for i in range(6)]})
    path = tmp_path / "data-00000-of-00001.arrow"
    with pa.OSFile(str(path), "wb") as sink, ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * 0.6)])
    got = run(path)
    assert got.pairs.ids[:2] == ("1", "2") and len(got.pairs) in (2, 4)
    assert [r.reason for r in got.records] == ["shard_truncated"] and "rest of file skipped" in got.records[0].message


def test_an_unreadable_later_shard_is_skipped_not_fatal(tmp_path: Path, run, png, tar) -> None:
    _images(tmp_path / "img", png, n=2)
    for n in range(3):
        table = pa.table({"image": [f"img/{n % 2}.png"], "caption": [f"shard {n}"]})
        pq.write_table(table, tmp_path / f"part-{n}.parquet")
    (tmp_path / "part-1.parquet").write_bytes(b"PAR1 garbage")
    got = run(tmp_path)
    assert got.pairs.captions == ("shard 0", "shard 2") and got.pairs.ids == ("1", "2")
    assert [(Path(r.source).name, r.reason) for r in got.records] == [("part-1.parquet", "shard_unreadable")]
    (tmp_path / "shards").mkdir()
    tar(tmp_path / "shards/0.tar.gz", [("a.png", png(0)), ("a.txt", b"first")], mode="w:gz")
    (tmp_path / "shards/1.tar.gz").write_bytes(b"\x1f\x8b broken gzip")
    tar(tmp_path / "shards/2.tar.gz", [("c.png", png(1)), ("c.txt", b"third")], mode="w:gz")
    shards = run(tmp_path / "shards")
    assert shards.pairs.ids == ("a", "c") and [r.reason for r in shards.records] == ["shard_unreadable"]
