"""Layout detection rules (format=auto and explicit formats) and the ingest config's validation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from misalignlab.data.ingest.config import FORMATS, IngestCfg
from misalignlab.data.ingest.detect_format import detect_layout
from misalignlab.data.ingest.records import IngestError


def make(root: Path, files: dict[str, str]) -> Path:
    """A folder with these (empty or small text) files; names ending in '/' are folders."""
    for name, text in files.items():
        path = root / name
        if name.endswith("/"):
            path.mkdir(parents=True, exist_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return root


STATE = json.dumps(
    {"_data_files": [{"filename": "data-00001-of-00002.arrow"}, {"filename": "data-00000-of-00002.arrow"}]}
)
LAYOUTS = {
    # name: (files, format, layout name, files read)
    "csv": ({"m.csv": "image,caption\n", "images/": ""}, "csv", "CSV manifest", ["m.csv"]),
    "open_clip": ({"train.csv": "filepath\ttitle\n"}, "tsv", "TSV manifest", ["train.csv"]),
    "hf": (
        {
            "state.json": STATE,
            "dataset_info.json": "{}",
            "data-00000-of-00002.arrow": "",
            "data-00001-of-00002.arrow": "",
        },
        "arrow",
        "Hugging Face save_to_disk folder",
        ["data-00001-of-00002.arrow", "data-00000-of-00002.arrow"],
    ),
    "render": (
        {"captions.csv": "image,caption\n", "truth.parquet": "", "config.json": "{}", "images/": ""},
        "csv",
        "render folder",
        ["captions.csv"],
    ),
    "webdataset": (
        {"00000.tar": "", "00001.tar": "", "00000.parquet": "", "00001.parquet": "", "00000_stats.json": "{}"},
        "tar",
        "img2dataset webdataset",
        ["00000.tar", "00001.tar"],
    ),
    "tgz": ({"a.tar.gz": "", "b.tgz": ""}, "tar", "webdataset tar shards", ["a.tar.gz", "b.tgz"]),
    "files": (
        {"00000/000000000.jpg": "", "00000.parquet": "", "00000_stats.json": "{}", "00001/000010000.jpg": ""},
        "files",
        "img2dataset files",
        ["00000", "00001"],
    ),
    "coco": (
        {"annotations/captions_val2017.json": "{}", "val2017/": ""},
        "coco",
        "COCO captions JSON",
        ["annotations/captions_val2017.json"],
    ),
    "parquet shards": (
        {"00000.parquet": "", "00000_stats.json": "{}", "00001.parquet": ""},
        "parquet",
        "folder of 2 parquet shards",
        ["00000.parquet", "00001.parquet"],
    ),
    "flat samples": ({"a.jpg": "", "a.txt": "", "b.jpg": "", "b.json": "{}"}, "files", "folder of sample files", ["."]),
}


@pytest.mark.parametrize("case", list(LAYOUTS))
def test_auto_detects_each_layout(tmp_path: Path, case: str) -> None:
    files, fmt, name, read = LAYOUTS[case]
    layout = detect_layout(make(tmp_path, files))
    assert (layout.format, layout.name) == (fmt, name)
    assert [str(p.relative_to(tmp_path)) for p in layout.files] == read
    if case == "coco":
        assert layout.root == (tmp_path / "val2017").resolve()
    status = {p.name: s.name for p, s in layout.status.items()}
    if case == "webdataset":
        assert status == {"00000.tar": "00000.parquet", "00001.tar": "00001.parquet"}
    if case == "files":
        assert status == {"00000": "00000.parquet"}  # shard 00001 has no status file


def test_files_by_name(tmp_path: Path) -> None:
    names = {"a.csv": "csv", "a.tsv": "tsv", "a.jsonl": "jsonl", "a.ndjson": "jsonl", "a.parquet": "parquet"}
    names |= {"a.arrow": "arrow", "a.tar": "tar", "a.tar.gz": "tar", "a.tgz": "tar", "a.json": "coco"}
    for name, fmt in names.items():
        make(tmp_path, {name: "x,y\n"})
        assert detect_layout(tmp_path / name).format == fmt, name
    assert detect_layout(tmp_path / "a.csv", "tsv").format == "tsv"  # an explicit format wins
    with pytest.raises(IngestError, match="unknown manifest type '.txt'"):
        detect_layout(make(tmp_path, {"a.txt": ""}) / "a.txt")
    with pytest.raises(IngestError, match="format 'files' reads a folder"):
        detect_layout(tmp_path / "a.csv", "files")


def test_ambiguous_and_empty_folders_fail_naming_what_was_found(tmp_path: Path) -> None:
    cases = [
        ({"m.csv": "", "other.jsonl": ""}, "several possible manifests"),
        ({"s.tar": "", "m.csv": ""}, "several possible manifests"),
        ({"captions_train2017.json": "", "captions_val2017.json": ""}, "several COCO caption files"),
        ({"dataset_dict.json": json.dumps({"splits": ["train"]}), "train/": ""}, "DatasetDict"),
        ({"notes.md": ""}, "no dataset found"),
        ({"state.json": json.dumps({"_data_files": [{"filename": "../x.arrow"}]})}, "not a file in this folder"),
    ]
    for n, (files, message) in enumerate(cases):
        with pytest.raises(IngestError, match=message):
            detect_layout(make(tmp_path / str(n), files))


def test_explicit_formats_on_a_folder(tmp_path: Path) -> None:
    make(tmp_path, {"m.csv": "a\tb\n", "other.jsonl": "", "s.tar": "", "x.parquet": "", "one.json": "{}"})
    assert detect_layout(tmp_path, "csv").files == (tmp_path / "m.csv",)
    assert detect_layout(tmp_path, "tsv").files == (tmp_path / "m.csv",)  # no .tsv here: the .csv files
    assert detect_layout(tmp_path, "jsonl").files == (tmp_path / "other.jsonl",)
    assert detect_layout(tmp_path, "tar").files == (tmp_path / "s.tar",)
    assert detect_layout(tmp_path, "coco").files == (tmp_path / "one.json",)
    with pytest.raises(IngestError, match="nothing readable as arrow"):
        detect_layout(tmp_path, "arrow")
    assert detect_layout(tmp_path, "parquet", root=str(tmp_path / ".")).root == tmp_path.resolve()
    with pytest.raises(IngestError, match="the image root is not a folder"):
        detect_layout(tmp_path, "csv", root=str(tmp_path / "missing"))


def test_ingest_config_validates_on_construction() -> None:
    with pytest.raises(ValueError, match="valid: " + ", ".join(FORMATS)):
        IngestCfg(format="xlsx")
    for bad in ({"caption_ext": ".txt"}, {"caption_ext": ""}, {"image_column": " "}, {"chunk_size": 0}):
        with pytest.raises(ValueError):
            IngestCfg(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="valid: crop, stretch"):
        IngestCfg(fit="pad")
    cfg = IngestCfg(root=Path("/data"))  # type: ignore[arg-type]
    assert cfg.root == "/data" and not hasattr(cfg, "check")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.format = "csv"  # type: ignore[misc]
