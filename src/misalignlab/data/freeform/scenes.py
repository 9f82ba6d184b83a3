"""Rendered scenes with free-form operator-style captions, planted misalignment and ground truth.

:func:`freeform_scene_captions` writes one caption per factor row in style ``a`` or ``b`` of
:mod:`~misalignlab.data.freeform.scene_words` ("operator note: big teal cog near the top, pale
conveyor, scratched"), planting wrong / incomplete / unrelated captions at the
:class:`~misalignlab.data.freeform.plant.FreeformCfg` rates (see :mod:`misalignlab.data.freeform.plant` for the kinds
and the truth table). Every pattern states shape, colour and size; the position (``pos_x`` and
``pos_y`` together), belt and defect are stated by most but not all patterns, and a caption that
states fewer factors because of its pattern is aligned. :func:`make_freeform_scene_pairs` also
samples and renders the scenes: the same seed gives the same factors and images as
:func:`~misalignlab.data.scenes.dataset.make_scene_pairs`.

This module detects nothing and trains nothing; the fixed-vocabulary captions live in
:mod:`~misalignlab.data.scenes.captions`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from misalignlab.data.freeform.plant import TRUTH_COLUMNS, FreeformCfg, plant
from misalignlab.data.freeform.scene_words import DOMAIN, STYLES
from misalignlab.data.scenes.factors import SEMANTIC, SceneCfg
from misalignlab.data.scenes.render import render, sample_factors

__all__ = ["TRUTH_COLUMNS", "FreeformCfg", "FreeformScenePairs", "freeform_scene_captions", "make_freeform_scene_pairs"]


@dataclass(frozen=True, eq=False)
class FreeformScenePairs:
    """Images, free-form captions, factor codes and misalignment truth of ``N`` pairs.

    Attributes
    ----------
    images : numpy.ndarray
        ``(N, H, W, 3)`` uint8.
    captions : tuple of str
        ``(N,)`` captions as written (possibly misaligned).
    factors : pandas.DataFrame
        ``(N, n_factors)`` true factor codes / values, index ``0 .. N-1``.
    truth : pandas.DataFrame
        One row per pair, columns :data:`~misalignlab.data.freeform.plant.TRUTH_COLUMNS`.
    scene_cfg : SceneCfg
    freeform_cfg : FreeformCfg
    seed : int
    """

    images: np.ndarray
    captions: tuple[str, ...]
    factors: pd.DataFrame
    truth: pd.DataFrame
    scene_cfg: SceneCfg
    freeform_cfg: FreeformCfg
    seed: int

    def __len__(self) -> int:
        return len(self.captions)


def _check_active(scene_cfg: SceneCfg) -> None:
    inactive = [f for f in SEMANTIC if f not in scene_cfg.factors]
    if inactive:
        raise ValueError(f"free-form captions state every semantic factor; scene_cfg.factors lacks {inactive}")


def freeform_scene_captions(
    factors: pd.DataFrame, cfg: FreeformCfg, rng: np.random.Generator
) -> tuple[list[str], pd.DataFrame]:
    """Free-form captions with planted misalignment for a factor table.

    Parameters
    ----------
    factors : pandas.DataFrame
        Factor codes, as from :func:`~misalignlab.data.scenes.render.sample_factors`.
    cfg : FreeformCfg
        Style and per-pair rates of each kind.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    captions : list of str
    truth : pandas.DataFrame
        See :func:`misalignlab.data.freeform.plant.plant`; factor names in ``stated`` / ``dropped`` /
        ``changed`` are those of :mod:`~misalignlab.data.scenes.factors` (``background`` for the belt).
    """
    missing = [f for f in SEMANTIC if f not in factors.columns]
    if missing:
        raise ValueError(f"factor table lacks column(s) {missing}")
    codes = {f: factors[f].to_numpy(dtype=np.int64) for f in SEMANTIC}
    return plant(codes, DOMAIN, STYLES[cfg.style], cfg, rng)


def make_freeform_scene_pairs(
    n: int, scene_cfg: SceneCfg | None = None, freeform_cfg: FreeformCfg | None = None, seed: int = 0
) -> FreeformScenePairs:
    """Sample, render and caption ``n`` scenes with free-form captions.

    Parameters
    ----------
    n : int
        Number of pairs.
    scene_cfg : SceneCfg, optional
        Defaults to ``SceneCfg()``; every semantic factor must be active.
    freeform_cfg : FreeformCfg, optional
        Defaults to ``FreeformCfg()`` (style ``a``, no misalignment).
    seed : int
        Fixes every byte of images, captions and truth.

    Returns
    -------
    FreeformScenePairs
    """
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    scene_cfg = scene_cfg or SceneCfg()
    freeform_cfg = freeform_cfg or FreeformCfg()
    _check_active(scene_cfg)
    # the same two streams as make_scene_pairs: same seed → same factors and images
    factor_rng, caption_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    factors = sample_factors(n, scene_cfg, factor_rng)
    images = render(factors, scene_cfg, seed)
    captions, truth = freeform_scene_captions(factors, freeform_cfg, caption_rng)
    return FreeformScenePairs(images, tuple(captions), factors, truth, scene_cfg, freeform_cfg, seed)
