"""Per-factor probes: known answers on planted factors, key schema, validation."""

import numpy as np
import pytest

from misalignlab.evaluate.probes import (
    continuous_probe,
    discrete_probe,
    factor_kind,
    factor_probes,
    standardise,
)


def planted(n: int, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Codes (n, 8) and factors: a linearly separable class, a random class, a linear map, noise."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 8)) * np.array([1, 2, 3, 0.5, 1, 1, 10, 1]) + 5.0  # scales/offsets: standardise
    w_class = np.random.default_rng(100).normal(size=(8, 4))
    w_value = np.random.default_rng(101).normal(size=8)
    factors = {
        "shape": np.argmax(z @ w_class, axis=1),  # linearly separable, 4 classes
        "defect": rng.integers(0, 3, n),  # independent of z
        "size": z @ w_value + 0.01 * rng.normal(size=n),  # a known linear map
        "hue": rng.uniform(size=n),  # independent of z
    }
    return z, factors


@pytest.fixture(scope="module")
def scores() -> dict[str, float]:
    z_fit, f_fit = planted(2000, seed=0)
    z_test, f_test = planted(1000, seed=1)
    codes_fit = {"image": z_fit, "text": z_fit[:, ::-1] * 3}
    codes_test = {"image": z_test, "text": z_test[:, ::-1] * 3}
    return factor_probes(codes_fit, codes_test, f_fit, f_test, seed=0)


def test_keys_follow_the_schema(scores: dict[str, float]) -> None:
    expected = {
        f"probe/{f}/{p}/{m}/{mod}"
        for f, m in [("shape", "mcc"), ("defect", "mcc"), ("size", "r2"), ("hue", "r2")]
        for p in ("linear", "mlp")
        for mod in ("image", "text")
    }
    assert set(scores) == expected


def test_planted_factors_are_found_and_independent_ones_are_not(scores: dict[str, float]) -> None:
    for mod in ("image", "text"):
        assert scores[f"probe/shape/linear/mcc/{mod}"] > 0.95
        assert scores[f"probe/shape/mlp/mcc/{mod}"] > 0.9
        assert abs(scores[f"probe/defect/linear/mcc/{mod}"]) < 0.1
        assert abs(scores[f"probe/defect/mlp/mcc/{mod}"]) < 0.1
        assert scores[f"probe/size/linear/r2/{mod}"] > 0.999
        assert scores[f"probe/size/mlp/r2/{mod}"] > 0.95
        assert scores[f"probe/hue/linear/r2/{mod}"] < 0.02
        assert scores[f"probe/hue/mlp/r2/{mod}"] < 0.05
    assert all(0.0 <= v <= 1.0 for k, v in scores.items() if "/r2/" in k)


def test_string_labels_and_explicit_kinds() -> None:
    z, f = planted(600, seed=2)
    names = np.array(["cube", "cone", "ring", "star"])[f["shape"]]
    assert discrete_probe(z[:400], names[:400], z[400:], names[400:]) > 0.9
    assert factor_kind(names) == "discrete" and factor_kind(f["size"]) == "continuous"
    y = f["shape"]
    out = factor_probes(
        {"image": z[:400]},
        {"image": z[400:]},
        {"s": y[:400]},
        {"s": y[400:]},
        kinds={"s": "continuous"},
        probes=("linear",),
    )
    assert list(out) == ["probe/s/linear/r2/image"]


def test_standardise_uses_fit_statistics() -> None:
    fit = np.array([[0.0, 1.0], [2.0, 1.0]])
    a, b = standardise(fit, np.array([[1.0, 5.0]]))
    assert np.allclose(a, [[-1, 0], [1, 0]]) and np.allclose(b, [[0, 4]])  # constant column only centred


def test_degenerate_and_invalid_inputs() -> None:
    z, f = planted(100, seed=3)
    assert np.isnan(discrete_probe(z[:50], np.zeros(50, int), z[50:], f["defect"][50:]))
    assert continuous_probe(z[:50], -f["size"][:50], z[50:], f["size"][50:]) == 0.0  # negative R² clipped
    with pytest.raises(ValueError, match="unknown probe 'knn'; known: .*linear, mlp"):
        discrete_probe(z, f["shape"], z, f["shape"], probe="knn")
    with pytest.raises(ValueError, match="lengths differ"):
        continuous_probe(z, f["size"][:10], z, f["size"])
    with pytest.raises(ValueError, match="different factors"):
        factor_probes({"image": z}, {"image": z}, {"a": f["size"]}, {"b": f["size"]})
    with pytest.raises(ValueError, match="kind 'ordinal' unknown"):
        factor_probes({"image": z}, {"image": z}, {"a": f["size"]}, {"a": f["size"]}, kinds={"a": "ordinal"})
