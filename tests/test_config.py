from dataclasses import FrozenInstanceError

import pytest

from misalignlab.config import from_dict, parse_value, to_dict, with_overrides
from misalignlab.detect.pipeline import DiagnoseCfg
from misalignlab.pilot.config import PilotCfg
from misalignlab.registry import Registry
from misalignlab.workflows.compare_presets import compare_config
from misalignlab.workflows.imagetext_presets import lab_config
from misalignlab.workflows.sim import SweepCfg, build_settings, sweep_config


def test_unknown_keys_are_rejected_listing_valid_ones():
    with pytest.raises(ValueError, match="valid: .*steps"):
        from_dict(SweepCfg, {"preset": "paper-joint", "scale": "quick", "train": {"stepz": 3}})


def test_round_trip_through_dict_and_overrides():
    cfg = sweep_config("paper-selection", "quick")
    again = from_dict(SweepCfg, to_dict(cfg))
    assert again == cfg
    changed = with_overrides(cfg, ["train.lr=0.01", 'probes=["mlp"]', "lvm.latent.dependent=true"])
    assert changed.train.lr == 0.01 and changed.probes == ("mlp",) and changed.lvm.latent.dependent
    with pytest.raises(FrozenInstanceError):
        changed.train.lr = 1.0  # type: ignore[misc]


def test_overrides_of_the_wrong_kind_are_rejected_naming_the_key():
    cfg = lab_config("selection-1", "quick")
    with pytest.raises(ValueError, match="swept_steps: expected bool, got 'maybe'"):
        with_overrides(cfg, ["swept_steps=maybe"])  # a non-empty string would have counted as True
    with pytest.raises(ValueError, match="train.steps: expected int, got 'ten'"):
        with_overrides(cfg, ["train.steps=ten"])
    with pytest.raises(ValueError, match="train.steps: expected int, got True"):
        with_overrides(cfg, ["train.steps=true"])
    assert with_overrides(cfg, ["train.lr=1", "train.steps=2.0"]).train.lr == 1.0  # numbers still convert


def test_registry_rejects_duplicates_and_scopes_fakes():
    reg: Registry[int] = Registry("thing")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(2)
    with reg.scoped():
        reg.register("fake")(3)
        assert reg.get("fake") == 3
    with pytest.raises(ValueError, match="known: a"):
        reg.get("fake")


@pytest.mark.parametrize(
    "cfg",
    [sweep_config("paper-joint", "tiny"), compare_config("tiny"), PilotCfg()],
    ids=["sweep", "compare", "pilot"],
)
def test_seeds_is_a_count_in_every_config(cfg):
    assert with_overrides(cfg, ["seeds=2"]).seeds == 2
    with pytest.raises(ValueError, match="seeds: expected int, got \\[1, 2\\]"):
        with_overrides(cfg, ["seeds=[1,2]"])


def test_a_sweep_of_two_seeds_trains_seed_and_the_next():
    cfg = with_overrides(sweep_config("paper-joint", "tiny"), ["seeds=2", "seed=5"])
    assert [s.seed for s in build_settings(cfg)] == [5, 6]


def test_a_list_setting_refuses_a_scalar_and_unknown_probes():
    cfg = sweep_config("paper-joint", "tiny")
    with pytest.raises(ValueError, match=r"probes: expected a list \(e.g. \['mlp'\]\), got 'mlp'"):
        with_overrides(cfg, ["probes=mlp"])  # would have iterated as the letters m, l, p
    with pytest.raises(ValueError, match="unknown probe 'lasso'"):
        with_overrides(cfg, ['probes=["lasso"]'])


def test_nested_typed_sections_take_overrides_of_their_own_fields():
    cfg = with_overrides(DiagnoseCfg(), ["embed.train.grad_clip=1", "embed.model.code_dim=16"])
    assert cfg.embed.train.grad_clip == 1.0 and isinstance(cfg.embed.train.grad_clip, float)
    assert cfg.embed.model.code_dim == 16
    with pytest.raises(ValueError, match="valid: .*grad_clip"):
        with_overrides(DiagnoseCfg(), ["embed.train.grad_clipp=1"])
    with pytest.raises(ValueError, match="embed.train: expected a section"):
        with_overrides(DiagnoseCfg(), ["embed.train=3"])


def test_a_bracketed_list_needs_no_json_quotes():
    assert parse_value("[scenes, fashion]") == ["scenes", "fashion"]
    assert parse_value("[4000, 20000]") == [4000, 20000]
    assert parse_value('["a"]') == ["a"] and parse_value("scenes") == "scenes"
