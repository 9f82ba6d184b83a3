"""Run on every rank by ``torchrun --nproc_per_node=2`` from ``test_distributed.py`` (gloo, CPU).

``python dist_worker.py OUT DATA``: trains the :data:`CASES` data-parallel and saves, per rank,
step-1 gradients, per-step losses and final weights to ``OUT/<case>_rank<r>.pt``; then runs the
``diagnose`` and ``imagetext`` commands in the job (``OUT/diagnose``, ``OUT/imagetext``). The test
computes the same things in one process and compares. Also imported by the test for
:func:`run_case` and the command lines, so both sides run exactly the same code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from misalignlab.models.pair_model import ModelCfg
from misalignlab.train.pairs import LossCfg, PairTrainCfg, train_pairs
from misalignlab.train.trainer import Callback, TrainCfg

CASES = {  # global batch 16 → 8 rows per rank
    "clip_weighted": (LossCfg("clip_cross_modal", tau=0.1), True, "adam"),
    "siglip": (LossCfg("siglip"), False, "adamw"),  # the default per_pair_rows; the loss has parameters
}


def colour_pairs(n: int = 64, size: int = 16, seed: int = 0) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Noisy solid-colour images, captions naming the colour, and uneven per-pair weights."""
    rng = np.random.default_rng(seed)
    names = ["red", "green", "blue", "yellow"]
    rgb = np.array([[220, 30, 30], [30, 200, 40], [30, 40, 220], [230, 220, 30]], dtype=np.float64)
    label = rng.integers(0, 4, n)
    images = np.clip(rgb[label][:, None, None, :] + rng.normal(0, 40, (n, size, size, 3)), 0, 255).astype(np.uint8)
    captions = [f"a {names[i]} {['thing', 'image'][j]}" for i, j in zip(label, rng.integers(0, 2, n), strict=True)]
    return images, captions, rng.uniform(0.2, 2.0, n)


def run_case(name: str) -> dict[str, torch.Tensor]:
    """Three steps of one case in the current job (or alone): step-1 gradients, losses, final weights."""
    loss, weighted, optimizer = CASES[name]
    images, captions, weights = colour_pairs()
    train = TrainCfg(steps=3, batch_size=16, lr=1e-3, grad_clip=None, seed=1, optimizer=optimizer)
    cfg = PairTrainCfg(train=train, model=ModelCfg(code_dim=8, image_size=16, max_len=6), loss=loss)
    got: dict[str, torch.Tensor] = {}

    class Grab(Callback):
        def on_step_end(self, trainer, step, logs) -> None:  # type: ignore[no-untyped-def]
            got[f"loss/{step}"] = torch.tensor(float(logs["loss"]))
            if step == 1:
                got.update({f"grad/{n}": p.grad.clone() for n, p in trainer.objective.named_parameters()})

    model = train_pairs(images, captions, cfg, weights=weights if weighted else None, callbacks=[Grab()])
    return got | {f"param/{k}": v.clone() for k, v in model.state_dict().items()}


def diagnose_argv(data: Path, out: Path) -> list[str]:
    return [
        "diagnose",
        str(data),
        "--out",
        str(out),
        "--image-size",
        "16",
        "--steps",
        "4",
        "--folds",
        "3",
        "--backbone",
        "scratch",
        "--set",
        "embed.reweight_steps=2",
        "--set",
        "embed.train.batch_size=8",
    ]


def imagetext_argv(out: Path) -> list[str]:
    return [
        "imagetext",
        "--preset",
        "selection-2",
        "--scale",
        "tiny",
        "--out",
        str(out),
        "--no-progress",
        "--set",
        "train.steps=4",
        "--set",
        "n_train=64",
        "--set",
        "n_fit=48",
        "--set",
        "n_test=48",
    ]


def main() -> int:
    from misalignlab.cli import main as cli
    from misalignlab.train.distributed import init_distributed

    out, data = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)  # as the test process: same kernels, same numbers
    d = init_distributed()
    assert d.world == 2, d
    for name in CASES:
        torch.save(run_case(name), out / f"{name}_rank{d.rank}.pt")
    return cli(diagnose_argv(data, out / "diagnose")) or cli(imagetext_argv(out / "imagetext"))


if __name__ == "__main__":
    sys.exit(main())
