"""img2dataset's three output layouts as its writers lay them out, compressed shards, captions in KEY.json.

img2dataset writes, per shard NNNNN: ``files``: a folder NNNNN/ of KEY.jpg + KEY.txt + KEY.json;
``webdataset``: NNNNN.tar of the same members; ``parquet``: image bytes in a ``jpg`` column. Beside
each: NNNNN.parquet (for files/webdataset, the metadata of every row, downloaded or not) and
NNNNN_stats.json. Rows whose ``status`` is not "success" have no image anywhere.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

# shard → (key, caption, seed or None when the download failed)
SHARDS = {
    "00000": [("000000000", "a red bus", 0), ("000000001", None, None), ("000000002", "two dogs", 2)],
    "00001": [("000010000", "a tall tree", 3), ("000010001", "the sea", 4)],
}
OK_KEYS = ("000000000", "000000002", "000010000", "000010001")


def _meta(key: str, caption: str | None, seed: int | None) -> dict:
    ok = seed is not None
    return {
        "url": f"https://example.com/{key}.jpg",
        "caption": caption if ok else "a lost picture",
        "key": key,
        "status": "success" if ok else "failed_to_download",
        "error_message": None if ok else "HTTP Error 404: Not Found",
        "width": 10 if ok else None,
        "height": 12 if ok else None,
    }


def write_img2dataset(out: Path, layout: str, png, tar) -> Path:
    out.mkdir()
    for shard, samples in SHARDS.items():
        metas = [_meta(*s) for s in samples]
        members = []
        for (key, caption, seed), meta in zip(samples, metas):
            if seed is not None:
                members += [(f"{key}.jpg", png(seed, fmt="JPEG")), (f"{key}.txt", caption.encode())]
                members += [(f"{key}.json", json.dumps(meta, indent=4).encode())]
        table = pa.Table.from_pylist(metas)
        if layout == "parquet":
            jpgs = [png(s[2], fmt="JPEG") if s[2] is not None else None for s in samples]
            table = table.append_column("jpg", pa.array(jpgs, type=pa.binary()))
        pq.write_table(table, out / f"{shard}.parquet")
        (out / f"{shard}_stats.json").write_text(json.dumps({"count": len(samples), "successes": len(members) // 3}))
        if layout == "files":
            (out / shard).mkdir()
            for name, data in members:
                (out / shard / name).write_bytes(data)
        elif layout == "webdataset":
            tar(out / f"{shard}.tar", members)
    return out


@pytest.mark.parametrize("layout", ["files", "webdataset", "parquet"])
def test_every_img2dataset_layout_reads_the_same_pairs(tmp_path: Path, run, png, tar, pixels, layout: str) -> None:
    out = write_img2dataset(tmp_path / "out", layout, png, tar)
    got = run(out)
    assert got.pairs.ids == OK_KEYS and got.pairs.image_keys == OK_KEYS
    assert got.pairs.captions == ("a red bus", "two dogs", "a tall tree", "the sea")
    np.testing.assert_array_equal(got.pairs.images[1], pixels(2, fmt="JPEG"))
    failed = [(r.id, r.reason, Path(r.source).name, r.line) for r in got.records]
    assert failed == [("000000001", "download_failed", "00000.parquet", 2)]
    assert "failed_to_download" in got.records[0].message and "404" in got.records[0].message
    name = {
        "files": "img2dataset files",
        "webdataset": "img2dataset webdataset",
        "parquet": "folder of 2 parquet shards",
    }
    assert got.summary["layout"] == name[layout] and got.summary["files"] == 2
    first = got.pairs.rows[0]
    expected = {
        "files": str((out / "00000/000000000.jpg").resolve()),
        "webdataset": f"{out.resolve()}/00000.tar::000000000.jpg",
        "parquet": f"{out.resolve()}/00000.parquet::1",
    }
    assert first.ref == expected[layout]


def test_files_layout_refuses_symlinks_out_of_the_root_and_reads_json_captions(tmp_path: Path, run, png, tar) -> None:
    out = write_img2dataset(tmp_path / "out", "files", png, tar)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(png(9, fmt="JPEG"))
    (out / "00001/000010002.jpg").symlink_to(secret)
    (out / "00001/000010002.txt").write_text("escapes")
    (tmp_path / "secret.txt").write_text("private words")
    (out / "00001/000010003.jpg").write_bytes(png(8, fmt="JPEG"))
    (out / "00001/000010003.txt").symlink_to(tmp_path / "secret.txt")  # a caption may not leak a file either
    (out / "00001/000010004.jpg").write_bytes(png(7, fmt="JPEG"))
    (out / "00001/000010004.json").write_text(json.dumps({"caption": "from the json", "key": "000010004"}))
    got = run(out)
    assert got.pairs.ids[-1] == "000010004" and got.pairs.captions[-1] == "from the json"
    assert [(r.id, r.reason) for r in got.records if r.reason != "download_failed"] == [
        ("000010002", "path_outside_root"),
        ("000010003", "path_outside_root"),
    ]
    assert all("private words" not in c for c in got.pairs.captions)


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz"])
def test_gzipped_shards(tmp_path: Path, run, png, tar, suffix: str) -> None:
    (tmp_path / "shards").mkdir()
    for n in range(2):
        members = [(f"{n}{k}.png", png(10 * n + k)) for k in range(2)]
        members += [(f"{n}{k}.txt", f"shard {n} sample {k}".encode()) for k in range(2)]
        tar(tmp_path / f"shards/{n:05d}{suffix}", sorted(members), mode="w:gz")
    got = run(tmp_path / "shards")
    assert got.pairs.ids == ("00", "01", "10", "11") and got.stream.format == "tar"
    assert got.pairs.rows[3].ref == f"{(tmp_path / 'shards').resolve()}/00001{suffix}::11.png"
    assert run(tmp_path / f"shards/00001{suffix}").pairs.ids == ("10", "11")


def test_caption_from_a_json_field(tmp_path: Path, run, png, tar) -> None:
    meta = {"caption": "json caption", "alt": "alt text", "image_id": "img-1"}
    members = [("a.jpg", png(0, fmt="JPEG")), ("a.json", json.dumps(meta).encode()), ("a.txt", b"txt caption")]
    members += [("b.jpg", png(1, fmt="JPEG")), ("b.json", json.dumps(meta | {"alt": None}).encode())]
    members += [("c.jpg", png(2, fmt="JPEG")), ("c.json", b"{not json")]
    shard = tar(tmp_path / "s.tar", members)
    assert run(shard).pairs.captions == ("txt caption", "json caption")  # KEY.txt first, else KEY.json
    assert run(shard).records[0].reason == "malformed_row"
    alt = run(shard, caption_ext="json", caption_column="alt")
    assert alt.pairs.captions == ("alt text",) and [r.reason for r in alt.records] == ["caption_empty", "malformed_row"]
    grouped = run(shard, image_id_column="image_id")
    assert grouped.pairs.ids == ("a", "b") and grouped.pairs.image_keys == ("img-1", "img-1")
