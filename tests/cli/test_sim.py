import json

import pandas as pd
import pytest

from misalignlab.cli import main

pytestmark = pytest.mark.slow  # end-to-end: runs whole commands


def test_tiny_sweep_end_to_end(tmp_path):
    out = tmp_path / "run"
    rc = main(["sweep", "--preset", "paper-joint", "--scale", "tiny", "--out", str(out), "--set", "train.steps=30"])
    assert rc == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["steps"] == 30 and cfg["train"]["loss"] == "sqeuclid_independent"
    table = pd.read_csv(out / "r2_table_linear.csv", index_col=[0, 1])
    assert list(table.columns[:3]) == ["s1", "s2", "s3"] and "m_x" in table.columns
    assert ((table >= 0) & (table <= 1)).all().all()
    stages = {json.loads(line)["stage"] for line in (out / "results.jsonl").read_text().splitlines()}
    assert stages == {"loss", "probe"}
    assert (out / "heatmap.png").read_bytes()[:4] == b"\x89PNG"


def test_simulate_accepts_paper_codes(tmp_path):
    out = tmp_path / "sim"
    assert main(["simulate", "--theta", "968", "--rho", "10", "--scale", "tiny", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["bias"]["selected"] == list(range(8)) and cfg["bias"]["perturbed"] == [0, 1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sweep", "--preset", "nope"], "unknown sweep preset"),
        (["sweep", "--preset", "paper-joint", "--scale", "huge"], "unknown scale"),
        (["sweep", "--preset", "paper-joint", "--scale", "tiny", "--set", "train.lrr=1"], "unknown key"),
        (["simulate", "--selected", "1-3", "--perturbed", "1-3", "--scale", "tiny"], "proper subset"),
        (["simulate", "--selected", "0-3", "--scale", "tiny"], "start at 1"),
        (["simulate", "--selected", "1,x"], "not a list"),
        (["simulate", "--selected", "1-3", "--perturb-prob", "2", "--perturbed", "1"], "perturb_prob"),
    ],
)
def test_bad_arguments_fail_with_a_clear_message(argv, message, tmp_path, capsys):
    rc = main([*argv, "--out", str(tmp_path / "x")])
    assert rc != 0
    err = capsys.readouterr().err
    assert message in err


def test_every_command_has_help(capsys):
    for cmd in ("sweep", "simulate"):
        assert main([cmd, "--help"]) == 0
        assert "Usage" in capsys.readouterr().out
