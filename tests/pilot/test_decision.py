"""The cost/benefit decision on hand-made scores: exact gains, costs, and which option wins."""

import math

import pandas as pd
import pytest

from misalignlab.pilot.config import CostModel, PilotCfg, PilotTask
from misalignlab.pilot.decision import accuracy_noise_points, as_scores, clean_fraction, clean_option, decide, outcomes


def scores(table: dict[str, list[float]]) -> pd.DataFrame:
    """option → per-seed scores (points)."""
    return pd.DataFrame(
        [(opt, seed, v) for opt, vals in table.items() for seed, v in enumerate(vals)],
        columns=["option", "seed", "value"],
    )


def test_gains_are_paired_by_seed_and_costs_follow_the_cleaned_share():
    found = {
        o.option: o
        for o in outcomes(
            scores({"baseline": [50, 60], "clean@0.2": [58, 66], "filter": [51, 63]}),
            n_pairs=1000,
            n_test=1000,
            cost=CostModel(cost_per_caption=0.5),
        )
    }
    clean = found["clean@0.2"]
    assert clean.gain == pytest.approx(7.0)  # (8 + 6) / 2
    assert clean.cost == pytest.approx(0.2 * 1000 * 0.5)
    assert clean.value == pytest.approx(700.0) and clean.net == pytest.approx(600.0)
    floor = math.sqrt(2) * accuracy_noise_points(55.0, 1000)
    assert clean.gain_se == pytest.approx(math.sqrt(math.sqrt(2) ** 2 / 2 + floor**2 / 2))  # spread of (8, 6) is √2
    assert found["filter"].action == "adapt" and found["filter"].cost == 0.0


def test_cheap_large_cleaning_gain_recommends_clean():
    s = scores({"baseline": [50, 51, 49], "clean@0.3": [62, 63, 61], "filter": [55, 56, 54]})
    d = decide(s, n_pairs=2000, n_test=2000, cost=CostModel(cost_per_caption=0.01, value_per_point=100))
    assert (d.action, d.option) == ("clean", "clean@0.3")
    assert d.label == "clean (top 30 %)"
    assert 0.9 < d.confidence <= 1.0
    assert len(d.reasons) == 3 and "clean@0.3" in d.reasons[0]


def test_expensive_captions_turn_the_same_gains_into_adapt():
    s = scores({"baseline": [50, 51, 49], "clean@0.3": [62, 63, 61], "filter": [55, 56, 54]})
    d = decide(s, n_pairs=2000, n_test=2000, cost=CostModel(cost_per_caption=5.0, value_per_point=100))
    assert (d.action, d.option, d.label) == ("adapt", "filter", "adapt: filter")
    clean = next(o for o in d.outcomes if o.option == "clean@0.3")
    assert clean.net == pytest.approx(12 * 100 - 0.3 * 2000 * 5.0) and not clean.worth_it


def test_gains_below_the_minimum_stop():
    s = scores({"baseline": [50, 51, 49], "clean@0.3": [51, 51.5, 50], "filter": [50.5, 51, 49]})
    d = decide(s, n_pairs=2000, n_test=2000, cost=CostModel(min_gain_points=2.0))
    assert d.action == "stop" and d.option is None and d.label == "stop"
    assert "No option pays" in d.reasons[0]
    assert 0.0 <= d.confidence <= 1.0


def test_a_lone_noisy_gain_gets_low_confidence():
    s = scores({"baseline": [50, 40], "augment": [60, 43]})  # +10 and +3: a noisy +6.5
    d = decide(s, n_pairs=500, n_test=200, cost=CostModel())
    assert d.option == "augment" and d.confidence_label in ("low", "medium")


def test_missing_baseline_or_options_raise():
    with pytest.raises(ValueError, match="baseline"):
        decide(scores({"filter": [50]}), 10, 10, CostModel())
    with pytest.raises(ValueError, match="no option"):
        decide(scores({"baseline": [50]}), 10, 10, CostModel())


def test_option_names_and_run_records():
    assert clean_option(0.2) == "clean@0.2" and clean_fraction("clean@0.2") == 0.2 and clean_fraction("filter") is None
    rows = [
        {"option": "baseline", "seed": 0, "id/task_acc": 0.5},
        {"option": "filter", "seed": 0, "id/task_acc": 0.55},
        {"option": "filter", "seed": 1},
    ]
    got = as_scores(rows, "id/task_acc")
    assert got.values.tolist() == [["baseline", 0, 50.0], ["filter", 0, 55.00000000000001]]


def test_invalid_settings_name_themselves():
    with pytest.raises(ValueError, match="cost.cost_per_caption"):
        CostModel(cost_per_caption=-1)
    with pytest.raises(ValueError, match="clean_fractions"):
        PilotCfg(clean_fractions=(0.0,))
    with pytest.raises(ValueError, match="adapt"):
        PilotCfg(adapt=("magic",))
    with pytest.raises(ValueError, match="also tasks"):
        PilotTask(tasks=("shape",), nuisance=("shape",))
    with pytest.raises(ValueError, match="task.tasks"):
        PilotTask(tasks=("rotation",)).check_scene_factors()  # scene names are checked where data is rendered
    with pytest.raises(ValueError, match="task.nuisance"):
        PilotTask(nuisance=("tone",)).check_scene_factors()
    PilotTask(nuisance=("tone",))  # a slot of a user's vocabulary: checked against it, not the scenes


def test_a_profile_names_the_slots_its_models_cannot_see_instead_of_an_all_clear():
    from misalignlab.pilot.decision import profile_sentence

    types = {k: {"rate": 0.0, "count": 0} for k in ("aligned", "incomplete", "wrong", "unrelated")}
    assert profile_sentence(types, {}, {}) == "Diagnosis: no pair typed misaligned."
    line = profile_sentence(types, {}, {}, unseen=["shape"])
    assert line.startswith("Diagnosis: no pair typed misaligned;") and "cannot see shape" in line
