"""The image–text lab workflow: render scenes once, train one model per bias level, probe, tabulate.

``run_imagetext_lab`` renders ``n_train + n_fit + n_test`` scenes (images and factors do not
depend on the level), writes each level's captions with its injection, trains a model with the
model-agnostic trainer (checkpoints in ``<out>/<level>/checkpoints``, resumed automatically),
embeds the probe splits and scores every factor from both codes (MCC for discrete factors, R²
for continuous ones). A finished level leaves ``<out>/<level>/scores.json`` and is skipped on a
rerun. The run folder holds ``config.json``, ``argv.txt``, ``results.jsonl`` (train log, optional
MCC-vs-step curve, every score, timing), ``scores.csv`` (long), ``table_<probe>.csv`` and
``table_<probe>.md`` (the paper's layout, paper numbers beside ours), ``heatmap.png`` and, with
``curve_every``, ``curve.csv`` (image-code MCC against steps).
A resumed level logs the steps after its checkpoint again; the last row per step wins.
Under ``torchrun`` every rank renders the same scenes and trains each level data-parallel; rank 0
alone writes, probes and tabulates (the other ranks return empty results).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from misalignlab.config import to_dict
from misalignlab.data.scenes.factors import FACTOR_NAMES, FACTORS, SceneCfg
from misalignlab.data.scenes.inject import inject
from misalignlab.data.scenes.render import render, sample_factors
from misalignlab.evaluate.probes import discrete_probe, factor_probes
from misalignlab.report.imagetext_report import level_markdown, score_heatmap, wide_table
from misalignlab.runs import RunDir, atomic_write_text, read_jsonl, write_json
from misalignlab.train.callbacks import AlignWeightRamp, Checkpoint, EvalEvery, JsonlLog, SpareFade
from misalignlab.train.distributed import barrier, current
from misalignlab.train.pairs import PairTrainCfg, embed, train_pairs
from misalignlab.train.trainer import Callback, Trainer, latest_checkpoint
from misalignlab.workflows.imagetext_presets import ImageTextLabCfg, Level

log = logging.getLogger(__name__)

TARGETS = (*FACTOR_NAMES, "template")  # every scene factor plus the text-only caption template
SCORES_FILE = "scores.json"


@dataclass(frozen=True)
class Scenes:
    """Rendered scenes shared by every level: images (N, H, W, 3) uint8, factors (N rows), splits."""

    images: np.ndarray
    factors: pd.DataFrame
    train: slice
    fit: slice
    test: slice


def render_scenes(cfg: ImageTextLabCfg) -> Scenes:
    """Sample and draw ``n_train + n_fit + n_test`` independent scenes (causal links off)."""
    scene = SceneCfg(size=cfg.model.image_size)
    n = cfg.n_train + cfg.n_fit + cfg.n_test
    factors = sample_factors(n, scene, np.random.default_rng([cfg.seed, 0]))
    images = render(factors, scene, seed=cfg.seed)
    a, b = cfg.n_train, cfg.n_train + cfg.n_fit
    return Scenes(images, factors, slice(0, a), slice(a, b), slice(b, n))


def level_captions(scenes: Scenes, level: Level, seed: int) -> tuple[list[str], np.ndarray]:
    """Captions of every scene under ``level`` and their template index (the text-only factor)."""
    rng = np.random.default_rng([seed, 1])  # the same caption stream for every level of a run
    captions, truth = inject(scenes.factors, SceneCfg(size=scenes.images.shape[1]), level.injection(), rng)
    return captions, truth["template"].to_numpy()


def _targets(scenes: Scenes, template: np.ndarray, part: slice) -> dict[str, np.ndarray]:
    out = {f: scenes.factors[f].to_numpy()[part] for f in FACTOR_NAMES}
    return out | {"template": template[part]}


def _unit(codes: np.ndarray, on: bool) -> np.ndarray:
    """Codes (N, D) scaled to unit length when ``on`` (a zero code stays zero)."""
    return codes / np.maximum(np.linalg.norm(codes, axis=1, keepdims=True), 1e-12) if on else codes


def _kinds() -> dict[str, str]:
    return {f: "discrete" if FACTORS[f].discrete else "continuous" for f in FACTOR_NAMES} | {"template": "discrete"}


class _Throughput(Callback):
    """Sums the trainer's pure step time (``step_s``: data, forward, backward, update)."""

    def __init__(self) -> None:
        self.seconds, self.steps = 0.0, 0

    def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        self.seconds += logs["step_s"]
        self.steps += 1


