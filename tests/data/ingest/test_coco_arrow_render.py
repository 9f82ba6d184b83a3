"""COCO captions JSON, Hugging Face save_to_disk folders (Arrow IPC streams), this project's render folders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from misalignlab.data.ingest.stream import EmptyDatasetError, IngestCfg, IngestError, open_pairs
from misalignlab.data.scenes.dataset import make_scene_pairs, write_dataset_folder

HF_IMAGE = pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])


def write_coco(top: Path, png) -> Path:
    """COCO's own layout: annotations/captions_val2017.json beside val2017/*.jpg."""
    (top / "annotations").mkdir(parents=True)
    (top / "val2017").mkdir()
    images = []
    for image_id in (139, 285, 632):
        name = f"{image_id:012d}.jpg"
        (top / "val2017" / name).write_bytes(png(image_id, fmt="JPEG"))
        images.append({"id": image_id, "file_name": name, "height": 12, "width": 10, "coco_url": f"http://x/{name}"})
    annotations = [
        {"image_id": 285, "id": 1, "caption": "A big brown bear."},
        {"image_id": 139, "id": 2, "caption": "A living room."},
        {"image_id": 285, "id": 3, "caption": "A bear sitting in grass."},
        {"image_id": 999, "id": 4, "caption": "No such image."},
        {"image_id": 139, "id": 5, "caption": "  "},
        {"image_id": 632, "id": 6, "caption": "A bedroom."},
    ]
    doc = {"info": {}, "licenses": [], "images": images, "annotations": annotations}
    path = top / "annotations/captions_val2017.json"
    path.write_text(json.dumps(doc))
    return path


def test_coco_captions_group_by_image_with_the_split_folder_as_root(tmp_path: Path, run, png, pixels) -> None:
    path = write_coco(tmp_path / "coco", png)
    for source in (path, tmp_path / "coco"):  # the JSON, or the folder holding annotations/
        got = run(source)
        assert got.pairs.ids == ("2", "1", "3", "6")  # grouped by image, in the order of 'images'
        assert got.pairs.image_keys == ("139", "285", "285", "632")
        assert got.pairs.captions[1:3] == ("A big brown bear.", "A bear sitting in grass.")
        assert got.summary["root"] == str((tmp_path / "coco/val2017").resolve()) and got.summary["images"] == 3
        assert got.reasons() == [(5, "5", "caption_empty"), (4, "4", "image_missing")]
        assert got.pairs.rows[1].line == 1 and got.pairs.rows[1].ref == str(
            (tmp_path / "coco/val2017/000000000285.jpg").resolve()
        )
        np.testing.assert_array_equal(got.pairs.images[1], pixels(285, fmt="JPEG"))
    moved = tmp_path / "elsewhere"
    (tmp_path / "coco/val2017").rename(moved)
    assert run(path, root=str(moved)).pairs.ids == ("2", "1", "3", "6")
    with pytest.raises(EmptyDatasetError, match="5 image_missing"):  # the default root holds no image now
        run(path)


def test_coco_without_annotation_ids_and_with_urls_only(tmp_path: Path, run, png) -> None:
    (tmp_path / "a.png").write_bytes(png(0))
    doc = {
        "images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "coco_url": "http://images.cocodataset.org/x.jpg"}],
        "annotations": [
            {"image_id": 1, "caption": "one"},
            {"image_id": 1, "caption": "two"},
            {"image_id": 2, "caption": "x"},
        ],
    }
    (tmp_path / "caps.json").write_text(json.dumps(doc))
    got = run(tmp_path / "caps.json")
    assert got.pairs.ids == ("1#0", "1#1") and [r.reason for r in got.records] == ["remote_url"]
    (tmp_path / "bad.json").write_text(json.dumps({"images": []}))
    with pytest.raises(IngestError, match=r"bad\.json: not a COCO captions file: no 'annotations'"):
        open_pairs(tmp_path / "bad.json")


