"""Cross-fitted image and caption codes for detection, cached on disk.

A detector must not score a pair with a model that trained on it: a model memorises its training
captions, misaligned ones included, so their similarity looks fine. :func:`crossfit_embeddings`
therefore splits the pairs into ``K`` folds by a seeded hash of each pair's image key (stable when
rows are reordered or added) and, for every fold ``k``, trains on the other folds and embeds fold
``k``. The key is the pair id unless several captions share an image (COCO, Flickr30k): then all
captions of one image land in one fold, since a model that trained on an image with its other
captions has seen that image, and codes of one image compared across folds would live in
different spaces.

Backends (:mod:`misalignlab.detect.backends`) say how a model is obtained and used. A pretrained
image–text model (``hf``) has ``crossfit = False``: one model that saw none of the data; every
pair gets fold 0. Fold by fold training, resume and torchrun sharding: :mod:`.folds`. A backend
whose :meth:`~misalignlab.detect.backends.EmbeddingBackend.image_input` asks for the original
files at its own size gets them from the ``originals`` given (an
:class:`~misalignlab.data.ingest.originals.ImageSource`, read lazily); without one it gets the
stored images. A ``precomputed`` backend's codes are looked up by pair id: nothing is cached.

Cache: ``<cache_dir>/<key>/`` holds ``embeddings.npz`` (written atomically, read with
``allow_pickle=False``) and the backend's saved models; ``key`` hashes pair ids, captions, image
bytes, the config, which images the backend saw (the store, or the originals at a size) and the
image keys where they are not the pair ids, so a second run on the same data loads everything and
trains nothing. A damaged ``embeddings.npz`` (truncated, overwritten, empty, or arrays that do not
fit the pairs) is named in a warning, removed and rebuilt from the fold parts and models,
themselves checked (:mod:`.folds`).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from misalignlab.cache_files import read_npz
from misalignlab.config import to_dict
from misalignlab.data.ingest.image_store import update_hash, update_text_hash
from misalignlab.data.ingest.originals import ImageSource, OriginalImages
from misalignlab.detect.backends import BACKENDS, EmbedCfg, EmbeddingBackend, unit
from misalignlab.detect.folds import check_parts, fit_folds
from misalignlab.runs import atomic_write_bytes
from misalignlab.train.distributed import current

log = logging.getLogger(__name__)
CACHE_FORMAT = "misalignlab.detect.crossfit/3"  # 2: typed EmbedCfg; 3: sealed fold model folders
EMBEDDING_ARRAYS = ("ids", "image_emb", "text_emb", "fold")


MIN_TRAIN_PAIRS = 2  # a batch of one has no batch statistics to normalise with


def fold_assignment(keys: Sequence[str], folds: int, seed: int = 0) -> np.ndarray:
    """Fold of every pair from a seeded hash of its key: (N,) int64 in ``[0, folds)``.

    Pass each pair's image key to keep the captions of one image in one fold (equal keys, equal
    folds), or the pair ids when every pair has its own image.
    """
    out = np.empty(len(keys), dtype=np.int64)
    folds_of: dict[str, int] = {}  # an image's captions hash once
    for i, key in enumerate(keys):
        if key not in folds_of:
            digest = hashlib.blake2b(f"{seed}\x00{key}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
            folds_of[key] = int.from_bytes(digest, "little") % folds
        out[i] = folds_of[key]
    return out


def cache_key(
    ids: Sequence[str],
    captions: Sequence[str],
    images: np.ndarray,
    cfg: EmbedCfg,
    fingerprint: str = "",
    image_source: str = "",
    image_keys: Sequence[str] | None = None,
) -> str:
    """Hash of pair ids, captions, image bytes, the config, the backend's fingerprint, ``image_source``
    (what the backend's images were read from, when not the store) and ``image_keys`` (only where
    they are not the pair ids: the folds depend on them) (hex, 24 characters)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(json.dumps({"format": CACHE_FORMAT, "cfg": to_dict(cfg)}, sort_keys=True).encode())
    if fingerprint:  # only pretrained backends have one; scratch keys stay as they were
        h.update(b"fingerprint\x00" + fingerprint.encode())
    if image_source:
        h.update(b"images\x00" + image_source.encode())
    if image_keys is not None:  # one caption per image: keys stay as they were
        h.update(b"image_keys\x00")
        update_text_hash(h, ids, image_keys)
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
    originals: ImageSource | None = None,
    image_keys: Sequence[str] | None = None,
) -> PairEmbeddings:
    """Codes of every pair from a model that never trained on it, nor on its image; cached under ``cache_dir``.

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
    originals : ImageSource, optional
        Where the pairs' original files can be re-read, for a backend that wants them at its own
        size (the stored ``images`` stand in for any that cannot be read).
    image_keys : sequence of str, optional
        (N,) pairs sharing a key are captions of one image and share a fold; None: the pair ids.
    """
    if len(set(ids)) != len(ids):
        raise ValueError("pair ids must be unique")
    keys = shared_image_keys(ids, image_keys)
    backend = BACKENDS.get(cfg.backend)(cfg, int(images.shape[1]))
    n = len(ids)
    if backend.precomputed:  # looked up, not computed: nothing to cross-fit or cache
        image_emb, text_emb = backend.codes_by_id(ids)
        return PairEmbeddings(
            np.asarray(ids, dtype=str), unit(image_emb), unit(text_emb), np.zeros(n, np.int64), backend
        )
    seen, source = _backend_images(backend, images, originals)
    key = cache_key(ids, captions, images, cfg, backend.fingerprint(), source, keys) if cache_dir is not None else ""
    folder = Path(cache_dir) / key if cache_dir is not None else None
    by = ids if keys is None else keys
    fold = fold_assignment(by, cfg.folds, cfg.seed) if backend.crossfit else np.zeros(n, dtype=np.int64)
    n_models = cfg.folds if backend.crossfit else 1
    if backend.crossfit:  # a fold model is trained on the other folds
        train_sizes = [int((fold != k).sum()) for k in range(cfg.folds)]
        if min(train_sizes) < MIN_TRAIN_PAIRS:
            raise ValueError(
                f"too few pairs to cross-fit: {n} pairs in {cfg.folds} folds leave a fold model "
                f"{min(train_sizes)} pair(s) to train on (at least {MIN_TRAIN_PAIRS}); diagnose more pairs"
            )
    if folder is not None and (folder / "embeddings.npz").is_file() and backend.load(folder / "models"):
        if all(backend.has_fold(k) for k in range(n_models)):
            check = lambda arrays: _embedding_damage(arrays, ids, fold)  # noqa: E731
            loaded = read_npz(folder / "embeddings.npz", EMBEDDING_ARRAYS, "embedding cache", check)
            if loaded is not None:
                log.info("embedding cache hit: %s", folder)
                if current().is_main:
                    check_parts(folder, fold, n_models, loaded["image_emb"], loaded["text_emb"], backend)
                return PairEmbeddings(**loaded, backend=backend, cache_hit=True, folder=folder)
    # fold by fold, resumable from <folder>/folds, folds shared out over torchrun ranks (detect/folds.py)
    image_emb, text_emb = fit_folds(backend, seen, captions, fold, n_models, folder, on_fold)
    if isinstance(seen, OriginalImages) and seen.failed:
        log.warning("%d of %d originals could not be re-read; their stored images were embedded", seen.failed, n)
    out = PairEmbeddings(np.asarray(ids, dtype=str), image_emb, text_emb, fold, backend, False, folder)
    if folder is not None and current().is_main:
        backend.save(folder / "models")
        buf = io.BytesIO()
        np.savez(buf, ids=out.ids, image_emb=image_emb, text_emb=text_emb, fold=fold)
        atomic_write_bytes(folder / "embeddings.npz", buf.getvalue())  # written last: marks a complete cache
    return out


