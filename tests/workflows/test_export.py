"""``export``: review CSV, Label Studio tasks and cleaned manifests, checked against real run folders."""

from __future__ import annotations

import base64
import csv
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tests.workflows.export_data import BUILDERS, HOSTILE, csv_set, diagnose, with_truth

from misalignlab.data.ingest import IngestCfg, open_pairs
from misalignlab.data.ingest.stream import PairChunk
from misalignlab.kinds import KINDS
from misalignlab.pilot.decision import Decision
from misalignlab.report.annotation import REVIEW_COLUMNS
from misalignlab.workflows.export import (
    ExportCfg,
    export_run,
    parse_types,
    read_run,
    suggested_fix,
    suggested_fixes,
)
from misalignlab.workflows.pilot import to_clean


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """layout → (run folder, dataset path, truth), one tiny diagnosis each."""
    base = tmp_path_factory.mktemp("export")
    out = {}
    for name, build in BUILDERS.items():
        data, truth = build(base / f"{name}-data")
        out[name] = (diagnose(data, base / f"{name}-run"), data, truth)
    return out


def ingested_ids(path: Path, **cfg) -> list[str]:
    stream = open_pairs(path, IngestCfg(image_size=16, **cfg))
    return list(PairChunk.concat(list(stream)).ids)


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# --- without a diagnosis ---------------------------------------------------------------------------


def test_suggested_fix_per_type():
    assert suggested_fix("A Red square, red", "wrong", "red", "blue", "", "") == "A blue square, red"
    assert suggested_fix("a reddish tile", "wrong", "red", "blue", "", "") == "replace 'red' by 'blue'"
    assert suggested_fix("a cat", "unrelated", "", "", "", "p7") == "replace the caption (it fits image p7 better)"
    assert suggested_fix("a cat", "incomplete", "", "", "colour, size", "") == "add: colour, size"
    assert (
        suggested_fix("a cat", "incomplete", "", "", "", "") == suggested_fix("a cat", "aligned", "", "", "", "") == ""
    )
    given = pd.DataFrame(
        {"caption": ["a"], "type": ["wrong"], "stated": ["a"], "likely": ["b"], "suggested_fix": [None]}
    )
    assert suggested_fixes(given).tolist() == [""]  # another stage's column wins, gaps become ""


def test_types_and_config_are_validated():
    assert parse_types(None) == ("incomplete", "wrong", "unrelated") and parse_types("all") == KINDS
    assert parse_types(" wrong,unrelated,wrong") == ("wrong", "unrelated")
    with pytest.raises(ValueError, match="unknown type.*'bogus'.*valid: aligned"):
        parse_types("wrong,bogus")
    with pytest.raises(ValueError, match="unknown export format 'xml'"):
        ExportCfg(to="xml")
    with pytest.raises(ValueError, match="distinct kinds"):
        ExportCfg(to="csv", types=("wrong", "wrong"))


def test_a_folder_that_is_not_a_run_folder_is_named(tmp_path):
    with pytest.raises(ValueError, match="no such folder"):
        read_run(tmp_path / "nope")
    (tmp_path / "summary.json").write_text("{}")
    with pytest.raises(ValueError, match=r"not a diagnose run folder \(no pairs.parquet, config.json\)"):
        read_run(tmp_path)


def test_pilot_to_clean_is_the_top_share_or_the_flagged_pairs():
    table = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "score": [0.1, 0.9, 0.5, 0.7],
            "type": ["aligned", "wrong", "aligned", "unrelated"],
        }
    )
    table["quarantine"] = table["type"] != "aligned"
    data = type("D", (), {"ids": ("a", "b", "c", "d"), "captions": ("ca", "cb", "cc", "cd")})()
    clean = Decision("clean", "clean@0.75", 0.9, ("r",), (), 50.0)
    top = to_clean(table, data, clean)
    assert list(top.columns) == list(REVIEW_COLUMNS) and top["id"].tolist() == ["b", "d", "c"]
    assert top["caption"].tolist() == ["cb", "cd", "cc"] and (top["image"] == "").all()
    flagged = to_clean(table, data, Decision("adapt", "filter", 0.8, ("r",), (), 50.0))
    assert flagged["id"].tolist() == ["b", "d"]


