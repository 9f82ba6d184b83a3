"""Train an :class:`ImageTextModel` on in-memory image–caption pairs, and embed pairs with it.

What it does: tokenizes the captions once, samples seeded minibatches (the position is part of
every checkpoint), converts uint8 pixels to normalised floats on the training device and optimises
a contrastive loss chosen by name from :data:`misalignlab.models.losses.LOSSES` (default
``clip_cross_modal``: cosine similarity / τ = 0.07). Per-pair weights, when given, reach the loss.
Under ``torchrun`` every rank reads its block of each global batch, the codes are all-gathered
with gradients and each rank's loss covers its own rows against every gathered column
(:mod:`misalignlab.train.distributed`), so training matches one process on the global batch.
What it does not do: detect or fix misalignment, or read files — callers pass arrays.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from misalignlab.models.losses import LOSSES, ContrastiveLoss, cosine_sim
from misalignlab.models.pair_model import ImageTextModel, ModelCfg, build_model
from misalignlab.models.tokenizer import WordTokenizer
from misalignlab.train.distributed import LOCAL, Dist, all_gather_with_grad, current, shard_mean
from misalignlab.train.trainer import Callback, TrainCfg, Trainer, seed_everything


@dataclass(frozen=True)
class LossCfg:
    """A loss variant by name; ``tau``/``similarity`` of ``None`` keep that loss's own default."""

    variant: str = "clip_cross_modal"
    tau: float | None = None
    similarity: str | None = None
    align_weight: float | None = None  # clip_cross_modal: weight of an explicit alignment term (0 = CLIP)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the loss, with its defaults filled in (so results record real values)."""
        params = inspect.signature(LOSSES.get(self.variant)).parameters
        named = (("tau", self.tau), ("similarity", self.similarity), ("align_weight", self.align_weight))
        given = {k: v for k, v in named if v is not None}
        unsupported = sorted(set(given) - set(params))
        if unsupported:
            raise ValueError(
                f"loss {self.variant!r} takes no {', '.join(unsupported)}; it takes: {', '.join(params) or 'nothing'}"
            )
        defaults = {k: p.default for k, p in params.items() if k in ("tau", "similarity", "align_weight")}
        return defaults | given

    def build(self) -> ContrastiveLoss:
        return LOSSES.get(self.variant)(**self.kwargs())


@dataclass(frozen=True)
class PairTrainCfg:
    """Everything :func:`train_pairs` needs.

    ``channels_last`` (images and convolutions in NHWC memory order) and ``data_on_device`` (all
    pairs copied to the training device once, so a batch is an index on the device, not a host
    copy): None = on for CUDA, off for CPU.
    """

    train: TrainCfg
    model: ModelCfg = field(default_factory=ModelCfg)
    loss: LossCfg = field(default_factory=LossCfg)
    channels_last: bool | None = None
    data_on_device: bool | None = None


def images_to_float(images: Tensor, channels_last: bool = False) -> Tensor:
    """uint8 (B, H, W, 3) → float32 (B, 3, H, W) in [−1, 1]."""
    x = images.permute(0, 3, 1, 2).float().mul_(1.0 / 127.5).sub_(1.0)  # channels-last strides
    return x.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def image_source(images: Any) -> Any:
    """What :class:`PairBatches` reads images from: an in-memory array as a tensor (no copy), anything
    else that is indexed by rows (a :class:`~misalignlab.data.rows.RowView`) as it is, read per batch."""
    return torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images


class PairBatches:
    """Endless seeded minibatches of pairs; each epoch is a fresh permutation, the remainder dropped.

    The state (epoch, position) is two integers, so a checkpoint restores the exact batch order.
    ``batch_size`` is the global batch: with ``dist`` of W ranks every rank walks the same
    permutation and returns its contiguous block of batch_size / W rows. ``device``: where the
    pairs and permutations live (the training device keeps batch assembly off the host).
    ``images`` is a uint8 tensor, or a row-indexed source read one batch at a time on the host
    (:func:`image_source`); a training device other than the CPU gets such a source copied whole.
    """

    def __init__(
        self,
        images: Tensor,
        tokens: Tensor,
        batch_size: int,
        seed: int,
        weights: Tensor | None = None,
        dist: Dist = LOCAL,
        device: torch.device | str | None = None,
    ) -> None:
        n = images.shape[0]
        if batch_size > n:
            raise ValueError(f"batch_size {batch_size} is larger than the number of pairs {n}")
        if batch_size % dist.world:
            raise ValueError(f"batch_size {batch_size} does not split evenly over {dist.world} ranks")
        if not isinstance(images, Tensor) and device is not None and torch.device(device).type != "cpu":
            images = torch.from_numpy(np.ascontiguousarray(images[np.arange(n)]))  # device-resident data
        self.device = torch.device(device) if device is not None else tokens.device
        if isinstance(images, Tensor):
            images = images.to(self.device)
        tokens = tokens.to(self.device)
        self.images, self.tokens = images, tokens
        self.weights = weights.to(self.device) if weights is not None else None
        self.batch_size, self.seed, self.n, self.dist = batch_size, seed, n, dist
        self.epoch, self.pos = 0, 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> Tensor:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.n, generator=gen).to(self.device)  # drawn on the CPU: same order everywhere

    def next_indices(self) -> Tensor:
        """The next minibatch's pair indices; a new seeded permutation each epoch."""
        if self.pos + self.batch_size > self.n:
            self.epoch, self.pos = self.epoch + 1, 0
            self._perm = self._permutation(self.epoch)
        idx = self._perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        return idx

    def gather(self, idx: Tensor) -> dict[str, Tensor]:
        if isinstance(self.images, Tensor):
            image = self.images[idx]
        else:  # a lazy row source: read this batch's rows only
            image = torch.from_numpy(np.ascontiguousarray(self.images[idx.cpu().numpy()])).to(self.device)
        batch = {"image": image, "tokens": self.tokens[idx]}  # (B, H, W, 3) uint8, (B, L)
        if self.weights is not None:
            batch["weight"] = self.weights[idx]  # (B,)
        return batch

    def next_batch(self) -> dict[str, Tensor]:
        return self.gather(self.dist.shard(self.next_indices()))

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "pos": self.pos, "seed": self.seed, "n": self.n}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if (state["seed"], state["n"]) != (self.seed, self.n):
            raise ValueError(f"checkpoint data (seed, n) = {(state['seed'], state['n'])} != {(self.seed, self.n)}")
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._perm = self._permutation(self.epoch)


