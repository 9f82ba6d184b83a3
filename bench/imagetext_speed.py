"""Training throughput (pairs/s) of one image–text step at 64×64 for each image preset on this machine.

Usage: python bench/imagetext_speed.py [--threads 1 2] [--batch 256] [--presets tiny small resnet18]
Times the full step the trainer runs (uint8 → float, both encoders, clip_cross_modal loss, backward,
gradient clipping, Adam) and reports the best of several steps (shared machines are noisy).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from misalignlab.models.pair_model import ModelCfg, build_model
from misalignlab.models.tokenizer import WordTokenizer
from misalignlab.train.pairs import LossCfg, PairBatches, PairObjective
from misalignlab.train.trainer import Callback, TrainCfg, Trainer

WORDS = "a small large red green blue yellow cube sphere cone ring top left right bottom on grey background".split()


def bench(preset: str, threads: int, batch: int, steps: int, device: str = "cpu") -> float:
    torch.set_num_threads(threads)
    rng = np.random.default_rng(0)
    n = batch * 2
    images = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    captions = [" ".join(rng.choice(WORDS, 9)) for _ in range(n)]
    tok = WordTokenizer.build(captions)
    torch.manual_seed(0)
    model = build_model(ModelCfg(image=preset, code_dim=8, max_len=16), tok)
    channels_last = device.startswith("cuda")
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    objective = PairObjective(model, LossCfg().build(), channels_last)
    source = PairBatches(torch.from_numpy(images), tok.encode(captions, 16), batch, seed=0)
    times: list[float] = []

    class Timer(Callback):
        def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(logs["step_s"])

    Trainer(TrainCfg(steps=steps, batch_size=batch, device=device), [Timer()]).fit(objective, source)
    return batch / min(times[1:])  # first step warms up


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "resnet18"])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    for preset in args.presets:
        for threads in args.threads:
            steps = 4 if preset == "resnet18" and args.device == "cpu" else 8
            rate = bench(preset, threads, args.batch, steps, args.device)
            print(f"image/{preset:9s} threads={threads} batch={args.batch} device={args.device}: {rate:8.0f} pairs/s")


if __name__ == "__main__":
    main()
