"""Scenarios: how training and test scenes are sampled, captioned and shifted; their rendered splits.

A :class:`Scenario` names a scene config, the misalignment planted in training captions
(:class:`~misalignlab.data.scenes.inject.InjectionCfg`), the spurious correlations planted in the
training factors and, optionally, the shifted (OOD) test distribution (both
:class:`~misalignlab.data.scenes.shift.FactorShift`), and the task factors a model is scored on.
:func:`render_split` renders one split of a scenario; :func:`eval_sets` renders the probe-fitting
and test splits with clean captions. ``compare`` and the pilot both read scenes this way.
This module trains and scores nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from misalignlab.data.scenes.dataset import ScenePairs
from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.inject import InjectionCfg, inject
from misalignlab.data.scenes.render import render, sample_factors
from misalignlab.data.scenes.shift import FactorShift, apply_shifts

SMALL_SCENE_FACTORS = ("shape", "colour", "size", "background", "rotation")
SMALL_SCENE = SceneCfg(size=32, factors=SMALL_SCENE_FACTORS)  # the scenes of compare presets and pilot scenarios


@dataclass(frozen=True)
class Scenario:
    """Training and test distributions of one experiment (see the module docstring)."""

    name: str
    scene: SceneCfg
    injection: InjectionCfg = field(default_factory=InjectionCfg)
    train_shifts: tuple[FactorShift, ...] = ()
    ood_shifts: tuple[FactorShift, ...] | None = None  # None: no OOD test set
    tasks: tuple[str, ...] = ("shape",)


def render_split(n: int, scenario: Scenario, shifts: Sequence[FactorShift], seed: int, inj: InjectionCfg) -> ScenePairs:
    """``n`` scenes of ``scenario.scene``, ``shifts`` applied to the sampled factors, rendered and captioned."""
    factor_rng, caption_rng, shift_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    factors = apply_shifts(sample_factors(n, scenario.scene, factor_rng), shifts, shift_rng)
    images = render(factors, scenario.scene, seed)
    captions, truth = inject(factors, scenario.scene, inj, caption_rng)
    return ScenePairs(images, tuple(captions), factors, truth, scenario.scene, inj, seed)


@dataclass(frozen=True, eq=False)
class EvalSets:
    """A probe-fitting split and the test splits (``id``, optionally ``ood``), all with clean captions."""

    fit: ScenePairs
    tests: dict[str, ScenePairs]


def eval_sets(
    scenario: Scenario,
    n_fit: int,
    n_test: int,
    seed: int,
    test_shifts: Mapping[str, Sequence[FactorShift]],
    fit_shifts: Sequence[FactorShift] | None = None,
) -> EvalSets:
    """Clean-caption splits: probe fitting (seed + 1, ``fit_shifts``, default the training shifts) and one
    test split per entry of ``test_shifts`` (``id`` at seed + 2, ``ood`` at seed + 3), each with its shifts."""
    clean = InjectionCfg(omit=scenario.injection.omit, n_templates=scenario.injection.n_templates)
    offsets = {"id": 2, "ood": 3}
    tests = {
        split: render_split(n_test, scenario, shifts, seed + offsets[split], clean)
        for split, shifts in test_shifts.items()
    }
    fit = scenario.train_shifts if fit_shifts is None else fit_shifts
    return EvalSets(render_split(n_fit, scenario, fit, seed + 1, clean), tests)
