"""Embrace strategies: augmentation touches only the slots asked for; multi-positive targets."""

import numpy as np
import pytest
import torch

from misalignlab.data.scenes.captions import parse_caption
from misalignlab.data.scenes.dataset import make_scene_pairs
from misalignlab.data.scenes.factors import SceneCfg
from misalignlab.data.scenes.inject import InjectionCfg
from misalignlab.models.losses import ClipInfoNCE
from misalignlab.strategies import PairSet, build_strategy
from misalignlab.strategies.embrace import content_groups, multipositive_targets, rewrite_caption


@pytest.fixture(scope="module")
def scenes():
    return make_scene_pairs(200, SceneCfg(size=32), InjectionCfg(synonyms=True), seed=3)


def _pairs(scenes, with_template=True):
    tpl = scenes.truth["template"].to_numpy() if with_template else None
    return PairSet.build(scenes.images, scenes.captions, tpl)


@pytest.mark.parametrize("with_template", [True, False])
def test_omission_removes_only_the_chosen_slot(scenes, with_template):
    out = build_strategy("augment", omit={"background": 1.0}).prepare(_pairs(scenes, with_template), seed=0)
    for before, after in zip(scenes.captions, out.captions):
        b, a = parse_caption(before), parse_caption(after)
        assert "background" not in a
        assert a == {k: v for k, v in b.items() if k != "background"}
    if with_template:
        assert not any("belt" in c for c in out.captions)  # the whole phrase goes, not just the word


def test_swap_changes_only_the_chosen_slot_and_always_to_another_value(scenes):
    out = build_strategy("augment", swap={"colour": 1.0}).prepare(_pairs(scenes), seed=1)
    for before, after in zip(scenes.captions, out.captions):
        b, a = parse_caption(before), parse_caption(after)
        assert a["colour"] != b["colour"]
        assert {k: v for k, v in a.items() if k != "colour"} == {k: v for k, v in b.items() if k != "colour"}


def test_augment_probability_is_respected_and_seeded(scenes):
    strat = build_strategy("augment", omit={"size": 0.5})
    a, b = strat.prepare(_pairs(scenes), seed=4), strat.prepare(_pairs(scenes), seed=4)
    assert a.captions == b.captions
    share = np.mean(["size" not in parse_caption(c) for c in a.captions])
    assert 0.35 < share < 0.65
    untouched = [c for c in a.captions if "size" in parse_caption(c)]
    assert set(untouched) <= set(scenes.captions)


def test_augment_rejects_bad_settings():
    with pytest.raises(ValueError, match="image-only"):
        build_strategy("augment", omit={"rotation": 1.0})
    with pytest.raises(ValueError, match="both"):
        build_strategy("augment", omit={"size": 1.0}, swap={"size": 0.5})
    with pytest.raises(ValueError, match="probability"):
        build_strategy("augment", omit={"size": 1.5})


def test_rewrite_caption_in_place_keeps_synonyms():
    assert rewrite_caption("a big cog on a gray belt", ["background"]) == "a big cog on a belt"
    assert rewrite_caption("a big cog on a gray belt", [], {"size": "small"}) == "a small cog on a gray belt"


def test_content_groups_ignore_template_order_and_synonyms():
    caps = [
        "a large red gear on a grey belt",
        "on a gray belt : a big red cog",
        "a large red gear",
        "a large red gear",
        "hello world",
        "hello world",
    ]
    g = content_groups(caps)
    assert g[0] == g[1] and g[2] == g[3] and g[4] == g[5]
    assert len({g[0], g[2], g[4]}) == 3


