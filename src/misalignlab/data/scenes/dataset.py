"""Rendered image–caption pairs with ground truth, and their folder format.

:func:`make_scene_pairs` samples factors, renders images and writes captions with planted
misalignment; :func:`write_dataset_folder` stores them and :func:`read_dataset_folder` loads
them back unchanged. Folder layout::

    images/000000.png ...   one PNG per pair (RGB, uint8)
    captions.csv            columns image (path relative to the folder), caption
    truth.parquet           factor codes + injection truth, one row per pair; the list and
                            dict columns (stated, dropped, changed) are JSON text
    config.json             scene and injection configs, seed, n (written last)

Every file is written atomically. Factors and captions come from independent streams of one
seed, so changing only the injection config keeps the images and factors.
This module neither trains nor detects anything.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from misalignlab.config import from_dict, to_dict
from misalignlab.data.scenes.factors import FACTOR_NAMES, SceneCfg
from misalignlab.data.scenes.inject import InjectionCfg, inject
from misalignlab.data.scenes.render import render, sample_factors
from misalignlab.runs import atomic_write_bytes, atomic_write_text, write_json

JSON_COLUMNS = ("stated", "dropped", "changed")
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)
class ScenePairs:
    """Images, captions, factor codes and misalignment truth of ``N`` pairs.

    Attributes
    ----------
    images : numpy.ndarray
        ``(N, H, W, 3)`` uint8.
    captions : tuple of str
        ``(N,)`` captions as written (possibly misaligned).
    factors : pandas.DataFrame
        ``(N, n_factors)`` true factor codes / values, index ``0 .. N-1``.
    truth : pandas.DataFrame
        Per-pair injection truth, see :func:`misalignlab.data.scenes.inject.inject`.
    scene_cfg, inj_cfg : SceneCfg, InjectionCfg
        The configs that made the pairs.
    seed : int
        The seed that made the pairs.
    """

    images: np.ndarray
    captions: tuple[str, ...]
    factors: pd.DataFrame
    truth: pd.DataFrame
    scene_cfg: SceneCfg
    inj_cfg: InjectionCfg
    seed: int

    def __len__(self) -> int:
        return len(self.captions)


def make_scene_pairs(
    n: int, scene_cfg: SceneCfg | None = None, inj_cfg: InjectionCfg | None = None, seed: int = 0
) -> ScenePairs:
    """Sample, render and caption ``n`` scenes.

    Parameters
    ----------
    n : int
        Number of pairs.
    scene_cfg : SceneCfg, optional
        Defaults to ``SceneCfg()`` (64×64, all factors, independent).
    inj_cfg : InjectionCfg, optional
        Defaults to ``InjectionCfg()`` (no misalignment).
    seed : int
        Fixes every byte of images, captions and truth.

    Returns
    -------
    ScenePairs
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    scene_cfg = scene_cfg or SceneCfg()
    inj_cfg = inj_cfg or InjectionCfg()
    inj_cfg.stated_factors(scene_cfg)  # fail on a bad combination before rendering
    factor_rng, caption_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    factors = sample_factors(n, scene_cfg, factor_rng)
    images = render(factors, scene_cfg, seed)
    captions, truth = inject(factors, scene_cfg, inj_cfg, caption_rng)
    return ScenePairs(images, tuple(captions), factors, truth, scene_cfg, inj_cfg, seed)


def write_dataset_folder(pairs: ScenePairs, out_dir: Path, on_image: Callable[[int], None] | None = None) -> Path:
    """Write ``pairs`` to ``out_dir`` (created if needed); returns the folder.

    ``on_image(i)`` is called after each PNG is written (a progress hook for the CLI).
    """
    out = Path(out_dir)
    width = max(6, len(str(len(pairs) - 1)))
    names = [f"images/{i:0{width}d}.png" for i in range(len(pairs))]
    for i, name in enumerate(names):
        buf = io.BytesIO()
        Image.fromarray(pairs.images[i]).save(buf, format="PNG")
        atomic_write_bytes(out / name, buf.getvalue())
        if on_image is not None:
            on_image(i)
    table = pd.DataFrame({"image": names, "caption": list(pairs.captions)})
    atomic_write_text(out / "captions.csv", table.to_csv(index=False))
    both = pd.concat([pairs.factors.reset_index(drop=True), pairs.truth.reset_index(drop=True)], axis=1)
    for col in JSON_COLUMNS:
        both[col] = [json.dumps(v, sort_keys=True) for v in both[col]]
    buf = io.BytesIO()
    both.to_parquet(buf, index=False)
    atomic_write_bytes(out / "truth.parquet", buf.getvalue())
    meta = {"format": FORMAT_VERSION, "n": len(pairs), "seed": pairs.seed}
    write_json(out / "config.json", meta | {"scene": to_dict(pairs.scene_cfg), "injection": to_dict(pairs.inj_cfg)})
    return out


def read_dataset_folder(folder: Path) -> ScenePairs:
    """Load a folder written by :func:`write_dataset_folder`.

    Raises
    ------
    ValueError
        If a file is missing, a column is absent, a path leaves the folder or an image does
        not match the others; the message names the file (and row).
    """
    root = Path(folder).resolve()
    for name in ("captions.csv", "truth.parquet", "config.json"):
        if not (root / name).is_file():
            raise ValueError(f"{root / name}: missing; not a scene dataset folder")
    meta = json.loads((root / "config.json").read_text(encoding="utf-8"))
    table = pd.read_csv(root / "captions.csv", dtype=str, keep_default_na=False)
    if list(table.columns) != ["image", "caption"]:
        raise ValueError(f"{root / 'captions.csv'}: columns {list(table.columns)}, expected ['image', 'caption']")
    if table.empty:
        raise ValueError(f"{root / 'captions.csv'}: no pairs")
    images = [_read_png(root, rel, row) for row, rel in enumerate(table["image"], start=2)]
    for row, im in enumerate(images, start=2):
        if im.shape != images[0].shape:
            raise ValueError(f"{root / 'captions.csv'} row {row}: image is {im.shape}, row 2's is {images[0].shape}")
    both = pd.read_parquet(root / "truth.parquet")
    for col in JSON_COLUMNS:
        both[col] = [json.loads(v) for v in both[col]]
    if len(both) != len(table):
        raise ValueError(f"{root / 'truth.parquet'}: {len(both)} rows but captions.csv has {len(table)}")
    factors = both[list(FACTOR_NAMES)]
    truth = both.drop(columns=list(FACTOR_NAMES))
    scene_cfg = from_dict(SceneCfg, meta["scene"], where="scene")
    inj_cfg = from_dict(InjectionCfg, meta["injection"], where="injection")
    pairs = (np.stack(images), tuple(table["caption"]), factors, truth)
    return ScenePairs(*pairs, scene_cfg, inj_cfg, int(meta["seed"]))


def _read_png(root: Path, rel: str, row: int) -> np.ndarray:
    path = (root / rel).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"{root / 'captions.csv'} row {row}: image path {rel!r} leaves the folder")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))  # (H, W, 3)
    except (OSError, ValueError) as err:
        raise ValueError(f"{root / 'captions.csv'} row {row}: cannot read image {rel!r}: {err}") from None