def save_to_disk(folder: Path, shards: list[pa.Table]) -> Path:
    """What ``datasets.Dataset.save_to_disk`` writes: Arrow IPC streams, state.json, dataset_info.json."""
    folder.mkdir()
    names = [f"data-{i:05d}-of-{len(shards):05d}.arrow" for i in range(len(shards))]
    for name, table in zip(names, shards):
        with pa.OSFile(str(folder / name), "wb") as sink, ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table, max_chunksize=2)  # several record batches per shard
    state = {"_data_files": [{"filename": n} for n in reversed(names)], "_fingerprint": "f", "_split": "train"}
    state |= {"_format_columns": None, "_format_kwargs": {}, "_format_type": None, "_output_all_columns": False}
    (folder / "state.json").write_text(json.dumps(state))
    features = {
        "image": {"_type": "Image"},
        "text": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"},
    }
    (folder / "dataset_info.json").write_text(json.dumps({"features": features}))
    return folder


def test_hugging_face_save_to_disk_folder(tmp_path: Path, run, png, pixels) -> None:
    def shard(seeds: list[int]) -> pa.Table:
        images = pa.array([{"bytes": png(s), "path": f"{s}.png"} for s in seeds], type=HF_IMAGE)
        texts = pa.array([[f"image {s}", f"picture {s}"] for s in seeds], type=pa.list_(pa.string()))
        return pa.table({"image": images, "text": texts})

    folder = save_to_disk(tmp_path / "ds", [shard([0, 1, 2]), shard([3])])
    got = run(folder)
    # state.json lists shard 1 first: its order is the dataset's; record numbers run across shards
    assert got.pairs.ids == ("1#0", "1#1", "2#0", "2#1", "3#0", "3#1", "4#0", "4#1")
    assert got.pairs.image_keys == ("1", "1", "2", "2", "3", "3", "4", "4")
    assert [Path(r.source).name for r in got.pairs.rows][:3] == ["data-00001-of-00002.arrow"] * 2 + [
        "data-00000-of-00002.arrow"
    ]
    assert got.pairs.captions[:3] == ("image 3", "picture 3", "image 0")
    assert got.records == [] and got.summary["layout"] == "Hugging Face save_to_disk folder"
    np.testing.assert_array_equal(got.pairs.images[0], pixels(3))
    assert got.pairs.rows[2].ref == f"{folder.resolve()}/data-00000-of-00002.arrow::1"


def test_arrow_ipc_file_format_reads_too(tmp_path: Path, run, png) -> None:
    table = pa.table({"key": ["a", "b"], "jpg": [png(0), png(1)], "caption": ["zero", "one"]})
    with pa.OSFile(str(tmp_path / "d.arrow"), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=1)
    got = run(tmp_path / "d.arrow")
    assert got.pairs.ids == ("a", "b") and got.pairs.rows[1].ref == f"{tmp_path / 'd.arrow'}::2"


def test_dataset_dict_folder_asks_for_a_split(tmp_path: Path) -> None:
    (tmp_path / "dd").mkdir()
    (tmp_path / "dd/dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    with pytest.raises(IngestError, match="DatasetDict \\(splits: train, test\\); pass one split folder"):
        open_pairs(tmp_path / "dd")


def test_render_output_folder_reads_as_its_captions_csv(tmp_path: Path, run) -> None:
    pairs = make_scene_pairs(4, seed=0)
    folder = write_dataset_folder(pairs, tmp_path / "rendered")
    got = run(folder, image_size=pairs.images.shape[1])
    assert got.summary["layout"] == "render folder" and got.summary["files"] == 1
    assert got.pairs.captions == tuple(c.strip() for c in pairs.captions)
    np.testing.assert_array_equal(got.pairs.images, pairs.images)
    assert open_pairs(folder, IngestCfg(format="csv")).files == [folder / "captions.csv"]