def _curve_fn(
    scenes: Scenes, captions: Sequence[str], n: int, seed: int, unit: bool
) -> Callable[[torch.nn.Module], dict[str, float]]:
    """MLP-probe MCC of every discrete factor from the image code, on ``n`` fit and ``n`` test scenes."""
    fit, test = slice(scenes.fit.start, scenes.fit.start + n), slice(scenes.test.start, scenes.test.start + n)
    discrete = [f for f in FACTOR_NAMES if FACTORS[f].discrete]

    def fn(objective: torch.nn.Module) -> dict[str, float]:
        z_fit = _unit(embed(objective.model, scenes.images[fit], captions[fit])[0], unit)  # type: ignore[arg-type]
        z_test = _unit(embed(objective.model, scenes.images[test], captions[test])[0], unit)  # type: ignore[arg-type]
        y = {f: scenes.factors[f].to_numpy() for f in discrete}
        return {
            f"curve/{f}/mlp/mcc/image": discrete_probe(z_fit, y[f][fit], z_test, y[f][test], "mlp", seed)
            for f in discrete
        }

    return fn


def run_level(
    cfg: ImageTextLabCfg, level: Level, scenes: Scenes, run: RunDir, extra: Sequence[Callback] = ()
) -> dict[str, float]:
    """Train (or resume) the level's model, probe it, write ``<level>/scores.json``; returns the scores."""
    folder = run.path(level.name)
    captions, template = level_captions(scenes, level, cfg.seed)
    code_dim, spare = cfg.code_for(level), cfg.code_extra
    model_cfg = replace(cfg.model, code_dim=code_dim + spare)
    it_cfg = PairTrainCfg(train=cfg.train_for(level), model=model_cfg, loss=cfg.loss)
    timer = _Throughput()
    callbacks: list[Callback] = [timer]
    if cfg.align_ramp != (0.0, 0.0):
        callbacks.append(AlignWeightRamp(it_cfg.loss.kwargs().get("align_weight", 0.0), *cfg.align_ramp))
    if spare and tuple(cfg.spare_fade) != (0.0, 0.0):
        callbacks.append(SpareFade(code_dim, *cfg.spare_fade))
    if cfg.curve_every:
        curve = _curve_fn(scenes, captions, cfg.curve_n, cfg.seed, cfg.unit_codes)
        callbacks += [EvalEvery(cfg.curve_every, curve), _CurveLog(run, level.name)]
    callbacks += [
        JsonlLog(_LevelLog(run, level.name), every=cfg.log_every),
        Checkpoint(folder, every=cfg.checkpoint_every),
        *extra,
    ]
    barrier()  # every rank resumes from the same checkpoint file
    resume = latest_checkpoint(folder)
    if resume is not None:
        log.info("%s: resuming from %s", level.name, resume)
    tr = scenes.train
    model = train_pairs(scenes.images[tr], captions[tr], it_cfg, callbacks=callbacks, resume=resume)
    if not current().is_main:
        return {}
    start = time.perf_counter()
    fit, test = scenes.fit, scenes.test
    fit_i, fit_t = (_unit(z, cfg.unit_codes) for z in embed(model, scenes.images[fit], captions[fit]))
    test_i, test_t = (_unit(z, cfg.unit_codes) for z in embed(model, scenes.images[test], captions[test]))
    scores = factor_probes(
        {"image": fit_i, "text": fit_t},
        {"image": test_i, "text": test_t},
        _targets(scenes, template, scenes.fit),
        _targets(scenes, template, scenes.test),
        kinds=_kinds(),
        probes=cfg.probes,
        seed=cfg.seed,
    )
    probe_s = time.perf_counter() - start
    pairs_per_s = timer.steps * cfg.train.batch_size / timer.seconds if timer.seconds else float("nan")
    timing = {
        "stage": "timing",
        "level": level.name,
        "steps_run": timer.steps,
        "train_step_s": timer.seconds,
        "pairs_per_s": pairs_per_s,
        "probe_s": probe_s,
        "threads": torch.get_num_threads(),
    }
    run.log(timing)
    write_json(
        folder / SCORES_FILE, {"level": level.name, "code_dim": fit_i.shape[1], "scores": scores, "timing": timing}
    )
    return scores


class _CurveLog(Callback):
    """Writes the MCC-vs-step rows that :class:`EvalEvery` added to a step's logs as ``kind: curve``."""

    main_only = True

    def __init__(self, run: RunDir, level: str) -> None:
        self.run, self.level = run, level

    def on_step_end(self, trainer: Trainer, step: int, logs: dict[str, float]) -> None:
        curve = {k: v for k, v in logs.items() if k.startswith("curve/")}
        if curve:
            self.run.log({"stage": "curve", "level": self.level, "step": step, **curve})


class _LevelLog:
    """A :class:`RunDir` stand-in for :class:`JsonlLog` that tags every row with the level."""

    def __init__(self, run: RunDir, level: str) -> None:
        self.run, self.level = run, level

    def log(self, record: dict) -> None:
        self.run.log({"level": self.level, **record})


