"""Sample scene factors and render them to images, vectorised over images.

:func:`sample_factors` draws a factor table (independent, or with the causal links of
:data:`~misalignlab.data.scenes.factors.CAUSAL_LINKS`); :func:`render` draws it. Drawing works on a
small patch around each part: pixel coordinates are rotated into the part's unit frame, a
signed distance per shape gives an anti-aliased mask, defects are masks in the same frame, and
lighting (a diagonal brightness gradient) and texture (grain on 2×2 blocks from a counter-based
hash of seed, row label and block) are applied to the whole image. Images are processed in
chunks, looping only over shape, defect and grid-cell groups, never over images. The same seed and rows give the same bytes whatever the chunking, and a
row renders the same alone or in a batch (grain is keyed by the row's index label).

This module does not write files or captions; see :mod:`~misalignlab.data.scenes.dataset`.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from misalignlab.data.scenes import factors as F
from misalignlab.data.scenes.shapes import ANCHORS, DEFECT_ADD, DEFECT_FNS, DEFECT_MUL, SHAPE_FNS

CHUNK = 128  # images per chunk: 6 MB of float32 rows, measured best for 64×64 (2 MB L2, shared L3)


def sample_factors(n: int, cfg: F.SceneCfg, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``n`` scenes' factors.

    Parameters
    ----------
    n : int
        Number of scenes.
    cfg : SceneCfg
        Active factors and causal mode.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    pandas.DataFrame
        One column per factor in :data:`~misalignlab.data.scenes.factors.FACTOR_NAMES` order: int64
        codes for discrete factors, float64 in ``[0, 1)`` for continuous ones; inactive factors
        hold their default. Index ``0 .. n-1``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    cols: dict[str, np.ndarray] = {}
    for f in F.FACTOR_LIST:  # one independent draw per factor keeps columns comparable across modes
        if f.name not in cfg.factors:
            cols[f.name] = np.full(n, f.default, dtype=np.int64 if f.discrete else np.float64)
        elif f.discrete:
            cols[f.name] = rng.integers(f.n_values, size=n).astype(np.int64)
        else:
            cols[f.name] = rng.random(n)
    if cfg.causal:
        _apply_causal_links(cols, cfg, rng)
    return pd.DataFrame(cols)


def _apply_causal_links(cols: dict[str, np.ndarray], cfg: F.SceneCfg, rng: np.random.Generator) -> None:
    """Redraw children from their parents (only where child and parents are all active)."""
    n = len(cols["shape"])
    active = set(cfg.factors)
    if {"colour", "pos_x", "pos_y"} <= active:
        # Causal3DIdent's hue rule: colour = (x + y)/6 + U/3, binned into the palette
        hue = (cols["pos_x"] + cols["pos_y"]) / 6.0 + rng.random(n) / 3.0
        k = F.FACTORS["colour"].n_values
        cols["colour"] = np.minimum((hue * k).astype(np.int64), k - 1)
    if {"defect", "size"} <= active:
        damaged = rng.random(n) < (1.0 + cols["size"]) / 4.0  # 1/4, 1/2, 3/4 by size
        kind = rng.integers(1, F.FACTORS["defect"].n_values, size=n)
        cols["defect"] = np.where(damaged, kind, 0).astype(np.int64)


def render(factors: pd.DataFrame, cfg: F.SceneCfg, seed: int = 0, chunk: int = CHUNK) -> np.ndarray:
    """Draw one image per row of ``factors``.

    Parameters
    ----------
    factors : pandas.DataFrame
        A table as returned by :func:`sample_factors` (all factor columns, integer index).
    cfg : SceneCfg
        Image size (the other fields are not used here).
    seed : int
        Seed of the texture grain; with the rows' index labels it fixes every byte.
    chunk : int
        Images drawn per vectorised step (affects speed only, never the output).

    Returns
    -------
    numpy.ndarray
        ``(N, H, W, 3)`` uint8 images.
    """
    missing = [c for c in F.FACTOR_NAMES if c not in factors.columns]
    if missing:
        raise ValueError(f"factor table lacks column(s) {missing}; expected: {', '.join(F.FACTOR_NAMES)}")
    if not pd.api.types.is_integer_dtype(factors.index):
        raise ValueError("factor table needs an integer index (row labels key the texture grain)")
    _check_ranges(factors)
    cols = {c: factors[c].to_numpy() for c in F.FACTOR_NAMES}
    ids = factors.index.to_numpy(dtype=np.int64)
    s = cfg.size
    out = np.empty((len(factors), s, s, 3), dtype=np.uint8)  # (N, H, W, 3)
    for lo in range(0, len(factors), max(1, chunk)):
        hi = min(lo + max(1, chunk), len(factors))
        part = {c: v[lo:hi] for c, v in cols.items()}
        _render_chunk(part, ids[lo:hi], s, seed, out[lo:hi])
    return out


def _check_ranges(factors: pd.DataFrame) -> None:
    for f in F.FACTOR_LIST:
        col = factors[f.name]
        if f.discrete and not pd.api.types.is_integer_dtype(col):
            raise ValueError(f"factor {f.name!r} must hold integer codes, got dtype {col.dtype}")
        v = col.to_numpy(dtype=np.float64)
        hi = f.n_values - 1 if f.discrete else 1.0
        if len(v) and not (np.all(v >= 0) and np.all(v <= hi)):  # also rejects NaN
            raise ValueError(f"factor {f.name!r} has values outside [0, {hi}]")


def _render_chunk(c: dict[str, np.ndarray], ids: np.ndarray, s: int, seed: int, out: np.ndarray) -> None:
    """Draw one chunk into ``out`` (n, H, W, 3) uint8 as (belt or part) · light + grain.

    Rows are handled as ``(H, W·3)`` so every full-image pass runs over long contiguous rows;
    light = 1 + gain · lighting · G with G a fixed ramp, so belt · light = belt + (gain ·
    lighting · belt) · G needs no per-image light map.
    """
    n, h = len(ids), s // 2
    ramp = _gradient(s)  # (H, W)
    gain = F.LIGHT_GAIN * c["lighting"].astype(np.float32)  # (n,)
    belt = np.tile(F.BELT_RGB[c["background"]], (1, s))  # (n, W·3), channels interleaved
    img = np.repeat(ramp, 3, axis=1)[None] * (gain[:, None] * belt)[:, None, :]  # (n, H, W·3)
    img += belt[:, None, :]
    x0, y0, rgb = _draw_parts(c, s)  # rgb: (n, P, P, 3) unlit patch around each part
    p = rgb.shape[1]
    cell = c["pos_y"] * 3 + c["pos_x"]  # patch origins depend only on the grid cell
    pixels = img.reshape(n, s, s, 3)
    for k in np.unique(cell):
        sel = np.flatnonzero(cell == k)
        ys, xs = slice(y0[sel[0]], y0[sel[0]] + p), slice(x0[sel[0]], x0[sel[0]] + p)
        light = ramp[ys, xs][None] * gain[sel, None, None] + 1.0  # (m, P, P)
        pixels[sel, ys, xs] = rgb[sel] * light[..., None]
    grain = _grain(ids, seed, s) * (F.TEXTURE_GAIN * c["texture"].astype(np.float32))[:, None, None]
    grain += 0.5  # (n, H/2, W/2); the 0.5 rounds on the cast below
    rows = img.reshape(n, h, 2, s * 3)  # pairs of image rows share one row of 2×2 grain blocks
    rows += np.repeat(grain, 6, axis=2)[:, :, None, :]  # each block value → 2 pixels × 3 channels
    np.clip(img, 0.0, 255.0, out=img)
    np.copyto(out, pixels, casting="unsafe")


def _patch_frame(c: dict[str, np.ndarray], s: int) -> tuple[np.ndarray, ...]:
    """Patch origins and the part-frame coordinates of the patch pixel centres."""
    half = int(np.ceil(F.SIZE_FRAC.max() * s)) + 2
    p = 2 * half
    r = F.SIZE_FRAC[c["size"]] * np.float32(s)  # (n,) radius in pixels
    cx = F.CELL_FRAC[c["pos_x"]] * np.float32(s)  # (n,) part centre
    cy = F.CELL_FRAC[c["pos_y"]] * np.float32(s)
    x0 = np.clip(np.round(cx).astype(np.int64) - half, 0, s - p)  # patch origin, kept inside
    y0 = np.clip(np.round(cy).astype(np.int64) - half, 0, s - p)
    dx = ((x0[:, None] + np.arange(p) + 0.5).astype(np.float32) - cx[:, None]) / r[:, None]  # (n, P)
    dy = ((y0[:, None] + np.arange(p) + 0.5).astype(np.float32) - cy[:, None]) / r[:, None]
    ang = (2 * np.pi * c["rotation"]).astype(np.float32)
    cos, sin = np.cos(ang)[:, None, None], np.sin(ang)[:, None, None]
    u = cos * dx[:, None, :] + sin * dy[:, :, None]  # (n, P, P), rows = y, cols = x
    v = cos * dy[:, :, None] - sin * dx[:, None, :]
    return x0, y0, u, v, r


def _coverage(fns: tuple, codes: np.ndarray, u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of ``fns[code]``, one group of equal codes at a time."""
    out = np.zeros(u.shape, dtype=np.float32)  # (n, P, P)
    for k, fn in enumerate(fns):
        sel = np.flatnonzero(codes == k)
        if fn is None or not sel.size:
            continue
        d = fn(u[sel], v[sel]) * r[sel, None, None]  # signed distance in pixels
        out[sel] = np.clip(0.5 - d, 0.0, 1.0)
    return out


