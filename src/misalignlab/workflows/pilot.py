"""The pilot workflow: diagnose → plan within the budget → train every option → decide → report.

:func:`run_pilot` is time-boxed: it measures how fast this machine trains, spends at most
``detect_share`` of the budget on the diagnosis's fold training (timed with its own backend:
:mod:`.pilot_timing`), then sizes the option runs (steps,
seeds) to fit what is left, and skips the runs that would overrun (the report says which). The
diagnosis is the ``diagnose`` command's with its defaults (:func:`~misalignlab.detect.pipeline.diagnose_config`);
the budget may only shorten its fold training (:func:`~misalignlab.detect.pipeline.within_budget`),
and the report says by how much. Every finished run is a line of ``results.jsonl``; rerunning into
the same folder reuses the plan, the cached diagnosis and every finished run, so changing only the
costs re-decides without training anything.

How options are scored: rendered data on fresh rendered scenes (truth known); a user's pairs on a
verified test set when one is given, else on the proxy of held-out pairs the diagnosis typed
aligned (:mod:`misalignlab.pilot.data`), which the report flags as leaning towards cleaning.
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
from misalignlab.detect.backends import EmbedCfg
from misalignlab.detect.crossfit import shared_image_keys
from misalignlab.detect.pipeline import DiagnoseCfg, Diagnosis, diagnose_config, diagnose_pairs, within_budget
from misalignlab.pilot.config import CostModel, PilotCfg
from misalignlab.pilot.data import (
    PROXY,
    PROXY_CAVEAT,
    RENDERED,
    VERIFIED,
    Evaluation,
    PilotData,
    heldout_split,
    retrieval_evaluator,
    scene_evaluator,
)
from misalignlab.pilot.decision import Decision, as_scores, clean_fraction, decide, profile_sentence
from misalignlab.pilot.load import without_test_images
from misalignlab.pilot.options import Plan, most_suspicious, option_names, plan_runs, prepare
from misalignlab.pilot.profile import misalignment_profile
from misalignlab.pilot.result import PilotResult
from misalignlab.pilot.vocabulary import Embrace, rendered_embrace, user_embrace
from misalignlab.runs import Progress, RunDir, read_jsonl, write_json
from misalignlab.strategies import build_strategy
from misalignlab.strategies.fit import fit_strategy
from misalignlab.train.pairs import LossCfg, PairTrainCfg
from misalignlab.train.trainer import Callback, TrainCfg
from misalignlab.workflows.export import review_table, write_review_csv
from misalignlab.workflows.pilot_timing import detect_steps_for, diagnosis_step_seconds, needs_timing

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


def unseen_note(unseen: list[str]) -> str:
    """What the report says when the fold models cannot see some slots: their wrong or omitted words go
    unseen, so the wrong and incomplete rates are floors there (a 0 % is no estimate)."""
    names = ", ".join(f"`{u}`" for u in unseen)
    return (
        f"Its fold models cannot see the slot{'s' if len(unseen) > 1 else ''} {names} (simulated wrong words "
        "there are not told from stated ones): wrong or omitted words there go unseen, so the wrong and "
        "incomplete rates below are floors, not estimates."
    )


def diagnose_cfg(cfg: PilotCfg) -> DiagnoseCfg:
    """What ``misalignlab diagnose --backbone B --schema S`` runs, B and S the pilot's: no budget applied."""
    return diagnose_config(cfg.schema, cfg.backbone)


def diagnosis_settings(full: DiagnoseCfg, used: DiagnoseCfg, diag: Diagnosis) -> dict[str, Any]:
    """What the report says about the diagnosis: its settings and what the budget changed."""
    f, u = full.embed, used.embed
    schema = diag.summary.get("schema") or {}
    out = {
        "backbone": u.backbone,
        "schema": used.schema,
        "vocabulary": schema.get("source") or "none",
        "slots": list(schema.get("slots") or []),
        "folds": u.folds,
        "steps": u.train.steps,
        "default_steps": f.train.steps,
        "reweight_steps": u.reweight_steps,
        "default_reweight_steps": f.reweight_steps,
        "flag_score": used.flag_score,
        "budget_cut": u.train.steps < f.train.steps,
        "seen_slots": list(schema.get("seen") or []),
    }
    same = "the backbone, vocabulary, detectors and typing thresholds are diagnose's own"
    if out["budget_cut"]:
        out["note"] = (
            f"The time box cut the fold training to {u.train.steps} of diagnose's {f.train.steps} steps per fold "
            f"model (small-loss pass {u.reweight_steps} of {f.reweight_steps}); {same}. A shorter training sees "
            "less: the estimated rates may understate misalignment that is hard to see (run misalignlab "
            "diagnose for the full diagnosis)."
        )
    else:
        out["note"] = f"As misalignlab diagnose with its defaults: {f.train.steps} steps per fold model; {same}."
    out["unseen_slots"] = [slot for slot in out["slots"] if slot not in out["seen_slots"]]
    if out["unseen_slots"]:
        out["note"] += " " + unseen_note(out["unseen_slots"])
    return out


