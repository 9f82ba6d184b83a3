"""The paper's downstream tasks on frozen image codes (Cai et al., NeurIPS 2025, numerical simulation).

Regression targets y1..y4 = f(s_[3]), f(s_[5]), f(s_[7]), f(s_[9]) scored by R², a binary label
(y2 above its training median) scored by Matthews correlation, in distribution and under the OOD
shift that replaces the shifting factors (s9, s10 by default) by 2·sign(s)·s². The label ignores
s9, s10, so a code that drops them should transfer best (Corollary 4.2).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from sklearn.metrics import matthews_corrcoef

from misalignlab.evaluate.probes import PROBES, r2_scores
from misalignlab.lvm.latents import LatentSample
from misalignlab.models.sim_stack import SimStack


@dataclass(frozen=True)
class DownstreamCfg:
    exp_weight: float = 0.4  # paper 0.4, authors' code 0.6
    prefixes: tuple[int, ...] = (3, 5, 7, 9)
    label_from: int = 5  # the binary label thresholds f(s_[label_from]) at its median
    shifted: tuple[int, ...] = (8, 9)  # 0-based: s9, s10
    probe: str = "mlp"


def task_function(u: np.ndarray, exp_weight: float) -> np.ndarray:
    """The paper's f(u) for u (N, k): polynomial, pairwise/triple products, periodic and log terms."""
    n, k = u.shape
    pair = sum(u[:, i] * u[:, j] for i in range(k) for j in range(i + 1, k)) if k > 1 else np.zeros(n)
    triple = (
        sum(u[:, i] * u[:, j] * u[:, h] for i in range(k) for j in range(i + 1, k) for h in range(j + 1, k))
        if k > 2
        else np.zeros(n)
    )
    return (
        (u**2).sum(1)
        + 0.3 * (u**3).sum(1)
        + 0.5 * pair
        + 0.2 * triple
        + 0.7 * (np.sin(u) + np.cos(u)).sum(1)
        + 0.4 * np.log1p(np.abs(u)).sum(1)
        + exp_weight * np.exp(-np.abs(u)).sum(1)
    )


def shift_latents(lat: LatentSample, shifted: Sequence[int]) -> LatentSample:
    """OOD shift: s_i → 2·sign(s_i)·s_i² for i in ``shifted`` (image side; text unchanged)."""
    s = lat.s.clone()
    idx = list(shifted)
    s[:, idx] = 2 * torch.sign(s[:, idx]) * s[:, idx] ** 2
    return replace(lat, s=s)


def downstream_metrics(stack: SimStack, n: int, cfg: DownstreamCfg = DownstreamCfg(), seed: int = 7) -> list[dict]:
    """Rows per model: y1..y4 R² (ID), binary MCC ID and OOD, from the frozen image code."""
    gens = [torch.Generator().manual_seed(10_007 * s.seed + 5_000 + seed) for s in stack.settings]
    probe = PROBES.get(cfg.probe).regress
    rows = []
    for m, (lvm, setting) in enumerate(zip(stack.lvms, stack.settings, strict=True)):
        lat = lvm.sampler.sample(3 * n, gens[m])  # probe-fit, ID test, OOD test
        ood = shift_latents(lat, cfg.shifted)
        with torch.no_grad():
            z_id = stack.image_codes_one(m, lvm.observe(lat).x).numpy()
            z_ood = stack.image_codes_one(m, lvm.observe(ood).x).numpy()
        mu, sd = z_id[:n].mean(0), z_id[:n].std(0) + 1e-8
        z_id, z_ood = (z_id - mu) / sd, (z_ood - mu) / sd
        s = lat.s.numpy()
        row: dict[str, object] = {"setting": setting.label or setting.bias.describe(), "seed": setting.seed}
        ys = np.stack([task_function(s[:, :k], cfg.exp_weight) for k in cfg.prefixes], axis=1)  # (3n, 4)
        y_mu, y_sd = ys[:n].mean(0), ys[:n].std(0) + 1e-8
        ys_std = (ys - y_mu) / y_sd
        pred = probe(z_id[:n], ys_std[:n], z_id[n : 2 * n])
        for j, (_, r2) in enumerate(zip(cfg.prefixes, r2_scores(ys_std[n : 2 * n], pred), strict=True)):
            row[f"downstream/y{j + 1}/r2"] = float(r2)
        label_y = task_function(s[:, : cfg.label_from], cfg.exp_weight)
        thr = np.median(label_y[:n])
        lab = np.where(label_y > thr, 1.0, -1.0)[:, None]
        fit_pred_id = probe(z_id[:n], lab[:n], np.vstack([z_id[n : 2 * n], z_ood[2 * n :]]))
        row["downstream/binary/mcc_id"] = float(matthews_corrcoef(lab[n : 2 * n, 0] > 0, fit_pred_id[:n, 0] > 0))
        row["downstream/binary/mcc_ood"] = float(matthews_corrcoef(lab[2 * n :, 0] > 0, fit_pred_id[n:, 0] > 0))
        rows.append(row)
    return rows
