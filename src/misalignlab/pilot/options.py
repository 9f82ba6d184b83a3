"""The options a pilot measures, each as (strategy, training pairs), and the plan that fits them in the budget.

- ``baseline``: the pairs as they are.
- ``clean@k``: a person reviews the ``k`` share of pairs the diagnosis finds most suspicious and
  fixes them: with known truth the caption becomes the clean one; without, the pair is removed
  (a lower bound on what fixing it would gain). Trained like the baseline.
- model-side (*adapt*): ``filter`` (drop the share the diagnosis flagged, at no labelling cost),
  ``reweight`` (weights from the combined score), ``robust`` (soft targets), ``augment`` (leave the
  task's nuisance factors out of every caption), ``multipositive`` (captions stating the same slot
  values are positives). The embrace options read captions with the vocabulary of
  :mod:`misalignlab.pilot.vocabulary`, and are left out where it says they do not apply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from misalignlab.pilot.config import PilotCfg
from misalignlab.pilot.data import PilotData
from misalignlab.pilot.decision import BASELINE, clean_fraction, clean_option
from misalignlab.pilot.vocabulary import Embrace, rendered_embrace
from misalignlab.strategies import PairSet, Strategy, build_strategy

FILTER_RANGE = (0.05, 0.5)  # the share `filter` drops: the flagged rate, kept within these bounds


def option_names(cfg: PilotCfg, embrace: Embrace | None = None) -> list[str]:
    """``baseline``, the cleaning curve's points, then the model-side options that apply (``embrace``:
    which embrace options do not; default: those of rendered data)."""
    skip = (embrace or rendered_embrace(cfg)).not_applicable
    adapt = [a for a in cfg.adapt if a not in skip]
    return [BASELINE, *(clean_option(k) for k in cfg.clean_fractions), *adapt]


def most_suspicious(score: np.ndarray, fraction: float) -> np.ndarray:
    """Boolean mask of the ``fraction`` of pairs with the highest score (ties: earlier position first)."""
    n = int(round(fraction * len(score)))
    mask = np.zeros(len(score), dtype=bool)
    mask[np.argsort(-np.asarray(score), kind="stable")[:n]] = True
    return mask


def cleaned(data: PilotData, score: np.ndarray, fraction: float) -> PairSet:
    """The pairs after a person fixed (truth known) or removed (unknown) the most suspicious ``fraction``."""
    picked = most_suspicious(score, fraction)
    pairs = data.pairs()
    if data.clean_captions is None:
        return pairs.subset(~picked)
    fixed = [clean if hit else cap for cap, clean, hit in zip(data.captions, data.clean_captions, picked, strict=True)]
    return pairs.with_captions(fixed)


def prepare(
    option: str,
    data: PilotData,
    score: np.ndarray,
    flagged_rate: float,
    cfg: PilotCfg,
    embrace: Embrace | None = None,
) -> tuple[Strategy, PairSet]:
    """The strategy and the pairs one option trains on (``score``: the combined score, aligned with ``data``).

    ``filter`` and ``reweight`` read their scores from the detector result given to the trainer (by pair id).
    ``embrace``: the vocabulary and slots of ``augment`` and ``multipositive`` (default: rendered data's).
    """
    embrace = embrace or rendered_embrace(cfg)
    pairs = data.pairs()
    fraction = clean_fraction(option)
    if option == BASELINE:
        return build_strategy("baseline"), pairs
    if fraction is not None:
        return build_strategy("baseline"), cleaned(data, score, fraction)
    if option == "filter":
        lo, hi = FILTER_RANGE
        return build_strategy("filter", fraction=float(np.clip(flagged_rate, lo, hi))), pairs
    if option == "augment":
        return build_strategy("augment", omit={f: 1.0 for f in embrace.omit}, vocabulary=embrace.vocabulary), pairs
    if option == "multipositive":
        return build_strategy("multipositive", vocabulary=embrace.vocabulary), pairs
    return build_strategy(option), pairs


@dataclass(frozen=True)
class Plan:
    """Steps per training run and seeds, chosen so every option runs for every seed within the budget."""

    steps: int
    seeds: int
    detect_steps: int
    step_seconds: float
    eval_seconds: float
    options: tuple[str, ...]
    detect_step_seconds: float = 0.0  # one fold-training step of the diagnosis (0: not timed)

    @property
    def expected_seconds(self) -> float:
        return len(self.options) * self.seeds * (self.steps * self.step_seconds + self.eval_seconds)


def plan_runs(
    cfg: PilotCfg,
    options: list[str],
    seconds_left: float,
    step_s: float,
    eval_s: float,
    detect_steps: int,
    detect_step_s: float = 0.0,
) -> Plan:
    """The most seeds (≥ 2) that still allow half of ``max_steps`` per run; else 2 seeds, else 1, at what fits.

    Two seeds at fewer steps beat one at more: the decision needs the seed-to-seed spread.

    ``seconds_left`` is what remains of the budget for training and scoring the options.
    """
    per_run = lambda seeds: seconds_left / (len(options) * seeds)  # noqa: E731
    steps_for = lambda seeds: int(math.floor((per_run(seeds) - eval_s) / max(step_s, 1e-9)))  # noqa: E731
    seeds = next((r for r in range(cfg.seeds, 1, -1) if steps_for(r) >= cfg.max_steps // 2), 0)
    if not seeds:
        seeds = 2 if cfg.seeds >= 2 and steps_for(2) >= cfg.min_steps else 1
    steps = int(np.clip(steps_for(seeds), cfg.min_steps, cfg.max_steps))
    return Plan(steps, seeds, detect_steps, step_s, eval_s, tuple(options), detect_step_s)
