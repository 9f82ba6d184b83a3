"""Quick selection grid trained batched (one stacked model) vs one model at a time, in one run.

Both paths run the same code (``train_stack``); the reference trains each setting as a stack of
one, as a per-setting loop would. Prints ms per model-step for each and the ratio, as a Markdown row.

It also prints the *arithmetic floor* measured in the same run: the matrix FLOPs of one model-step
(counted by ``torch.utils.flop_counter`` over forward and backward) divided by the rate this
machine reaches on a batched matmul of the encoder's own shape. No batching can make a model-step
cheaper than that floor, so ``one-at-a-time time / floor`` bounds the speed-up batching can give.

    python bench/sweep_speed.py [--steps 100] [--threads 2] [--batch 512] [--width 128]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from dataclasses import replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from misalignlab.models.sim_stack import SimStack
from misalignlab.train.sim import SimTrainCfg, train_stack
from misalignlab.workflows.sim import build_settings, sweep_config


def timed_train(stack: SimStack, cfg: SimTrainCfg) -> float:
    train_stack(stack, SimTrainCfg(**{**cfg.__dict__, "steps": 5}))  # warm-up: allocator, threads
    start = time.perf_counter()
    train_stack(stack, cfg)
    return time.perf_counter() - start


def step_flops(stack: SimStack, cfg: SimTrainCfg) -> float:
    """Matrix FLOPs of one forward + backward step of every model in ``stack``."""
    gens = [torch.Generator().manual_seed(s.seed) for s in stack.settings]
    x, t, _ = stack.sample(cfg.batch_size, gens)
    loss_fn = cfg.build_loss()
    with FlopCounterMode(display=False) as counter:
        a, b = stack.codes(x, t)
        loss_fn(a, b).sum().backward()
    return float(counter.get_total_flops())


def gemm_rate(models: int, batch: int, width: int, repeats: int = 50) -> float:
    """FLOP/s of a batched (models, batch, width) × (models, width, width) matmul on this machine."""
    a, w = torch.randn(models, batch, width), torch.randn(models, width, width)
    for _ in range(5):
        torch.bmm(a, w)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.bmm(a, w)
    return repeats * 2.0 * models * batch * width * width / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--preset", default="paper-selection")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sweep = sweep_config(args.preset, "quick")
    settings = build_settings(sweep)
    enc = replace(sweep.encoder, hidden=(args.width,) * len(sweep.encoder.hidden))  # the quick recipe's encoders
    cfg = SimTrainCfg(**{**sweep.train.__dict__, "steps": args.steps, "batch_size": args.batch})
    lvm = sweep.lvm
    batched = timed_train(SimStack(settings, lvm, enc), cfg)
    alone = sum(timed_train(SimStack([s], lvm, enc), cfg) for s in settings)
    n = len(settings) * args.steps
    flops = step_flops(SimStack(settings[:1], lvm, enc), cfg)
    rate = gemm_rate(len(settings), args.batch, args.width)
    floor_ms = 1000 * flops / rate
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(
        "| benchmark | models | steps | batch | width | batched ms/model-step | one-at-a-time ms/model-step | speed-up |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print(
        f"| sweep_speed {args.preset} | {len(settings)} | {args.steps} | {args.batch} | {args.width} | "
        f"{1000 * batched / n:.2f} | {1000 * alone / n:.2f} | {alone / batched:.2f}× |"
    )
    print(
        f"\narithmetic floor: {flops / 1e9:.2f} GFLOP per model-step at {rate / 1e9:.1f} GFLOP/s (batched matmul "
        f"of the encoder's shape, this run) = {floor_ms:.1f} ms per model-step; no batching can beat "
        f"{1000 * alone / n / floor_ms:.2f}× over one-at-a-time here"
    )


if __name__ == "__main__":
    main()
