"""Baseline: the default diagnosis on free-form captions (scenes and Fashion-MNIST, style "a").

Usage: python bench/freeform_baseline.py [--n 4000] [--seed 0] [--sets scenes fashion] [--out runs/freeform_baseline]

Builds ``--n`` pairs of each set with planted misalignment and known truth:

- scenes: :func:`~misalignlab.data.freeform.scenes.make_freeform_scene_pairs` at 32 px, style "a",
  10 % incomplete, 10 % wrong, 10 % unrelated;
- fashion: ``--n`` random Fashion-MNIST training images (Debian package ``dataset-fashion-mnist``),
  :func:`~misalignlab.data.freeform.fashion.fashion_freeform_captions` style "a" at 13.3 % of
  each kind; grey images repeated to 3 channels.

Each set is diagnosed as the ``diagnose`` command does by default: ``DiagnoseCfg()`` with the embed
backend of ``--backbone auto`` and ``schema="auto"``. Scores: AUROC of every detector and the
combined score (positives = non-aligned pairs), type macro-F1 and per-kind F1 of the combined
typing, and the share of truly aligned pairs typed non-aligned. Writes ``freeform_baseline.json``
to ``--out`` and prints a Markdown table. Detection code is used as it is; nothing is tuned here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from misalignlab.data.freeform.fashion import fashion_freeform_captions
from misalignlab.data.freeform.plant import FreeformCfg
from misalignlab.data.freeform.scenes import make_freeform_scene_pairs
from misalignlab.data.loaders.fashion_mnist import fashion_mnist_pairs
from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.detect.backends import parse_backbone
from misalignlab.detect.pipeline import DiagnoseCfg, diagnose_pairs
from misalignlab.evaluate.detection_metrics import detection_metrics, type_metrics
from misalignlab.kinds import KINDS


def scenes(n: int, seed: int) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    pairs = make_freeform_scene_pairs(n, SceneCfg(size=32), FreeformCfg("a", 0.1, 0.1, 0.1), seed)
    ids = [f"scene{i:06d}" for i in range(n)]
    return ids, pairs.images, list(pairs.captions), pairs.truth["kind"].to_numpy().astype(str)


def fashion(n: int, seed: int) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    full = fashion_mnist_pairs("train")
    keep = np.random.default_rng(seed).choice(len(full), min(n, len(full)), replace=False)
    pairs = dataclasses.replace(
        full,
        images=full.images[keep],
        labels=full.labels[keep],
        tone=full.tone[keep],
        size=full.size[keep],
        captions=tuple(full.captions[i] for i in keep),
    )
    rate = 0.4 / 3  # 13.3 % of each kind
    captions, truth = fashion_freeform_captions(pairs, FreeformCfg("a", rate, rate, rate), seed)
    images = np.repeat(pairs.images[..., None], 3, axis=3)  # (N, 28, 28) grey → (N, 28, 28, 3)
    return [f"fmnist{i:06d}" for i in keep], images, captions, truth["kind"].to_numpy().astype(str)


def default_cfg() -> DiagnoseCfg:
    """``DiagnoseCfg()`` with the embed backend that ``diagnose --backbone auto`` resolves to."""
    base = DiagnoseCfg(schema="auto")
    return dataclasses.replace(base, embed=dataclasses.replace(base.embed, **parse_backbone("auto")))


def score(diag, true_kind: np.ndarray) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, res in diag.results.items():
        out[f"auroc/{name}"] = detection_metrics(name, res.score, true_kind)[f"detect/{name}/auroc"]
    typed = diag.table["type"].to_numpy().astype(str)  # the combined typing, as diagnose reports it
    t = type_metrics(typed, true_kind)
    out["type_macro_f1"] = t["type/macro_f1"]
    out |= {f"f1/{k}": t[f"type/{k}/f1"] for k in KINDS}
    out["aligned_typed_non_aligned"] = float((typed[true_kind == "aligned"] != "aligned").mean())
    out["true_kinds"] = {k: int((true_kind == k).sum()) for k in KINDS}
    out["typed_kinds"] = {k: int((typed == k).sum()) for k in KINDS}
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, object]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sets", nargs="+", default=["scenes", "fashion"], choices=["scenes", "fashion"])
    parser.add_argument("--out", type=Path, default=Path("runs/freeform_baseline"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = default_cfg()
    results: dict[str, dict[str, object]] = {}
    for name in args.sets:
        ids, images, captions, true_kind = {"scenes": scenes, "fashion": fashion}[name](args.n, args.seed)
        start = time.perf_counter()
        diag = diagnose_pairs(ids, images, captions, cfg, args.out / "cache" / name)
        results[name] = score(diag, true_kind) | {
            "seconds": time.perf_counter() - start,
            "backend": cfg.embed.backend,
            "schema": diag.summary["schema"],
            "n": len(ids),
        }
        print(f"{name}: {json.dumps(results[name], default=str)}", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "freeform_baseline.json").write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(table(results))
    return results


def table(results: dict[str, dict[str, object]]) -> str:
    keys = sorted({k for r in results.values() for k in r if k.startswith(("auroc/", "f1/"))})
    keys += ["type_macro_f1", "aligned_typed_non_aligned", "seconds"]
    lines = ["| metric | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    for k in keys:
        cells = [f"{r[k]:.3f}" if isinstance(r.get(k), float) else str(r.get(k, "")) for r in results.values()]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
