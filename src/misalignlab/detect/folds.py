"""Train and embed the cross-fitting folds: resumable fold by fold, shared out over torchrun ranks.

:func:`fit_folds` is the loop inside :func:`~misalignlab.detect.crossfit.crossfit_embeddings`.
With a cache folder, every finished fold leaves its model (``models/fold<k>/``, the backend's own
format) and then its held-out codes (``folds/fold<k>.npz``, the mark of a finished fold), so a
killed diagnosis reruns only the folds it had not finished. Under ``torchrun`` rank ``r`` trains
folds ``k ≡ r (mod W)`` alone (:func:`~misalignlab.train.distributed.alone`), then every rank loads
all folds from the shared folder: each fold is the same computation as in one process, so the
merged codes and models are identical to a single-process run.

A part file is kept only if it reads back whole (CRC-checked) and holds exactly its fold's pairs
with finite codes, and only while the backend still has that fold's model (a damaged model is
discarded by the backend): otherwise it is named in a warning, removed and the fold redone.
This module trains nothing itself (the backend does) and decides nothing about caching keys.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from misalignlab.cache_files import discard, read_npz
from misalignlab.data.rows import RowView
from misalignlab.runs import atomic_write_bytes
from misalignlab.train.distributed import alone, barrier, current

log = logging.getLogger(__name__)
PARTS_DIR = "folds"
Part = tuple[np.ndarray, np.ndarray, np.ndarray]  # held-out pair indices (n,), image codes (n, D), text codes (n, D)


def _write_part(parts: Path, k: int, part: Part) -> None:
    buf = io.BytesIO()
    np.savez(buf, held=part[0], image_emb=part[1], text_emb=part[2])
    atomic_write_bytes(parts / f"fold{k}.npz", buf.getvalue())


def _read_parts(parts: Path, fold: np.ndarray, backend: Any) -> dict[int, Part]:
    """The intact parts of folds whose model the backend holds (see the module docstring)."""
    out: dict[int, Part] = {}
    for path in sorted(parts.glob("fold*.npz")) if parts.is_dir() else []:
        if not path.stem[4:].isdigit():
            continue
        k = int(path.stem[4:])
        part = read_npz(path, ("held", "image_emb", "text_emb"), "fold part", lambda a, k=k: _part_damage(a, fold, k))
        if part is None:
            continue
        if not backend.has_fold(k):
            discard(path, f"the model of fold {k} is gone", "fold part")
            continue
        out[k] = (part["held"], part["image_emb"], part["text_emb"])
    return out


def _part_damage(part: dict[str, np.ndarray], fold: np.ndarray, k: int) -> str:
    """Why a read part is not fold ``k``'s codes, or ``""``."""
    held, img, txt = part["held"], part["image_emb"], part["text_emb"]
    if held.ndim != 1 or held.dtype.kind not in "iu" or not np.array_equal(held, np.flatnonzero(fold == k)):
        return f"its pairs are not fold {k}'s {int((fold == k).sum())} pairs"
    if img.ndim != 2 or txt.ndim != 2 or len(img) != len(held) or img.shape != txt.shape:
        return f"codes of shapes {img.shape} and {txt.shape} for {len(held)} pairs"
    if not (np.isfinite(img).all() and np.isfinite(txt).all()):
        return "codes that are not finite"
    return ""


def check_parts(
    folder: Path, fold: np.ndarray, n_models: int, image_emb: np.ndarray, text_emb: np.ndarray, backend: Any
) -> None:
    """On a cache hit: read every fold part back; one that is damaged or missing is written again from
    the merged codes (``image_emb``, ``text_emb`` (N, D)), so a later resume never meets it."""
    parts = folder / PARTS_DIR
    done = _read_parts(parts, fold, backend)
    for k in range(n_models):
        if k not in done:
            held = np.flatnonzero(fold == k)
            _write_part(parts, k, (held, image_emb[held], text_emb[held]))


def _fit_one(backend: Any, k: int, images: np.ndarray, caps: Sequence[str], fold: np.ndarray, crossfit: bool) -> Part:
    from misalignlab.detect.backends import unit  # (that module calls this one)

    held = np.flatnonzero(fold == k)
    train = np.flatnonzero(fold != k) if crossfit else np.zeros(0, dtype=np.int64)
    # both selections are read a batch at a time, so a memmap store is never copied whole
    backend.fit_fold(k, RowView(images, train), [caps[i] for i in train])
    if not held.size:
        return held, np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    img = unit(backend.embed_images(k, RowView(images, held)))
    txt = unit(backend.embed_texts(k, [caps[i] for i in held]))
    return held, img, txt


def fit_folds(
    backend: Any,
    images: np.ndarray,
    captions: Sequence[str],
    fold: np.ndarray,
    n_models: int,
    folder: Path | None,
    on_fold: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-norm image and text codes (N, D) of every pair, each from the model of its fold.

    ``fold`` (N,) assigns pairs to the ``n_models`` models (all 0 for a backend that does not
    cross-fit); ``folder`` is the cache folder (None: nothing saved, nothing resumed, no sharding).
    """
    d = current()
    shard = d.active and n_models > 1 and folder is not None
    if d.active and not shard:
        log.warning("no shared cache folder or a single model: every rank computes every fold")
    parts = folder / PARTS_DIR if folder is not None else None
    done: dict[int, Part] = {}
    if parts is not None and backend.load(folder / "models"):  # type: ignore[operator]
        done = _read_parts(parts, fold, backend)
        log.info("resuming cross-fitting: folds %s already finished", sorted(done))
    caps = list(captions)
    with alone():  # a fold is trained whole by one rank
        for k in range(n_models):
            if k in done or (shard and k % d.world != d.rank):
                continue
            done[k] = _fit_one(backend, k, images, caps, fold, n_models > 1)
            if parts is not None:
                backend.save(folder / "models")  # type: ignore[operator]
                _write_part(parts, k, done[k])  # after the model: a part file marks a finished fold
            if on_fold is not None:
                on_fold(k, n_models)
    if shard:
        barrier()  # every rank has written its folds
        backend.load(folder / "models")  # type: ignore[operator]
        done = {**_read_parts(parts, fold, backend), **done}  # type: ignore[arg-type]
    dim = max((p[1].shape[1] for p in done.values()), default=0)
    image_emb = np.zeros((len(fold), dim), dtype=np.float32)
    text_emb = np.zeros_like(image_emb)
    for held, img, txt in done.values():
        if held.size:
            image_emb[held], text_emb[held] = img, txt
    return image_emb, text_emb
