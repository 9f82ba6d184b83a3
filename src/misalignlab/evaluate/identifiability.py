"""Identifiability evaluation of a trained simulation stack: R² of every latent from both codes.

For each model, fresh fit and test samples are drawn from its own latent variable model (with a
seed disjoint from training), both towers encode them, and every probe predicts each s_k, the
m_x block and the m_t block. Rows are flat dicts, one per (model, modality, probe, target).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from misalignlab.evaluate.probes import probe_r2
from misalignlab.lvm.latents import LatentSample
from misalignlab.models.sim_stack import SimStack


def latent_targets(lat: LatentSample) -> dict[str, np.ndarray]:
    """Probe targets named as in the paper (1-based s1..s_n, m_x, m_t)."""
    out = {f"s{k + 1}": lat.s[:, k].numpy() for k in range(lat.s.shape[1])}
    if lat.m_x.shape[1]:
        out["m_x"] = lat.m_x.numpy()
    if lat.m_t.shape[1]:
        out["m_t"] = lat.m_t.numpy()
    return out


def evaluate_stack(
    stack: SimStack, n_fit: int, n_test: int, probes: Sequence[str] = ("linear", "kernel_ridge"), seed: int = 99
) -> list[dict[str, object]]:
    """R² rows for every model × modality (image/text) × probe × target."""
    gens = [torch.Generator().manual_seed(10_007 * s.seed + 1_000 + seed) for s in stack.settings]
    x, t, lats = stack.sample(n_fit + n_test, gens)
    codes_x, codes_t = stack.encode(x, t)
    rows: list[dict[str, object]] = []
    for m, setting in enumerate(stack.settings):
        targets = latent_targets(lats[m])
        fit = {k: v[:n_fit] for k, v in targets.items()}
        test = {k: v[n_fit:] for k, v in targets.items()}
        for modality, codes in (("image", codes_x[m]), ("text", codes_t[m])):
            for probe in probes:
                scores = probe_r2(codes[:n_fit], codes[n_fit:], fit, test, probe)
                for target, r2 in scores.items():
                    rows.append(
                        {
                            "setting": setting.label or setting.bias.describe(),
                            "seed": setting.seed,
                            "modality": modality,
                            "probe": probe,
                            "target": target,
                            "r2": r2,
                        }
                    )
    return rows
