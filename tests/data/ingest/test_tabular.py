"""Tabular manifests in real layouts: image bytes in parquet (binary, Hugging Face struct), list captions,
folders of shards, open_clip TSV, several captions per image through an image id column."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from misalignlab.data.ingest.images import decode_image as real_decode
from misalignlab.data.ingest.stream import IngestCfg, IngestError, open_pairs

# Hugging Face datasets' Image() feature as it lands in parquet/Arrow
HF_IMAGE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])


def test_parquet_binary_image_column_gives_bytes_refs(tmp_path: Path, run, png, pixels) -> None:
    table = pa.table({"id": ["a", "b", "c"], "image": [png(0), None, png(2)], "caption": ["zero", "one", "two"]})
    pq.write_table(table, tmp_path / "m.parquet", row_group_size=2)
    got = run(tmp_path / "m.parquet")
    assert got.pairs.ids == ("a", "c") and got.pairs.captions == ("zero", "two")
    np.testing.assert_array_equal(got.pairs.images[1], pixels(2))
    ref = got.pairs.rows[1].image
    assert (ref.path, ref.member, ref.column) == (str(tmp_path / "m.parquet"), "3", "image")
    assert got.pairs.rows[1].ref == f"{tmp_path / 'm.parquet'}::3" and got.pairs.rows[1].line == 3
    assert got.reasons() == [(2, "b", "image_missing")]


def test_hugging_face_image_struct_with_bytes_or_a_path(tmp_path: Path, run, png, pixels) -> None:
    (tmp_path / "side.png").write_bytes(png(5))
    images = [{"bytes": png(4), "path": "orig/4.png"}, {"bytes": None, "path": "side.png"}]
    images += [{"bytes": None, "path": "https://example.com/x.png"}, {"bytes": None, "path": None}]
    table = pa.table({"image": pa.array(images, type=HF_IMAGE), "text": ["four", "five", "url", "none"]})
    pq.write_table(table, tmp_path / "train-00000-of-00001.parquet")
    got = run(tmp_path / "train-00000-of-00001.parquet")
    assert got.pairs.ids == ("1", "2") and got.pairs.captions == ("four", "five")  # 'text' found as the caption
    np.testing.assert_array_equal(got.pairs.images, np.stack([pixels(4), pixels(5)]))
    assert got.pairs.rows[0].image.member == "1" and got.pairs.rows[1].ref == str((tmp_path / "side.png").resolve())
    assert [r for _, _, r in got.reasons()] == ["remote_url", "image_missing"]


def test_list_captions_give_one_pair_each_sharing_the_image(tmp_path: Path, run, png, monkeypatch) -> None:
    from misalignlab.data.ingest import stream

    calls = []
    monkeypatch.setattr(stream, "decode_image", lambda data, cfg: calls.append(1) or real_decode(data, cfg))
    caps = pa.array([["a cat", "a small cat", "kitten"], ["a dog"], []], type=pa.list_(pa.string()))
    table = pa.table({"key": ["c", "d", "e"], "jpg": [png(0), png(1), png(2)], "caption": caps})
    pq.write_table(table, tmp_path / "m.parquet")
    got = run(tmp_path / "m.parquet")
    assert got.pairs.ids == ("c#0", "c#1", "c#2", "d#0")
    assert got.pairs.image_keys == ("c", "c", "c", "d")
    assert got.pairs.captions == ("a cat", "a small cat", "kitten", "a dog")
    assert {r.line for r in got.pairs.rows[:3]} == {1} and len({r.ref for r in got.pairs.rows[:3]}) == 1
    np.testing.assert_array_equal(got.pairs.images[0], got.pairs.images[2])
    assert got.reasons() == [(3, "e", "caption_empty")]
    assert got.summary["accepted"] == 4 and got.summary["images"] == 2
    assert len(calls) == 2  # one decode per image, not per caption


def test_jsonl_list_captions(tmp_path: Path, run, png) -> None:
    (tmp_path / "a.png").write_bytes(png(0))
    lines = [{"image": "a.png", "caption": ["first", "second"]}, {"image": "a.png", "caption": "single"}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    got = run(tmp_path / "m.jsonl")
    assert got.pairs.ids == ("1#0", "1#1", "2") and got.pairs.image_keys == ("1", "1", "2")


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_a_folder_of_manifest_shards_reads_as_one_dataset(tmp_path: Path, run, png, kind: str) -> None:
    for i in range(5):
        (tmp_path / f"{i}.png").write_bytes(png(i))
    shards = [[(f"p{i}", f"{i}.png", f"photo {i}") for i in ids] for ids in ([0, 1], [2], [3, 4])]
    for n, rows in enumerate(shards):
        path = tmp_path / f"part-{n:05d}.{kind}"
        if kind == "csv":
            with open(path, "w", newline="") as fh:
                csv.writer(fh).writerows([("id", "image", "caption"), *rows])
        elif kind == "jsonl":
            path.write_text("".join(json.dumps(dict(zip(("id", "image", "caption"), r))) + "\n" for r in rows))
        else:
            pq.write_table(pa.table({k: [r[j] for r in rows] for j, k in enumerate(("id", "image", "caption"))}), path)
    (tmp_path / "notes.txt").write_text("not a manifest")  # other files in the folder are ignored
    got = run(tmp_path)
    assert got.pairs.ids == ("p0", "p1", "p2", "p3", "p4")
    assert [Path(r.source).name for r in got.pairs.rows] == [f"part-0000{n}.{kind}" for n in (0, 0, 1, 2, 2)]
    assert got.summary["files"] == 3 and got.summary["layout"] == f"folder of 3 {kind} shards"


def test_open_clip_tsv_with_filepath_and_title(tmp_path: Path, run, png) -> None:
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        (tmp_path / f"imgs/{i}.jpg").write_bytes(png(i, fmt="JPEG"))
    body = "filepath\ttitle\n" + "".join(f"imgs/{i}.jpg\ta photo, number {i}\n" for i in range(3))
    (tmp_path / "train.tsv").write_text(body)
    (tmp_path / "train.csv").write_text(body)  # open_clip's default: tab-separated even in a .csv
    for name, fmt in (("train.tsv", "auto"), ("train.csv", "auto"), ("train.csv", "tsv")):
        got = run(tmp_path / name, format=fmt)
        assert got.pairs.captions == tuple(f"a photo, number {i}" for i in range(3)) and got.stream.format == "tsv"
    named = run(tmp_path / "train.tsv", image_column="filepath", caption_column="title")
    assert named.pairs.ids == ("1", "2", "3")
    with pytest.raises(IngestError, match="the header has tabs: a TSV"):
        open_pairs(tmp_path / "train.csv", IngestCfg(format="csv"))


def test_image_id_column_groups_captions_without_duplicate_ids(tmp_path: Path, run, png) -> None:
    for name in ("1000.jpg", "1001.jpg"):
        (tmp_path / name).write_bytes(png(len(name), fmt="JPEG"))
    rows = [("1000", "1000.jpg", f"caption {k}") for k in range(3)] + [("1001", "1001.jpg", "other")]
    rows += [("1000", "1000.jpg", "")]  # quarantined, but it still counts as caption 3 of image 1000
    rows += [("1000", "1000.jpg", "last")]
    with open(tmp_path / "results.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("image_name", "image", "comment"), *rows])
    got = run(tmp_path / "results.csv", image_id_column="image_name", caption_column="comment")
    assert got.pairs.ids == ("1000#0", "1000#1", "1000#2", "1001#0", "1000#4")
    assert got.pairs.image_keys == ("1000", "1000", "1000", "1001", "1000")
    assert got.reasons() == [(6, "1000#3", "caption_empty")] and got.summary["images"] == 2
    # the id column may be the image id column: same derived ids, never duplicate_id
    same = run(tmp_path / "results.csv", id_column="image_name", image_id_column="image_name", caption_column="comment")
    assert same.pairs.ids == got.pairs.ids


def test_image_id_column_beside_an_id_column_keeps_the_ids(tmp_path: Path, run, png) -> None:
    (tmp_path / "a.png").write_bytes(png(0))
    lines = [{"id": f"ann{k}", "image_id": 7, "image": "a.png", "caption": f"c{k}"} for k in range(3)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    got = run(tmp_path / "m.jsonl", image_id_column="image_id")
    assert got.pairs.ids == ("ann0", "ann1", "ann2") and got.pairs.image_keys == ("7", "7", "7")
    with pytest.raises(IngestError, match=r"missing required column\(s\) 'img_id' \(image_id_column\)"):
        open_pairs(tmp_path / "m.jsonl", IngestCfg(image_id_column="img_id"))
