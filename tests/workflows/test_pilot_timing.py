"""The diagnosis's share of the time box: its own backend timed, seconds turned into fold-training steps."""

import numpy as np

from misalignlab.detect.backends import EmbedCfg
from misalignlab.detect.pipeline import DIAGNOSE_STEPS, diagnose_config
from misalignlab.pilot.config import PilotCfg
from misalignlab.pilot.data import PilotData
from misalignlab.workflows.pilot_timing import detect_steps_for, diagnosis_step_seconds, needs_timing

FULL = diagnose_config(backbone="scratch")  # EmbedCfg's steps per fold and its small-loss pass, two folds


def test_steps_fill_the_diagnosis_share_within_the_floor_and_the_cap():
    cfg = PilotCfg(detect_share=0.2)
    passes = FULL.embed.folds * (1 + FULL.embed.reweight_steps / FULL.embed.train.steps)  # per step of the cut
    assert detect_steps_for(cfg, FULL, 0.05, 300.0) == int(0.2 * 300 / (passes * 0.05))
    assert detect_steps_for(cfg, FULL, 1e-4, 300.0) == DIAGNOSE_STEPS  # never beyond diagnose's own steps
    assert detect_steps_for(cfg, FULL, 10.0, 300.0) == 20  # the floor
    assert detect_steps_for(PilotCfg(detect_steps=300), FULL, 1e-4, 300.0) == 300
    assert detect_steps_for(PilotCfg(detect_steps=3), FULL, 10.0, 300.0) == 3  # a cap below the floor wins
    assert detect_steps_for(cfg, FULL, 0.0, 300.0) == DIAGNOSE_STEPS  # a backend that trains nothing
    assert not needs_timing(PilotCfg(detect_steps=3), FULL) and needs_timing(cfg, FULL)


def test_the_diagnosis_backend_is_timed_on_a_sample_and_a_lookup_costs_nothing():
    rng = np.random.default_rng(0)
    n = 40
    data = PilotData(
        "toy",
        tuple(map(str, range(n))),
        rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8),
        tuple(f"a {c} part" for c in rng.choice(["red", "blue"], n)),
    )
    embed = EmbedCfg(model=FULL.embed.model, train=FULL.embed.train)
    assert diagnosis_step_seconds(data, embed) > 0
    lookup = EmbedCfg().with_backbone("precomputed:/nowhere/codes.npz")
    assert diagnosis_step_seconds(data, lookup) == 0.0
