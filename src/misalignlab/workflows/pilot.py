"""The pilot workflow: diagnose → plan within the budget → train every option → decide → report.

:func:`run_pilot` is time-boxed: it measures how fast this machine trains, spends at most
``detect_share`` of the budget on the diagnosis, then sizes the option runs (steps, seeds) to fit
what is left, and skips the runs that would overrun (the report says which). Every finished run is
a line of ``results.jsonl``; rerunning into the same folder reuses the plan, the cached diagnosis
and every finished run, so changing only the costs re-decides without training anything.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from misalignlab.config import to_dict
from misalignlab.data.ingest.image_store import update_hash, update_text_hash
from misalignlab.data.scenes.scenarios import Scenario
from misalignlab.detect.backends import budget_embed_cfg
from misalignlab.detect.crossfit import shared_image_keys
from misalignlab.detect.pipeline import DiagnoseCfg, Diagnosis, diagnose_pairs
from misalignlab.pilot.config import CostModel, PilotCfg
from misalignlab.pilot.data import PilotData, heldout_split, retrieval_evaluator, scene_evaluator
from misalignlab.pilot.decision import Decision, as_scores, clean_fraction, decide, profile_sentence
from misalignlab.pilot.options import Plan, most_suspicious, option_names, plan_runs, prepare
from misalignlab.pilot.profile import misalignment_profile
from misalignlab.pilot.result import PilotResult
from misalignlab.runs import Progress, RunDir, read_jsonl, write_json
from misalignlab.strategies import build_strategy
from misalignlab.strategies.fit import fit_strategy
from misalignlab.train.pairs import LossCfg, PairTrainCfg
from misalignlab.train.trainer import Callback, TrainCfg
from misalignlab.workflows.export import review_table, write_review_csv

log = logging.getLogger(__name__)
PROBE_STEPS = 30  # steps of the timing run that sizes the plan
REPORT_RESERVE_S = 15.0  # budget kept for scoring the decision and writing the report


def _train_cfg(cfg: PilotCfg, steps: int, seed: int, n: int, image_size: int) -> PairTrainCfg:
    train = TrainCfg(
        steps=steps,
        batch_size=min(cfg.batch_size, n),
        lr=cfg.lr,
        schedule="cosine",
        warmup_steps=min(50, steps // 5),
        seed=seed,
    )
    model = dataclasses.replace(cfg.model, image_size=image_size)
    return PairTrainCfg(train, model, LossCfg("clip_cross_modal", tau=0.1))


def _diagnose(data: PilotData, cfg: PilotCfg, detect_steps: int, out: Path, progress: Progress | None) -> Diagnosis:
    batch = min(cfg.batch_size, len(data) // 2)
    dcfg = DiagnoseCfg(budget_embed_cfg(detect_steps, batch, cfg.lr, cfg.model, cfg.data_seed, cfg.backbone))
    ids, keys = list(data.ids), data.image_keys
    return diagnose_pairs(ids, data.images, data.captions, dcfg, out / "cache", progress, image_keys=keys)


class _StepClock(Callback):
    """Wall time of every step after the first few (model building and warm-up excluded)."""

    def __init__(self, skip: int) -> None:
        self.skip, self.marks = skip, []

    def on_step_end(self, trainer: Any, step: int, logs: dict[str, float]) -> None:
        if step >= self.skip:
            self.marks.append(time.perf_counter())


def _measure_speed(data: PilotData, cfg: PilotCfg, evaluate: Callable[[Any], dict[str, float]]) -> tuple[float, float]:
    """Seconds per training step, and per run outside the steps (building, scoring), from a short timing run."""
    icfg = _train_cfg(cfg, PROBE_STEPS, 0, len(data), data.image_size)
    clock = _StepClock(skip=5)
    start = time.perf_counter()
    fitted = fit_strategy(build_strategy("baseline"), data.pairs(), icfg, callbacks=[clock])
    total = time.perf_counter() - start
    step_s = (clock.marks[-1] - clock.marks[0]) / max(len(clock.marks) - 1, 1)
    start = time.perf_counter()
    evaluate(fitted.model)
    return step_s, time.perf_counter() - start + max(total - PROBE_STEPS * step_s, 0.0)


def run_pilot(
    data: PilotData,
    cfg: PilotCfg,
    out: Path,
    scenario: Scenario | None = None,
    progress: Progress | None = None,
    argv: list[str] | None = None,
    started: float | None = None,
) -> PilotResult:
    """Run the pilot on ``data`` and write ``results.jsonl``, ``plan.json``, ``to_clean.csv`` and the report to ``out``.

    ``scenario`` (rendered data): how to render the probe and test scenes; None for user pairs,
    which are scored by retrieval on held-out aligned pairs. ``started``: ``time.monotonic()`` at
    the start of the command, so ingesting counts against the budget.
    """
    import torch

    from misalignlab.report.pilot_report import write_report

    t0 = started if started is not None else time.monotonic()
    budget = 60.0 * cfg.budget_minutes
    tick = progress or (lambda stage, done, total: None)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(out)
    run = RunDir(
        out,
        {
            "pilot": to_dict(cfg),
            "data": data.name,
            "pairs": len(data),
            "scenario": to_dict(scenario) if scenario else None,
        },
        argv,
    )
    plan_path = out / "plan.json"
    key = fingerprint(data, cfg)
    saved = _read_plan(plan_path, key)
    if scenario is not None:  # rendered: probes on fresh test scenes, known before the diagnosis
        evaluate, metric = scene_evaluator(scenario, cfg.task, cfg)
    if saved is None:
        tick("timing", 0, 1)
        step_s, eval_s = _measure_speed(data, cfg, evaluate if scenario is not None else (lambda m: {}))
        tick("timing", 1, 1)
        detect_steps = int(np.clip(cfg.detect_share * budget / (2 * step_s), 20, cfg.detect_steps))
    else:
        step_s, eval_s, detect_steps = saved.step_seconds, saved.eval_seconds, saved.detect_steps
    diag = _diagnose(data, cfg, detect_steps, out, progress)
    found = diag.results["combined"]
    profile = misalignment_profile(diag, data.kind)
    if scenario is not None:
        train, score, n_test = data, found.score, cfg.n_test
    else:  # user pairs: retrieval on held-out pairs the diagnosis typed aligned
        aligned = diag.table["type"].to_numpy() == "aligned"
        train, test = heldout_split(data, aligned, 0.2, cfg.data_seed)
        index = {pid: i for i, pid in enumerate(data.ids)}
        score = found.score[[index[pid] for pid in train.ids]]
        evaluate, metric = retrieval_evaluator(test)
        n_test = len(test)
    options = option_names(cfg)
    plan = saved or plan_runs(
        cfg, options, budget - (time.monotonic() - t0) - REPORT_RESERVE_S, step_s, eval_s, detect_steps
    )
    write_json(plan_path, dataclasses.asdict(plan) | {"key": key})
    runs = _OptionRuns(
        train, score, found, profile["flagged_rate"], cfg, plan, evaluate, run, key, budget - REPORT_RESERVE_S, t0, tick
    )
    runs.all_seeds()
    rows, skipped = runs.rows, runs.skipped
    scores = as_scores(rows, metric)
    reason = profile_sentence(profile["types"], profile["wrong"], profile["omitted"])
    decision = decide(scores, len(data), n_test, cfg.cost, reason)
    write_review_csv(out / "to_clean.csv", to_clean(diag.table, data, decision))
    result = PilotResult(data, profile, plan, rows, metric, decision, diag, skipped, time.monotonic() - t0)
    tick("report", 0, 1)
    write_report(out, result, cfg)
    tick("report", 1, 1)
    return result


def to_clean(table: pd.DataFrame, data: PilotData, decision: Decision) -> pd.DataFrame:
    """The pairs behind the recommendation as ``export --to csv`` rows: the top ``k`` share of all pairs by
    the combined score when it is ``clean (top k %)``, else the flagged pairs.

    The pilot's pairs carry ids and captions but no image references, so ``image`` is empty.
    """
    captions = dict(zip(data.ids, data.captions))
    pairs = table.assign(caption=table["id"].astype(str).map(captions))
    fraction = clean_fraction(decision.option or "") if decision.action == "clean" else None
    chosen = most_suspicious(pairs["score"].to_numpy(), fraction) if fraction else pairs["quarantine"].to_numpy()
    return review_table(pairs, chosen)


def fingerprint(data: PilotData, cfg: PilotCfg) -> str:
    """Hash of the pairs and of every setting that changes a run's numbers (not the money, not the budget)."""
    h = hashlib.blake2b(digest_size=10)
    # money, time box, seed count, threads and the gallery change no run's numbers
    settings = to_dict(dataclasses.replace(cfg, cost=CostModel(), budget_minutes=1.0, seeds=1, threads=1, gallery=0))
    h.update(json.dumps(settings, sort_keys=True).encode())
    update_text_hash(h, data.ids, data.captions)
    keys = shared_image_keys(data.ids, data.image_keys)
    if keys is not None:  # captions sharing images: other folds, so another diagnosis
        h.update(b"image_keys\x00")
        update_text_hash(h, data.ids, keys)
    update_hash(h, data.images)  # slice by slice: user images may be a memmap store
    return h.hexdigest()


