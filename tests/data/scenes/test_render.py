"""Scene sampling and rendering checked against the factors that made each image."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from misalignlab.data.scenes.factors import (
    BELT_RGB,
    FACTOR_NAMES,
    FACTORS,
    IMAGE_ONLY,
    PART_RGB,
    SceneCfg,
)
from misalignlab.data.scenes.render import render, sample_factors

CFG = SceneCfg()
S = CFG.size


def scenes(**fixed: object) -> pd.DataFrame:
    """Every shape × size × cell, with colours and belts cycled so each shape meets each colour;
    neutral light and texture, no defect; ``fixed`` overrides columns."""
    axes = ("shape", "size", "pos_x", "pos_y")
    grid = pd.MultiIndex.from_product([range(FACTORS[f].n_values) for f in axes], names=axes)
    df = pd.concat([grid.to_frame(index=False)] * 2, ignore_index=True).astype(np.int64)
    i = np.arange(len(df))
    df["colour"] = (i + i // 54) % FACTORS["colour"].n_values
    df["background"] = (i // 8 + i // 162) % FACTORS["background"].n_values
    df["defect"] = 0
    for f in IMAGE_ONLY:
        df[f] = 0.0
    for k, v in fixed.items():
        df[k] = v
    return df[list(FACTOR_NAMES)]


def colour_mask(images: np.ndarray, rgb: np.ndarray, tol: float = 4.0) -> np.ndarray:
    """(N, H, W) pixels within ``tol`` grey levels of each image's ``rgb`` (N, 3)."""
    diff = np.abs(images.astype(np.int16) - rgb[:, None, None, :].astype(np.int16))
    return diff.max(axis=-1) <= tol


@pytest.fixture(scope="module")
def neutral() -> tuple[pd.DataFrame, np.ndarray]:
    df = scenes(rotation=0.1)
    return df, render(df, CFG, seed=0)


def test_sample_factors_columns_ranges_and_balance() -> None:
    df = sample_factors(4000, CFG, np.random.default_rng(0))
    assert list(df.columns) == list(FACTOR_NAMES) and len(df) == 4000
    for f in FACTORS.values():
        col = df[f.name]
        if f.discrete:
            assert col.dtype == np.int64
            share = np.bincount(col, minlength=f.n_values) / len(col)
            assert np.allclose(share, 1 / f.n_values, atol=0.04), f.name
        else:
            assert col.dtype == np.float64 and col.between(0, 1).all() and col.std() > 0.25


def test_inactive_factors_hold_their_default() -> None:
    cfg = SceneCfg(factors=("shape", "colour", "size"))
    df = sample_factors(200, cfg, np.random.default_rng(1))
    for f in ("pos_x", "pos_y", "background", "defect", *IMAGE_ONLY):
        assert (df[f] == FACTORS[f].default).all(), f
    assert df["shape"].nunique() == FACTORS["shape"].n_values


def test_causal_mode_links_colour_to_position_and_defect_to_size() -> None:
    n = 6000
    causal = sample_factors(n, SceneCfg(causal=True), np.random.default_rng(2))
    indep = sample_factors(n, SceneCfg(), np.random.default_rng(2))
    pos = causal["pos_x"] + causal["pos_y"]
    assert np.corrcoef(pos, causal["colour"])[0, 1] > 0.6
    assert abs(np.corrcoef(indep["pos_x"] + indep["pos_y"], indep["colour"])[0, 1]) < 0.05
    damaged = (causal["defect"] > 0).groupby(causal["size"]).mean().to_numpy()
    assert np.allclose(damaged, [0.25, 0.5, 0.75], atol=0.04)
    for f in IMAGE_ONLY:  # image-only factors stay independent of everything
        assert abs(np.corrcoef(causal[f], pos)[0, 1]) < 0.05


def test_render_is_deterministic_and_independent_of_chunking() -> None:
    df = sample_factors(300, CFG, np.random.default_rng(3))
    a = render(df, CFG, seed=5)
    assert a.shape == (300, S, S, 3) and a.dtype == np.uint8
    assert render(df, CFG, seed=5).tobytes() == a.tobytes()
    assert np.array_equal(render(df, CFG, seed=5, chunk=7), a)
    grain = df["texture"] > 0.2
    assert (render(df, CFG, seed=6)[grain] != a[grain]).any(axis=(1, 2, 3)).all()
    # per-image reference: each row drawn alone gives the same bytes as the batch
    for i in (0, 17, 299):
        assert np.array_equal(render(df.iloc[[i]], CFG, seed=5)[0], a[i])


