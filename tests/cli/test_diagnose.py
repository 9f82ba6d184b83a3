"""``misalignlab diagnose`` and ``benchmark-detect`` end to end on tiny data (seconds, CPU)."""

import json

import numpy as np
import pandas as pd
import pytest

from misalignlab.cli import main
from misalignlab.data.scenes.dataset import make_scene_pairs, write_dataset_folder
from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.inject import InjectionCfg

pytestmark = pytest.mark.slow  # end-to-end: runs whole commands


@pytest.fixture
def hostile_folder(tmp_path):
    """40 rendered pairs plus a path escaping the root and a caption carrying a script tag."""
    pairs = make_scene_pairs(40, SceneCfg(size=32), InjectionCfg(outlier_rate=0.2, drop_rate=0.1), seed=0)
    folder = write_dataset_folder(pairs, tmp_path / "data")
    table = pd.read_csv(folder / "captions.csv")
    extra = pd.DataFrame(
        {
            "image": ["../../etc/passwd", table["image"][0]],
            "caption": ["a red gear", "<script>alert('x')</script> a red gear"],
        }
    )
    pd.concat([table, extra]).to_csv(folder / "captions.csv", index=False)
    return folder


def test_diagnose_writes_outputs_quarantines_escapes_and_reuses_cache(hostile_folder, tmp_path, capsys):
    out = tmp_path / "diag"
    argv = [
        "diagnose",
        str(hostile_folder / "captions.csv"),
        "--out",
        str(out),
        "--steps",
        "3",
        "--set",
        "embed.reweight_steps=2",
        "--image-size",
        "32",
        "--backbone",
        "scratch",
    ]
    assert main(argv) == 0
    table = pd.read_parquet(out / "pairs.parquet")
    assert len(table) == 41  # 40 + the script caption; the escaping path is refused
    assert {
        "id",
        "score",
        "type",
        "explanation",
        "quarantine",
        "score_similarity",
        "score_neighbourhood",
        "score_pair_loss",
        "p_aligned",
        "p_unrelated",
    } <= set(table.columns)
    assert table["score"].between(0, 1).all() and set(table["type"]) <= {"aligned", "incomplete", "wrong", "unrelated"}
    quarantine = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    assert [q["reason"] for q in quarantine] == ["path_outside_root"] and quarantine[0]["line"] == 42
    gallery = (out / "gallery.html").read_text(encoding="utf-8")
    assert "<script>alert" not in gallery and "\\u003cscript\\u003ealert('x')\\u003c/script\\u003e" in gallery
    assert "data:image/png;base64," in gallery and "41 previews re-read from the original files" in gallery
    assert (out / "plots" / "score_by_type.png").is_file() and (out / "plots" / "slot_profile.png").is_file()
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["types"]) == {"aligned", "incomplete", "wrong", "unrelated"}
    assert summary["ingest"]["quarantined"] == 1 and summary["embedding_cache_hit"] is False
    lo, hi = summary["types"]["aligned"]["ci95"]
    assert 0 <= lo <= summary["types"]["aligned"]["rate"] <= hi <= 1
    printed = capsys.readouterr().out
    assert "quarantined 1 bad row(s)" in printed and "quarantine.jsonl" in printed
    assert main(argv) == 0  # second run: embeddings and fold models come from the cache
    assert json.loads((out / "summary.json").read_text())["embedding_cache_hit"] is True


def test_diagnose_rejects_unknown_detector(hostile_folder, tmp_path):
    argv = ["diagnose", str(hostile_folder / "captions.csv"), "--out", str(tmp_path / "x"), "--detector", "cosine"]
    assert main(argv) == 2


def test_benchmark_detect_smoke(tmp_path):
    """The quick preset end to end on free-form scenes: member detectors once, combined per schema."""
    out, shared = tmp_path / "bench", tmp_path / "shared-cache"
    argv = ["benchmark-detect", "--out", str(out), "--set", "sets=[scenes]", "--set", "sizes=[200]"]
    argv += ["--set", "steps=6", "--set", "backbone=scratch", "--set", f"cache={shared}"]
    assert main(argv) == 0
    assert (
        len(list(shared.glob("*/embeddings.npz"))) == 1 and not (out / "cache").exists()
    )  # one embedding, shared cache
    table = pd.read_csv(out / "benchmark_detect.csv")
    auto = table[table["schema"] == "auto"]
    assert set(auto["detector"]) == {"similarity", "neighbourhood", "pair_loss", "combined"}
    assert list(table.loc[table["schema"] == "declared", "detector"]) == ["combined"]
    assert np.isfinite(table["auroc"]).all() and (abs(table["true_misaligned"].dropna() - 0.3) < 0.08).all()
    assert (table["steps"] == 6).all() and (table["backbone"] == "scratch").all()
    assert (out / "benchmark_detect.md").read_text().startswith("| set |")
    assert list((out / "vocabularies").glob("declared-*.json"))  # the declared vocabulary the rows used


def test_benchmark_detect_rejects_an_unknown_schema(tmp_path):
    argv = ["benchmark-detect", "--out", str(tmp_path), "--schema", "no-such-vocabulary.json"]
    assert main(argv) == 2
