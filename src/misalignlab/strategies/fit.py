"""Train an image–text model under a strategy: prepared pairs in, trained model out.

:func:`fit_strategy` lets the strategy prepare the pairs, then runs the ordinary
:class:`~misalignlab.train.trainer.Trainer` on a :class:`StrategyObjective`, which encodes a batch
and asks the strategy for its ``*_loss`` terms. Nothing here branches on a strategy's name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from misalignlab.detect.base import DetectionResult
from misalignlab.models.losses import ContrastiveLoss, cosine_sim
from misalignlab.models.pair_model import ImageTextModel, build_model
from misalignlab.models.tokenizer import WordTokenizer
from misalignlab.strategies.base import PairSet, Strategy
from misalignlab.train.pairs import PairBatches, PairTrainCfg, _check_pairs, images_to_float
from misalignlab.train.trainer import Callback, Trainer, seed_everything


class StrategyBatches(PairBatches):
    """:class:`PairBatches` whose batches also carry per-pair arrays (``extras``: name → (N, ...))."""

    def __init__(
        self,
        images: Tensor,
        tokens: Tensor,
        batch_size: int,
        seed: int,
        weights: Tensor | None = None,
        extras: Mapping[str, Tensor] | None = None,
    ) -> None:
        super().__init__(images, tokens, batch_size, seed, weights)
        self.extras = dict(extras or {})
        for name, arr in self.extras.items():
            if arr.shape[0] != self.n:
                raise ValueError(f"batch extra {name!r} has {arr.shape[0]} rows, not {self.n}")

    def gather(self, idx: Tensor) -> dict[str, Tensor]:
        return super().gather(idx) | {name: arr[idx] for name, arr in self.extras.items()}


class StrategyObjective(nn.Module):
    """Encodes a batch and returns the strategy's loss terms plus ``batch_i2t_acc``."""

    def __init__(self, model: ImageTextModel, loss: ContrastiveLoss, strategy: Strategy) -> None:
        super().__init__()
        self.model, self.loss, self.strategy = model, loss, strategy

    def training_step(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        img = self.model.encode_image(images_to_float(batch["image"])).float()  # (B, D)
        txt = self.model.encode_text(batch["tokens"]).float()  # (B, D)
        terms, logs = self.strategy.training_forward(img, txt, batch, self.loss)
        with torch.no_grad():
            hits = cosine_sim(img, txt).argmax(dim=1) == torch.arange(img.shape[0], device=img.device)
        return terms | {k: torch.tensor(float(v)) for k, v in logs.items()} | {"batch_i2t_acc": hits.float().mean()}


@dataclass(frozen=True, eq=False)
class Fitted:
    """A trained model and the pairs it trained on (after the strategy's preparation)."""

    model: ImageTextModel
    pairs: PairSet


def fit_strategy(
    strategy: Strategy,
    pairs: PairSet,
    cfg: PairTrainCfg,
    found: DetectionResult | None = None,
    callbacks: Sequence[Callback] = (),
    resume: Path | None = None,
) -> Fitted:
    """Prepare ``pairs`` with ``strategy`` (seeded by ``cfg.train.seed``) and train a fresh model on them.

    The tokenizer is built from the original *and* the prepared captions, so words a strategy
    removed still have their own id when the model is evaluated on full captions.
    """
    prepared = strategy.prepare(pairs, found if strategy.needs_scores else None, seed=cfg.train.seed)
    _check_pairs(prepared.images, prepared.captions, prepared.weights, cfg.model.image_size)
    if cfg.train.batch_size > len(prepared):
        raise ValueError(f"{strategy.name} left {len(prepared)} pairs, fewer than batch_size {cfg.train.batch_size}")
    tokenizer = WordTokenizer.build([*pairs.captions, *prepared.captions])
    seed_everything(cfg.train.seed)
    model = build_model(cfg.model, tokenizer)
    source = StrategyBatches(
        torch.from_numpy(np.ascontiguousarray(prepared.images)),
        tokenizer.encode(list(prepared.captions), cfg.model.max_len),
        cfg.train.batch_size,
        cfg.train.seed,
        None if prepared.weights is None else torch.as_tensor(prepared.weights, dtype=torch.float32),
        {k: torch.as_tensor(v) for k, v in strategy.batch_extras(prepared).items()},
    )
    Trainer(cfg.train, callbacks).fit(StrategyObjective(model, cfg.loss.build(), strategy), source, resume=resume)
    return Fitted(model.eval(), prepared)
