"""``misalignlab imagetext``: a tiny end-to-end run, its files, and clear errors."""

import json

import pandas as pd
import pytest

from misalignlab.cli import main

pytestmark = pytest.mark.slow  # end-to-end: runs whole commands


def test_tiny_run_writes_every_artefact(tmp_path):
    out = tmp_path / "run"
    argv = [
        "imagetext",
        "--preset",
        "perturbation-3",
        "--scale",
        "tiny",
        "--out",
        str(out),
        "--no-progress",
        "--set",
        'probes=["linear", "mlp"]',
        "--set",
        "curve_every=6",
        "--set",
        "curve_n=40",
        "--set",
        "unit_codes=true",
        "--set",
        "code_extra=2",
        "--set",
        "spare_fade=[0.25, 0.75]",
    ]
    assert main(argv) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["preset"] == "perturbation-3" and cfg["loss"]["variant"] == "clip_cross_modal"
    assert "imagetext" in (out / "argv.txt").read_text()
    level = out / "perturbation-3"
    # colour, shape, size unbiased: the two spare dimensions trained beside them are faded out
    assert json.loads((level / "scores.json").read_text())["code_dim"] == 3
    assert sorted(p.name for p in (level / "checkpoints").glob("step_*.pt"))[-1] == "step_00000012.pt"
    for probe in ("linear", "mlp"):
        table = pd.read_csv(out / f"table_{probe}.csv", index_col=[0, 1])
        assert list(table.index) == [("perturbation-3", "image"), ("perturbation-3", "text")]
        assert {"shape", "colour", "pos_x", "defect", "rotation", "template"} <= set(table.columns)
        assert "paper ẑx (MLP)" in (out / f"table_{probe}.md").read_text()
    md = (out / "table_mlp.md").read_text()
    assert "| background | MCC | pert |" in md and "1.00 0.00 0.01" not in md  # one setting → one paper value
    assert (out / "heatmap.png").read_bytes()[:4] == b"\x89PNG"
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    stages = {r["stage"] for r in rows}  # every record names its stage
    assert {"train", "probe", "timing", "render"} <= stages
    curve = [r for r in rows if r["stage"] == "curve"]
    assert [r["step"] for r in curve] == [6, 12] and "curve/shape/mlp/mcc/image" in curve[0]
    assert list(pd.read_csv(out / "curve.csv")["step"]) == [6, 12]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--preset", "nope"], "unknown imagetext preset"),
        (["--preset", "selection", "--scale", "huge"], "unknown scale"),
        (["--preset", "selection", "--scale", "tiny", "--set", "train.lrr=1"], "unknown key"),
        (["--preset", "selection", "--scale", "tiny", "--set", "n_fit=0"], "n_fit"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(argv, message, tmp_path, capsys):
    rc = main(["imagetext", *argv, "--out", str(tmp_path / "x")])
    assert rc != 0
    assert message in capsys.readouterr().err


def test_help_lists_the_presets(capsys):
    assert main(["imagetext", "--help"]) == 0
    out = capsys.readouterr().out
    assert "perturbation-5" in out and "quick" in out