def shared_image_keys(ids: Sequence[str], image_keys: Sequence[str] | None) -> list[str] | None:
    """``image_keys`` as a list where some pairs share an image, or None where every key is its pair's
    id (or none was given): then folds and cache keys are exactly those of one caption per image."""
    if image_keys is None:
        return None
    keys = [str(k) for k in image_keys]
    if len(keys) != len(ids):
        raise ValueError(f"{len(keys)} image keys for {len(ids)} pairs")
    return None if keys == list(ids) else keys


def _backend_images(backend: EmbeddingBackend, images: np.ndarray, originals: ImageSource | None) -> tuple[Any, str]:
    """The images ``backend`` embeds and, if they are not the store, a description for the cache key."""
    want = backend.image_input()
    if want is None:
        return images, ""
    if originals is None:
        log.info(
            "backbone %r embeds the %d px stored images (no original files given; it wants %d px)",
            backend.name,
            int(images.shape[1]),
            want.size,
        )
        return images, ""
    log.info("backbone %r embeds the original files at %d px (%s)", backend.name, want.size, want.fit)
    return originals.decoded(want, images), f"originals:{want.size}:{want.fit}:{originals.digest()}"


def _embedding_damage(arrays: dict[str, np.ndarray], ids: Sequence[str], fold: np.ndarray) -> str:
    """Why read ``embeddings.npz`` arrays are not the codes of pairs ``ids`` with folds ``fold``, or ``""``."""
    img, txt = arrays["image_emb"], arrays["text_emb"]
    if arrays["ids"].tolist() != list(ids):
        return "its pair ids are not these pairs'"
    if not np.array_equal(arrays["fold"], fold):
        return "its folds are not these pairs' folds"
    if img.ndim != 2 or img.shape != txt.shape or len(img) != len(ids):
        return f"codes of shapes {img.shape} and {txt.shape} for {len(ids)} pairs"
    if not (np.isfinite(img).all() and np.isfinite(txt).all()):
        return "codes that are not finite"
    return ""