def _read_plan(path: Path, key: str) -> Plan | None:
    """The saved plan of an earlier pilot on the same data and settings, else None."""
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.pop("key", None) != key:
        return None
    raw["options"] = tuple(raw["options"])
    return Plan(**raw)


@dataclasses.dataclass
class _OptionRuns:
    """Trains and scores every (seed, option) of a plan into ``rows`` (and the runs it skipped)."""

    data: PilotData
    score: np.ndarray  # (N,) combined score, aligned with ``data``
    found: Any  # the combined detector result (filter / reweight read it by pair id)
    flagged_rate: float
    cfg: PilotCfg
    plan: Plan
    evaluate: Callable[[Any], dict[str, float]]
    run: RunDir
    key: str
    deadline: float  # seconds after t0 by which the last run must end
    t0: float
    tick: Progress
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    _longest_default: float = 0.0  # the planned length of one run, until runs are timed

    def all_seeds(self) -> None:
        """Seed-major, so a cut keeps whole seeds; finished runs of an earlier pilot are reused.

        The plan's seeds always start (a run that would overrun the budget is skipped and reported).
        Beyond them, up to ``cfg.seeds``, another whole seed starts when the time left covers one more
        seed at the pace measured on the last one: the timing probe is noisy on a busy machine, and
        spare budget buys the decision a better estimate of the seed-to-seed spread.
        """
        plan = self.plan
        done = {
            (r["option"], r["seed"]): r
            for r in _previous(self.run)
            if r.get("key") == self.key and r.get("steps") == plan.steps
        }
        seed_s = len(plan.options) * (plan.steps * plan.step_seconds + plan.eval_seconds)  # planned time of one seed
        for seed in range(max(plan.seeds, self.cfg.seeds)):
            self._longest_default = seed_s / len(plan.options)
            elapsed = time.monotonic() - self.t0
            if seed >= plan.seeds and elapsed + max(seed_s, len(plan.options) * self._longest()) > self.deadline:
                break
            start = time.monotonic()
            trained = self._one_seed(seed, done, max(plan.seeds, seed + 1) * len(plan.options))
            if trained:
                seed_s = (time.monotonic() - start) * len(plan.options) / trained

    def _longest(self) -> float:
        """The slowest run so far (options differ in cost): a run starts only if one that long still ends in time."""
        return max([r["seconds"] for r in self.rows if r.get("seconds")] + [self._longest_default])

    def _over_budget(self) -> bool:
        return time.monotonic() - self.t0 + self._longest() > self.deadline

    def _one_seed(self, seed: int, done: dict, total: int) -> int:
        """Every option of one seed; returns how many runs trained."""
        trained = 0
        for option in self.plan.options:
            if (option, seed) in done:
                self.rows.append(done[(option, seed)])
                continue
            if self._over_budget():
                self.skipped.append(f"{option}/seed{seed} (budget)")
                continue
            row = self._train_one(option, seed)
            if row is None:
                continue
            trained += row.get("same_as") is None
            self.run.log(row)
            self.rows.append(row)
            self.tick("options", len(self.rows), total)
        return trained

    def _train_one(self, option: str, seed: int) -> dict[str, Any] | None:
        """One option at one seed as a results row; None (skipped, reported) if it cannot train."""
        strategy, pairs = prepare(option, self.data, self.score, self.flagged_rate, self.cfg)
        twin = _baseline_twin(self.rows, seed, strategy.name, pairs, self.data)
        if twin is not None:  # cleaning changed no caption: training would repeat the baseline bit for bit
            return twin | {"option": option, "seconds": 0.0, "same_as": "baseline"}
        start = time.perf_counter()
        icfg = _train_cfg(self.cfg, self.plan.steps, seed, len(pairs), self.data.image_size)
        try:
            fitted = fit_strategy(strategy, pairs, icfg, self.found)
        except ValueError as exc:  # one option that cannot train (e.g. too few pairs left) must not end the pilot
            log.warning("pilot option %s seed %d failed: %s", option, seed, exc)
            self.run.log({"stage": "failed", "key": self.key, "option": option, "seed": seed, "error": str(exc)})
            self.skipped.append(f"{option}/seed{seed} (failed: {exc})")
            return None
        metrics = self.evaluate(fitted.model)
        head = {"stage": "run", "key": self.key, "option": option, "seed": seed, "steps": self.plan.steps}
        head |= {"n_trained": len(fitted.pairs), "seconds": time.perf_counter() - start, "strategy": strategy.params()}
        return head | metrics


def _baseline_twin(
    rows: list[dict[str, Any]], seed: int, strategy: str, pairs: Any, data: PilotData
) -> dict[str, Any] | None:
    """The baseline row of ``seed`` when a plain run would train on exactly the baseline's pairs, else None."""
    if strategy != "baseline" or len(pairs) != len(data) or tuple(pairs.captions) != tuple(data.captions):
        return None
    return next((dict(r) for r in rows if r["option"] == "baseline" and r["seed"] == seed), None)


def _previous(run: RunDir) -> list[dict[str, Any]]:
    return [r for r in read_jsonl(run.results_path) if r.get("stage") == "run"] if run.results_path.is_file() else []