def test_part_colour_dominates_and_solid_hubs_show_it_exactly(neutral) -> None:
    df, img = neutral
    part = PART_RGB[df["colour"]]
    counts = np.stack([colour_mask(img, np.broadcast_to(rgb, part.shape)).sum(axis=(1, 2)) for rgb in PART_RGB])
    assert (counts.argmax(axis=0) == df["colour"].to_numpy()).all()
    assert counts.max(axis=0).min() >= 12  # even a small washer covers a dozen exact pixels
    # the pixel holding the part's centre shows the exact colour where the part is solid there
    # (bolt shafts; spring bands at large size); gears, nuts, washers and brackets have a hole
    hub = ((df["shape"] == 0) | ((df["shape"] == 5) & (df["size"] == 2))).to_numpy()
    cx = (np.array([0.22, 0.5, 0.78])[df["pos_x"]] * S).astype(int)
    cy = (np.array([0.22, 0.5, 0.78])[df["pos_y"]] * S).astype(int)
    centre = img[np.arange(len(df)), cy, cx].astype(int)
    assert hub.sum() >= 30 and np.abs(centre[hub] - part[hub]).max() <= 1


def test_belt_colour_far_from_the_part(neutral) -> None:
    df, img = neutral
    far_x = np.where(df["pos_x"] < 1, S - 1, 0)  # the corner opposite the part
    far_y = np.where(df["pos_y"] < 1, S - 1, 0)
    corner = img[np.arange(len(df)), far_y, far_x].astype(int)
    assert np.abs(corner - BELT_RGB[df["background"]]).max() <= 1


def test_position_moves_the_part_into_its_grid_cell(neutral) -> None:
    df, img = neutral
    mask = colour_mask(img, PART_RGB[df["colour"]])
    ys, xs = np.mgrid[0:S, 0:S] + 0.5
    area = mask.sum(axis=(1, 2))
    cx = (mask * xs).sum(axis=(1, 2)) / area
    cy = (mask * ys).sum(axis=(1, 2)) / area
    assert (np.floor(cx / (S / 3)) == df["pos_x"]).all()
    assert (np.floor(cy / (S / 3)) == df["pos_y"]).all()


def test_larger_size_covers_more_pixels(neutral) -> None:
    df = neutral[0].query("size == 0").reset_index(drop=True)
    area = np.stack(
        [colour_mask(render(df.assign(size=k), CFG), PART_RGB[df["colour"]]).sum(axis=(1, 2)) for k in range(3)],
        axis=1,
    )  # (scenes, 3 sizes)
    assert (np.diff(area, axis=1) > 0).all()
    assert (area[:, 2] / area[:, 0] > 2.0).all()


def test_small_shapes_have_distinct_silhouettes() -> None:
    df = scenes(size=0, colour=0, pos_x=1, pos_y=1, background=0).drop_duplicates().reset_index(drop=True)
    for rot in (0.0, 0.13, 0.37):
        masks = colour_mask(render(df.assign(rotation=rot), CFG), PART_RGB[df["colour"]], tol=60)
        flat = masks.reshape(len(df), -1).astype(float)
        inter = flat @ flat.T
        iou = inter / (flat.sum(1)[:, None] + flat.sum(1)[None, :] - inter)
        assert iou[~np.eye(len(df), dtype=bool)].max() < 0.75


def test_every_defect_marks_every_shape_visibly() -> None:
    base = scenes(size=0, colour=2, pos_x=1, pos_y=1, background=0, rotation=0.2).drop_duplicates()
    base = base.reset_index(drop=True)
    imgs = [render(base.assign(defect=d), CFG).astype(int) for d in range(4)]
    for d in (1, 2, 3):
        changed = (np.abs(imgs[d] - imgs[0]).max(axis=-1) > 40).sum(axis=(1, 2))
        assert changed.min() >= 4, FACTORS["defect"].values[d]
    for a, b in ((1, 2), (1, 3), (2, 3)):
        assert ((np.abs(imgs[a] - imgs[b]).max(axis=-1) > 40).sum(axis=(1, 2)) >= 3).all()


def test_image_only_factors_change_pixels_and_lighting_is_a_gradient() -> None:
    df = scenes(shape=1, colour=5, size=2, pos_x=1, pos_y=1, background=0).head(1)
    ref = render(df, CFG)
    for f in IMAGE_ONLY:
        assert not np.array_equal(render(df.assign(**{f: 0.6}), CFG), ref), f
    lit = render(df.assign(lighting=1.0), CFG)[0].astype(int)
    assert lit[0, 0].mean() > 128 * 1.25 and lit[-1, -1].mean() < 128 * 0.75


def test_render_and_config_reject_bad_input() -> None:
    df = sample_factors(4, CFG, np.random.default_rng(0))
    with pytest.raises(ValueError, match="lacks column"):
        render(df.drop(columns="colour"), CFG)
    with pytest.raises(ValueError, match="'shape'"):
        render(df.assign(shape=6), CFG)
    with pytest.raises(ValueError, match="'lighting'"):
        render(df.assign(lighting=1.5), CFG)
    with pytest.raises(ValueError, match="valid: shape"):
        SceneCfg(factors=("shape", "hue"))
    with pytest.raises(ValueError, match="size"):
        SceneCfg(size=31)
