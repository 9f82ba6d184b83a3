"""How many fold-training steps of the diagnosis fit the pilot's time box on this machine.

The diagnosis trains one model per cross-fitting fold with its own backend (``text:minilm``: an
image encoder against frozen sentence codes; ``scratch``: both towers), so its step costs what
*its* backend costs, not what the pilot's option models cost: :func:`diagnosis_step_seconds` times
a few steps of that backend on a sample of the pairs, and :func:`detect_steps_for` turns the
seconds into steps. A backend that trains nothing (``hf``, ``precomputed``) costs no steps.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from misalignlab.detect.backends import BACKENDS, EmbedCfg
from misalignlab.detect.pipeline import DiagnoseCfg
from misalignlab.pilot.config import PilotCfg
from misalignlab.pilot.data import PilotData

PROBE_FITS = (5, 25)  # steps of the two timed fits; their difference cancels loading, encoding and building
MIN_DETECT_STEPS = 20  # the budget never cuts the fold training below this (unless detect_steps does)


def diagnosis_step_seconds(data: PilotData, embed: EmbedCfg, seed: int = 0) -> float:
    """Seconds per fold-training step of ``embed``'s backend on ``data`` (0.0 for one that trains nothing).

    A first one-step fit warms up what is loaded once (a pretrained tower); then two fits of
    :data:`PROBE_FITS` steps on the same sample (up to two batches of pairs, so the batch is the
    diagnosis's own) differ only in their steps.
    """
    factory = BACKENDS.get(embed.backend)
    if getattr(factory, "precomputed", False) or not getattr(factory, "crossfit", True):
        return 0.0
    n = min(len(data), 2 * embed.train.batch_size)
    idx = np.sort(np.random.default_rng(seed).choice(len(data), size=n, replace=False))
    images = np.ascontiguousarray(data.images[idx])
    captions = [data.captions[i] for i in idx]
    seconds = []
    for steps in (1, *PROBE_FITS):
        train = dataclasses.replace(embed.train, steps=steps, warmup_steps=0)
        backend = factory(dataclasses.replace(embed, train=train, reweight_steps=0), data.image_size)
        start = time.perf_counter()
        backend.fit_fold(0, images, captions)
        seconds.append(time.perf_counter() - start)
    a, b = PROBE_FITS
    return max((seconds[2] - seconds[1]) / (b - a), 1e-5)


def detect_steps_for(cfg: PilotCfg, full: DiagnoseCfg, step_s: float, budget_s: float) -> int:
    """Fold-training steps per fold model that fit ``detect_share`` of ``budget_s`` at ``step_s`` a step.

    Every fold trains its steps plus the small-loss pass (a share of them, kept by
    :func:`~misalignlab.detect.pipeline.within_budget`). At most ``cfg.detect_steps`` and the
    diagnosis's own steps; at least :data:`MIN_DETECT_STEPS` (or that cap, if lower).
    """
    e = full.embed
    most = min(cfg.detect_steps, e.train.steps)
    if step_s <= 0:
        return most
    passes = e.folds * (1.0 + e.reweight_steps / e.train.steps)
    fits = cfg.detect_share * budget_s / (passes * step_s)
    return int(np.clip(fits, min(MIN_DETECT_STEPS, most), most))


def needs_timing(cfg: PilotCfg, full: DiagnoseCfg) -> bool:
    """Whether the budget can change the steps at all (a cap at or below the floor fixes them)."""
    return min(cfg.detect_steps, full.embed.train.steps) > MIN_DETECT_STEPS