# --- on real run folders ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["csv", "tar"])
def test_csv_holds_the_chosen_types_most_suspicious_first(runs, tmp_path, layout):
    run, _, _ = runs[layout]
    pairs = pd.read_parquet(run / "pairs.parquet")
    result = export_run(run, ExportCfg(to="csv", types=("aligned", "unrelated"), out=str(tmp_path / "r.csv")))
    rows = read_csv(tmp_path / "r.csv")
    want = pairs[pairs["type"].isin(["aligned", "unrelated"])].sort_values("score", ascending=False, kind="stable")
    assert result.rows == len(rows) == len(want) > 0 and list(rows[0]) == list(REVIEW_COLUMNS)
    assert [r["id"] for r in rows] == want["id"].tolist()
    assert [r["caption"] for r in rows] == want["caption"].tolist()
    assert [r["image"] for r in rows] == want["image"].tolist()
    assert np.allclose([float(r["score"]) for r in rows], want["score"], atol=1e-5)
    assert (
        all(Path(r["image"]).is_file() for r in rows) if layout == "csv" else all(".tar::" in r["image"] for r in rows)
    )


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["csv", "parquet"])
def test_label_studio_tasks_point_at_the_images_and_carry_the_type(runs, tmp_path, layout):
    run, data, _ = runs[layout]
    pairs = pd.read_parquet(run / "pairs.parquet").set_index("id")
    result = export_run(run, ExportCfg(to="label-studio", types=KINDS, out=str(tmp_path / "t.json")))
    tasks = json.loads((tmp_path / "t.json").read_text(encoding="utf-8"))
    assert len(tasks) == result.rows == len(pairs)
    for task in tasks:
        pair = pairs.loc[task["data"]["pair_id"]]
        assert task["data"]["caption"] == pair["caption"]
        [prediction] = task["predictions"]
        assert prediction["score"] == pytest.approx(pair["score"])
        choice = prediction["result"][0]
        assert (choice["from_name"], choice["to_name"], choice["type"]) == ("type", "caption", "choices")
        assert choice["value"] == {"choices": [pair["type"]]}
        image = task["data"]["image"]
        if layout == "csv":  # a local storage URL relative to the dataset folder, Label Studio's document root
            assert image.startswith("/data/local-files/?d=img/") and (data.parent / image.split("?d=")[1]).is_file()
        else:  # bytes inside the parquet file: embedded
            png = base64.b64decode(image.removeprefix("data:image/png;base64,"))
            assert Image.open(io.BytesIO(png)).size == (16, 16)
    config = ET.fromstring((tmp_path / "label_studio_config.xml").read_text(encoding="utf-8"))
    assert config.find("Image").attrib == {"name": "image", "value": "$image"}
    assert [c.get("value") for c in config.find("Choices")] == list(KINDS)
    assert config.find("Choices").get("toName") == "caption" and config.find("TextArea") is not None


@pytest.mark.slow
@pytest.mark.parametrize("layout", list(BUILDERS))
def test_manifest_leaves_out_exactly_the_flagged_pairs(runs, tmp_path, layout):
    """With the planted truth as the diagnosis (a perfect detector), the copy holds every other pair and no planted one."""
    run, data, truth = runs[layout]
    perfect = with_truth(run, truth, tmp_path / "run")
    result = export_run(perfect, ExportCfg(to="manifest"))
    out = perfect / "export" / "manifest"
    kept = sorted(i for i, planted in truth.items() if not planted)
    assert (result.rows, result.dropped) == (len(kept), len(truth) - len(kept)) and 0 < result.dropped
    root = {} if layout == "tar" else {"root": str(data.parent)}
    copy = result.files[0] if len(result.files) == 1 else out
    assert sorted(ingested_ids(copy, **root)) == kept  # the flagged share drops from 25 % to 0
    if layout == "csv":  # every kept line byte for byte
        lines = data.read_bytes().splitlines(keepends=True)
        assert result.files[0].read_bytes() == b"".join(lines[i] for i in range(len(lines)) if i == 0 or i % 4 != 2)
    if layout == "coco":  # image 999 never had a caption and stays; every captioned image keeps one
        doc = json.loads(result.files[0].read_text())
        assert {im["id"] for im in doc["images"]} == set(range(16)) | {999} and doc["info"] == {
            "description": "colours"
        }
    if layout == "parquet":  # other columns kept, list cells lose only the planted captions
        table = pd.read_parquet(result.files[0])
        assert table["note"].tolist() == [f"row {i}" for i in range(16)]
        assert all(len(c) == 1 for c in table["caption"].iloc[::2]) and all(
            len(c) == 2 for c in table["caption"].iloc[1::2]
        )


