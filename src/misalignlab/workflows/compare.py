"""Side-by-side comparison of training strategies on rendered scenes, in and out of distribution.

:func:`run_compare` renders (or loads) the training pairs, scores them once with a cross-fitted
detector when a strategy needs scores (shared by ``filter`` and ``reweight``), trains one model per
strategy and seed, and evaluates each on an in-distribution and a shifted test set: linear probes
(fitted on an in-distribution split) and zero-shot prompts for the task factors, and retrieval.
The run folder holds ``config.json``, ``argv.txt``, ``results.jsonl`` (one row per run and metric,
plus the detector's quality), ``runs/<strategy>/seed<k>/config.json``, ``raw.csv`` (long),
``table.csv`` / ``table.md`` (mean ± 95 % t-interval over seeds) and ``plots/*.png``. Rerunning
into the same folder skips finished (strategy, seed) runs, continues an unfinished one from its
last checkpoint (``runs/<strategy>/seed<k>/checkpoints``) and reuses the detector's cross-fitted
embeddings (``cache/``), so a killed comparison loses at most ``checkpoint_every`` steps.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from misalignlab.config import to_dict
from misalignlab.data.scenes.dataset import ScenePairs
from misalignlab.data.scenes.scenarios import Scenario, eval_sets, render_split
from misalignlab.detect.backends import budget_embed_cfg
from misalignlab.detect.base import DetectionResult
from misalignlab.detect.pipeline import DiagnoseCfg, diagnose_pairs
from misalignlab.evaluate.detection_metrics import detection_metrics
from misalignlab.evaluate.pair_metrics import summarise_seeds
from misalignlab.evaluate.scene_eval import evaluate_model
from misalignlab.report.compare_report import SPLITS, compare_markdown, strategy_plot
from misalignlab.runs import RunDir, atomic_write_text, read_jsonl, write_json
from misalignlab.strategies import PairSet, build_strategy
from misalignlab.strategies.fit import fit_strategy
from misalignlab.train.callbacks import Checkpoint
from misalignlab.train.pairs import PairTrainCfg
from misalignlab.train.trainer import Callback, latest_checkpoint
from misalignlab.workflows.compare_presets import CompareCfg

log = logging.getLogger(__name__)


def detect_training_pairs(
    pairs: PairSet, cfg: CompareCfg, truth_kind: np.ndarray | None, cache_dir: Path | None = None
) -> tuple[DetectionResult, dict[str, float]]:
    """Cross-fitted (2-fold) detector scores on the training pairs, and the detector's quality if truth is known.

    ``cache_dir`` keeps the fold models and codes (a rerun loads them instead of training again)."""
    batch = min(cfg.train.batch_size, len(pairs) // 2)
    embed = budget_embed_cfg(cfg.detect_steps, batch, cfg.train.lr, cfg.model, cfg.data_seed, cfg.backbone)
    dcfg = DiagnoseCfg(embed)  # the defaults a user gets from diagnose
    results = diagnose_pairs(list(pairs.pair_id), pairs.images, pairs.captions, dcfg, cache_dir).results
    if cfg.detector not in results:
        raise ValueError(f"detector {cfg.detector!r} produced no result; available: {', '.join(results)}")
    found = results[cfg.detector]
    quality = detection_metrics(found.detector, found.score, truth_kind) if truth_kind is not None else {}
    return found, quality


def strategy_kwargs(cfg: CompareCfg, name: str, options: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return dict(cfg.strategy_kwargs.get(name, {})) | dict(options.get(name, {}))


def _done(path: Path) -> set[tuple[str, int]]:
    if not path.is_file():
        return set()
    return {(r["strategy"], int(r["seed"])) for r in read_jsonl(path) if r.get("stage") == "eval"}


def run_compare(
    scenario: Scenario,
    cfg: CompareCfg,
    strategies: Sequence[str],
    out: Path,
    train_pairs: ScenePairs | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    argv: list[str] | None = None,
    callbacks: Callable[[str, int], list[Callback]] | None = None,
) -> dict[str, Path]:
    """Train and evaluate every strategy for ``cfg.seeds`` seeds; write tables and plots under ``out``.

    ``train_pairs`` replaces the scenario's rendered training pairs (a dataset folder).
    """
    options = dict(options or {})
    built = {name: build_strategy(name, **strategy_kwargs(cfg, name, options)) for name in strategies}
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    config = {
        "scenario": to_dict(scenario),
        "compare": to_dict(cfg),
        "strategies": list(strategies),
        "strategy_params": {n: s.params() for n, s in built.items()},
        "data": "folder" if train_pairs is not None else "rendered",
    }
    done = _done(Path(out) / "results.jsonl")
    run = RunDir(out, config, argv)
    data = train_pairs or render_split(cfg.n_train, scenario, scenario.train_shifts, cfg.data_seed, scenario.injection)
    template = data.truth["template"].to_numpy() if "template" in data.truth else None
    pairs = PairSet.build(data.images, data.captions, template)
    tests = {"id": scenario.train_shifts} | ({"ood": scenario.ood_shifts} if scenario.ood_shifts is not None else {})
    sets = eval_sets(replace(scenario, scene=data.scene_cfg), cfg.n_fit, cfg.n_test, cfg.data_seed, tests)
    found = None
    pending = [name for name in built for k in range(cfg.seeds) if (name, k) not in done]
    if any(built[name].needs_scores for name in pending):
        start = time.perf_counter()
        kind = data.truth["kind"].to_numpy() if "kind" in data.truth else None
        found, quality = detect_training_pairs(pairs, cfg, kind, run.path("cache"))
        run.log({"stage": "detect", "detector": found.detector, "seconds": time.perf_counter() - start} | quality)
    for seed in range(cfg.seeds):
        for name, strategy in built.items():
            if (name, seed) in done:
                continue
            icfg = PairTrainCfg(replace(cfg.train, seed=seed), cfg.model, cfg.loss)
            write_json(
                run.path(f"runs/{name}/seed{seed}/config.json"),
                {
                    "strategy": name,
                    "family": strategy.family,
                    "params": strategy.params(),
                    "seed": seed,
                    "imagetext": to_dict(icfg),
                    "scenario": scenario.name,
                },
            )
            start = time.perf_counter()
            folder = run.path(f"runs/{name}/seed{seed}")
            cbs = [*(callbacks(name, seed) if callbacks else ()), Checkpoint(folder, every=cfg.checkpoint_every)]
            fitted = fit_strategy(strategy, pairs, icfg, found, cbs, resume=latest_checkpoint(folder))
            train_s = time.perf_counter() - start
            metrics = evaluate_model(fitted.model, sets, scenario.tasks)
            run.log(
                {
                    "stage": "eval",
                    "strategy": name,
                    "family": strategy.family,
                    "seed": seed,
                    "n_trained": len(fitted.pairs),
                    "train_seconds": train_s,
                    "eval_seconds": time.perf_counter() - start - train_s,
                }
                | metrics
            )
            log.info("%s seed %d: %.0f s", name, seed, time.perf_counter() - start)
    return write_tables(out, scenario.tasks, list(strategies))


def headline_metrics(tasks: Sequence[str]) -> list[str]:
    per_task = [m for f in tasks for m in (f"probe/{f}/linear/acc", f"zeroshot/{f}/acc1")]
    return [*per_task, "image_to_text_R@1", "text_to_image_R@1", "rsum"]


def write_tables(out: Path, tasks: Sequence[str], strategies: list[str]) -> dict[str, Path]:
    """raw.csv, table.csv, table.md and plots from ``results.jsonl`` (only that file is read)."""
    out = Path(out)
    rows = [r for r in read_jsonl(out / "results.jsonl") if r.get("stage") == "eval" and r["strategy"] in strategies]
    long = []
    for r in rows:
        ident = {"strategy": r["strategy"], "seed": r["seed"]}
        for key, value in r.items():
            split, _, metric = key.partition("/")
            if split in SPLITS:
                long.append(ident | {"split": split, "metric": metric, "value": value})
            elif key in ("train_seconds", "n_trained"):
                long.append(ident | {"split": "train", "metric": key, "value": value})
    raw = pd.DataFrame(long, columns=["strategy", "seed", "split", "metric", "value"])
    summary = summarise_seeds(raw, ["strategy", "split"])
    paths = {"raw": out / "raw.csv", "table": out / "table.csv", "markdown": out / "table.md"}
    atomic_write_text(paths["raw"], raw.to_csv(index=False))
    atomic_write_text(paths["table"], summary.to_csv(index=False))
    atomic_write_text(paths["markdown"], compare_markdown(summary, headline_metrics(tasks), strategies))
    paths["plot"] = strategy_plot(summary, headline_metrics(tasks), strategies, out / "plots" / "strategies.png")
    return paths
