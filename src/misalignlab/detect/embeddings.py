"""Cross-fitted image and caption codes for detection, cached on disk.

A detector must not score a pair with a model that trained on it: a model memorises its training
captions, misaligned ones included, so their similarity looks fine. :func:`crossfit_embeddings`
therefore splits the pairs into ``K`` folds by a seeded hash of each pair id (stable when rows are
reordered or added) and, for every fold ``k``, trains on the other folds and embeds fold ``k``.

Backends (:data:`BACKENDS`) say how a model is obtained and used. ``scratch`` trains a small
:class:`~misalignlab.models.pair_model.ImageTextModel` per fold with
:func:`~misalignlab.train.pairs.train_imagetext`; ``text:minilm`` (:mod:`.text_tower`) trains
the same way against a locked pretrained text tower. A pretrained image–text model (``hf``,
:mod:`.hf_clip`) has ``crossfit = False``: one model that saw none of the data; every pair gets fold 0.
Every backend must embed images and *arbitrary caption strings* (slot alternatives are scored
with the model that scored the pair).

Cache: ``<cache_dir>/<key>/`` holds ``embeddings.npz`` (written atomically, read with
``allow_pickle=False``) and the backend's saved models; ``key`` hashes pair ids, captions, image
bytes and the config, so a second run on the same data loads everything and trains nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np

from misalignlab.config import to_dict
from misalignlab.data.ingest.image_store import update_hash, update_text_hash
from misalignlab.registry import Registry
from misalignlab.runs import atomic_write_bytes

log = logging.getLogger(__name__)
CACHE_FORMAT = "misalignlab.detect.embeddings/1"


def _default_train() -> dict[str, object]:
    return {"steps": 900, "batch_size": 256, "lr": 2e-3, "schedule": "cosine", "warmup_steps": 50}


@dataclass(frozen=True)
class EmbedCfg:
    """How codes are obtained: backend name, folds, seed and the backend's own settings.

    ``train`` and ``model`` are passed to :class:`~misalignlab.train.trainer.TrainCfg` and
    :class:`~misalignlab.models.pair_model.ModelCfg` by the ``scratch`` backend (``image_size``
    is taken from the data). ``reweight_steps`` > 0 makes it train each fold twice: a first model
    of that many steps scores its own training pairs' contrastive loss, a two-component Gaussian
    mixture on those losses (small-loss selection, as in NCR) gives each pair a clean probability,
    and the final model trains with those weights (held-out pairs are never touched).
    """

    backend: str = "scratch"
    folds: int = 2
    seed: int = 0
    train: dict[str, object] = field(default_factory=_default_train)
    model: dict[str, object] = field(default_factory=lambda: {"code_dim": 32, "max_len": 32})
    reweight_steps: int = 300

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError(f"embed.folds must be >= 2 (cross-fitting), got {self.folds}")


class EmbeddingBackend(ABC):
    """A source of image and caption codes; one model per fold (or one for all if not cross-fitted)."""

    name: ClassVar[str]
    crossfit: ClassVar[bool] = True

    @abstractmethod
    def fit_fold(self, fold: int, images: np.ndarray, captions: Sequence[str]) -> None:
        """Train (or prepare) the model that will embed fold ``fold``; sees only the other folds' pairs."""

    @abstractmethod
    def embed_images(self, fold: int, images: np.ndarray) -> np.ndarray:
        """(n, S, S, 3) uint8 → (n, D) float32 codes (not yet normalised)."""

    @abstractmethod
    def embed_texts(self, fold: int, texts: Sequence[str]) -> np.ndarray:
        """Any caption strings → (n, D) float32 codes (not yet normalised)."""

    @abstractmethod
    def save(self, folder: Path) -> None: ...

    @abstractmethod
    def load(self, folder: Path) -> bool:
        """Load saved models; False if ``folder`` holds none."""

    def fingerprint(self) -> str:
        """What the config cannot say about the model (e.g. a checkpoint's files); part of the cache key."""
        return ""


