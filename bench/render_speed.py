"""Render throughput at 64×64: chunked, vectorised ``render`` against a per-image reference.

The reference draws the same images one at a time (``render(..., chunk=1)``: a Python loop
over images, each drawn by the same code on a batch of one); its output is checked to be
byte-identical. Prints one Markdown row for BENCHMARKS.md.

Usage: ``python bench/render_speed.py [--n 4096] [--repeats 5] [--ref-n 256]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.render import render, sample_factors


def images_per_second(df, cfg: SceneCfg, repeats: int, chunk: int | None = None) -> tuple[float, float]:
    """Median images/s over ``repeats`` renders: (wall clock, CPU time of this process)."""
    kwargs = {} if chunk is None else {"chunk": chunk}
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        render(df, cfg, seed=0, **kwargs)
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return len(df) / statistics.median(wall), len(df) / statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="images per timed render")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ref-n", type=int, default=256, help="images for the per-image reference")
    args = parser.parse_args()
    cfg = SceneCfg(size=64)
    df = sample_factors(args.n, cfg, np.random.default_rng(0))
    ref_df = df.iloc[: args.ref_n]
    assert np.array_equal(render(ref_df, cfg, chunk=1), render(ref_df, cfg)), "reference differs"
    render(df.iloc[:256], cfg)  # warm-up
    fast, fast_cpu = images_per_second(df, cfg, args.repeats)
    slow, slow_cpu = images_per_second(ref_df, cfg, max(1, args.repeats // 2), chunk=1)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        "| benchmark | images | images/s (wall, median) | images/s (CPU time) | per-image reference (wall / CPU) "
        "| speed-up (wall / CPU) | machine |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| render 64×64, all factors | {args.n} × {args.repeats} | {fast:,.0f} | {fast_cpu:,.0f} "
        f"| {slow:,.0f} / {slow_cpu:,.0f} | {fast / slow:.1f}× / {fast_cpu / slow_cpu:.1f}× "
        f"| {cores} cores (load {load:.1f}), one thread, {platform.python_implementation()} {platform.python_version()} |"
    )


if __name__ == "__main__":
    main()
