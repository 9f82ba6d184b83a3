import numpy as np
import pytest

from misalignlab.evaluate.probes import probe_r2, r2_scores


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    s = rng.standard_normal((2 * n, 4))
    return s, rng


def test_linear_probe_recovers_a_known_linear_map():
    s, rng = _data()
    code = s[:, :2] @ rng.standard_normal((2, 3)) + 0.01 * rng.standard_normal((len(s), 3))
    n = len(s) // 2
    targets = {"s1": s[:, 0], "s2": s[:, 1], "s3": s[:, 2], "block": s[:, 2:]}
    fit = {k: v[:n] for k, v in targets.items()}
    test = {k: v[n:] for k, v in targets.items()}
    r2 = probe_r2(code[:n], code[n:], fit, test, "linear")
    assert r2["s1"] > 0.99 and r2["s2"] > 0.99
    assert r2["s3"] < 0.01 and r2["block"] < 0.01


@pytest.mark.parametrize("probe", ["kernel_ridge", "mlp"])
def test_nonlinear_probes_recover_an_invertible_nonlinear_map(probe):
    s, rng = _data(1500, seed=1)
    code = np.tanh(s[:, :2] @ np.array([[1.0, 0.5], [-0.4, 1.2]])) + 0.2 * s[:, :2] ** 3
    n = len(s) // 2
    targets = {"s1": s[:, 0], "s2": s[:, 1], "s4": s[:, 3]}
    fit = {k: v[:n] for k, v in targets.items()}
    test = {k: v[n:] for k, v in targets.items()}
    r2 = probe_r2(code[:n], code[n:], fit, test, probe)
    linear = probe_r2(code[:n], code[n:], fit, test, "linear")
    assert r2["s1"] > 0.9 and r2["s2"] > 0.9 and r2["s1"] > linear["s1"]
    assert r2["s4"] < 0.05


def test_r2_is_clipped_to_unit_interval():
    y = np.array([[0.0], [1.0], [2.0]])
    assert r2_scores(y, y)[0] == 1.0
    assert r2_scores(y, -10 * y)[0] == 0.0