BACKENDS: Registry[Callable[[EmbedCfg, int], EmbeddingBackend]] = Registry("embedding backend")


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32)."""
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def fold_assignment(ids: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """Fold of every pair from a seeded hash of its id: (N,) int64 in ``[0, folds)``."""
    out = np.empty(len(ids), dtype=np.int64)
    for i, pid in enumerate(ids):
        digest = hashlib.blake2b(f"{seed}\x00{pid}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
        out[i] = int.from_bytes(digest, "little") % folds
    return out


def cache_key(
    ids: Sequence[str], captions: Sequence[str], images: np.ndarray, cfg: EmbedCfg, fingerprint: str = ""
) -> str:
    """Hash of pair ids, captions, image bytes, the config and the backend's fingerprint (hex, 24 characters)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(json.dumps({"format": CACHE_FORMAT, "cfg": to_dict(cfg)}, sort_keys=True).encode())
    if fingerprint:  # only pretrained backends have one; scratch keys stay as they were
        h.update(b"fingerprint\x00" + fingerprint.encode())
    update_text_hash(h, ids, captions)
    h.update(str(images.shape).encode())
    update_hash(h, images)  # slice by slice: a memmap store is never copied whole
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class PairEmbeddings:
    """Cross-fitted codes of ``N`` pairs and the backend that can embed more captions per fold."""

    ids: np.ndarray  # (N,) str
    image_emb: np.ndarray  # (N, D) float32, unit norm
    text_emb: np.ndarray  # (N, D) float32, unit norm
    fold: np.ndarray  # (N,) int64; pair i was embedded by the model of fold[i]
    backend: EmbeddingBackend
    cache_hit: bool = False
    folder: Path | None = None

    def embed_texts(self, fold: int, texts: Sequence[str]) -> np.ndarray:
        """Unit-norm codes of ``texts`` from fold ``fold``'s model (for slot alternatives)."""
        return unit(self.backend.embed_texts(fold, texts)) if len(texts) else np.zeros((0, self.image_emb.shape[1]))


def crossfit_embeddings(
    ids: Sequence[str],
    images: np.ndarray,
    captions: Sequence[str],
    cfg: EmbedCfg = EmbedCfg(),
    cache_dir: Path | None = None,
    on_fold: Callable[[int, int], None] | None = None,
) -> PairEmbeddings:
    """Codes of every pair from a model that never trained on it; cached under ``cache_dir``.

    Parameters
    ----------
    ids, images, captions
        ``N`` pairs: unique ids, (N, S, S, 3) uint8 images, caption strings.
    cfg : EmbedCfg
        Backend, folds, seed and training settings.
    cache_dir : Path, optional
        Where ``<key>/embeddings.npz`` and the models go; None: no cache.
    on_fold : callable, optional
        ``on_fold(k, folds)`` after each fold is done (a progress hook for the CLI).
    """
    if len(set(ids)) != len(ids):
        raise ValueError("pair ids must be unique")
    backend = BACKENDS.get(cfg.backend)(cfg, int(images.shape[1]))
    key = cache_key(ids, captions, images, cfg, backend.fingerprint()) if cache_dir is not None else ""
    folder = Path(cache_dir) / key if cache_dir is not None else None
    if folder is not None and (folder / "embeddings.npz").is_file() and backend.load(folder / "models"):
        with np.load(folder / "embeddings.npz", allow_pickle=False) as npz:
            loaded = {k: npz[k] for k in ("ids", "image_emb", "text_emb", "fold")}
        if loaded["ids"].tolist() == list(ids):
            log.info("embedding cache hit: %s", folder)
            return PairEmbeddings(**loaded, backend=backend, cache_hit=True, folder=folder)
    fold = fold_assignment(ids, cfg.folds, cfg.seed) if backend.crossfit else np.zeros(len(ids), dtype=np.int64)
    n_models = cfg.folds if backend.crossfit else 1
    # fold by fold, resumable from <folder>/folds, folds shared out over torchrun ranks (detect/folds.py)
    from misalignlab.detect.folds import fit_folds
    from misalignlab.train.distributed import current

    image_emb, text_emb = fit_folds(backend, images, captions, fold, n_models, folder, on_fold)
    out = PairEmbeddings(np.asarray(ids, dtype=str), image_emb, text_emb, fold, backend, False, folder)
    if folder is not None and current().is_main:
        backend.save(folder / "models")
        buf = io.BytesIO()
        np.savez(buf, ids=out.ids, image_emb=image_emb, text_emb=text_emb, fold=fold)
        atomic_write_bytes(folder / "embeddings.npz", buf.getvalue())  # written last: marks a complete cache
    return out