def _diagnose(data: PilotData, dcfg: DiagnoseCfg, out: Path, progress: Progress | None) -> Diagnosis:
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
    test: PilotData | None = None,
) -> PilotResult:
    """Run the pilot on ``data`` and write ``results.jsonl``, ``plan.json``, ``to_clean.csv`` and the report to ``out``.

    ``scenario`` (rendered data): how to render the probe and test scenes; None for user pairs,
    which are scored by retrieval on ``test`` (a verified test set: pairs a person checked; training
    pairs sharing an image with it are left out) or, without one, on held-out pairs the diagnosis
    typed aligned (a proxy; the report says which way it leans). ``started``: ``time.monotonic()``
    at the start of the command, so ingesting counts against the budget.

    Raises
    ------
    ValueError
        ``test`` given for rendered data (scored on rendered scenes whose truth is known).
    """
    import torch

    from misalignlab.report.pilot_report import write_report

    if test is not None and scenario is not None:
        raise ValueError(
            "--test scores a user's pairs; rendered data is scored on fresh rendered scenes whose truth is known"
        )
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
            "test": None if test is None else {"name": test.name, "pairs": len(test)},
        },
        argv,
    )
    plan_path = out / "plan.json"
    key = fingerprint(data, cfg, test)
    saved = _read_plan(plan_path, key)
    if scenario is not None:  # rendered: probes on fresh test scenes, known before the diagnosis
        evaluate, metric = scene_evaluator(scenario, cfg.task, cfg)
    if saved is None:
        tick("timing", 0, 1)
        step_s, eval_s = _measure_speed(data, cfg, evaluate if scenario is not None else (lambda m: {}))
        tick("timing", 1, 1)
    else:
        step_s, eval_s = saved.step_seconds, saved.eval_seconds
    full = diagnose_cfg(cfg)
    if saved is not None:
        detect_s, detect_steps = saved.detect_step_seconds, saved.detect_steps
    else:  # the diagnosis's own backend, timed: its steps cost what its towers cost
        tick("timing", 0, 1)
        detect_s = diagnosis_step_seconds(data, full.embed) if needs_timing(cfg, full) else 0.0
        detect_steps = detect_steps_for(cfg, full, detect_s, budget)
        tick("timing", 1, 1)
    used = within_budget(full, detect_steps)
    diag = _diagnose(data, used, out, progress)
    found = diag.results["combined"]
    profile = misalignment_profile(diag, data.kind)
    embrace: Embrace
    if scenario is not None:
        train, score, n_test = data, found.score, cfg.n_test
        evaluation = Evaluation(RENDERED, cfg.n_test)
        embrace = rendered_embrace(cfg)
    else:
        if test is not None:  # retrieval on pairs a person checked
            train, left_out = without_test_images(data, test)
            evaluation = Evaluation(VERIFIED, len(test), test.name, left_out)
        else:  # the proxy: retrieval on held-out pairs the diagnosis typed aligned
            aligned = diag.table["type"].to_numpy() == "aligned"
            train, test = heldout_split(data, aligned, 0.2, cfg.data_seed)
            evaluation = Evaluation(PROXY, len(test), caveat=PROXY_CAVEAT)
        index = {pid: i for i, pid in enumerate(data.ids)}
        score = found.score[[index[pid] for pid in train.ids]]
        evaluate, metric = retrieval_evaluator(test)
        n_test = len(test)
        embrace = user_embrace(cfg, train.captions, diag.typed)
    options = option_names(cfg, embrace)
    plan = saved or plan_runs(
        cfg, options, budget - (time.monotonic() - t0) - REPORT_RESERVE_S, step_s, eval_s, detect_steps, detect_s
    )
    write_json(plan_path, dataclasses.asdict(plan) | {"key": key})
    runs = _OptionRuns(
        train,
        score,
        found,
        profile["flagged_rate"],
        cfg,
        plan,
        evaluate,
        run,
        key,
        budget - REPORT_RESERVE_S,
        t0,
        tick,
        embrace,
    )
    runs.all_seeds()
    rows, skipped = runs.rows, runs.skipped
    scores = as_scores(rows, metric)
    settings = diagnosis_settings(full, used, diag)
    reason = profile_sentence(profile["types"], profile["wrong"], profile["omitted"], settings["unseen_slots"])
    decision = decide(scores, len(data), n_test, cfg.cost, reason)
    write_review_csv(out / "to_clean.csv", to_clean(diag.table, data, decision))
    result = PilotResult(
        data,
        profile,
        plan,
        rows,
        metric,
        decision,
        diag,
        skipped,
        time.monotonic() - t0,
        evaluation,
        dict(embrace.not_applicable),
        settings,
    )
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


def fingerprint(data: PilotData, cfg: PilotCfg, test: PilotData | None = None) -> str:
    """Hash of the pairs, the test set and every setting that changes a run's numbers (not the money, not the budget).

    ``auto`` is hashed as the backbone it resolves to here, and a vocabulary file by its content,
    so finished runs are not reused across installs or edited vocabularies.
    """
    h = hashlib.blake2b(digest_size=10)
    # money, time box, seed count, threads and the gallery change no run's numbers
    settings = to_dict(dataclasses.replace(cfg, cost=CostModel(), budget_minutes=1.0, seeds=1, threads=1, gallery=0))
    settings["backbone"] = EmbedCfg().with_backbone(cfg.backbone).backbone
    h.update(json.dumps(settings, sort_keys=True).encode())
    schema = Path(cfg.schema).expanduser()
    if cfg.schema not in ("auto", "none") and schema.is_file():
        h.update(schema.read_bytes())
    for pairs in (data, test) if test is not None else (data,):
        update_text_hash(h, pairs.ids, pairs.captions)
        keys = shared_image_keys(pairs.ids, pairs.image_keys)
        if keys is not None:  # captions sharing images: other folds, so another diagnosis
            h.update(b"image_keys\x00")
            update_text_hash(h, pairs.ids, keys)
        update_hash(h, pairs.images)  # slice by slice: user images may be a memmap store
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
    embrace: Embrace
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
        strategy, pairs = prepare(option, self.data, self.score, self.flagged_rate, self.cfg, self.embrace)
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