def test_multipositive_targets_rows_sum_to_one_over_equal_groups():
    group = torch.tensor([0, 1, 0, 2, 0])
    t = multipositive_targets(group)
    assert torch.allclose(t.sum(-1), torch.ones(5)) and torch.allclose(t, t.T)
    assert torch.allclose(t[0], torch.tensor([1 / 3, 0, 1 / 3, 0, 1 / 3]))
    assert t[1, 1] == 1 and t[3, 3] == 1
    img, txt, loss = torch.randn(5, 4), torch.randn(5, 4), ClipInfoNCE(tau=0.3)
    strat = build_strategy("multipositive")
    distinct, _ = strat.training_forward(img, txt, {"group": torch.arange(5)}, loss)
    assert distinct["contrastive_loss"].item() == pytest.approx(loss(img, txt).item(), rel=1e-5)
    terms, logs = strat.training_forward(img, txt, {"group": group}, loss)
    assert logs["positives_per_row"] == pytest.approx((3 + 1 + 3 + 1 + 3) / 5)
    assert strat.batch_extras(
        PairSet.build(np.zeros((6, 2, 2, 3), np.uint8), ["a red gear", "a red cog", "a blue gear", "x", "y", "x"])
    )["group"].tolist() == [0, 0, 1, 2, 3, 2]


# --- a user's captions read with a declared vocabulary (a file, as `--schema FILE` gives it) ---

USER_CAPTIONS = (
    "a crimson dress, long sleeves, on a model",
    "a red dress on a model",
    "a blue shirt hanging on a rail",
    "navy shirt with long sleeves",
    "a shirt on a rail",  # states the garment only
    "studio photo",  # states no slot
)


@pytest.fixture
def garment_vocabulary(tmp_path):
    import json

    from misalignlab.detect.vocabulary import load_vocabulary

    path = tmp_path / "garments.json"
    path.write_text(
        json.dumps({"slots": {"colour": {"red": ["crimson"], "blue": ["navy"]}, "garment": ["dress", "shirt"]}})
    )
    return load_vocabulary(path)


def _user_pairs(captions):
    return PairSet.build(np.zeros((len(captions), 8, 8, 3), np.uint8), captions)


def test_augment_drops_a_declared_slot_from_user_captions(garment_vocabulary):
    out = build_strategy("augment", omit={"colour": 1.0}, vocabulary=garment_vocabulary).prepare(
        _user_pairs(USER_CAPTIONS), seed=0
    )
    assert out.captions == (
        "a dress, long sleeves, on a model",
        "a dress on a model",
        "a shirt hanging on a rail",
        "shirt with long sleeves",
        "a shirt on a rail",
        "studio photo",
    )
    kept = build_strategy("augment", omit={"garment": 1.0}, vocabulary=garment_vocabulary).prepare(
        _user_pairs(USER_CAPTIONS[:1]), seed=0
    )
    assert kept.captions == ("a crimson, long sleeves, on a model",)  # other slots keep their written word


def test_augment_swaps_to_another_declared_value_and_checks_slot_names(garment_vocabulary):
    out = build_strategy("augment", swap={"colour": 1.0}, vocabulary=garment_vocabulary).prepare(
        _user_pairs(USER_CAPTIONS[:3]), seed=0
    )
    assert out.captions == (
        "a blue dress, long sleeves, on a model",
        "a blue dress on a model",
        "a red shirt hanging on a rail",
    )
    with pytest.raises(ValueError, match="not slots of the vocabulary; valid: colour, garment"):
        build_strategy("augment", omit={"background": 1.0}, vocabulary=garment_vocabulary)
    assert build_strategy("augment", omit={"colour": 1.0}, vocabulary=garment_vocabulary).params()["vocabulary"] == (
        "file:garments.json"
    )


def test_multipositive_groups_user_pairs_by_the_values_their_captions_state(garment_vocabulary):
    groups = build_strategy("multipositive", vocabulary=garment_vocabulary).batch_extras(_user_pairs(USER_CAPTIONS))[
        "group"
    ]
    # crimson = red: captions 0 and 1 state (red, dress); 2 and 3 state (blue, shirt), whatever else they say
    assert groups[0] == groups[1] and groups[2] == groups[3]
    assert len({groups[0], groups[2], groups[4], groups[5]}) == 4  # garment only, and no slot, are groups of their own
    assert content_groups(["studio photo", "studio photo"], garment_vocabulary).tolist() == [0, 0]
