"""A real ``misalignlab imagetext`` run killed with SIGKILL mid-way, resumed with ``--resume``,
ends with exactly the weights and scores of an uninterrupted run (same seed); ``--fresh`` and a
changed config behave as documented."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from misalignlab.cli import main
from misalignlab.train.trainer import load_checkpoint

pytestmark = pytest.mark.slow  # end-to-end: runs whole commands


STEPS = 40


def argv(out) -> list[str]:
    return [
        "imagetext",
        "--preset",
        "selection-1",
        "--scale",
        "tiny",
        "--out",
        str(out),
        "--no-progress",
        "--set",
        f"train.steps={STEPS}",
        "--set",
        "checkpoint_every=4",
        "--set",
        "log_every=4",
        "--set",
        "threads=1",
    ]


def kill_after_first_checkpoint(out) -> int:
    """Start the command in a fresh process, SIGKILL it once a checkpoint exists; returns its exit code."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "misalignlab.cli", *argv(out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    folder = out / "selection-1" / "checkpoints"
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        if any(folder.glob("step_*.pt")):
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    return proc.returncode


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    killed, full = tmp_path / "killed", tmp_path / "full"
    rc = kill_after_first_checkpoint(killed)
    assert rc == -signal.SIGKILL, f"the run was not killed mid-way (exit code {rc})"
    steps = sorted(int(p.stem[5:]) for p in (killed / "selection-1/checkpoints").glob("step_*.pt"))
    assert steps and steps[-1] < STEPS and not (killed / "selection-1/scores.json").exists()
    assert main([*argv(killed), "--resume"]) == 0
    assert main(argv(full)) == 0
    a = load_checkpoint(killed / f"selection-1/checkpoints/step_{STEPS:08d}.pt")
    b = load_checkpoint(full / f"selection-1/checkpoints/step_{STEPS:08d}.pt")
    for key, value in b["objective"].items():
        assert torch.equal(a["objective"][key], value), key
    assert a["source"] == b["source"]  # the data position too
    scores = [json.loads((p / "selection-1/scores.json").read_text())["scores"] for p in (killed, full)]
    assert scores[0] == scores[1]
    train_rows = [
        r for r in map(json.loads, (killed / "results.jsonl").read_text().splitlines()) if r.get("stage") == "train"
    ]
    assert train_rows[-1]["step"] == STEPS and train_rows[0]["step"] == 4


def test_fresh_restarts_and_a_changed_config_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    small = [*argv(out)[:-8], "--set", "train.steps=4", "--set", "checkpoint_every=2", "--set", "threads=1"]
    assert main(small) == 0
    before = (out / "selection-1/scores.json").stat().st_mtime_ns
    assert main(small) == 0  # finished: nothing retrained
    assert (out / "selection-1/scores.json").stat().st_mtime_ns == before
    assert main([*small, "--set", "train.lr=0.01"]) == 2
    assert "different config" in capsys.readouterr().err
    assert main([*small, "--set", "train.lr=0.01", "--fresh"]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["lr"] == 0.01


@pytest.mark.parametrize("command", [["sweep", "--preset", "paper-joint"], ["simulate", "--theta", "968"]])
def test_sweep_commands_refuse_to_resume_a_different_config(command, tmp_path, capsys):
    out = tmp_path / "sweep"
    base = [
        *command,
        "--scale",
        "tiny",
        "--out",
        str(out),
        "--set",
        "train.steps=2",
        "--set",
        "n_fit=50",
        "--set",
        "n_test=50",
    ]
    assert main(base) == 0 and (out / "checkpoint.pt").is_file()
    assert main([*base, "--set", "train.lr=0.01"]) == 2
    assert "different config" in capsys.readouterr().err
    assert main([*base, "--set", "train.lr=0.01", "--fresh"]) == 0
