from dataclasses import FrozenInstanceError

import pytest

from misalignlab.config import from_dict, to_dict, with_overrides
from misalignlab.registry import Registry
from misalignlab.workflows.imagetext_presets import lab_config
from misalignlab.workflows.sim import SweepCfg, sweep_config


def test_unknown_keys_are_rejected_listing_valid_ones():
    with pytest.raises(ValueError, match="valid: .*steps"):
        from_dict(SweepCfg, {"preset": "paper-joint", "scale": "quick", "train": {"stepz": 3}})


def test_round_trip_through_dict_and_overrides():
    cfg = sweep_config("paper-selection", "quick")
    again = from_dict(SweepCfg, to_dict(cfg))
    assert again == cfg
    changed = with_overrides(cfg, ["train.lr=0.01", "seeds=[1,2]", "lvm.latent.dependent=true"])
    assert changed.train.lr == 0.01 and changed.seeds == (1, 2) and changed.lvm.latent.dependent
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
