"""The benchmark record in one run: numeric step, image–text step, render and diagnose, each timed
against a plain reference implementation in the same process, as rows ready for BENCHMARKS.md.

    bash bench/run_gpu.sh                                  # on the GPU machine (installs first)
    python bench/run_gpu.py --device cuda --out runs/bench # the same without installing
    python bench/run_gpu.py --device cpu --quick --out /tmp/bench   # end-to-end check, < 1 min

What each row compares (figure / reference / ratio = figure ÷ reference, higher is better):

- numeric step: the paper's 7-layer MLP towers for the selection settings, squared-Euclidean
  InfoNCE with independent negatives, per-model clipping, Adam; all settings in one stacked model
  vs a plain per-model loop in the style of the paper's code (:mod:`numeric_step`).
- image–text step: ``image/resnet18`` + ``text/tiny`` at 64×64, batch 256, the trainer's full step
  (uint8 → float on the device, both encoders, CLIP loss, backward, clipping, Adam), pairs already
  on the device; fp32, bf16 + channels-last, and (CUDA) + ``torch.compile(mode="reduce-overhead")``
  vs a plain loop (fp32, NCHW, ``loss.item()`` every step, as the paper's code logs).
- render: chunked vectorised drawing vs one image at a time (:mod:`render_speed`, CPU).
- diagnose: the neighbourhood detector vs a plain full-matrix version on the same pairs, with the
  throughput of typing + detectors + table on cached real codes in the row (:mod:`diagnose_speed`,
  ``--mode detect``, CPU; the codes are built once under ``OUT/diagnose-cache``).

Rows are printed and appended to ``OUT/benchmarks.md`` under a heading naming the device
(``torch.cuda.get_device_name()`` on CUDA). Absolute figures are the device's; on a shared CPU
only the ratios mean much.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark scripts

import diagnose_speed  # noqa: E402
import numeric_step  # noqa: E402
import render_speed  # noqa: E402
from misalignlab.data.scenes.factors import SceneCfg  # noqa: E402
from misalignlab.data.scenes.render import sample_factors  # noqa: E402
from misalignlab.detect.pipeline import DiagnoseCfg  # noqa: E402
from misalignlab.models.losses import ClipInfoNCE  # noqa: E402
from misalignlab.models.pair_model import ModelCfg, build_model  # noqa: E402
from misalignlab.models.sim_stack import SimEncoderCfg, SimStack  # noqa: E402
from misalignlab.models.tokenizer import WordTokenizer  # noqa: E402
from misalignlab.train.pairs import PairBatches, PairObjective, images_to_float  # noqa: E402
from misalignlab.train.trainer import Callback, TrainCfg, Trainer  # noqa: E402
from misalignlab.workflows.sim import build_settings, sweep_config  # noqa: E402


@dataclass(frozen=True)
class Row:
    benchmark: str
    what: str
    figure: str
    reference: str
    ratio: float

    def markdown(self, script: str) -> str:
        return f"| {self.benchmark} | `{script}` | {self.what} | {self.figure} | {self.reference} | {self.ratio:.2f}× |"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU ({platform.processor() or platform.machine()}, {cores} cores, {torch.get_num_threads()} threads)"


def numeric(device: str, quick: bool) -> Row:
    cfg = sweep_config("paper-selection", "paper")
    settings = build_settings(cfg)[:: cfg.seeds]  # one seed per setting
    lvm = sweep_config("paper-selection", "tiny").lvm if quick else cfg.lvm  # tiny: a cheaper generator search
    settings = settings[:3] if quick else settings
    batch, steps = (32, 1) if quick else (6144, 30)
    batched = numeric_step.time_stack(SimStack(settings, lvm, SimEncoderCfg()), batch, steps, device, None)
    ref = numeric_step.time_reference(SimStack(settings, lvm, SimEncoderCfg()), batch, steps, device)
    n = len(settings)
    return Row(
        "numeric step",
        f"{n} selection settings, paper-width MLPs, batch {batch}, fp32",
        f"{1000 * batched / n:.2f} ms per model-step (one stacked model)",
        f"plain per-model loop: {1000 * ref / n:.2f} ms per model-step",
        ref / batched,
    )


WORDS = "a small large red green blue yellow cube sphere cone ring top left right bottom on grey background".split()


def pairs_on(device: str, n: int, size: int) -> tuple[torch.Tensor, torch.Tensor, WordTokenizer]:
    rng = np.random.default_rng(0)
    captions = [" ".join(rng.choice(WORDS, 9)) for _ in range(n)]
    tok = WordTokenizer.build(captions)
    images = torch.from_numpy(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)).to(device)
    return images, tok.encode(captions, 16).to(device), tok


def trainer_rate(device: str, preset: str, size: int, batch: int, steps: int, warm: int, **opt: object) -> float:
    """Pairs/s of the trainer's step, timed between step ``warm`` and the last (device synchronised there only)."""
    images, tokens, tok = pairs_on(device, 4 * batch, size)
    torch.manual_seed(0)
    model = build_model(ModelCfg(image=preset, code_dim=32, image_size=size, max_len=16), tok)
    channels_last = bool(opt.get("channels_last"))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    objective = PairObjective(model, ClipInfoNCE(), channels_last)
    source = PairBatches(images, tokens, batch, seed=0, device=device)
    total = warm + steps
    marks: dict[int, float] = {}

    class Clock(Callback):
        def on_step_end(self, trainer: Trainer, step: int, logs: dict) -> None:
            if step in (warm, total):
                sync(device)
                marks[step] = time.perf_counter()

    cfg = TrainCfg(
        steps=total,
        batch_size=batch,
        lr=1e-4,
        device=device,
        check_every=total,
        amp_dtype=opt.get("amp_dtype"),
        compile=opt.get("compile"),
    )  # type: ignore[arg-type]
    Trainer(cfg, [Clock()]).fit(objective, source)
    return steps * batch / (marks[total] - marks[warm])


