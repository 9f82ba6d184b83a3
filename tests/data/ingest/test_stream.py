"""Ingestion of user datasets: streaming, quarantine with exact reasons and lines, path safety."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from misalignlab.data.ingest.quarantine import REASONS, read_quarantine
from misalignlab.data.ingest.stream import (
    EmptyDatasetError,
    IngestCfg,
    IngestError,
    PairChunk,
    PairError,
    check_caption,
    open_pairs,
    resolve_inside,
)

S = 8  # model image size in these tests


def png_bytes(seed: int, size: tuple[int, int] = (10, 12), fmt: str = "PNG") -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()


def run(path: Path, out: Path | None = None, **cfg: object) -> tuple[PairChunk, dict, list]:
    stream = open_pairs(path, IngestCfg(image_size=S, **cfg), quarantine_dir=out)
    chunks = list(stream)
    records = read_quarantine(out / "quarantine.jsonl") if out else stream.quarantine.records
    return PairChunk.concat(chunks), stream.summary(), records


GOOD = [(f"p{i}", f"images/p{i}.png", f"a photo number {i}") for i in range(5)]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A dataset root with five good images and one of each kind of bad file."""
    ds = tmp_path / "ds"
    (ds / "images").mkdir(parents=True)
    for i in range(5):
        (ds / f"images/p{i}.png").write_bytes(png_bytes(i))
    good = png_bytes(99)
    (ds / "images/garbage.png").write_bytes(b"this is not an image at all")
    (ds / "images/trunc.png").write_bytes(good[: len(good) // 2])
    (ds / "images/trunc.jpg").write_bytes(png_bytes(7, (64, 64), "JPEG")[:-400])
    (ds / "images/big.png").write_bytes(png_bytes(5, (200, 200)))
    (ds / "images/sub").mkdir()
    outside = tmp_path / "secret.png"
    outside.write_bytes(good)
    (ds / "images/escape.png").symlink_to(outside)
    (ds / "images/inside_link.png").symlink_to(ds / "images/p0.png")
    return ds


def write_csv(path: Path, rows: list[list[str]], header: tuple[str, ...] = ("id", "image", "caption")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_csv_quarantines_each_reason_with_lines_and_run_goes_on(root: Path, tmp_path: Path) -> None:
    rows = [list(g) for g in GOOD[:2]]  # lines 2, 3
    rows += [["m1", "images/missing.png", "x"]]  # line 4
    rows += [["u1", "images/garbage.png", "x"], ["u2", "images/trunc.png", "x"], ["u3", "images/trunc.jpg", "x"]]
    rows += [["g1", "images/big.png", "x"]]  # line 8
    rows += [["o1", "../../etc/passwd", "x"], ["o2", "images/escape.png", "x"]]  # lines 9, 10
    rows += [["e1", "images/p2.png", "   "], ["t1", "images/p2.png", "y" * 300]]  # lines 11, 12
    rows += [["p0", "images/p3.png", "same id again"]]  # line 13: duplicate of an accepted id
    rows += [["d1", "images/sub", "a folder"]]  # line 14
    rows += [["l1", "images/inside_link.png", "a caption\nspanning two lines"]]  # lines 15-16, accepted
    rows += [["short", "images/p4.png"]]  # line 17: one field missing
    rows += [list(g) for g in GOOD[2:]]  # lines 18-20
    path = write_csv(root / "manifest.csv", rows)
    # a non-UTF-8 caption appended as raw bytes: line 21
    with open(path, "ab") as fh:
        fh.write(b"n1,images/p4.png,caf\xe9 au lait\r\n")
    out = tmp_path / "run"
    pairs, summary, records = run(path, out, chunk_size=2, max_image_pixels=10_000, max_caption_chars=200)

    assert list(pairs.ids) == ["p0", "p1", "l1", "p2", "p3", "p4"]
    assert pairs.images.shape == (6, S, S, 3) and pairs.images.dtype == np.uint8
    assert pairs.captions[2] == "a caption\nspanning two lines"
    got = {(r.line, r.id, r.reason) for r in records}
    assert got == {
        (4, "m1", "image_missing"),
        (5, "u1", "image_unreadable"),
        (6, "u2", "image_unreadable"),
        (7, "u3", "image_unreadable"),
        (8, "g1", "image_too_large"),
        (9, "o1", "path_outside_root"),
        (10, "o2", "path_outside_root"),
        (11, "e1", "caption_empty"),
        (12, "t1", "caption_too_long"),
        (13, "p0", "duplicate_id"),
        (14, "d1", "image_missing"),
        (17, "short", "malformed_row"),
        (21, "n1", "caption_not_utf8"),
    }
    assert all(r.source == str(path) and r.message for r in records)
    assert summary["accepted"] == 6 and summary["quarantined"] == 13 and summary["rows_read"] == 19
    assert summary["by_reason"]["image_unreadable"] == 3 and summary["complete"]
    assert pairs.rows[2].line == 15 and pairs.rows[3].line == 18
    assert [p.name for p in out.iterdir()] == ["quarantine.jsonl"]  # no temp file left behind


def test_etc_passwd_and_escaping_symlink_refused(root: Path) -> None:
    base = root.resolve()
    for ref in ("../../etc/passwd", "/etc/passwd", "images/../../secret.png", "images/escape.png"):
        with pytest.raises(PairError) as err:
            resolve_inside(base, ref)
        assert err.value.reason == "path_outside_root"
    assert resolve_inside(base, "images/inside_link.png") == base / "images/p0.png"
    assert resolve_inside(base, str(base / "images/p1.png")) == base / "images/p1.png"
    with pytest.raises(PairError) as err:
        resolve_inside(base, "images/p\x00.png")
    assert err.value.reason == "path_invalid"


def test_jsonl_reasons_and_lines(root: Path) -> None:
    lines = [json.dumps({"id": i, "image": img, "caption": cap}) for i, img, cap in GOOD[:3]]  # lines 1-3
    lines += [""]  # line 4: blank, skipped
    lines += ['{"id": "b1", "image": "images/p0.png", "caption": 42}']  # 5
    lines += ['{"id": "b2", "image": "images/p0.png", "caption": null}']  # 6
    lines += ['{"id": "b3", "image": "images/p0.png", "caption": "bad \\udcff escape"}']  # 7
    lines += ["{not json"]  # 8
    lines += ['["a", "list"]']  # 9
    lines += ['{"id": "b4", "image": "images/p\\u0000.png", "caption": "nul"}']  # 10
    lines += ['{"id": "", "image": "images/p0.png", "caption": "empty id"}']  # 11
    lines += ['{"id": "b5", "image": 7, "caption": "number path"}']  # 12
    path = root / "manifest.jsonl"
    path.write_bytes(
        ("\n".join(lines) + "\n").encode() + b'{"id": "b6", "image": "images/p1.png", "caption": "\xff"}\n'
    )
    pairs, summary, records = run(path)
    assert list(pairs.ids) == ["p0", "p1", "p2"]
    assert [(r.line, r.reason) for r in records] == [
        (5, "caption_not_text"),
        (6, "caption_empty"),
        (7, "caption_not_utf8"),
        (8, "malformed_row"),
        (9, "malformed_row"),
        (10, "path_invalid"),
        (11, "malformed_row"),
        (12, "path_invalid"),
        (13, "caption_not_utf8"),
    ]
    assert summary["quarantined"] == 9


def write_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def good_members(ids: list[int]) -> list[tuple[str, bytes]]:
    out = []
    for i in ids:
        out += [(f"p{i}.png", png_bytes(i)), (f"p{i}.txt", f"a photo number {i}".encode())]
    return out


def test_all_formats_give_identical_pairs(root: Path, tmp_path: Path) -> None:
    write_csv(root / "m.csv", [list(g) for g in GOOD])
    (root / "m.jsonl").write_text("".join(json.dumps(dict(zip(("id", "image", "caption"), g))) + "\n" for g in GOOD))
    table = pa.table({k: [g[j] for g in GOOD] for j, k in enumerate(("id", "image", "caption"))})
    pq.write_table(table, root / "m.parquet", row_group_size=2)
    shards = tmp_path / "shards"
    shards.mkdir()
    write_tar(shards / "a.tar", good_members([0, 1, 2]))
    write_tar(shards / "b.tar", good_members([3, 4]))
    results = [run(root / name, chunk_size=2)[0] for name in ("m.csv", "m.jsonl", "m.parquet")] + [run(shards)[0]]
    ref = results[0]
    assert list(ref.ids) == [g[0] for g in GOOD]
    for other in results[1:]:
        assert other.ids == ref.ids and other.captions == ref.captions
        np.testing.assert_array_equal(other.images, ref.images)


def test_streaming_yields_chunks_smaller_than_dataset(root: Path) -> None:
    path = write_csv(root / "m.csv", [list(g) for g in GOOD] + [["x", "images/missing.png", "c"]])
    stream = open_pairs(path, IngestCfg(image_size=S, chunk_size=2))
    sizes = []
    for chunk in stream:
        sizes.append(len(chunk))
        assert stream.accepted == sum(sizes)  # rows are validated as they are read, not all up front
    assert sizes == [2, 2, 1] and stream.quarantine.total == 1
    with pytest.raises(RuntimeError):
        list(stream)


def test_parquet_rows_and_types(root: Path) -> None:
    table = pa.table(
        {
            "img": ["images/p0.png", "images/p1.png", None, "images/p2.png"],
            "text": [b"first", b"\xff\xfe", b"third", None],
        }
    )
    pq.write_table(table, root / "m.parquet")
    pairs, summary, records = run(root / "m.parquet", image_column="img", caption_column="text")
    assert list(pairs.ids) == ["1"] and pairs.captions == ("first",)  # no id column: the record number
    assert [(r.line, r.reason) for r in records] == [
        (2, "caption_not_utf8"),
        (3, "image_missing"),
        (4, "caption_empty"),
    ]


def test_tar_reasons(tmp_path: Path) -> None:
    members = good_members([0])  # members 1-2
    members += [("nocap.png", png_bytes(1))]  # 3: caption missing
    members += [("noimg.txt", b"only text")]  # 4: image missing
    members += [("badtxt.png", png_bytes(2)), ("badtxt.txt", b"\xff")]  # 5-6
    members += [("broken.jpg", b"garbage"), ("broken.txt", b"x")]  # 7-8
    members += [("two.png", png_bytes(3)), ("two.jpg", png_bytes(3, fmt="JPEG")), ("two.txt", b"x")]  # 9-11
    members += good_members([1])  # 12-13
    members += [("p0.png", png_bytes(4)), ("p0.txt", b"again")]  # 14-15: duplicate key
    shard = write_tar(tmp_path / "s.tar", members)
    pairs, _, records = run(shard)
    assert list(pairs.ids) == ["p0", "p1"] and pairs.rows[1].image.member == "p1.png"
    assert [(r.line, r.id, r.reason) for r in records] == [
        (3, "nocap", "caption_empty"),
        (4, "noimg", "image_missing"),
        (5, "badtxt", "caption_not_utf8"),
        (7, "broken", "image_unreadable"),
        (9, "two", "malformed_row"),
        (14, "p0", "duplicate_id"),
    ]


def test_truncated_shard_keeps_earlier_samples(tmp_path: Path) -> None:
    shard = write_tar(tmp_path / "s.tar", good_members([0, 1, 2]))
    data = shard.read_bytes()
    offset = data.index(b"p2.png") + 512 + 10  # inside the data of member 5
    shard.write_bytes(data[:offset])
    pairs, _, records = run(shard)
    assert list(pairs.ids) == ["p0", "p1"]
    assert [r.reason for r in records] == ["shard_truncated"]


def test_thumbnails_reread_accepted_images(root: Path, tmp_path: Path) -> None:
    write_csv(root / "m.csv", [list(GOOD[0])])
    stream = open_pairs(root / "m.csv", IngestCfg(image_size=S))
    chunk = next(iter(stream))
    thumb = stream.thumbnail(chunk.rows[0].image, max_side=6)
    assert thumb.dtype == np.uint8 and max(thumb.shape[:2]) == 6 and thumb.shape[2] == 3
    shard = write_tar(tmp_path / "s.tar", good_members([0]))
    stream = open_pairs(shard, IngestCfg(image_size=S))
    chunk = next(iter(stream))
    assert stream.thumbnail(chunk.rows[0].image, max_side=128).shape == (12, 10, 3)


def test_fatal_errors_name_file_and_line(root: Path, tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="nope.csv: no such file"):
        open_pairs(root / "nope.csv")
    path = write_csv(root / "m.csv", [["a", "images/p0.png", "c"]], header=("id", "picture", "caption"))
    with pytest.raises(IngestError, match=r"m\.csv, line 1: missing required column\(s\) 'image'"):
        open_pairs(path)
    (root / "m.jsonl").write_text('\n{"img": "images/p0.png", "caption": "c"}\n')
    with pytest.raises(IngestError, match=r"m\.jsonl, line 2: missing required column\(s\) 'image'"):
        open_pairs(root / "m.jsonl")
    (root / "m.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(IngestError, match=r"m\.parquet: unparseable parquet"):
        open_pairs(root / "m.parquet")
    with pytest.raises(IngestError, match="unknown manifest type '.txt'"):
        (root / "m.txt").write_text("x")
        open_pairs(root / "m.txt")
    assert issubclass(IngestError, ValueError)


def test_folder_source_and_ambiguity(root: Path) -> None:
    write_csv(root / "m.csv", [list(g) for g in GOOD[:2]])
    assert list(PairChunk.concat(list(open_pairs(root, IngestCfg(image_size=S)))).ids) == ["p0", "p1"]
    (root / "other.jsonl").write_text("")
    with pytest.raises(IngestError, match="several possible manifests"):
        open_pairs(root)
    assert open_pairs(root, IngestCfg(format="csv")).format == "csv"


def test_empty_dataset_raises_after_writing_quarantine(root: Path, tmp_path: Path) -> None:
    path = write_csv(root / "m.csv", [["a", "images/missing.png", "c"], ["b", "../../etc/passwd", "c"]])
    out = tmp_path / "run"
    with pytest.raises(EmptyDatasetError, match=r"m\.csv: no valid image–caption pair.*1 image_missing"):
        list(open_pairs(path, IngestCfg(image_size=S), quarantine_dir=out))
    assert [r.reason for r in read_quarantine(out / "quarantine.jsonl")] == ["image_missing", "path_outside_root"]
    header_only = write_csv(root / "h.csv", [])
    with pytest.raises(EmptyDatasetError):
        list(open_pairs(header_only))


def test_check_caption_and_reason_codes() -> None:
    assert check_caption("  hi there \n") == "hi there"
    assert check_caption(b"\xef\xbb\xbfbom") == "bom"
    cases = [
        (None, "caption_empty"),
        ("\t", "caption_empty"),
        (3.5, "caption_not_text"),
        (["a"], "caption_not_text"),
        (b"\xc3", "caption_not_utf8"),
        ("x\udcff", "caption_not_utf8"),
    ]
    for value, reason in cases:
        with pytest.raises(PairError) as err:
            check_caption(value)
        assert err.value.reason == reason and err.value.reason in REASONS


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="valid: auto, csv, tsv, jsonl, parquet, tar, coco, arrow, files"):
        IngestCfg(format="xlsx")
    with pytest.raises(ValueError, match="valid: crop, stretch"):
        IngestCfg(fit="pad")


def test_quarantine_file_written_when_clean_or_abandoned(root: Path, tmp_path: Path) -> None:
    path = write_csv(root / "m.csv", [list(g) for g in GOOD])
    _, summary, records = run(path, tmp_path / "clean")
    assert records == [] and (tmp_path / "clean" / "quarantine.jsonl").read_text() == ""
    assert summary["quarantined"] == 0 and summary["accepted"] == 5
    bad_first = write_csv(root / "b.csv", [["x", "images/missing.png", "c"]] + [list(g) for g in GOOD])
    out = tmp_path / "partial"
    stream = open_pairs(bad_first, IngestCfg(image_size=S, chunk_size=2), quarantine_dir=out)
    it = iter(stream)
    next(it)
    it.close()  # the consumer stops early: what was found is kept, and the summary says so
    assert [r.line for r in read_quarantine(out / "quarantine.jsonl")] == [2]
    assert not stream.summary()["complete"] and sorted(p.name for p in out.iterdir()) == ["quarantine.jsonl"]


def test_only_common_image_formats_are_parsed(root: Path) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (4, 4), (9, 9, 9)).save(buf, format="PPM")  # PIL can read it, we do not
    (root / "images/x.ppm").write_bytes(buf.getvalue())
    (root / "images/p.webp").write_bytes(png_bytes(1, fmt="WEBP"))
    path = write_csv(root / "m.csv", [["a", "images/x.ppm", "c"], ["b", "images/p.webp", "c"]])
    pairs, _, records = run(path)
    assert list(pairs.ids) == ["b"] and [(r.id, r.reason) for r in records] == [("a", "image_unreadable")]
