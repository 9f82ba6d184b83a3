"""``precomputed`` backend: image and caption codes computed elsewhere, read from an ``.npz`` file.

As cleanlab takes ``features=``, a diagnosis can start from codes a user already has (a large
CLIP run, a model this package cannot load): ``--embeddings FILE.npz`` or ``--backbone
precomputed:FILE.npz``. The file holds three arrays:

- ``ids``: (M,) strings, unique, a superset of the pair ids (extra rows are ignored);
- ``image_emb``: (M, D) and ``text_emb``: (M, D) real numbers, finite (normalised here).

It is read with ``allow_pickle=False`` and checked whole; every problem raises a ``ValueError``
naming the file and what is wrong. The codes are used as they are (not cross-fitted: whoever
computed them decided that; every pair gets fold 0) and nothing is cached. The file cannot
embed new caption strings, so ``can_embed_text`` is False: :meth:`embed_texts` raises and the
diagnosis skips word-level slot evidence instead of calling it.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.lib.npyio import NpzFile

from misalignlab.detect.backends.base import BACKENDS, EmbedCfg, EmbeddingBackend

ARRAYS = ("ids", "image_emb", "text_emb")


def read_codes(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``ids`` (M,) str, ``image_emb`` and ``text_emb`` (M, D) float32 from ``path``, checked (see module)."""
    where = f"embeddings file {path}"
    if not path.is_file():
        raise ValueError(f"{where} does not exist")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, NpzFile):
            raise ValueError("it is a single .npy array, not an .npz archive")
        with loaded as npz:
            missing = [k for k in ARRAYS if k not in npz.files]
            if missing:
                raise ValueError(f"it lacks the array(s) {', '.join(missing)} (it has: {', '.join(npz.files)})")
            ids, img, txt = (np.asarray(npz[k]) for k in ARRAYS)
    except ValueError as err:
        if "allow_pickle" in str(err) or "pickled" in str(err):
            raise ValueError(f"{where}: holds Python objects (ids must be a string array, codes numbers)") from None
        raise ValueError(f"{where}: {err}") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(f"{where} is not a readable .npz archive: {type(err).__name__}: {err}") from None
    if ids.ndim != 1 or ids.dtype.kind not in "US":
        raise ValueError(f"{where}: ids must be a 1-D string array, got {ids.dtype} {ids.shape}")
    ids = ids.astype(str)
    for name, codes in (("image_emb", img), ("text_emb", txt)):
        if codes.ndim != 2 or codes.dtype.kind not in "fiu" or codes.shape[0] != len(ids):
            raise ValueError(
                f"{where}: {name} must be a ({len(ids)}, D) numeric array, got {codes.dtype} {codes.shape}"
            )
        bad = np.flatnonzero(~np.isfinite(codes).all(axis=1))
        if bad.size:
            raise ValueError(f"{where}: {name} has {bad.size} row(s) with NaN or infinite values (id {ids[bad[0]]!r})")
    if img.shape != txt.shape:
        raise ValueError(f"{where}: image_emb {img.shape} and text_emb {txt.shape} must have the same width")
    if len(np.unique(ids)) != len(ids):
        raise ValueError(f"{where}: ids are not unique")
    return ids, img.astype(np.float32), txt.astype(np.float32)


@BACKENDS.register("precomputed")
class PrecomputedBackend(EmbeddingBackend):
    """Codes looked up by pair id in ``EmbedCfg.path`` (see the module docstring)."""

    name = "precomputed"
    crossfit = False
    can_embed_text = False
    precomputed = True

    def __init__(self, cfg: EmbedCfg, image_size: int) -> None:
        self.path = Path(cfg.path).expanduser()
        self.ids, self.image_emb, self.text_emb = read_codes(self.path)

    def codes_by_id(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        row = {pid: i for i, pid in enumerate(self.ids.tolist())}
        missing = [pid for pid in ids if pid not in row]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5]) + (" …" if len(missing) > 5 else "")
            raise ValueError(f"embeddings file {self.path} has no codes for {len(missing)} pair id(s): {shown}")
        rows = np.fromiter((row[pid] for pid in ids), dtype=np.int64, count=len(ids))
        return self.image_emb[rows], self.text_emb[rows]

    def fit_fold(self, fold: int, images: np.ndarray, captions: Sequence[str]) -> None:
        pass  # nothing to fit

    def embed_images(self, fold: int, images: np.ndarray) -> np.ndarray:
        raise ValueError(f"backbone precomputed:{self.path} looks codes up by pair id; it cannot embed images")

    def embed_texts(self, fold: int, texts: Sequence[str]) -> np.ndarray:
        raise ValueError(
            f"backbone precomputed:{self.path} cannot embed new caption strings (can_embed_text is False); "
            "word-level evidence needs a backbone with a text encoder"
        )

    def save(self, folder: Path) -> None:
        pass

    def load(self, folder: Path) -> bool:
        return True