def reference_rate(device: str, preset: str, size: int, batch: int, steps: int, warm: int) -> float:
    """Pairs/s of a plain step: fp32, NCHW, random batches indexed on the device, ``.item()`` per step."""
    images, tokens, tok = pairs_on(device, 4 * batch, size)
    torch.manual_seed(0)
    model = build_model(ModelCfg(image=preset, code_dim=32, image_size=size, max_len=16), tok).to(device).train()
    loss_fn = ClipInfoNCE()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    losses = []
    for i in range(warm + steps):
        if i == warm:
            sync(device)
            start = time.perf_counter()
        idx = torch.randint(0, len(images), (batch,), device=device)
        loss = loss_fn(model.encode_image(images_to_float(images[idx])), model.encode_text(tokens[idx]))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
        opt.step()
        losses.append(loss.item())
    sync(device)
    return steps * batch / (time.perf_counter() - start)


def imagetext(device: str, quick: bool) -> list[Row]:
    preset, size, batch, steps, warm = ("tiny", 32, 32, 3, 2) if quick else ("resnet18", 64, 256, 100, 20)
    ref = reference_rate(device, preset, size, batch, steps, warm)
    variants: list[tuple[str, dict[str, object]]] = [
        ("fp32", {}),
        ("bf16 autocast + channels-last", {"amp_dtype": "bfloat16", "channels_last": True}),
    ]
    if device.startswith("cuda"):  # compiling on a CPU takes minutes and is not what the record is for
        variants.append(
            (
                "bf16 + channels-last + torch.compile(reduce-overhead)",
                {"amp_dtype": "bfloat16", "channels_last": True, "compile": "reduce-overhead"},
            )
        )
    rows = []
    for label, opt in variants:
        rate = trainer_rate(device, preset, size, batch, steps, warm, **opt)
        rows.append(
            Row(
                "image–text step",
                f"`image/{preset}` + `text/tiny`, {size}×{size}, batch {batch}, {label}",
                f"{rate:,.0f} pairs/s",
                f"plain loop (fp32, NCHW, `.item()` per step): {ref:,.0f} pairs/s",
                rate / ref,
            )
        )
    return rows


