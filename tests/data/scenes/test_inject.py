"""Misalignment injection: every truth record must match the caption text and the planted rates."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from misalignlab.data.scenes.captions import TEMPLATES, parse_caption, vocabulary
from misalignlab.data.scenes.dataset import make_scene_pairs
from misalignlab.data.scenes.factors import FACTORS, IMAGE_ONLY, SEMANTIC, SceneCfg
from misalignlab.data.scenes.inject import InjectionCfg, inject
from misalignlab.data.scenes.render import sample_factors
from misalignlab.kinds import KINDS

SCENE = SceneCfg()
N = 3000
CFG = InjectionCfg(omit=("background",), perturb={"defect": 0.3, "colour": 0.2}, outlier_rate=0.1, drop_rate=0.15)


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    factors = sample_factors(N, SCENE, np.random.default_rng(0))
    captions, truth = inject(factors, SCENE, CFG, np.random.default_rng(1))
    return factors, captions, truth


def words_of(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text))


def test_kind_follows_the_records_with_precedence(planted) -> None:
    _, captions, truth = planted
    assert list(truth["pair"]) == list(range(N)) and truth["caption"].tolist() == captions
    assert set(truth["kind"]) == set(KINDS)
    outlier = truth["outlier_source"] >= 0
    changed = truth["changed"].map(bool)
    dropped = truth["dropped"].map(bool)
    expect = np.where(outlier, "unrelated", np.where(changed, "wrong", np.where(dropped, "incomplete", "aligned")))
    assert (truth["kind"].to_numpy() == expect).all()
    assert (truth.loc[outlier, "changed"].map(len) == 0).all()  # a borrowed caption is recorded as such only
    aligned = truth[truth["kind"] == "aligned"]
    assert (aligned["caption"] == aligned["clean_caption"]).all()


def test_truth_records_match_the_caption_text(planted) -> None:
    factors, captions, truth = planted
    vocab = vocabulary()
    for i, row in truth[truth["outlier_source"] < 0].iterrows():
        said = words_of(captions[i])
        assert "background" not in row["stated"] and "background" not in row["dropped"]
        assert set(row["stated"]) | set(row["dropped"]) == set(SEMANTIC) - {"background"}
        for f in SEMANTIC:
            if f not in row["stated"]:  # omitted or dropped: none of its words may appear
                assert not said & set(vocab[f]), (f, captions[i])
        for f in row["stated"]:
            true = FACTORS[f].values[factors.at[i, f]]
            written = row["changed"][f][1] if f in row["changed"] else true
            assert written in said, (f, captions[i])
            if f in row["changed"]:
                assert row["changed"][f][0] == true and true not in said
            assert row[f"text_{f}"] == FACTORS[f].values.index(written)
        assert parse_caption(captions[i]) == {f: FACTORS[f].values[row[f"text_{f}"]] for f in row["stated"]}


def test_planted_rates_within_tolerance(planted) -> None:
    _, _, truth = planted
    outlier = truth["outlier_source"] >= 0
    assert abs(outlier.mean() - 0.10) < 0.025
    rest = truth[~outlier]
    assert abs(rest["dropped"].map(bool).mean() - 0.15) < 0.03
    for f, p in CFG.perturb.items():
        stated = rest[rest["stated"].map(lambda s, f=f: f in s)]
        assert abs(stated["changed"].map(lambda c, f=f: f in c).mean() - p) < 0.035, f
    counts = np.bincount(truth["template"], minlength=len(TEMPLATES))
    assert np.allclose(counts / N, 1 / len(TEMPLATES), atol=0.03)


def test_perturbed_word_is_always_a_different_value(planted) -> None:
    _, _, truth = planted
    swaps = [(f, old, new) for c in truth["changed"] for f, (old, new) in c.items()]
    assert len(swaps) > 300
    assert all(old != new for _, old, new in swaps)
    for f in CFG.perturb:  # every other value gets used as a replacement
        assert {new for g, _, new in swaps if g == f} == set(FACTORS[f].values), f


def test_outliers_carry_another_images_clean_caption(planted) -> None:
    factors, captions, truth = planted
    base = [f for f in SEMANTIC if f != "background"]
    for i, row in truth[truth["outlier_source"] >= 0].iterrows():
        src = row["outlier_source"]
        assert src != i and captions[i] == truth.at[src, "clean_caption"]
        assert (factors.loc[src, base] != factors.loc[i, base]).any()
        assert row["stated"] == base and row["dropped"] == []


def test_selection_bias_alone_makes_no_pair_incomplete() -> None:
    factors = sample_factors(500, SCENE, np.random.default_rng(2))
    captions, truth = inject(factors, SCENE, InjectionCfg(omit=("size", "defect")), np.random.default_rng(3))
    assert (truth["kind"] == "aligned").all() and captions == truth["clean_caption"].tolist()
    assert not any(words_of(c) & (set(vocabulary()["size"]) | set(vocabulary()["defect"])) for c in captions)


def test_image_only_factors_never_change_the_caption() -> None:
    factors = sample_factors(400, SCENE, np.random.default_rng(4))
    cfg = InjectionCfg(perturb={"shape": 0.5}, drop_rate=0.3, outlier_rate=0.1, synonyms=True)
    a, _ = inject(factors, SCENE, cfg, np.random.default_rng(5))
    moved = factors.assign(**{f: np.random.default_rng(6).random(len(factors)) for f in IMAGE_ONLY})
    b, _ = inject(moved, SCENE, cfg, np.random.default_rng(5))
    assert a == b


def test_synonyms_vary_the_words_but_not_the_parsed_slots() -> None:
    factors = sample_factors(400, SCENE, np.random.default_rng(7))
    captions, truth = inject(factors, SCENE, InjectionCfg(synonyms=True), np.random.default_rng(8))
    assert any("cog" in words_of(c) for c in captions) and any("gear" in words_of(c) for c in captions)
    for i, c in enumerate(captions):
        assert parse_caption(c) == {f: FACTORS[f].values[factors.at[i, f]] for f in SEMANTIC}


def test_injection_changes_captions_only() -> None:
    a = make_scene_pairs(64, SCENE, InjectionCfg(), seed=9)
    b = make_scene_pairs(64, SCENE, CFG, seed=9)
    assert np.array_equal(a.images, b.images) and a.factors.equals(b.factors)
    assert a.captions != b.captions
    again = make_scene_pairs(64, SCENE, CFG, seed=9)
    assert again.captions == b.captions and again.truth.equals(b.truth)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"omit": ("hue",)}, "omit: unknown factor 'hue'; valid: shape"),
        ({"omit": ("rotation",)}, "omit: 'rotation' is image-only"),
        ({"perturb": {"colour": 1.5}}, r"perturb\[colour\] = 1.5"),
        ({"perturb": {"lighting": 0.5}}, "perturb: 'lighting' is image-only"),
        ({"perturb": {"size": 0.5}, "omit": ("size",)}, "perturb names omitted"),
        ({"outlier_rate": -0.1}, "outlier_rate"),
        ({"drop_rate": 1.2}, "drop_rate"),
        ({"n_templates": 0}, "n_templates"),
    ],
)
def test_bad_config_names_the_setting(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InjectionCfg(**kwargs)


def test_config_must_fit_the_scene() -> None:
    small = SceneCfg(factors=("shape", "size"))
    with pytest.raises(ValueError, match="inactive"):
        InjectionCfg(perturb={"colour": 0.5}).stated_factors(small)
    with pytest.raises(ValueError, match="leaves no active factor"):
        InjectionCfg(omit=("shape", "size")).stated_factors(small)
    assert InjectionCfg(omit=("colour",)).stated_factors(small) == ("shape", "size")
