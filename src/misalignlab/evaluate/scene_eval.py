"""Score an image–text model on rendered scenes: linear probes, zero-shot prompts and retrieval per split.

:func:`evaluate_model` embeds the probe-fitting split and every test split of an
:class:`~misalignlab.data.scenes.scenarios.EvalSets` and returns flat metrics keyed
``<split>/probe/<factor>/linear/acc``, ``<split>/zeroshot/<factor>/acc1``, ``<split>/rsum`` …
Pure: nothing is trained or written.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from misalignlab.data.scenes.captions import TEMPLATES, build_caption
from misalignlab.data.scenes.factors import FACTORS
from misalignlab.data.scenes.scenarios import EvalSets
from misalignlab.evaluate.pair_metrics import retrieval_metrics, zero_shot_metrics
from misalignlab.evaluate.probes import linear_class_metrics
from misalignlab.models.pair_model import ImageTextModel
from misalignlab.train.pairs import embed


@torch.no_grad()
def prompt_codes(model: ImageTextModel, factor: str) -> np.ndarray:
    """One text code per value of ``factor`` (C, D): unit codes of "a <value>" in every template, averaged."""
    codes = []
    for value in FACTORS[factor].values:
        texts = [build_caption({factor: value}, t).text for t in range(len(TEMPLATES))]
        z = model.encode_text(model.tokenize(texts)).float()
        codes.append(torch.nn.functional.normalize(z, dim=-1).mean(0))
    return torch.stack(codes).numpy()


def evaluate_model(model: ImageTextModel, sets: EvalSets, tasks: Sequence[str]) -> dict[str, float]:
    """Flat metrics ``<split>/probe/<f>/linear/acc``, ``<split>/zeroshot/<f>/acc1``, ``<split>/rsum`` …"""
    z_fit, _ = embed(model, sets.fit.images, sets.fit.captions)
    prompts = {f: prompt_codes(model, f) for f in tasks}
    out: dict[str, float] = {}
    for split, data in sets.tests.items():
        img, txt = embed(model, data.images, data.captions)
        row = retrieval_metrics(img, txt)
        for f in tasks:
            y_fit, y_test = sets.fit.factors[f].to_numpy(), data.factors[f].to_numpy()
            row |= linear_class_metrics(z_fit, y_fit, img, y_test, f)
            row |= zero_shot_metrics(img, prompts[f], y_test, f)
        out |= {f"{split}/{k}": v for k, v in row.items()}
    return out
