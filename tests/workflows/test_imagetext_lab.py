"""The image–text lab: preset definitions, the paper's perturbation distribution, run folders, resume."""

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.inject import inject
from misalignlab.data.scenes.render import sample_factors
from misalignlab.train.pairs import LossCfg
from misalignlab.train.trainer import Callback
from misalignlab.workflows.imagetext_lab import TARGETS, run_imagetext_lab
from misalignlab.workflows.imagetext_presets import PRESETS, ImageTextLabCfg, Level, changed_prob, lab_config

pytestmark = pytest.mark.slow  # end-to-end: runs whole commands


POS = ("pos_x", "pos_y")


def test_selection_levels_add_colour_shape_size_position_background_in_turn():
    stated = [set(PRESETS.get(f"selection-{k}")[0].stated) for k in range(1, 6)]
    assert stated == [
        {"colour"},
        {"colour", "shape"},
        {"colour", "shape", "size"},
        {"colour", "shape", "size", *POS},
        {"colour", "shape", "size", *POS, "background"},
    ]
    for k in range(1, 6):
        level = PRESETS.get(f"selection-{k}")[0]
        assert level.perturbed == () and "defect" in level.omitted and "defect" not in level.stated
    assert [lv.code_dim for lv in PRESETS.get("selection")] == [3, 3, 3, 5, 6]
    for scale in ("paper", "tiny"):
        cfg = lab_config("selection", scale)
        assert [cfg.code_for(lv) for lv in cfg.levels] == [3, 3, 3, 5, 6]
    quick = lab_config("selection", "quick")
    assert [lv.unbiased_combinations for lv in quick.levels] == [8, 48, 144, 1296, 3888]
    # swept: the measured size and steps for the level's number of combinations, with 8 spare dimensions to fade
    assert [quick.code_for(lv) for lv in quick.levels] == [3, 3, 4, 9, 10]
    assert quick.code_extra == 8
    assert [quick.train_for(lv).steps for lv in quick.levels] == [1000, 1000, 2000, 1000, 2000]
    assert replace(quick, swept_steps=False).train_for(quick.levels[4]) == quick.train
    faithful = replace(quick, code_rule="faithful")
    assert [faithful.code_for(lv) for lv in quick.levels] == [3, 4, 5, 7, 8]  # #unbiased + 2 = #stated + 2 here
    assert [replace(quick, code_rule="stated").code_for(lv) for lv in quick.levels] == [3, 4, 5, 7, 8]
    pert = lab_config("perturbation", "quick")
    assert [lv.unbiased_combinations for lv in pert.levels] == [3888, 1296, 144, 48, 8]
    assert [pert.code_for(lv) for lv in pert.levels] == [10, 9, 4, 3, 3]  # perturbed factors get no room
    assert [pert.train_for(lv).steps for lv in pert.levels] == [2000, 1000, 2000, 1000, 1000]
    assert [replace(pert, code_rule="faithful").code_for(lv) for lv in pert.levels] == [8, 7, 5, 4, 3]
    assert [replace(pert, code_rule="stated").code_for(lv) for lv in pert.levels] == [8, 8, 8, 8, 8]
    assert [replace(quick, code_rule="unbiased").code_for(lv) for lv in quick.levels] == [3, 3, 3, 5, 6]
    assert {replace(quick, code_dim=16).code_for(lv) for lv in quick.levels} == {16}
    with pytest.raises(ValueError, match="code_rule"):
        replace(quick, code_rule="big")
    with pytest.raises(ValueError, match="align_ramp"):
        replace(quick, align_ramp=(0.6, 0.3))
    with pytest.raises(ValueError, match="has none"):
        replace(quick, loss=LossCfg("ntxent_intra_modal", tau=1.0))
    with pytest.raises(ValueError, match="spare_fade"):
        replace(quick, code_extra=0, spare_fade=(0.2, 0.5))  # nothing to fade
    with pytest.raises(ValueError, match="spare_fade"):
        replace(quick, code_extra=4, spare_fade=(0.5, 0.2))


def test_swept_code_size_falls_back_to_faithful_beyond_the_measured_range(monkeypatch):
    import misalignlab.workflows.imagetext_presets as presets

    level = PRESETS.get("selection-5")[0]
    quick = lab_config("selection-5", "quick")
    monkeypatch.setattr(presets, "SWEPT", ((64, 3, 1), (144, 4, 2)))
    assert level.swept is None and level.swept_code_dim == level.faithful_code_dim == 8
    assert quick.train_for(level) == quick.train  # no measured multiple: the configured steps
    monkeypatch.setattr(presets, "SWEPT", ((64, 3, 1), (4000, 11, 3)))
    assert level.swept_code_dim == 11 and quick.train_for(level).steps == 3 * quick.train.steps


