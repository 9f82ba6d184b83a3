"""``misalignlab.diagnose``: the library call gives the command's table, takes pairs in memory, fails with ValueError."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tests.workflows.export_data import FAST, csv_set, diagnose, png

import misalignlab

# the command's FAST settings as keyword arguments
FAST_KW = {
    "backbone": "scratch",
    "steps": 3,
    "image_size": 16,
    "overrides": {"embed.train.batch_size": 8, "embed.reweight_steps": 2, "gallery": 4},
}
assert FAST == ["--backbone", "scratch", "--steps", "3", "--image-size", "16"] + [
    a for k, v in FAST_KW["overrides"].items() for a in ("--set", f"{k}={v}")
]


@pytest.fixture
def data_with_a_bad_row(tmp_path: Path) -> Path:
    """32 good pairs in ``data.csv`` and a last row (line 34) whose image file does not exist."""
    path, _ = csv_set(tmp_path / "data")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write("gone,img/missing.png,a red square\n")
    return path


def test_import_is_cheap_and_diagnose_is_lazy():
    code = "import sys, misalignlab; print(sorted({'torch', 'pandas', 'numpy'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"  # the heavy imports wait for the first call
    assert misalignlab.diagnose.__module__ == "misalignlab.workflows.diagnose_api"
    assert "diagnose" in dir(misalignlab) and "diagnose" in misalignlab.__all__
    with pytest.raises(AttributeError, match="no attribute 'diagnoze'"):
        misalignlab.diagnoze  # noqa: B018


@pytest.mark.slow
def test_the_call_gives_the_command_table_summary_and_quarantine(data_with_a_bad_row, tmp_path):
    run = diagnose(data_with_a_bad_row, tmp_path / "cli")
    table = misalignlab.diagnose(data_with_a_bad_row, **FAST_KW)  # no run folder: a temporary cache
    pd.testing.assert_frame_equal(table, pd.read_parquet(run / "pairs.parquet"))
    assert len(table) == 32 and set(table["type"]) <= {"aligned", "incomplete", "wrong", "unrelated"}
    summary = json.loads((run / "summary.json").read_text())
    assert table.attrs["summary"]["types"] == summary["types"]
    assert table.attrs["summary"]["config"] == summary["config"]
    [record] = table.attrs["quarantine"]
    assert (record["line"], record["id"], record["reason"]) == (34, "gone", "image_missing")
    assert record["source"] == str(data_with_a_bad_row)
    assert not (data_with_a_bad_row.parent / "quarantine.jsonl").exists()  # out=None writes nothing


@pytest.mark.slow
def test_with_out_it_writes_the_run_folder_it_returns(data_with_a_bad_row, tmp_path):
    out = tmp_path / "lib"
    table = misalignlab.diagnose(data_with_a_bad_row, out=out, **FAST_KW)
    pd.testing.assert_frame_equal(table, pd.read_parquet(out / "pairs.parquet"))
    assert table.attrs["summary"] == json.loads((out / "summary.json").read_text())
    assert [r["reason"] for r in table.attrs["quarantine"]] == ["image_missing"]
    assert (out / "gallery.html").is_file() and (out / "quarantine.jsonl").is_file()
    argv = (out / "argv.txt").read_text()
    assert argv.startswith(f"misalignlab.diagnose({str(data_with_a_bad_row)!r}, out=") and "steps=3" in argv


@pytest.mark.slow
def test_pairs_in_memory_score_as_the_same_pairs_on_disk(tmp_path):
    path, _ = csv_set(tmp_path / "data")
    manifest = pd.read_csv(path)
    images = np.stack([np.asarray(Image.open(io.BytesIO(png(i)))) for i in range(len(manifest))])  # (32, 16, 16, 3)
    from_disk = misalignlab.diagnose(path, **FAST_KW)
    in_memory = misalignlab.diagnose(
        images=images, captions=list(manifest["caption"]), ids=list(manifest["id"]), **FAST_KW
    )
    sources = ["image_key", "image", "source", "source_file", "source_line"]
    pd.testing.assert_frame_equal(in_memory, from_disk.drop(columns=sources))
    assert in_memory.attrs["summary"]["types"] == from_disk.attrs["summary"]["types"]
    assert in_memory.attrs["quarantine"] == []
    # PIL images of another size are resized as decoded files are; default ids are the positions
    pil = [Image.fromarray(a).resize((24, 24)) for a in images[:8]]
    small = misalignlab.diagnose(images=pil, captions=list(manifest["caption"][:8]), **FAST_KW)
    assert small["id"].tolist() == [str(i) for i in range(8)]


def test_a_missing_path_raises_value_error_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "captions.csv"
    with pytest.raises(ValueError, match="nowhere/captions.csv"):
        misalignlab.diagnose(missing, backbone="scratch")


def test_a_missing_column_raises_value_error_naming_file_and_column(tmp_path):
    path, _ = csv_set(tmp_path / "data")
    with pytest.raises(ValueError, match=r"data\.csv.*'words'|'words'.*data\.csv"):
        misalignlab.diagnose(path, caption_column="words", backbone="scratch")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "give data .* or images= and captions="),
        ({"captions": ["a red square"]}, "need both images= and captions="),
        ({"images": np.zeros((2, 8, 8, 3), np.uint8), "captions": ["a", "b", "c"]}, "2 images, 3 captions"),
        ({"images": np.zeros((2, 8, 8, 3), np.float32), "captions": ["a", "b"]}, "uint8"),
        ({"images": np.zeros((2, 8, 8, 3), np.uint8), "captions": ["a", "  "]}, r"captions\[1\]: caption_empty"),
        ({"images": np.zeros((2, 8, 8, 3), np.uint8), "captions": ["a", 7]}, r"captions\[1\]: caption_not_text"),
        (
            {"images": [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 2), np.uint8)], "captions": ["a", "b"]},
            r"images\[1\]: expected .* got shape \(8, 8, 2\)",
        ),  # fmt: skip
        (
            {"images": np.zeros((2, 8, 8, 3), np.uint8), "captions": ["a", "b"], "ids": ["x", "x"]},
            r"ids\[1\]: id 'x' repeats ids\[0\]",
        ),  # fmt: skip
        ({"images": np.zeros((2, 8, 8, 3), np.uint8), "captions": ["a", "b"], "out": "runs/x"}, "cache="),
        (
            {
                "images": np.zeros((2, 8, 8, 3), np.uint8),
                "captions": ["a", "b"],
                "embeddings": "c.npz",
                "backbone": "scratch",
            },
            "not both",
        ),  # fmt: skip
        ({"images": np.zeros((2, 8, 8, 3), np.uint8), "captions": ["a", "b"], "backbone": "clip"}, "unknown backbone"),
        ({"images": np.zeros((2, 8, 8, 3), np.uint8), "captions": ["a", "b"], "detectors": ["cosine"]}, "'cosine'"),
        (
            {"images": np.zeros((2, 8, 8, 3), np.uint8), "captions": ["a", "b"], "overrides": {"flag_scor": 1}},
            "flag_scor",
        ),  # fmt: skip
    ],
)
def test_bad_arguments_raise_value_error_saying_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        misalignlab.diagnose(**kwargs)


def test_a_bad_vocabulary_file_is_named(tmp_path):
    vocab = tmp_path / "slots.json"
    vocab.write_text(json.dumps({"slots": {"colour": ["red"]}}))
    images, captions = np.full((8, 16, 16, 3), 200, np.uint8), [f"a red square {i}" for i in range(8)]
    with pytest.raises(ValueError, match=r"slots\.json: slots\.colour: a slot needs at least two values"):
        misalignlab.diagnose(images=images, captions=captions, schema=vocab, **FAST_KW)