@pytest.mark.slow
def test_round_trip_diagnoses_the_cleaned_copy(runs, tmp_path):
    """diagnose → export --to manifest → diagnose: the cleaned copy (here cleaned by a perfect detector,
    so that enough pairs remain whatever the tiny model found) reads back without the flagged pairs."""
    run, data, truth = runs["csv"]
    run = with_truth(run, truth, tmp_path / "perfect")
    pairs = pd.read_parquet(run / "pairs.parquet")
    result = export_run(run, ExportCfg(to="manifest", types=("unrelated", "wrong"), out=str(tmp_path / "clean")))
    assert result.rows == int((~pairs["type"].isin(["unrelated", "wrong"])).sum()) > 0
    assert result.lines()[-1] == f"diagnose it with: misalignlab diagnose {result.files[0]} --root {data.parent}"
    again = diagnose(result.files[0], tmp_path / "again", "--root", str(data.parent))
    assert len(pd.read_parquet(again / "pairs.parquet")) == result.rows == sum(not t for t in truth.values())
    assert data.read_bytes().startswith(b"id,image,caption\n")  # the input is untouched


@pytest.mark.slow
def test_quarantined_rows_stay_out_unless_kept_and_a_changed_dataset_is_refused(tmp_path):
    data, _ = csv_set(tmp_path / "data", n=16)
    with open(data, "a", encoding="utf-8") as fh:
        fh.write("bad,img/missing.png,a red square\n")
    run = diagnose(data, tmp_path / "run")
    dropped = export_run(run, ExportCfg(to="manifest", types=("aligned",), out=str(tmp_path / "a")))
    kept = export_run(run, ExportCfg(to="manifest", types=("aligned",), out=str(tmp_path / "b"), keep_quarantined=True))
    assert b"bad,img/missing.png" not in dropped.files[0].read_bytes()
    assert kept.files[0].read_bytes().endswith(b"bad,img/missing.png,a red square\n")
    with pytest.raises(ValueError, match="refusing to write over the input"):
        export_run(run, ExportCfg(to="manifest", out=str(data.parent)))
    data.write_text(data.read_text().replace("p003,img/003.png,a yellow", "p003,img/003.png,a purple"))
    with pytest.raises(ValueError, match="1 pair.*not in the dataset as it is now.*'p003'"):
        export_run(run, ExportCfg(to="manifest", out=str(tmp_path / "c")))


@pytest.mark.slow
def test_hostile_captions_are_neutralised_in_csv_and_json(tmp_path):
    data, _ = csv_set(tmp_path / "data", n=16, hostile=True)
    run = diagnose(data, tmp_path / "run")
    export_run(run, ExportCfg(to="csv", types=KINDS, out=str(tmp_path / "r.csv")))
    cells = {r["id"]: r["caption"] for r in read_csv(tmp_path / "r.csv")}
    assert cells["h0"] == "'" + HOSTILE[0] and cells["h1"] == HOSTILE[1]
    assert not any(c.startswith(("=", "+", "-", "@")) for row in read_csv(tmp_path / "r.csv") for c in row.values())
    export_run(run, ExportCfg(to="label-studio", types=KINDS, out=str(tmp_path / "t.json")))
    raw = (tmp_path / "t.json").read_text(encoding="utf-8")
    assert "<script>" not in raw and "\\u003cscript\\u003e" in raw
    captions = {t["data"]["pair_id"]: t["data"]["caption"] for t in json.loads(raw)}
    assert captions["h1"] == HOSTILE[1] and captions["h0"] == HOSTILE[0]  # the values themselves read back unchanged