def render(quick: bool) -> Row:
    n, ref_n, repeats = (512, 64, 1) if quick else (4096, 256, 5)
    cfg = SceneCfg(size=64)
    df = sample_factors(n, cfg, np.random.default_rng(0))
    fast, _ = render_speed.images_per_second(df, cfg, repeats)
    slow, _ = render_speed.images_per_second(df.iloc[:ref_n], cfg, max(1, repeats // 2), chunk=1)
    return Row(
        "render",
        f"64×64 scenes, all factors, {n} × {repeats}, CPU, {torch.get_num_threads()} threads",
        f"{fast:,.0f} images/s",
        f"one image at a time: {slow:,.0f} images/s",
        fast / slow,
    )


def diagnose(quick: bool, out: Path) -> Row:
    """Typing + detectors + table on cached real codes; the neighbourhood detector against a plain one."""
    # --quick: the scratch backbone (no MiniLM encodings) and a tiny budget keep the check to seconds
    n, ref_n, backbone, steps = (300, 150, "scratch", 4) if quick else (100_000, 4000, "text:minilm", 300)
    inputs = diagnose_speed.detect_inputs(n, out / "diagnose-cache", backbone, steps)
    check = diagnose_speed.check_neighbourhood(inputs, ref_n)
    start = time.perf_counter()
    diagnose_speed.fast(inputs, DiagnoseCfg())
    rate = n / (time.perf_counter() - start)
    return Row(
        "diagnose",
        f"cached `{backbone}` codes of {n:,} free-form scene pairs: typing + detectors + table; "
        f"the neighbourhood detector alone on {ref_n:,} of them, CPU",
        f"{rate:,.0f} pairs/s; neighbourhood alone {check.fast_rate:,.0f} pairs/s (max diff {check.max_diff:.0e} where no k-th neighbour ties)",
        f"plain neighbourhood (full n×n per fold) on the same {ref_n:,}: {check.ref_rate:,.0f} pairs/s",
        check.ratio,
    )


SCRIPTS = {
    "numeric step": "bench/numeric_step.py",
    "image–text step": "bench/run_gpu.py",
    "render": "bench/render_speed.py",
    "diagnose": "bench/diagnose_speed.py",
}


def main(argv: list[str] | None = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks the script end to end")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "runs/bench")))
    ap.add_argument(
        "--only",
        nargs="+",
        choices=["numeric", "imagetext", "render", "diagnose"],
        default=["numeric", "imagetext", "render", "diagnose"],
    )
    args = ap.parse_args(argv)
    if args.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True  # fixed shapes: cuDNN picks its fastest convolutions (reference too)
    name = device_name(args.device)
    runs = {
        "numeric": lambda: [numeric(args.device, args.quick)],
        "imagetext": lambda: imagetext(args.device, args.quick),
        "render": lambda: [render(args.quick)],
        "diagnose": lambda: [diagnose(args.quick, args.out)],
    }
    lines = [
        f"\n### {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC — {name}, torch {torch.__version__}"
        + (" (--quick: script check, figures meaningless)" if args.quick else ""),
        "",
        "| benchmark | script | what | figure | reference in the same run | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for key in args.only:
        for row in runs[key]():
            lines.append(row.markdown(SCRIPTS[row.benchmark]))
            print(lines[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "benchmarks.md"
    with open(path, "a", encoding="utf-8") as fh:  # appended: one heading per run, history kept
        fh.write("\n".join(lines) + "\n")
    print(f"rows appended to {path}")
    return path


if __name__ == "__main__":
    main()
