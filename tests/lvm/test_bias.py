import pytest

from misalignlab.lvm.bias import BiasSpec, rank_subset, unrank_subset

# The paper's codes: θ of I_θ = [k] and ρ of I_ρ = [k] when I_θ = [10] (1-based paper codes).
THETA = {1: 1, 2: 11, 3: 56, 4: 176, 5: 386, 6: 638, 7: 848, 8: 968, 9: 1013, 10: 1023}
RHO_WITH_THETA_10 = {1: 2, 2: 12, 3: 57, 4: 177, 5: 387, 6: 639, 7: 849, 8: 969, 9: 1014}


@pytest.mark.parametrize("k", range(1, 11))
def test_theta_codes_match_paper_table(k):
    spec = BiasSpec(selected=tuple(range(k)))
    assert spec.paper_codes() == (THETA[k], 1)
    assert BiasSpec.from_paper_codes(THETA[k], 1) == spec


@pytest.mark.parametrize("k", range(1, 10))
def test_rho_codes_match_paper_table(k):
    spec = BiasSpec(selected=tuple(range(10)), perturbed=tuple(range(k)))
    assert spec.paper_codes() == (1023, RHO_WITH_THETA_10[k])
    assert BiasSpec.from_paper_codes(1023, RHO_WITH_THETA_10[k]) == spec


def test_joint_setting_codes():
    # I_θ = [8], I_ρ = [2]: ρ ranks subsets of [8]: ∅ (1), 8 singletons (2..9), then {1,2} = 10.
    spec = BiasSpec.from_paper_codes(968, 10)
    assert spec.selected == tuple(range(8)) and spec.perturbed == (0, 1)


def test_rank_unrank_round_trip_over_all_subsets():
    items = list(range(6))
    seen = set()
    for r in range(2**6 - 1):
        sub = unrank_subset(items, r, min_size=1)
        assert rank_subset(items, sub, min_size=1) == r
        seen.add(sub)
    assert len(seen) == 63


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"selected": ()}, "bias.selected"),
        ({"selected": (0, 1), "perturbed": (0, 1)}, "proper subset"),
        ({"selected": (0, 1), "perturbed": (2,)}, "not in bias.selected"),
        ({"selected": (0, 1), "perturbed": (0,), "perturb_prob": 1.5}, "perturb_prob"),
        ({"selected": (0, 1), "perturbed": (0,), "perturb_prob": -0.1}, "perturb_prob"),
        ({"selected": (0, 12)}, "outside 0..9"),
        ({"selected": (0,), "noise": "laplace"}, "bias.noise"),
    ],
)
def test_invalid_settings_raise_naming_the_setting(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BiasSpec(**kwargs).check(n_semantic=10)


def test_bad_paper_codes_raise():
    with pytest.raises(ValueError, match="theta"):
        BiasSpec.from_paper_codes(1024, 1)
    with pytest.raises(ValueError, match="rho"):
        BiasSpec.from_paper_codes(1, 2)  # I_θ = {1} has only ∅ as a proper subset
