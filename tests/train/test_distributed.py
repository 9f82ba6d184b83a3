"""Data-parallel training and sharded diagnosis: 2 gloo CPU processes under ``torchrun`` against one process.

One ``torchrun --standalone --nproc_per_node=2`` launch (module fixture, ~20 s on 2 cores) runs
``dist_worker.py``; each test recomputes its part in this process and compares numbers.
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from misalignlab.cli import main
from misalignlab.data.scenes.dataset import make_scene_pairs, write_dataset_folder
from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.inject import InjectionCfg
from misalignlab.models.losses import LOSSES, ClipInfoNCE
from misalignlab.train.distributed import LOCAL, Dist, GlobalBatchNorm, convert_batchnorm, current, shard_mean

pytestmark = pytest.mark.slow  # end-to-end: runs whole commands


WORKER = Path(__file__).with_name("dist_worker.py")
_spec = importlib.util.spec_from_file_location("dist_worker", WORKER)
worker = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(worker)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Run the worker on 2 ranks once; returns (its output folder, the dataset it diagnosed)."""
    root = tmp_path_factory.mktemp("dist")
    pairs = make_scene_pairs(30, SceneCfg(size=32), InjectionCfg(outlier_rate=0.2, drop_rate=0.1), seed=0)
    data = write_dataset_folder(pairs, root / "data") / "captions.csv"
    out = root / "out"
    out.mkdir()
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(WORKER),
        str(out),
        str(data),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout[-4000:], proc.stderr[-4000:])
    return out, data


@pytest.mark.parametrize("case", list(worker.CASES))
def test_two_ranks_match_one_process_on_the_global_batch(job, case):
    out, _ = job
    alone = worker.run_case(case)  # this process: no job, the whole global batch of 16
    ranks = [torch.load(out / f"{case}_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert set(ranks[0]) == set(alone) and any(k.startswith("grad/model.image_encoder") for k in alone)
    for key, want in alone.items():
        kind = key.split("/")[0]
        for got in ranks:
            if want.dtype.is_floating_point:
                # loss: averaged over ranks = the global batch's; grad: DDP's = the global batch's;
                # both to 1e-5 of the tensor's scale (float32 sums in another order). param: weights
                # and batch-norm statistics after 3 Adam steps of lr 1e-3 each, to 2e-5 (Adam divides
                # by √v, so float32 noise in a near-zero gradient moves a weight by a few 1e-6)
                tol = 2e-5 if kind == "param" else 1e-5 * float(want.abs().max())
                assert float((got[key] - want).abs().max()) <= tol, key
            else:
                assert torch.equal(got[key], want), key
        if kind != "loss":
            assert torch.equal(ranks[0][key], ranks[1][key]), key  # ranks stay in lockstep


def test_sharded_diagnose_equals_one_process(job, tmp_path):
    out, data = job
    assert main(worker.diagnose_argv(data, tmp_path / "single")) == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "diagnose/pairs.parquet"), pd.read_parquet(tmp_path / "single/pairs.parquet")
    )
    two, one = (json.loads((p / "summary.json").read_text()) for p in (out / "diagnose", tmp_path / "single"))
    assert {k for k in one if one[k] != two[k]} == {"ingest"}  # only the output paths differ
    parts = sorted(p.name for p in (out / "diagnose/cache").glob("*/folds/*.npz"))
    assert parts == ["fold0.npz", "fold1.npz", "fold2.npz"]  # rank 0 trained folds 0 and 2, rank 1 fold 1


def test_imagetext_command_under_torchrun_writes_once_and_matches(job, tmp_path):
    out, _ = job
    assert main(worker.imagetext_argv(tmp_path / "single")) == 0
    two, one = (pd.read_csv(p / "scores.csv") for p in (out / "imagetext", tmp_path / "single"))
    np.testing.assert_allclose(two["score"], one["score"], atol=1e-3)
    rows = [
        (p / "results.jsonl").read_text().count('"stage": "train"') for p in (out / "imagetext", tmp_path / "single")
    ]
    assert rows[0] == rows[1] == 1  # rank 1 wrote nothing (train.steps=4, logged every 4)
    ckpt = sorted((out / "imagetext/selection-2/checkpoints").glob("*.pt"))
    assert [p.name for p in ckpt] == ["step_00000004.pt"]


def test_clip_local_rows_equal_the_full_loss_rows():
    torch.manual_seed(0)
    img, txt = torch.randn(12, 5), torch.randn(12, 5)
    targets = torch.softmax(torch.randn(12, 12), dim=1)
    for loss in (ClipInfoNCE(tau=0.1), ClipInfoNCE(similarity="neg_sq_euclid", tau=1.0)):
        for kw in ({}, {"targets": targets}):
            full = loss.per_pair(img, txt, **kw)
            for rows in (slice(0, 4), slice(4, 8), slice(8, 12)):
                torch.testing.assert_close(loss.per_pair_rows(img, txt, rows, **kw), full[rows])
    siglip = LOSSES.get("siglip")()
    torch.testing.assert_close(siglip.per_pair_rows(img, txt, slice(3, 6)), siglip.per_pair(img, txt)[3:6])


def test_shards_and_scaled_means_add_up_to_the_global_mean():
    rows = torch.arange(12)
    blocks = [Dist(r, 3).shard(rows) for r in range(3)]
    assert torch.equal(torch.cat(blocks), rows) and Dist(1, 3).rows(4) == slice(4, 8)
    with pytest.raises(ValueError, match="does not split evenly"):
        Dist(0, 5).shard(rows)
    per, w = torch.rand(12), torch.rand(12)
    assert current() == LOCAL  # no job in the test process: plain (weighted) means
    torch.testing.assert_close(shard_mean(per, w), (per * w).sum() / w.sum())
    torch.testing.assert_close(shard_mean(per), per.mean())


def test_global_batchnorm_alone_is_plain_batchnorm():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    x = torch.randn(6, 3, 8, 8)
    want = net(x)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    convert_batchnorm(net, LOCAL, "cpu")
    assert isinstance(net[1], GlobalBatchNorm) and set(net.state_dict()) == set(state)
    net.load_state_dict(state)
    torch.testing.assert_close(net(x), want)


def test_commands_without_data_parallel_support_refuse_to_run_under_torchrun(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["sweep", "--preset", "paper-joint", "--scale", "tiny"]) == 2
    assert "runs in one process" in capsys.readouterr().err
