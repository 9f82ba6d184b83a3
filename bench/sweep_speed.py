"""Quick selection grid trained batched (one stacked model) vs one model at a time, in one run.

Both paths run the same code (``train_stack``); the reference trains each setting as a stack of
one, as a per-setting loop would. Prints ms per model-step for each and the ratio, as a Markdown row.

    python bench/sweep_speed.py [--steps 100] [--threads 2] [--batch 512] [--width 128]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import torch

from misalignlab.simlab import build_settings, sweep_config
from misalignlab.train.numeric import EncoderCfg, NumericTrainCfg, SimStack, train_stack


def timed_train(stack: SimStack, cfg: NumericTrainCfg) -> float:
    train_stack(stack, NumericTrainCfg(**{**cfg.__dict__, "steps": 5}))  # warm-up: allocator, threads
    start = time.perf_counter()
    train_stack(stack, cfg)
    return time.perf_counter() - start


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
    enc = EncoderCfg(hidden=(args.width,) * 5)
    cfg = NumericTrainCfg(**{**sweep.train.__dict__, "steps": args.steps, "batch_size": args.batch})
    lvm = sweep.lvm
    batched = timed_train(SimStack(settings, lvm, enc), cfg)
    alone = sum(timed_train(SimStack([s], lvm, enc), cfg) for s in settings)
    n = len(settings) * args.steps
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"torch threads {torch.get_num_threads()}")
    print("| benchmark | models | steps | batch | width | batched ms/model-step | one-at-a-time ms/model-step | speed-up |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| sweep_speed {args.preset} | {len(settings)} | {args.steps} | {args.batch} | {args.width} | "
          f"{1000 * batched / n:.2f} | {1000 * alone / n:.2f} | {alone / batched:.2f}× |")


if __name__ == "__main__":
    main()
