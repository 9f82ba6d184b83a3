"""Cleaned copies mirror the readers: kept lines byte for byte, list cells trimmed, every layout read back."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from tests.data.ingest.test_img2dataset import OK_KEYS, write_img2dataset

from misalignlab.data.ingest.config import IngestCfg
from misalignlab.data.ingest.detect_format import detect_layout
from misalignlab.data.ingest.records import IngestError
from misalignlab.data.ingest.write import plan_drops, write_clean_copy

HF_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def copy(path: Path, out: Path, drop: set[str], keep_unseen: bool = False, **cfg: object):
    """Copy ``path`` into ``out`` without the pairs ``drop`` (and, unless ``keep_unseen``, the rows readers found bad)."""
    ingest = IngestCfg(**cfg)  # type: ignore[arg-type]
    layout = detect_layout(path, ingest.format, ingest.root)
    plan = plan_drops(layout, ingest, lambda pid, raw: keep_unseen if pid is None else pid not in drop)
    return write_clean_copy(layout, ingest, plan, out)


@pytest.mark.parametrize("sep", [",", "\t"])
def test_csv_keeps_every_other_line_byte_for_byte(tmp_path: Path, sep: str) -> None:
    lines = [
        "\ufeffid,image,caption\r\n",
        'a,0.png,"a red\r\nbus"\r\n',  # one record over two lines
        "b,1.png,two dogs\r\n",
        "\r\n",
        "c,2.png,caf\udce9 bytes\r\n",  # an undecodable byte survives the copy
        "d,3.png,the sea",  # no final newline
    ]
    raw = [line.replace(",", sep).encode("utf-8", errors="surrogateescape") for line in lines]
    data = tmp_path / f"data.{'csv' if sep == ',' else 'tsv'}"
    data.write_bytes(b"".join(raw))
    result = copy(data, tmp_path / "out", {"a", "d"})
    assert result.files == (tmp_path / "out" / data.name,) and (result.kept, result.dropped) == (2, 2)
    assert result.files[0].read_bytes() == raw[0] + raw[2] + raw[3] + raw[4]
    assert data.read_bytes() == b"".join(raw)  # the input untouched


def test_jsonl_list_cells_lose_only_the_dropped_captions(tmp_path: Path) -> None:
    lines = [
        b'{"id": "a", "image": "x.png", "caption": ["one", "two", "three"]}\n',
        b"{not json\n",
        b'{"id": "b", "image": "y.png", "caption": ["four"]}\n',
        b"\n",
        b'{"id": "c", "image": "z.png", "caption": "five"}\n',
    ]
    data = tmp_path / "data.jsonl"
    data.write_bytes(b"".join(lines))
    result = copy(data, tmp_path / "out", {"a#1", "b#0"})
    got = result.files[0].read_bytes().split(b"\n")
    assert json.loads(got[0]) == {"id": "a", "image": "x.png", "caption": ["one", "three"]}
    assert got[1:] == [b"", lines[4].rstrip(b"\n"), b""]  # bad line and b gone, the blank line and c kept
    kept = copy(data, tmp_path / "kept", {"a#1", "b#0"}, keep_unseen=True)
    assert kept.files[0].read_bytes().split(b"\n")[1] == b"{not json"


def test_parquet_keeps_its_columns_and_trims_list_cells(tmp_path: Path, png) -> None:
    table = pa.table(
        {
            "id": ["a", "b", "c", "d"],
            "jpg": [png(i) for i in range(4)],
            "caption": [["x", "y"], ["z"], ["u", "v"], ["w"]],
            "width": [10, 11, 12, 13],
        }
    )
    pq.write_table(table, tmp_path / "data.parquet", row_group_size=2)
    result = copy(tmp_path / "data.parquet", tmp_path / "out", {"b#0", "c#0", "d#0"})
    got = pq.read_table(result.files[0])
    assert got.schema == table.schema and (result.kept, result.dropped) == (3, 3)
    assert got.to_pydict() == {
        "id": ["a", "c"],
        "jpg": [png(0), png(2)],
        "caption": [["x", "y"], ["v"]],
        "width": [10, 12],
    }


def test_arrow_becomes_parquet_with_the_same_columns(tmp_path: Path, png, run) -> None:
    images = pa.array([{"bytes": png(i), "path": f"{i}.png"} for i in range(3)], type=HF_IMAGE)
    table = pa.table({"image": images, "text": pa.array([["a", "b"], ["c"], ["d"]], type=pa.list_(pa.string()))})
    with pa.OSFile(str(tmp_path / "d.arrow"), "wb") as sink, ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=2)
    result = copy(tmp_path / "d.arrow", tmp_path / "out", {"1#1", "3#0"})
    assert result.format == "parquet" and result.files == (tmp_path / "out" / "d.parquet",) and "parquet" in result.note
    assert pq.read_table(result.files[0]).schema == table.schema
    assert run(result.files[0]).pairs.captions == ("a", "c")


def test_tar_drops_whole_samples_and_keeps_the_compression(tmp_path: Path, png, tar) -> None:
    members = [("a.png", png(0)), ("a.txt", b"first"), ("b.png", png(1)), ("b.txt", b"second")]
    members += [("c.png", png(2)), ("c.json", json.dumps({"caption": ["x", "y"], "w": 1}).encode())]
    tar(tmp_path / "00000.tar.gz", members, mode="w:gz")
    result = copy(tmp_path / "00000.tar.gz", tmp_path / "out", {"b", "c#1"})
    raw = result.files[0].read_bytes()
    assert raw[:2] == b"\x1f\x8b"  # still gzip
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(raw))) as tf:
        got = {m.name: tf.extractfile(m).read() for m in tf}
    assert list(got) == ["a.png", "a.txt", "c.png", "c.json"] and got["a.png"] == png(0) and got["a.txt"] == b"first"
    assert json.loads(got["c.json"]) == {"caption": ["x"], "w": 1}


def test_img2dataset_files_become_one_csv_manifest(tmp_path: Path, png, tar, run) -> None:
    out = write_img2dataset(tmp_path / "out", "files", png, tar)
    result = copy(out, tmp_path / "clean", {"000000002"})
    assert result.format == "csv" and result.files == (tmp_path / "clean" / "manifest.csv",)
    assert "CSV manifest" in result.note and (result.kept, result.dropped) == (3, 2)  # the failed download is dropped
    got = run(result.files[0], root=str(out), image_id_column="image_id")
    assert got.pairs.ids == (OK_KEYS[0], *OK_KEYS[2:]) and got.pairs.captions == ("a red bus", "a tall tree", "the sea")


def test_the_input_is_never_overwritten(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("id,image,caption\na,0.png,one\n")
    with pytest.raises(IngestError, match="refusing to write over the input"):
        copy(data, tmp_path, {"a"})
    assert data.read_text() == "id,image,caption\na,0.png,one\n"


def test_a_shard_that_breaks_off_keeps_the_samples_before_the_break(tmp_path: Path, png, tar) -> None:
    members = [(f"{k}.png", png(k)) for k in range(3)] + [(f"{k}.txt", f"sample {k}".encode()) for k in range(3)]
    whole = tar(tmp_path / "whole.tar", sorted(members))
    with tarfile.open(whole) as tf:
        cut = tf.getmember("2.png").offset_data + 10
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "00000.tar").write_bytes(whole.read_bytes()[:cut])  # ends inside sample 2's image
    result = copy(tmp_path / "cut" / "00000.tar", tmp_path / "out", set())
    with tarfile.open(result.files[0]) as tf:
        assert [m.name for m in tf] == ["0.png", "0.txt", "1.png", "1.txt"]
    assert (result.kept, result.dropped) == (2, 1)  # the break is one quarantined row