def test_perturbation_levels_state_everything_and_perturb_from_the_background_up():
    levels = PRESETS.get("perturbation")
    assert [lv.name for lv in levels] == [f"perturbation-{k}" for k in range(1, 6)]
    assert [set(lv.perturbed) for lv in levels] == [
        set(),
        {"background"},
        {*POS, "background"},
        {"size", *POS, "background"},
        {"shape", "size", *POS, "background"},
    ]
    assert all(set(lv.stated) == {"colour", "shape", "size", *POS, "background"} for lv in levels)
    assert [lv.code_dim for lv in levels] == [6, 5, 3, 3, 3]
    assert [lab_config("perturbation", "quick").code_for(lv) for lv in levels] == [10, 9, 4, 3, 3]
    assert [lv.unbiased for lv in levels][-1] == ("colour",)
    assert levels[2].role("pos_x") == "perturbed" and levels[2].role("defect") == "omitted"
    assert levels[2].role("rotation") == "image-only" and levels[2].role("template") == "text-only"
    assert levels[3].injection().perturb == {
        "size": pytest.approx(0.6),
        "pos_x": pytest.approx(0.6),
        "pos_y": pytest.approx(0.6),
        "background": pytest.approx(0.6),
    }


def test_perturbed_words_follow_the_papers_uniform_redraw():
    """P(written = true) = 1 − p + p/k and every wrong value p/k, as a uniform redraw with probability p."""
    level = Level("t", ("colour", "background"), ("colour", "background"), perturb_prob=0.9)
    scene = SceneCfg()
    factors = sample_factors(6000, scene, np.random.default_rng(0))
    _, truth = inject(factors, scene, level.injection(), np.random.default_rng(1))
    for factor, k in (("colour", 8), ("background", 3)):
        said, true = truth[f"text_{factor}"].to_numpy(), factors[factor].to_numpy()
        assert np.mean(said == true) == pytest.approx(1 - 0.9 + 0.9 / k, abs=0.025)
        shift = (said - true) % k
        counts = np.bincount(shift[shift > 0], minlength=k)[1:] / len(shift)
        assert np.allclose(counts, 0.9 / k, atol=0.025)
    assert changed_prob(0.9, 3) == pytest.approx(0.6) and changed_prob(1.0, 2) == 0.5


def test_unknown_preset_scale_or_level_fields_raise():
    with pytest.raises(ValueError, match="unknown imagetext preset"):
        lab_config("selection-9", "quick")
    with pytest.raises(ValueError, match="unknown scale"):
        lab_config("selection", "huge")
    with pytest.raises(ValueError, match="not all stated"):
        Level("x", ("colour",), ("shape",))
    with pytest.raises(ValueError, match="semantic"):
        Level("x", ("rotation",))


def _tiny(preset: str = "selection-2") -> ImageTextLabCfg:
    return lab_config(preset, "tiny")


class Interrupt(Callback):
    """Raises at a step, after that step's checkpoint (a stand-in for a killed process)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_end(self, trainer, step, logs):
        if step == self.at:
            raise KeyboardInterrupt


def test_resume_after_interruption_gives_the_same_final_numbers(tmp_path):
    cfg = _tiny()
    run_imagetext_lab(cfg, tmp_path / "straight")
    with pytest.raises(KeyboardInterrupt):
        run_imagetext_lab(cfg, tmp_path / "cut", callbacks=lambda level: [Interrupt(8)])
    assert not (tmp_path / "cut" / "selection-2" / "scores.json").exists()
    run_imagetext_lab(cfg, tmp_path / "cut")
    a = pd.read_csv(tmp_path / "straight" / "scores.csv")
    b = pd.read_csv(tmp_path / "cut" / "scores.csv")
    pd.testing.assert_frame_equal(a, b)
    rows = [json.loads(x) for x in (tmp_path / "cut" / "results.jsonl").read_text().splitlines()]
    assert {r["step"] for r in rows if r.get("stage") == "train"} == {4, 8, 12}


def test_finished_levels_are_reused_and_a_changed_config_is_refused(tmp_path):
    cfg = _tiny()
    run_imagetext_lab(cfg, tmp_path)
    n_lines = len((tmp_path / "results.jsonl").read_text().splitlines())
    run_imagetext_lab(cfg, tmp_path)  # nothing to train or probe again
    rows = [json.loads(x) for x in (tmp_path / "results.jsonl").read_text().splitlines()[n_lines:]]
    assert [r["stage"] for r in rows] == ["render"]
    other = replace(cfg, seed=1)
    with pytest.raises(ValueError, match="different config"):
        run_imagetext_lab(other, tmp_path)
    run_imagetext_lab(other, tmp_path, fresh=True)
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert set(scores["target"]) == set(TARGETS) and scores["score"].between(-1, 1).all()
    assert set(scores.loc[scores["role"] == "stated", "target"]) == {"colour", "shape"}
