"""``scratch`` backend: a small image–text model trained from scratch on the other folds' pairs.

Each fold gets a fresh :class:`~misalignlab.models.pair_model.ImageTextModel` (``EmbedCfg.model``)
trained with :func:`~misalignlab.train.pairs.train_pairs` (``EmbedCfg.train``), after an optional
small-loss pass that down-weights pairs the first model finds hard (``EmbedCfg.reweight_steps``).
Models are saved as ``fold<k>/model.pt`` (loaded with ``weights_only=True``) beside their settings
and tokenizer; each fold folder is sealed (:func:`~misalignlab.cache_files.seal`), and a fold whose
files no longer match their seal is named in a warning, removed and trained again.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from misalignlab.cache_files import check_seal, discard, seal
from misalignlab.detect.backends.base import BACKENDS, EmbedCfg, EmbeddingBackend, unit
from misalignlab.detect.base import PairView
from misalignlab.detect.pair_loss import PairLoss
from misalignlab.models.pair_model import ImageTextModel, load_model, save_model
from misalignlab.train.pairs import PairTrainCfg, images_to_float, train_pairs
from misalignlab.train.settings import TrainCfg

log = logging.getLogger(__name__)


@BACKENDS.register("scratch")
class ScratchBackend(EmbeddingBackend):
    """A small image–text model trained from scratch on the other folds (see ``EmbedCfg.train``)."""

    name = "scratch"

    def __init__(self, cfg: EmbedCfg, image_size: int) -> None:
        self.train_cfg = dataclasses.replace(cfg.train, seed=cfg.seed)
        self.loss_cfg = cfg.loss
        self.model_cfg = dataclasses.replace(cfg.model, image_size=image_size)
        self.reweight_steps = cfg.reweight_steps
        self.models_: dict[int, ImageTextModel] = {}

    def fit_fold(self, fold: int, images: np.ndarray, captions: Sequence[str]) -> None:
        batch = min(self.train_cfg.batch_size, len(captions))
        train = dataclasses.replace(self.train_cfg, batch_size=batch, seed=self.train_cfg.seed + 1000 * fold)
        weights = None
        if self.reweight_steps > 0:
            first = dataclasses.replace(train, steps=self.reweight_steps)
            log.info("fold %d: small-loss model on %d pairs (%d steps)", fold, len(captions), first.steps)
            self.models_[fold] = self._train(images, captions, first)
            weights = self._clean_probability(fold, images, captions)
        log.info("training fold %d model on %d pairs (%d steps)", fold, len(captions), train.steps)
        self.models_[fold] = self._train(images, captions, train, weights)

    def _train(
        self, images: np.ndarray, captions: Sequence[str], train: TrainCfg, weights: np.ndarray | None = None
    ) -> ImageTextModel:
        """A fresh model trained on the pairs (subclasses with other towers override this)."""
        return train_pairs(
            images, captions, PairTrainCfg(train=train, model=self.model_cfg, loss=self.loss_cfg), weights=weights
        )

    def _clean_probability(self, fold: int, images: np.ndarray, captions: Sequence[str]) -> np.ndarray:
        """(n,) float32 posterior of the small-loss component for the training pairs of ``fold``."""
        img, txt = unit(self.embed_images(fold, images)), unit(self.embed_texts(fold, captions))
        loss = PairLoss(seed=fold).losses(PairView(np.arange(len(img)).astype(str), img, txt, np.zeros(len(img), int)))
        gmm = GaussianMixture(2, random_state=0).fit(loss[:, None].astype(np.float64))
        clean = int(np.argmin(gmm.means_[:, 0]))
        return gmm.predict_proba(loss[:, None].astype(np.float64))[:, clean].astype(np.float32)

    def embed_images(self, fold: int, images: np.ndarray) -> np.ndarray:
        model = self.models_[fold]
        out = []
        with torch.no_grad():
            for start in range(0, len(images), 1024):
                chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + 1024]))  # (B, S, S, 3) uint8
                out.append(model.encode_image(images_to_float(chunk)).float().numpy())
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def embed_texts(self, fold: int, texts: Sequence[str]) -> np.ndarray:
        model = self.models_[fold]
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), 4096):
                tokens = model.tokenize(list(texts[start : start + 4096]))
                out.append(model.encode_text(tokens).float().numpy())
        return np.concatenate(out)

    def has_fold(self, fold: int) -> bool:
        return fold in self.models_

    def save(self, folder: Path) -> None:
        for k, model in self.models_.items():
            save_model(Path(folder) / f"fold{k}", model, self.model_cfg)
            seal(Path(folder) / f"fold{k}")

    def load(self, folder: Path) -> bool:
        for k, path in fold_folders(folder):
            try:
                self.models_[k] = load_model(path)[0]
            except (OSError, ValueError, KeyError, RuntimeError) as err:  # sealed, yet not a model of this code
                discard(path, f"{type(err).__name__}: {err}", "fold model")
        return bool(self.models_)


def fold_folders(folder: Path) -> list[tuple[int, Path]]:
    """``(k, models/fold<k>)`` of every saved fold whose files match their seal; damaged ones are discarded."""
    found = sorted(p for p in Path(folder).glob("fold*") if p.is_dir() and p.name[4:].isdigit())
    intact = []
    for path in found:
        reason = check_seal(path)
        if reason:
            discard(path, reason, "fold model")
        else:
            intact.append((int(path.name[4:]), path))
    return intact