def _draw_parts(c: dict[str, np.ndarray], s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each part (with its defect) over its flat belt colour, on a patch: origins and (n, P, P, 3)."""
    x0, y0, u, v, r = _patch_frame(c, s)
    alpha = _coverage(SHAPE_FNS, c["shape"], u, v, r)  # (n, P, P)
    anchor = ANCHORS[c["shape"]]  # (n, 2)
    du, dv = u - anchor[:, 0, None, None], v - anchor[:, 1, None, None]
    mark = _coverage(DEFECT_FNS, c["defect"], du, dv, r)  # (n, P, P)
    part = F.PART_RGB[c["colour"]]  # (n, 3)
    flaw = part * DEFECT_MUL[c["defect"], None] + 255.0 * DEFECT_ADD[c["defect"], None]
    belt = F.BELT_RGB[c["background"]]
    # pixel = belt + alpha · (part + mark · (flaw − part) − belt)
    rgb = (part - belt)[:, None, None, :] + mark[..., None] * (flaw - part)[:, None, None, :]
    rgb *= alpha[..., None]
    rgb += belt[:, None, None, :]  # (n, P, P, 3)
    return x0, y0, rgb


@functools.lru_cache(maxsize=8)
def _gradient(s: int) -> np.ndarray:
    """``(H, W)`` diagonal ramp from +1 (top left, lit) to −1 (bottom right)."""
    t = np.arange(s, dtype=np.float32)
    return 1.0 - (t[:, None] + t[None, :]) / np.float32(s - 1)


_M1, _M2, _GOLD = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = z + _GOLD
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _grain(ids: np.ndarray, seed: int, s: int) -> np.ndarray:
    """``(n, H/2, W/2)`` grain in [−1, 1), one value per 2×2 block, keyed by (seed, row label, block)."""
    h = s // 2
    seed_key = _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))
    base = _mix(ids.astype(np.uint64) ^ seed_key)  # (n,)
    z = _mix(base[:, None] + np.arange(h * h, dtype=np.uint64) * _GOLD)  # (n, h·h)
    g = (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 / (1 << 24)) - 1.0
    return g.reshape(-1, h, h)
