"""How well can the quick image tower learn a level's stated factors when told them directly?

Trains the ``quick`` image encoder (same scenes, steps, batch, Adam learning rate and warmup +
cosine schedule as ``misalignlab imagetext --scale quick`` gives the level) with one cross-entropy head per
stated factor instead of the contrastive loss, and reports the test MCC of each head. This is
the tower's ceiling at that budget: where the contrastive image code stays below it, the
objective (its signal per step), not the tower's capacity, is what holds a factor back.
Give ``--run`` a finished ``imagetext`` run folder to print the contrastive MLP-probe MCC beside it.

Usage: ``python bench/tower_ceiling.py --level selection-5 [--steps 1000] [--run RUN_DIR]``
(BENCHMARKS.md's figure: ``--steps 1000``, the budget of the quick recipe's contrastive run.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from dataclasses import replace
from pathlib import Path

import torch
from sklearn.metrics import matthews_corrcoef
from torch.nn import functional as F

from misalignlab.data.scenes.factors import FACTORS
from misalignlab.models.image_encoder import ResNetEncoder
from misalignlab.models.pair_model import encoder_preset
from misalignlab.train.pairs import images_to_float
from misalignlab.train.settings import lr_factor
from misalignlab.workflows.imagetext_lab import render_scenes
from misalignlab.workflows.imagetext_presets import lab_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", default="selection-5", help="a one-level imagetext preset")
    parser.add_argument("--steps", type=int, default=0, help="0: the steps the quick recipe gives the level")
    parser.add_argument("--run", type=Path, help="a finished imagetext run folder with this level")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    try:
        cfg = lab_config(args.level, "quick")
    except ValueError as err:  # an unknown preset: the message names the valid ones
        parser.error(str(err))
    if len(cfg.levels) != 1:
        parser.error(
            f"--level needs a one-level preset such as selection-5, got {args.level!r} ({len(cfg.levels)} levels)"
        )
    scores_file = args.run / args.level / "scores.json" if args.run is not None else None
    if scores_file is not None and not scores_file.is_file():
        parser.error(f"--run {args.run}: no {scores_file} (has that run finished {args.level}?)")
    (level,) = cfg.levels
    stated = [f for f in FACTORS if level.role(f) == "stated"]
    sizes = [FACTORS[f].n_values for f in stated]
    train = cfg.train_for(level)
    if args.steps:
        train = replace(train, steps=args.steps)
    steps = train.steps
    scenes = render_scenes(cfg)
    images = torch.from_numpy(scenes.images)
    y = {f: torch.tensor(scenes.factors[f].to_numpy()) for f in stated}
    encoder = ResNetEncoder(encoder_preset("image", cfg.model.image), code_dim=sum(sizes))
    opt = torch.optim.Adam(encoder.parameters(), lr=cfg.train.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, train))
    gen = torch.Generator().manual_seed(args.seed)
    for _ in range(steps):
        idx = torch.randint(scenes.train.start, scenes.train.stop, (cfg.train.batch_size,), generator=gen)
        heads = encoder(images_to_float(images[idx])).split(sizes, dim=1)
        loss = sum(F.cross_entropy(h, y[f][idx]) for f, h in zip(stated, heads, strict=True))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    encoder.eval()
    test = range(scenes.test.start, scenes.test.stop)
    with torch.no_grad():
        out = torch.cat([encoder(images_to_float(images[i : i + 512])) for i in range(test.start, test.stop, 512)])
    contrastive = {}
    if scores_file is not None:
        scores = json.loads(scores_file.read_text())["scores"]
        contrastive = {f: scores[f"probe/{f}/mlp/mcc/image"] for f in stated}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"{args.level}, {steps} steps, seed {args.seed}; {cores} cores, one thread, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )
    print("| factor | supervised tower (test MCC) | contrastive image code (MLP probe) |")
    print("|---|---|---|")
    for f, h in zip(stated, out.split(sizes, dim=1), strict=True):
        mcc = matthews_corrcoef(y[f][test.start : test.stop].numpy(), h.argmax(1).numpy())
        other = f"{contrastive[f]:.3f}" if f in contrastive else "–"
        print(f"| {f} | {mcc:.3f} | {other} |")


if __name__ == "__main__":
    main()
