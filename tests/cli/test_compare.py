"""``misalignlab compare``: the tiny preset end to end, a dataset folder, and clear errors."""

import json

import pandas as pd
import pytest

from misalignlab.cli import main

pytestmark = pytest.mark.slow  # end-to-end: runs whole commands


def test_tiny_preset_writes_table_plots_and_run_configs(tmp_path):
    out = tmp_path / "cmp"
    argv = [
        "compare",
        "tiny",
        "--strategies",
        "baseline,filter,reweight,augment",
        "--seeds",
        "2",
        "--out",
        str(out),
        "--option",
        "filter.fraction=0.25",
    ]
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["strategy_params"]["filter"] == {"fraction": 0.25, "threshold": None}
    assert "compare" in (out / "argv.txt").read_text()
    for name in ("baseline", "filter", "reweight", "augment"):
        for seed in (0, 1):
            run = json.loads((out / "runs" / name / f"seed{seed}" / "config.json").read_text())
            assert run["strategy"] == name and run["imagetext"]["train"]["seed"] == seed
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in rows].count("detect") == 1 and "detect/combined/auroc" in rows[0]
    evals = [r for r in rows if r["stage"] == "eval"]
    assert len(evals) == 8 and {r["n_trained"] for r in evals if r["strategy"] == "filter"} == {96}
    table = pd.read_csv(out / "table.csv")
    acc = table[(table.metric == "probe/shape/linear/acc")]
    assert set(acc.split) == {"id", "ood"} and (acc["n"] == 2).all() and acc["mean"].between(0, 1).all()
    assert "image_to_text_R@1" in set(table.metric)
    md = (out / "table.md").read_text()
    assert "| filter |" in md and "OOD zeroshot/shape/acc1" in md and "±" in md
    assert (out / "plots" / "strategies.png").read_bytes()[:4] == b"\x89PNG"
    assert main(argv) == 0  # rerun skips finished runs and rewrites the same tables
    assert len([ln for ln in (out / "results.jsonl").read_text().splitlines() if '"eval"' in ln]) == 8


def test_dataset_folder_and_bad_input(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["render", "--out", str(data), "--n", "96", "--size", "32", "--perturb", "shape=0.3"]) == 0
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                str(data),
                "--preset",
                "tiny",
                "--strategies",
                "baseline,robust",
                "--seeds",
                "1",
                "--ood",
                "background=2",
                "--out",
                str(out),
                "--set",
                "n_fit=48",
                "--set",
                "n_test=48",
            ]
        )
        == 0
    )
    assert set(pd.read_csv(out / "table.csv").split) == {"id", "ood", "train"}
    assert main(["compare", "tiny", "--strategies", "baseline,nope", "--out", str(out)]) == 2
    assert "nope" in capsys.readouterr().err
