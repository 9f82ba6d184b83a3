"""Paper-scale numeric training step: batched over the selection settings vs one model at a time.

One step = sample latents for every model, both towers forward (7-layer MLPs of the paper's
widths), squared-Euclidean InfoNCE with independent negatives, backward, per-model gradient
clipping and Adam. Three timings in one run:

- ``batched``: every setting in one :class:`SimStack` (stacked weights, batched matmuls);
- ``alone``: the same code path, one setting at a time;
- ``reference``: a plain per-model loop in the style of the paper's code (``nn.Sequential`` per
  tower, its own Adam, ``clip_grad_norm_``), the baseline the issue asks us to beat.

Prints ms per model-step for each and Markdown rows. On a GPU, timings use CUDA events after
warm-up; on a CPU use small sizes (``--batch 256 --steps 3``) to check the script.

    python bench/numeric_step.py --device cuda --batch 6144 --steps 30 [--amp bf16]
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import torch
from torch import nn

from misalignlab.models.losses import build_loss
from misalignlab.models.sim_stack import SimEncoderCfg, SimStack
from misalignlab.train.sim import clip_per_model
from misalignlab.workflows.sim import build_settings, sweep_config


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_stack(stack: SimStack, batch: int, steps: int, device: str, amp: str | None) -> float:
    """Seconds per step for ``stack`` (all its models) on ``device``, data sampled on the device."""
    stack.to(device)
    loss_fn = build_loss("sqeuclid_independent")
    params = list(stack.f_x.parameters()) + list(stack.f_t.parameters())
    opt = torch.optim.Adam(params, lr=1e-4)
    gens = [torch.Generator(device=device).manual_seed(i) for i in range(len(stack.settings))]
    dtype = torch.bfloat16 if amp == "bf16" else None

    def step() -> None:
        x, t, _ = stack.sample(batch, gens)
        x2, t2, _ = stack.sample(batch, gens)
        with torch.autocast(device_type=device.split(":")[0], dtype=dtype, enabled=dtype is not None):
            a, b = stack.codes(x, t)
            a2, b2 = stack.codes(x2, t2)
            loss = loss_fn(a.float(), b.float(), img_neg=a2.float(), txt_neg=b2.float()).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        clip_per_model(params, 2.0)
        opt.step()

    return seconds_per_call(step, steps, device)


def seconds_per_call(step: Callable[[], None], steps: int, device: str) -> float:
    """Mean seconds of ``step`` after 3 warm-up calls, synchronising the device around the timing."""
    for _ in range(3):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return (time.perf_counter() - start) / steps


def paper_style_tower(d_in: int, d_out: int) -> nn.Sequential:
    widths = [d_in, 10 * d_in, 50 * d_in, 50 * d_in, 50 * d_in, 50 * d_in, 10 * d_in, d_out]
    layers: list[nn.Module] = []
    for i in range(len(widths) - 1):
        layers.append(nn.Linear(widths[i], widths[i + 1]))
        if i < len(widths) - 2:
            layers.append(nn.LeakyReLU(0.01))
    return nn.Sequential(*layers)


def time_reference(stack: SimStack, batch: int, steps: int, device: str) -> float:
    """A straightforward per-model loop, as the paper's code trains one model per process."""
    stack.to(device)  # its latent variable models sample on the device, as in time_stack
    loss_fn = build_loss("sqeuclid_independent")
    total = 0.0
    for m, lvm in enumerate(stack.lvms):
        fx = paper_style_tower(lvm.image_dim, stack.code_dims[m]).to(device)
        ft = paper_style_tower(lvm.text_dim, stack.code_dims[m]).to(device)
        params = list(fx.parameters()) + list(ft.parameters())
        opt = torch.optim.Adam(params, lr=1e-4)
        gen = torch.Generator(device=device).manual_seed(m)

        def step(lvm=lvm, gen=gen, fx=fx, ft=ft, opt=opt, params=params) -> None:  # bound now: called in this iteration
            o, o2 = lvm.sample(batch, gen), lvm.sample(batch, gen)
            loss = loss_fn(fx(o.x), ft(o.t), img_neg=fx(o2.x), txt_neg=ft(o2.t))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 2.0)
            opt.step()

        total += seconds_per_call(step, steps, device)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=6144)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--amp", choices=["bf16"], default=None)
    ap.add_argument("--preset", default="paper-selection")
    args = ap.parse_args()
    cfg = sweep_config(args.preset, "paper")
    settings = build_settings(cfg)[:: cfg.seeds]  # one seed per setting
    enc = SimEncoderCfg()  # the paper's widths
    n = len(settings)
    batched = time_stack(SimStack(settings, cfg.lvm, enc), args.batch, args.steps, args.device, args.amp)
    alone = sum(
        time_stack(SimStack([s], cfg.lvm, enc), args.batch, args.steps, args.device, args.amp) for s in settings
    )
    ref = time_reference(SimStack(settings, cfg.lvm, enc), args.batch, args.steps, args.device)
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    print(f"device: {name}; batch {args.batch}; {n} models; amp {args.amp}")
    print("| step | ms per model-step | vs reference |")
    print("|---|---|---|")
    for label, sec in (
        ("batched stack", batched / n),
        ("one at a time (same code)", alone / n),
        ("reference per-model loop", ref / n),
    ):
        print(f"| {label} | {1000 * sec:.2f} | {ref / n / sec:.2f}× |")


if __name__ == "__main__":
    main()