class PairObjective(nn.Module):
    """Contrastive objective on an image–text model: ``{"contrastive_loss", "batch_i2t_acc"}``.

    A batch holds this rank's b rows of a global batch of B = W·b (W = 1 alone). The loss of those
    rows is taken against all B gathered codes (:func:`~misalignlab.train.distributed.shard_mean`
    scales it so data-parallel gradients equal the global batch's), in float32 outside autocast.
    """

    def __init__(
        self, model: ImageTextModel, loss: ContrastiveLoss, channels_last: bool = False, dist: Dist | None = None
    ) -> None:
        super().__init__()
        self.model = model
        self.loss = loss
        self.channels_last = channels_last
        self.dist = dist

    def training_step(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        d = self.dist or current()
        img = self.model.encode_image(images_to_float(batch["image"], self.channels_last))  # (b, D)
        txt = self.model.encode_text(batch["tokens"])  # (b, D)
        with torch.autocast(img.device.type, enabled=False):  # softmax over similarities wants float32
            img, txt = img.float(), txt.float()
            all_img, all_txt = all_gather_with_grad(img, d), all_gather_with_grad(txt, d)  # (B, D)
            rows = d.rows(img.shape[0])
            loss = shard_mean(self.loss.per_pair_rows(all_img, all_txt, rows), batch.get("weight"), d)
            with torch.no_grad():  # in-batch image→text top-1 by cosine similarity, a cheap progress signal
                sim = cosine_sim(img, all_txt.detach())  # (b, B)
                hits = sim.argmax(dim=1) == torch.arange(rows.start, rows.stop, device=img.device)
        return {"contrastive_loss": loss, "batch_i2t_acc": hits.float().mean()}


def _check_pairs(images: np.ndarray, captions: Sequence[str], weights: np.ndarray | None, size: int) -> None:
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if images.shape[1:3] != (size, size):
        raise ValueError(f"images are {images.shape[1]}×{images.shape[2]} but model.image_size is {size}")
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    if weights is not None and (weights.shape != (len(images),) or not np.all(weights >= 0)):
        raise ValueError(f"weights must be non-negative with shape ({len(images)},), got {weights.shape}")


def train_pairs(
    images: np.ndarray,
    captions: Sequence[str],
    cfg: PairTrainCfg,
    weights: np.ndarray | None = None,
    tokenizer: WordTokenizer | None = None,
    callbacks: Sequence[Callback] = (),
    resume: Path | None = None,
    dist: Dist | None = None,
) -> ImageTextModel:
    """Train a fresh model on pairs (``images`` uint8 (N, H, W, 3), one caption each) and return it.

    The tokenizer is built from ``captions`` unless given. Same config and data → same weights.
    ``dist`` (default: the current torchrun job) trains data-parallel; ``LOCAL`` trains alone.
    """
    _check_pairs(images, captions, weights, cfg.model.image_size)
    d = dist or current()
    tokenizer = tokenizer or WordTokenizer.build(captions)
    seed_everything(cfg.train.seed)  # the initial weights depend on the seed too
    model = build_model(cfg.model, tokenizer)
    device = torch.device(cfg.train.device)
    on_cuda = device.type == "cuda"
    channels_last = on_cuda if cfg.channels_last is None else cfg.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    objective = PairObjective(model, cfg.loss.build(), channels_last, d)
    source = PairBatches(
        image_source(images),
        tokenizer.encode(list(captions), cfg.model.max_len),
        cfg.train.batch_size,
        cfg.train.seed,
        None if weights is None else torch.as_tensor(weights, dtype=torch.float32),
        dist=d,
        device=device if (on_cuda if cfg.data_on_device is None else cfg.data_on_device) else None,
    )
    Trainer(cfg.train, callbacks, dist=d).fit(objective, source, resume=resume)
    return model.eval()


@torch.no_grad()
def embed(
    model: ImageTextModel, images: np.ndarray, captions: Sequence[str], batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Image codes and text codes, float32 numpy arrays (N, D) each, in evaluation mode."""
    if len(images) != len(captions) or len(images) == 0:
        raise ValueError(f"need as many images as captions, at least one; got {len(images)} and {len(captions)}")
    device = next(model.parameters()).device
    channels_last = device.type == "cuda"
    was_training = model.training
    model.eval()
    img_codes, txt_codes = [], []
    try:
        for start in range(0, len(images), batch_size):
            chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).to(device)
            img_codes.append(model.encode_image(images_to_float(chunk, channels_last)).float().cpu())
            tokens = model.tokenize(list(captions[start : start + batch_size])).to(device)
            txt_codes.append(model.encode_text(tokens).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(img_codes).numpy(), torch.cat(txt_codes).numpy()