def score_rows(level: Level, scores: dict[str, float], code_dim: int) -> list[dict]:
    """Long rows (level, factor, role, probe, metric, modality, score, expect) from a flat score dict."""
    rows = []
    for key, value in scores.items():
        _, factor, probe, metric, modality = key.split("/")
        role = level.role(factor)
        # the acceptance check reads the image code: stated factors high, everything else low
        expect = "" if modality != "image" else "high" if role == "stated" else "low"
        rows.append(
            {
                "setting": level.name,
                "target": factor,
                "role": role,
                "probe": probe,
                "metric": metric,
                "modality": modality,
                "score": value,
                "expect": expect,
                "code_dim": code_dim,
            }
        )
    return rows


def _check_folder(run_root: Path, cfg: ImageTextLabCfg, fresh: bool) -> None:
    """Refuse to mix runs: an existing folder must hold the same config (or ``fresh`` wipes its state)."""
    path = run_root / "config.json"
    if fresh:
        for level in cfg.levels:
            for p in [*Path(run_root, level.name).glob("checkpoints/step_*.pt"), run_root / level.name / SCORES_FILE]:
                p.unlink(missing_ok=True)
        return
    if path.is_file() and json.loads(path.read_text(encoding="utf-8")) != to_dict(cfg):
        raise ValueError(f"{run_root} holds a run with a different config; pass --fresh or choose another --out")


def run_imagetext_lab(
    cfg: ImageTextLabCfg,
    out: Path,
    argv: list[str] | None = None,
    callbacks: Callable[[Level], Sequence[Callback]] | None = None,
    fresh: bool = False,
) -> dict[str, Path]:
    """Run every level of ``cfg.preset`` (resuming finished or checkpointed work); returns the paths written.

    ``callbacks(level)`` adds trainer callbacks per level (the CLI's progress bar; tests' interruptions).
    """
    out = Path(out)
    main = current().is_main
    if main or not fresh:  # every rank refuses a mismatched folder alike; only rank 0 clears one
        _check_folder(out, cfg, fresh)
    barrier()  # the other ranks read the folder only after rank 0 has cleared it
    before = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    try:
        run = RunDir(out, to_dict(cfg), argv, write=main)
        start = time.perf_counter()
        scenes = render_scenes(cfg)
        run.log({"stage": "render", "seconds": time.perf_counter() - start, "n": len(scenes.images)})
        rows: list[dict] = []
        for level in cfg.levels:
            done = run.path(level.name) / SCORES_FILE
            if done.is_file():
                scores = json.loads(done.read_text(encoding="utf-8"))["scores"]
            else:
                scores = run_level(cfg, level, scenes, run, callbacks(level) if callbacks else ())
                for row in score_rows(level, scores, cfg.code_for(level)):
                    run.log({"stage": "probe", "loss_variant": cfg.loss.variant, **row})
            rows += score_rows(level, scores, cfg.code_for(level))
    finally:
        torch.set_num_threads(before)
    if not main:
        return {}
    paths = write_tables(pd.DataFrame(rows), cfg, out)
    curve = [r for r in read_jsonl(run.results_path) if r.get("stage") == "curve"]
    if curve:  # MCC against steps; a resumed level may have logged a step twice: keep the last
        paths["curve"] = out / "curve.csv"
        table = pd.DataFrame(curve).drop(columns="stage").drop_duplicates(["level", "step"], keep="last")
        atomic_write_text(paths["curve"], table.round(4).to_csv(index=False))
    return paths


def write_tables(rows: pd.DataFrame, cfg: ImageTextLabCfg, out: Path) -> dict[str, Path]:
    """``scores.csv`` (long), per probe ``table_<probe>.csv``/``.md``, and the heatmap of the nonlinear probe."""
    paths = {"scores": out / "scores.csv"}
    atomic_write_text(paths["scores"], rows.round(4).to_csv(index=False))
    for probe in cfg.probes:
        sub = rows[rows["probe"] == probe]
        paths[f"table_{probe}"] = out / f"table_{probe}.csv"
        atomic_write_text(paths[f"table_{probe}"], wide_table(sub).round(4).to_csv())
        paths[f"markdown_{probe}"] = out / f"table_{probe}.md"
        atomic_write_text(paths[f"markdown_{probe}"], level_markdown(sub, f"{cfg.preset} ({probe} probe)", probe))
    main = "mlp" if "mlp" in cfg.probes else cfg.probes[0]
    paths["heatmap"] = score_heatmap(rows[rows["probe"] == main], out / "heatmap.png", f"{cfg.preset} ({main})")
    return paths