@BACKENDS.register("scratch")
class ScratchBackend(EmbeddingBackend):
    """A small image–text model trained from scratch on the other folds (see ``EmbedCfg.train``)."""

    name = "scratch"

    def __init__(self, cfg: EmbedCfg, image_size: int) -> None:
        from misalignlab.config import from_dict
        from misalignlab.models.pair_model import ModelCfg
        from misalignlab.train.trainer import TrainCfg

        self.train_cfg = from_dict(TrainCfg, {"seed": cfg.seed, **cfg.train}, where="embed.train")
        model = from_dict(ModelCfg, dict(cfg.model), where="embed.model")
        self.model_cfg = dataclasses.replace(model, image_size=image_size)
        self.reweight_steps = cfg.reweight_steps
        self.models_: dict[int, object] = {}

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

    def _train(self, images: np.ndarray, captions: Sequence[str], train: object, weights: np.ndarray | None = None):
        """A fresh model trained on the pairs (subclasses with other towers override this)."""
        from misalignlab.train.pairs import ImageTextCfg, train_imagetext

        return train_imagetext(images, captions, ImageTextCfg(train=train, model=self.model_cfg), weights=weights)  # type: ignore[arg-type]

    def _clean_probability(self, fold: int, images: np.ndarray, captions: Sequence[str]) -> np.ndarray:
        """(n,) float32 posterior of the small-loss component for the training pairs of ``fold``."""
        from sklearn.mixture import GaussianMixture

        from misalignlab.detect.base import PairView
        from misalignlab.detect.pair_loss import PairLoss

        img, txt = unit(self.embed_images(fold, images)), unit(self.embed_texts(fold, captions))
        loss = PairLoss(seed=fold).losses(PairView(np.arange(len(img)).astype(str), img, txt, np.zeros(len(img), int)))
        gmm = GaussianMixture(2, random_state=0).fit(loss[:, None].astype(np.float64))
        clean = int(np.argmin(gmm.means_[:, 0]))
        return gmm.predict_proba(loss[:, None].astype(np.float64))[:, clean].astype(np.float32)

    def embed_images(self, fold: int, images: np.ndarray) -> np.ndarray:
        import torch

        from misalignlab.train.pairs import images_to_float

        model = self.models_[fold]
        out = []
        with torch.no_grad():
            for start in range(0, len(images), 1024):
                chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + 1024]))  # (B, S, S, 3) uint8
                out.append(model.encode_image(images_to_float(chunk)).float().numpy())  # type: ignore[attr-defined]
        return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)

    def embed_texts(self, fold: int, texts: Sequence[str]) -> np.ndarray:
        import torch

        model = self.models_[fold]
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), 4096):
                tokens = model.tokenize(list(texts[start : start + 4096]))  # type: ignore[attr-defined]
                out.append(model.encode_text(tokens).float().numpy())  # type: ignore[attr-defined]
        return np.concatenate(out)

    def save(self, folder: Path) -> None:
        from misalignlab.models.pair_model import save_model

        for k, model in self.models_.items():
            save_model(Path(folder) / f"fold{k}", model, self.model_cfg)  # type: ignore[arg-type]

    def load(self, folder: Path) -> bool:
        from misalignlab.models.pair_model import load_model

        found = sorted(Path(folder).glob("fold*/model.pt")) if Path(folder).is_dir() else []
        if not found:
            return False
        for path in found:
            self.models_[int(path.parent.name[4:])] = load_model(path.parent)[0]
        return True


# Pretrained backends register themselves (their heavy imports happen only when one is used).
from misalignlab.detect import hf_clip, text_tower  # noqa: E402,F401
