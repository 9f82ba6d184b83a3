"""Cross-fitted image and caption codes for detection, cached on disk.

A detector must not score a pair with a model that trained on it: a model memorises its training
captions, misaligned ones included, so their similarity looks fine. :func:`crossfit_embeddings`
therefore splits the pairs into ``K`` folds by a seeded hash of each pair id (stable when rows are
reordered or added) and, for every fold ``k``, trains on the other folds and embeds fold ``k``.

Backends (:mod:`misalignlab.detect.backends`) say how a model is obtained and used. A pretrained
image–text model (``hf``) has ``crossfit = False``: one model that saw none of the data; every
pair gets fold 0. Fold by fold training, resume and torchrun sharding: :mod:`.folds`.

Cache: ``<cache_dir>/<key>/`` holds ``embeddings.npz`` (written atomically, read with
``allow_pickle=False``) and the backend's saved models; ``key`` hashes pair ids, captions, image
bytes and the config, so a second run on the same data loads everything and trains nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from misalignlab.config import to_dict
from misalignlab.data.ingest.image_store import update_hash, update_text_hash
from misalignlab.detect.backends import BACKENDS, EmbedCfg, EmbeddingBackend, unit
from misalignlab.detect.folds import fit_folds
from misalignlab.runs import atomic_write_bytes
from misalignlab.train.distributed import current

log = logging.getLogger(__name__)
CACHE_FORMAT = "misalignlab.detect.crossfit/2"  # 2: typed EmbedCfg (train and model sub-configs)


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
    image_emb, text_emb = fit_folds(backend, images, captions, fold, n_models, folder, on_fold)
    out = PairEmbeddings(np.asarray(ids, dtype=str), image_emb, text_emb, fold, backend, False, folder)
    if folder is not None and current().is_main:
        backend.save(folder / "models")
        buf = io.BytesIO()
        np.savez(buf, ids=out.ids, image_emb=image_emb, text_emb=text_emb, fold=fold)
        atomic_write_bytes(folder / "embeddings.npz", buf.getvalue())  # written last: marks a complete cache
    return out
